"""Cached loaders: thin `st.cache_data` wrappers around the library, keyed on normalised inputs.

Keys are the universe's name or path with a file token, dates as ISO text, a config's `config_hash()` and a
*data fingerprint* (names, sizes and modification times of the store's and the snapshot's files), never
today's date: a refresh or an import changes the fingerprint, so stale results are never served. Exceptions
are not cached by Streamlit, and empty results are handed back without being cached (`_Empty`), so a failure
or an empty answer is computed again on the next run. Slow loaders show a spinner on a cache miss.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from screener.config import StrategyConfig
from screener.paths import snapshot_dir, store_dir

T = TypeVar("T")
MAX_ENTRIES = 32


class _Empty(Exception):
    """Raised inside a cached function to return an empty result without caching it."""

    def __init__(self, value: Any) -> None:
        super().__init__("empty result (not cached)")
        self.value = value


def _keep(value: T, empty: bool) -> T:
    if empty:
        raise _Empty(value)
    return value


def uncached_if_empty(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a cached loader; an empty result comes back as a value but was not stored."""
    try:
        return fn(*args, **kwargs)
    except _Empty as carrier:
        return carrier.value


# -- keys -----------------------------------------------------------------------------------------------------
def _scan(directory: Path, h: hashlib._Hash) -> None:
    h.update(str(directory).encode())
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        h.update(b"<missing>")
        return
    for entry in entries:
        try:
            stat = entry.stat()
        except OSError:
            continue
        h.update(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())


def data_fingerprint() -> str:
    """Identify the data every loader reads: the store's files and the snapshot's (cheap: one directory scan)."""
    h = hashlib.sha256()
    root = store_dir()
    _scan(root / "bars", h)
    _scan(root / "quarantine", h)
    snap = snapshot_dir()
    if snap is not None:
        _scan(snap / "prices", h)
    return h.hexdigest()[:20]


def file_token(path: str | Path) -> str:
    """Size and modification time of a file (a cache key that changes when the file is edited)."""
    try:
        stat = Path(path).stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


# -- universe -------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Loading prices…", max_entries=MAX_ENTRIES)
def member_prices(universe: str, token: str, fingerprint: str) -> pd.DataFrame:
    """Per member: listing currency, latest adjusted close and its date, one-year return, coverage and source.

    The one-year return is `screener.factors.market.momentum` with a 252-row lookback and no skip (the total
    return over the member's last 252 trading rows, in the universe's base currency), at the member's last
    price.
    """
    from screener.data.panel import load_prices
    from screener.factors.market import momentum
    from screener.periods import TRADING_DAYS_PER_YEAR
    from screener.universe import load_universe

    del token, fingerprint  # cache keys only
    uni = load_universe(universe)
    data = load_prices(uni.tickers, currency=uni.base_currency, currencies=uni.currencies)
    one_year = pd.Series(float("nan"), index=list(uni.tickers))
    if not data.prices.empty:
        moved = momentum(data.prices, [data.prices.index[-1]], lookback=TRADING_DAYS_PER_YEAR, skip=0,
                         max_stale_days=None)
        one_year.update(moved.iloc[0])
    rows = []
    for m in uni.members:
        t = m.ticker
        if t in data.local.columns:
            series = data.local[t].dropna()
            rows.append({"ticker": t, "currency": data.currencies[t], "last_price": float(series.iloc[-1]),
                         "last_date": series.index[-1].date(), "return_1y": float(one_year[t]),
                         "first_date": series.index[0].date(), "prices": len(series),
                         "source": data.sources.get(t, ""), "missing": ""})
        else:
            rows.append({"ticker": t, "currency": m.currency, "last_price": float("nan"), "last_date": None,
                         "return_1y": float("nan"), "first_date": None, "prices": 0, "source": "",
                         "missing": data.missing.get(t, "no data")})
    frame = pd.DataFrame(rows).set_index("ticker")
    return _keep(frame, frame["prices"].sum() == 0)


@st.cache_data(show_spinner=False, ttl="1h")
def reference_events() -> pd.DataFrame:
    """The reference events table (`screener.reference.load_reference().events`)."""
    from screener.reference import load_reference

    return load_reference().events


@st.cache_data(show_spinner=False, ttl="1h")
def reference_exposures() -> pd.DataFrame:
    """Per (ticker, element) exposure weights from the reference files."""
    from screener.reference import load_reference

    return load_reference().exposures


# -- factors and screen -------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Computing factors…", max_entries=MAX_ENTRIES)
def factor_table(universe: str, token: str, as_of: str, event_date: str, backfill: bool,
                 fingerprint: str) -> pd.DataFrame:
    """`screener.factors.table.factors_as_of` for one date."""
    from screener.factors.table import factors_as_of

    del token, fingerprint
    table = factors_as_of(universe, as_of, event_date=event_date, backfill=backfill)
    return _keep(table, table.empty)


@st.cache_data(show_spinner="Explaining…", max_entries=MAX_ENTRIES)
def explain(universe: str, token: str, as_of: str, ticker: str, event_date: str, backfill: bool,
            fingerprint: str) -> dict:
    """`screener.factors.table.explain` for one member."""
    from screener.factors.table import explain as explain_factors

    del token, fingerprint
    return explain_factors(universe, as_of, ticker, event_date=event_date, backfill=backfill)


@st.cache_data(show_spinner="Screening…", max_entries=MAX_ENTRIES)
def screen(config_hash: str, token: str, as_of: str, fingerprint: str, _cfg: StrategyConfig) -> pd.DataFrame:
    """`screener.pipeline.screen_as_of` (ranked, pass/fail per filter, score breakdown)."""
    from screener.pipeline import screen_as_of

    del config_hash, token, fingerprint
    table = screen_as_of(_cfg, as_of)
    return _keep(table, table.empty)


# -- backtest -------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Running the backtest…", max_entries=MAX_ENTRIES)
def backtest(config_hash: str, token: str, fingerprint: str, _cfg: StrategyConfig):
    """`screener.pipeline.run_backtest` (the same call ``screener backtest`` makes)."""
    from screener.pipeline import run_backtest

    del config_hash, token, fingerprint
    return run_backtest(_cfg)


@st.cache_data(show_spinner="Writing the tearsheet (quantstats)…", max_entries=8)
def tearsheet(config_hash: str, token: str, fingerprint: str, benchmark: str | None, _cfg: StrategyConfig) -> bytes:
    """HTML tearsheet of the strategy against one benchmark (`screener.tearsheet.write_tearsheet`)."""
    from screener.pipeline import STRATEGY
    from screener.tearsheet import write_tearsheet

    run = backtest(config_hash, token, fingerprint, _cfg)
    bench = run.returns[benchmark] if benchmark else None
    with tempfile.TemporaryDirectory() as tmp:
        path = write_tearsheet(run.returns[STRATEGY].rename(_cfg.name), bench, Path(tmp) / "tearsheet.html",
                               title=_cfg.name, parameters={"config_hash": config_hash[:12]})
        return path.read_bytes()


@st.cache_data(show_spinner=False, max_entries=8)
def run_files(config_hash: str, token: str, fingerprint: str, _cfg: StrategyConfig) -> dict[str, bytes]:
    """The files ``screener backtest --out DIR`` writes (`screener.report.write_run`), by name."""
    from screener.report import write_run

    run = backtest(config_hash, token, fingerprint, _cfg)
    with tempfile.TemporaryDirectory() as tmp:
        out = write_run(run, tmp, tearsheet=False)  # the tearsheet is built on request (slow)
        return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def zip_files(files: dict[str, bytes], folder: str) -> bytes:
    """One zip archive of named files under ``folder/``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{folder}/{name}", data)
    return buffer.getvalue()


# -- risk -----------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Fitting the regression…", max_entries=MAX_ENTRIES)
def regression(target: str, tickers: tuple[str, ...], factors: tuple[str, ...], freq: str, start: str | None,
               end: str | None, hac_lags: int | None, config_hash: str, token: str, fingerprint: str,
               _cfg: StrategyConfig | None) -> list[dict]:
    """`screener.analytics.commands.regress_command` (``screener regress``) on the strategy or on tickers."""
    from screener.analytics.commands import regress_command

    del token, fingerprint
    if target == "strategy":
        assert _cfg is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{config_hash[:12]}.toml"
            path.write_text(_cfg.to_toml(), encoding="utf-8")
            return regress_command(str(path), None, list(factors), freq=freq, start=start, end=end,
                                   hac_lags=hac_lags)
    return regress_command(None, list(tickers), list(factors), freq=freq, start=start, end=end, hac_lags=hac_lags)


@st.cache_data(show_spinner="Rolling betas…", max_entries=MAX_ENTRIES)
def rolling(target: str, tickers: tuple[str, ...], factors: tuple[str, ...], start: str | None, end: str | None,
            window: int, config_hash: str, token: str, fingerprint: str,
            _cfg: StrategyConfig | None) -> dict[str, pd.DataFrame]:
    """`screener.analytics.regression.rolling_betas` of each target on the factors' daily returns.

    The inputs are assembled as ``screener regress`` does: factor and member returns from the store (else the
    snapshot) in the target's currency (`listing_returns`), a ``basket`` factor as the `equal_weight_basket`
    of the strategy's members (or of the tickers regressed), ``basket:<universe>`` of that universe.
    """
    from screener.analytics.commands import BASE_CURRENCY, BASKET
    from screener.analytics.regression import equal_weight_basket, rolling_betas
    from screener.data.calendar import listing_returns
    from screener.data.panel import load_prices
    from screener.pipeline import STRATEGY
    from screener.universe import load_universe

    lo = pd.Timestamp(start) if start else None
    hi = pd.Timestamp(end) if end else None
    targets: dict[str, pd.Series] = {}
    if target == "strategy":
        assert _cfg is not None
        run = backtest(config_hash, token, fingerprint, _cfg)
        currency, members = _cfg.base_currency, list(run.weights.columns)
        y = run.returns[STRATEGY].loc[lo:hi]
        targets[f"{STRATEGY} ({_cfg.name})"] = y
        lo, hi = lo or y.index[0], hi or y.index[-1]
    else:
        currency, members = BASE_CURRENCY, list(tickers)
    baskets = {f: (members if f == BASKET else list(load_universe(f.split(":", 1)[1]).tickers))
               for f in factors if f == BASKET or f.startswith(BASKET + ":")}
    plain = [f for f in factors if f not in baskets]
    own = members if target != "strategy" else []
    needed = list(dict.fromkeys([*own, *plain, *(t for m in baskets.values() for t in m)]))
    data = load_prices(needed, currency=currency, start=(lo - timedelta(days=10)) if lo is not None else None,
                       end=hi)
    returns = listing_returns(data.prices).loc[lo:hi]
    frame = pd.DataFrame({f: returns[f] for f in plain if f in returns.columns}, index=returns.index)
    for name, names in baskets.items():
        present = [t for t in names if t in returns.columns]
        if present:
            frame[name] = equal_weight_basket(returns[present], name=name)
    frame = frame[[f for f in factors if f in frame.columns]]
    if target != "strategy":
        targets = {t: returns[t] for t in tickers if t in returns.columns}
    out = {}
    for name, y in targets.items():
        try:
            out[name] = rolling_betas(y, frame, window=window)
        except (ValueError, TypeError) as exc:
            out[name] = pd.DataFrame(attrs={"error": str(exc)})
    return _keep(out, not out)


# -- events ---------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Running the event study…", max_entries=MAX_ENTRIES)
def event_study(universe: str, token: str, event_id: str, window: tuple[int, int], estimation: tuple[int, int],
                model: str, market: str | None, fingerprint: str) -> dict:
    """`screener.analytics.commands.events_command` (``screener events``) for one reference event."""
    from screener.analytics.commands import events_command

    del token, fingerprint
    return events_command(universe, event_id=event_id, window=window, estimation=estimation, model=model,
                          market=market)[0]


# -- data -----------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Reading the store…", ttl="1h", max_entries=4)
def store_status(fingerprint: str) -> list[dict]:
    """`screener.data.store.Store().status()` (staleness is judged against the day it was read; ttl one hour)."""
    from screener.data.store import Store

    del fingerprint
    records = Store().status()
    return _keep(records, not records)
