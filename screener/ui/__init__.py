"""The Streamlit UI: a thin shell over the library (every number comes from `screener`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from screener.data.store import Store
from screener.exceptions import ScreenerError
from screener.paths import snapshot_dir
from screener.universe import list_universes, load_universe


@st.cache_data(ttl="1h", show_spinner=False)
def _universe_frame(name: str) -> pd.DataFrame:
    uni = load_universe(name)
    frame = uni.to_frame()
    for col in ("asset_countries", "stages", "elements"):
        frame[col] = frame[col].map(", ".join)
    return frame[["name", "exchange", "currency", "country", "asset_countries", "stages", "elements", "status",
                  "confidence"]]


def _status_frame() -> pd.DataFrame:
    records = Store().status()
    frame = pd.DataFrame(records, columns=["ticker", "first_date", "last_date", "rows", "source", "stale",
                                           "problems", "warnings"])
    frame["problems"] = frame["problems"].map(lambda p: "; ".join(p))
    frame["warnings"] = frame["warnings"].map(len)
    return frame.set_index("ticker")


def main() -> None:
    """Render the app."""
    st.set_page_config(page_title="screener: rare earths and critical minerals", layout="wide")
    st.title("Rare-earth and critical-mineral screener")
    names = list_universes()
    query = st.query_params.get("universe")
    choice = st.selectbox("Universe", names, index=names.index(query) if query in names else 0)
    st.query_params["universe"] = choice
    try:
        uni = load_universe(choice)
        members = _universe_frame(choice)
    except ScreenerError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(f"{uni.title}: {uni.description}")
    c1, c2, c3 = st.columns(3)
    c1.metric("Members", len(uni.members))
    c2.metric("Exchanges", members["exchange"].nunique())
    c3.metric("Base currency", uni.base_currency)
    st.dataframe(members, width="stretch")

    st.subheader("Market data")
    status = _status_frame()
    snap = snapshot_dir()
    if status.empty:
        st.info("The store is empty. Run `screener data import DIR` with a snapshot directory, or "
                "`screener data fetch --universe NAME` when Yahoo Finance is reachable."
                + (f" Missing tickers are served from the snapshot at {snap}." if snap else ""))
    else:
        covered = [t for t in uni.tickers if t in status.index and status.loc[t, "rows"]]
        st.metric("Members with stored prices", f"{len(covered)} / {len(uni.members)}")
        st.dataframe(status, width="stretch")
