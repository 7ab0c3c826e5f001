"""Universe page: choose or upload a universe; members, prices, stage and element matrices, sources."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from screener.ui import cache, charts, common
from screener.ui.common import UniverseRef
from screener.universe import ELEMENTS, STAGES

UPLOAD_KEY = "w_upload"
_UPLOAD_ERROR = "_upload_error"
_UPLOAD_OK = "_upload_ok"


def _on_upload() -> None:
    # A callback runs before the script, so it may still set the sidebar's universe selector.
    uploaded = st.session_state.get(UPLOAD_KEY)
    st.session_state[_UPLOAD_ERROR] = None
    st.session_state[_UPLOAD_OK] = None
    if uploaded is None:
        return
    value, error = common.accept_upload(uploaded.name, uploaded.getvalue())
    if error:
        st.session_state[_UPLOAD_ERROR] = error
        return
    st.session_state[common.UNIVERSE.key] = value
    st.session_state[_UPLOAD_OK] = f"{uploaded.name} is valid and is now the selected universe."


def _upload_box() -> None:
    with st.expander("Upload a universe file (TOML)", expanded=bool(st.session_state.get(_UPLOAD_ERROR))):
        st.caption(f"The schema of `universes/*.toml` (see docs/universes.md); at most "
                   f"{common.MAX_UPLOAD_BYTES // 1024} KB. The file is validated before use.")
        st.file_uploader("Universe file", type=["toml"], key=UPLOAD_KEY, on_change=_on_upload)
        if st.session_state.get(_UPLOAD_ERROR):
            st.error(st.session_state[_UPLOAD_ERROR])
        elif st.session_state.get(_UPLOAD_OK):
            st.success(st.session_state[_UPLOAD_OK])


def members_frame(ref: UniverseRef, fingerprint: str) -> pd.DataFrame:
    """The members table: facts from the universe file, prices and coverage from the store or snapshot."""
    uni = ref.load()
    facts = uni.to_frame()
    prices = cache.uncached_if_empty(cache.member_prices, ref.arg, ref.token, fingerprint)
    table = pd.DataFrame({
        "name": facts["name"],
        "stages": facts["stages"].map(", ".join),
        "elements": facts["elements"].map(", ".join),
        "status": facts["status"],
        "last_price": prices["last_price"],
        "currency": prices["currency"],
        "last_date": prices["last_date"],
        f"return_1y_{uni.base_currency}": prices["return_1y"],
        "coverage": [src if src else f"missing: {why}" for src, why in zip(prices["source"], prices["missing"],
                                                                            strict=True)],
        "first_date": prices["first_date"],
        "prices": prices["prices"],
        "country": facts["country"],
        "asset_countries": facts["asset_countries"].map(", ".join),
    }, index=facts.index)
    return table


def render(ref: UniverseRef) -> None:
    """Draw the page."""
    uni = ref.load()
    st.header(f"Universe: {uni.title}")
    st.caption(f"{uni.description}  \nFile `{uni.path}`, reviewed {uni.as_of.isoformat()}; base currency "
               f"{uni.base_currency}; benchmarks {', '.join(uni.benchmarks)}.")
    _upload_box()

    fingerprint = cache.data_fingerprint()
    table = members_frame(ref, fingerprint)
    with_prices = int((table["prices"] > 0).sum())
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Members", len(uni.members))
    c2.metric("With prices", f"{with_prices} / {len(uni.members)}")
    c3.metric("Exchanges", len({m.exchange for m in uni.members}))
    c4.metric("Countries of operation", len({c for m in uni.members for c in m.asset_countries}))
    if with_prices == 0:
        st.info("No member has prices yet: the store is empty and no snapshot is configured. Import a snapshot on "
                "the Data page (or run `screener data import DIR`), or set `SCREENER_SNAPSHOT`.")

    st.subheader("Members")
    ret_col = f"return_1y_{uni.base_currency}"
    st.dataframe(table, width="stretch", column_config={
        "last_price": st.column_config.NumberColumn("last price", format="%.4g",
                                                    help="Adjusted close in the listing's currency"),
        ret_col: st.column_config.NumberColumn(f"1y return ({uni.base_currency})", format="percent",
                                               help="Total return over the member's last 252 trading days, in "
                                                    "the base currency (screener.factors.market.momentum)"),
        "prices": st.column_config.NumberColumn("days", help="Trading days with a price"),
    })
    missing = table.index[table["prices"] == 0]
    if len(missing) and with_prices:
        st.caption(f"Without prices ({len(missing)}): {', '.join(missing)}; the coverage column says why "
                   "(listings outside the snapshot are fetched by a refresh on the Data page).")

    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.membership_matrix({m.ticker: m.stages for m in uni.members}, STAGES,
                                                 "Value-chain stage × member"), key="stage_matrix")
    with right:
        exposures = cache.reference_exposures()
        mine = exposures[exposures["ticker"].isin(uni.tickers)]
        if mine.empty:
            st.plotly_chart(charts.membership_matrix({m.ticker: m.elements for m in uni.members}, ELEMENTS,
                                                     "Element × member (from the universe file)"),
                            key="element_matrix")
        else:
            weights = mine.pivot_table(index="element", columns="ticker", values="weight", aggfunc="first")
            order = [e for e in ELEMENTS if e in weights.index] + [e for e in weights.index if e not in ELEMENTS]
            weights = weights.reindex(index=order, columns=[t for t in uni.tickers if t in weights.columns])
            st.plotly_chart(charts.exposure_heatmap(weights, "Element exposure × member (reference/exposures.csv)"),
                            key="element_matrix")

    st.subheader("Sources")
    facts = uni.to_frame()
    st.dataframe(pd.DataFrame({"name": facts["name"], "confidence": facts["confidence"],
                               "sources": facts["sources"].map(" · ".join), "notes": facts["notes"]}),
                 width="stretch")
