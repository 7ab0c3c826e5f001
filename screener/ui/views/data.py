"""Data page: what the store holds (coverage, staleness, problems), a refresh from Yahoo Finance with a progress
bar, an offline indicator, and an import from a snapshot directory (for offline use).
"""  # noqa: D205

from __future__ import annotations

import os
import socket
from pathlib import Path

import pandas as pd
import streamlit as st

from screener.exceptions import ProviderError, ScreenerError
from screener.ui import cache, charts
from screener.ui.common import UniverseRef

YAHOO_HOST = ("query2.finance.yahoo.com", 443)
PROBE_TIMEOUT = 2.0
OFFLINE_ENV = "SCREENER_OFFLINE"
"""Set to 1 to treat Yahoo Finance as unreachable without probing the network (tests, air-gapped machines)."""
_DONE = "_data_last_action"
STATUS_COLUMNS = ("first_date", "last_date", "rows", "source", "fetched_at", "stale", "problems", "warnings")


def yahoo_status() -> tuple[bool, str]:
    """Whether Yahoo Finance answers a TCP connection within `PROBE_TIMEOUT` seconds, and why not."""
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        return False, f"offline mode (${OFFLINE_ENV} is set)"
    try:
        socket.create_connection(YAHOO_HOST, timeout=PROBE_TIMEOUT).close()
    except OSError as exc:
        return False, f"{YAHOO_HOST[0]} cannot be reached ({type(exc).__name__}: {exc})"
    return True, ""


def make_provider():
    """The live provider, with few retries so that an offline machine fails within seconds."""
    from screener.data.yahoo import YahooProvider

    return YahooProvider(max_retries=2, base_delay=0.5, max_delay=4.0, timeout=10)


def status_frame(records: list[dict]) -> pd.DataFrame:
    """`Store.status` records as a table indexed by ticker (problems and warnings as text)."""
    frame = pd.DataFrame(records, columns=["ticker", *STATUS_COLUMNS])
    frame["problems"] = frame["problems"].map(lambda p: "; ".join(p) if isinstance(p, list) else "")
    frame["warnings"] = frame["warnings"].map(lambda w: "; ".join(map(_warning, w)) if isinstance(w, list) else "")
    return frame.set_index("ticker")


def _warning(w: object) -> str:
    if isinstance(w, dict):
        return f"{w.get('kind', 'warning')} {w.get('date', '')}: {w.get('detail', '')}".strip()
    return str(w)


def refresh_targets(ref: UniverseRef) -> list[str]:
    """The universe's members, its benchmarks and the FX series that convert them to its base currency."""
    from screener.markets import fx_route

    uni = ref.load()
    tickers = [*uni.tickers, *uni.benchmarks]
    fx = []
    for m in uni.members:
        try:
            fx += [s for s, _ in fx_route(m.currency, uni.base_currency)]
        except ScreenerError:
            continue
    return list(dict.fromkeys(tickers + fx))


def _done(messages: list[tuple[str, str]]) -> None:
    """Keep the outcome of a refresh or import and run the page again, so that the status shows the new data."""
    st.session_state[_DONE] = messages
    st.rerun()


def _progress_callback(bar, verb: str):
    def progress(done: int, total: int, ticker: str) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{verb} {done}/{total}: {ticker}")
    return progress


def _refresh(ref: UniverseRef, online: bool, why: str) -> None:
    st.subheader("Refresh from Yahoo Finance")
    targets = refresh_targets(ref)
    st.caption(f"{len(targets)} symbols: the members of `{ref.load().name}`, its benchmarks and FX. Only missing "
               "dates are fetched (plus a short overlap); stored data is never lost.")
    if st.button("Refresh from Yahoo Finance", key="w_refresh", icon=":material/sync:", type="primary" if online
                 else "secondary", help=None if online else f"Yahoo Finance looks unreachable: {why}"):
        from screener.data.store import Store
        from screener.data.yahoo import yfinance_version

        bar = st.progress(0.0, text="Contacting Yahoo Finance…")
        try:
            report = Store().refresh(targets, make_provider(), progress=_progress_callback(bar, "fetched"),
                                     yfinance_version=yfinance_version())
        except ProviderError as exc:
            bar.empty()
            st.error(f"Offline: {exc}. The store is unchanged and still serves its data.", icon=":material/cloud_off:")
            return
        bar.empty()
        if report.offline:
            st.error(f"Offline: {report.offline}. The store is unchanged and still serves its data.",
                     icon=":material/cloud_off:")
            return
        messages = [("success", f"Updated {len(report.updated)} tickers, unchanged {len(report.unchanged)}, "
                                f"re-fetched {len(report.refetched)}, empty {len(report.empty)}, failed "
                                f"{len(report.errors)}.")]
        messages += [("warning", f"{t}: {reason}") for t, reason in report.errors.items()]
        messages += [("caption", f"{t}: Yahoo Finance returned no data (unknown or delisted symbol?)")
                     for t in report.empty]
        _done(messages)


def _import() -> None:
    from screener.paths import snapshot_dir

    st.subheader("Import a snapshot directory")
    default = snapshot_dir()
    if default is None:
        beside = Path.cwd().parent / "shared" / "marketdata"  # the checkout's convention (README, Offline data)
        default = beside if (beside / "prices").is_dir() else None
    path = st.text_input("Snapshot directory (format of shared/marketdata: prices/<SYMBOL>.csv)",
                         value=str(default) if default else "", key="w_snapshot_dir")
    if st.button("Import into the store", key="w_import", icon=":material/download:"):
        from screener.data.snapshot import SnapshotProvider
        from screener.data.store import Store

        directory = Path(path).expanduser()
        if not (directory / "prices").is_dir():
            st.error(f"{directory}: no prices/ directory there; expected the format of shared/marketdata.")
            return
        bar = st.progress(0.0, text="Reading the snapshot…")
        try:
            provider = SnapshotProvider(directory)
            result = provider.fetch(provider.tickers(), progress=_progress_callback(bar, "read"))
            written = Store().import_bars(result, source=f"snapshot:{directory.resolve()}")
        except ScreenerError as exc:
            bar.empty()
            st.error(str(exc))
            return
        bar.empty()
        _done([("success", f"Imported {len(written)} tickers into the store."),
               *(("warning", f"{t}: {why}") for t, why in result.errors.items())])


def render(ref: UniverseRef) -> None:
    """Draw the page."""
    from screener.data.store import Store

    st.header("Data: the market-data store")
    online, why = yahoo_status()
    if online:
        st.success("Yahoo Finance is reachable: the store can be refreshed.", icon=":material/cloud_done:")
    else:
        st.warning(f"Offline: {why}. The app runs from the store and the snapshot; refreshing is not possible "
                   "until Yahoo Finance can be reached.", icon=":material/cloud_off:")
    for kind, text in st.session_state.pop(_DONE, []):
        getattr(st, kind)(text)
    from screener.paths import snapshot_dir

    snap = snapshot_dir()
    st.caption(f"Store: `{Store().root}`" + (f" · snapshot fallback: `{snap}`" if snap else " · no snapshot "
                                              "fallback (set SCREENER_SNAPSHOT)"))

    fingerprint = cache.data_fingerprint()
    records = cache.uncached_if_empty(cache.store_status, fingerprint)
    if not records:
        st.info("The store is empty. Import a snapshot directory below (or run `screener data import DIR`), or "
                "refresh from Yahoo Finance when it is reachable."
                + (f" Meanwhile tickers are served from the snapshot at {snap}." if snap else ""))
    else:
        status = status_frame(records)
        uni = ref.load()
        covered = [t for t in uni.tickers if t in status.index and status.at[t, "rows"]]
        c = st.columns(5)
        c[0].metric("Tickers stored", len(status))
        c[1].metric(f"Members of {uni.name}", f"{len(covered)} / {len(uni.members)}")
        c[2].metric("Stale", int(status["stale"].sum()), help="Last bar older than the staleness limit")
        c[3].metric("With problems", int((status["problems"] != "").sum()))
        c[4].metric("With warnings", int((status["warnings"] != "").sum()))
        st.dataframe(status, width="stretch", column_config={
            "stale": st.column_config.CheckboxColumn("stale"),
        })
        st.plotly_chart(charts.coverage(status), key="coverage_chart")
        st.caption("Red: stale (last bar older than the staleness limit) or with problems; blue: up to date.")
    _refresh(ref, online, why)
    _import()
