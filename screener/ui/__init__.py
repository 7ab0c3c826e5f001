"""The Streamlit UI: a thin shell over the library (every number comes from `screener`).

``app.py`` (``streamlit run app.py``) and ``screener/ui/entry.py`` (``screener app``) both call `main`. Each
page is a module of `screener.ui.views` with a ``render(universe)`` function, imported when first shown; the
page and every setting are kept in the URL's query parameters (`screener.ui.state`), so a link reproduces a
view. See ``docs/app.md``.
"""

from __future__ import annotations

import importlib

import streamlit as st

from screener.ui import common, state

PAGES = {
    "universe": "Universe",
    "factors": "Factors and screen",
    "backtest": "Backtest",
    "risk": "Risk",
    "events": "Events",
    "data": "Data",
}
"""Page id (the ``page`` URL parameter and the module in `screener.ui.views`) -> title."""
PAGE = state.Param("page", "universe", choices=tuple(PAGES))


def main() -> None:
    """Render the app: page selector and universe in the sidebar, then the chosen page."""
    st.set_page_config(page_title="screener: rare earths and critical minerals", page_icon=":material/public:",
                       layout="wide")
    with st.sidebar:
        st.title("screener")
        st.caption("Rare-earth and critical-mineral equities: screens and backtests with supply-risk factors.")
        page = state.choice(st.radio, "Page", PAGE, list(PAGES), format_func=PAGES.__getitem__,
                            label_visibility="collapsed")
        ref = common.select_universe(st.sidebar)
    for note in state.url_notes():
        st.warning(note)
    view = importlib.import_module(f"screener.ui.views.{page}")
    common.run_page(view.render, ref)
