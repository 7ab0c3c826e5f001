"""Events page: the reference events (filter by element and type) and an event study of the universe's members.

The study is ``screener events``'s (`screener.analytics.commands.events_command`): abnormal returns around the
event's announcement, the portfolio CAR with its t-test and band, and each member's CAR.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from screener.analytics.events import DEFAULT_ESTIMATION, DEFAULT_WINDOW, MODELS
from screener.exceptions import ScreenerError
from screener.ui import cache, charts, common, state
from screener.ui.common import UniverseRef

EVENT_COLUMNS = ("event_id", "announced", "effective", "ended", "elements", "direction", "event_type",
                 "description", "source")
DEFAULT_EVENT = "E22"
MODEL_LABELS = {"market": "market model (OLS on the market)", "market_adjusted": "market-adjusted (beta 1)",
                "mean": "constant mean"}
PER_EXCHANGE = ""

ELEMENTS = state.Param("ev_elements", [], state.parse_list, state.dump_list)
TYPES = state.Param("ev_types", [], state.parse_list, state.dump_list)
EVENT = state.Param("ev_event", DEFAULT_EVENT)
WINDOW = state.Param("ev_window", DEFAULT_WINDOW, state.parse_int_pair, state.dump_pair)
ESTIMATION = state.Param("ev_est", DEFAULT_ESTIMATION, state.parse_int_pair, state.dump_pair)
MODEL = state.Param("ev_model", "market", choices=MODELS)
MARKET = state.Param("ev_market", PER_EXCHANGE)


def events_table(elements: list[str], types: list[str]) -> pd.DataFrame:
    """The reference events with at least one of ``elements`` and one of ``types`` (all when empty)."""
    events = cache.reference_events()
    keep = pd.Series(True, index=events.index)
    if elements:
        keep &= events["elements"].map(lambda els: any(e in els for e in elements))
    if types:
        keep &= events["event_type"].isin(types)
    out = events.loc[keep, list(EVENT_COLUMNS)].copy()
    out["elements"] = out["elements"].map(", ".join)
    for col in ("announced", "effective", "ended"):
        out[col] = out[col].dt.date
    return out.set_index("event_id")


def _pair(value: tuple[int, int]) -> tuple[int, int]:
    return int(value[0]), int(value[1])


def render(ref: UniverseRef) -> None:
    """Draw the page."""
    st.header("Events: supply-risk events and their abnormal returns")
    events = cache.reference_events()
    all_elements = sorted({e for els in events["elements"] for e in els})
    all_types = sorted(events["event_type"].unique())
    c1, c2 = st.columns(2)
    elements = state.many(c1.multiselect, "Elements (any of)", ELEMENTS, all_elements, placeholder="all elements")
    types = state.many(c2.multiselect, "Event types", TYPES, all_types, placeholder="all types")
    table = events_table(elements, types)
    st.dataframe(table, width="stretch", height=320)
    st.caption(f"{len(table)} of {len(events)} events (reference/events.csv; dates as the sources give them, a "
               "month-only date stored as the month's last day).")
    if table.empty:
        st.info("No event matches the filters.")
        st.stop()

    st.subheader("Event study")
    ids = list(table.index)
    c1, c2, c3 = st.columns([3, 2, 2])
    with c1:
        event_id = state.choice(st.selectbox, "Event", EVENT, ids,
                                format_func=lambda e: f"{e} · {table.at[e, 'announced']} · "
                                                      f"{table.at[e, 'description'][:70]}")
        model = state.choice(st.selectbox, "Normal-return model", MODEL, MODELS, format_func=MODEL_LABELS.get)
    with c2:
        window = state.bind(st.slider, "Event window (sessions from day 0)", WINDOW, -30, 60,
                            valid=lambda v: isinstance(v, tuple | list) and -30 <= v[0] < v[1] <= 60)
        estimation = state.bind(st.slider, "Estimation window (sessions)", ESTIMATION, -500, -1,
                                valid=lambda v: isinstance(v, tuple | list) and -500 <= v[0] < v[1] <= -1)
    with c3:
        from screener.markets import load_markets

        markets = [PER_EXCHANGE, *load_markets().benchmarks]
        market = state.choice(st.selectbox, "Market series", MARKET, markets,
                              format_func=lambda m: m or "per exchange (SPY; STW.AX for ASX members)")
    fingerprint = cache.data_fingerprint()
    try:
        result = cache.event_study(ref.arg, ref.token, event_id, _pair(window), _pair(estimation), model,
                                   market or None, fingerprint)
    except (ScreenerError, ValueError) as exc:
        common.show_error(exc)
        st.stop()

    st.markdown(f"**{result['event_id']}** announced {result['announced']}: {result['description']}")
    port, cross = result["portfolio"], result["cross_sectional"]
    c = st.columns(5)
    c[0].metric("Portfolio CAR", f"{port['car']:.2%}" if port["car"] is not None else "n/a")
    c[1].metric("t-statistic", f"{port['t_stat']:.3f}" if port["t_stat"] is not None else "n/a")
    c[2].metric("p-value", f"{port['p_value']:.4f}" if port["p_value"] is not None else "n/a")
    c[3].metric("Members", port["n_members"])
    c[4].metric("Cross-sectional t", f"{cross['t_stat']:.3f}" if cross["t_stat"] is not None else "n/a",
                help="Cross-sectional test of the members' CARs")
    path = pd.DataFrame(result["car_path"], columns=["rel_day", "mean_car", "lower", "upper"])
    st.plotly_chart(charts.car_path(path, f"Mean cumulative abnormal return around {result['event_id']} "
                                          f"(window {result['window']}, {MODEL_LABELS.get(model, model)})"),
                    key="car_chart")
    members = pd.DataFrame(result["members"],
                           columns=["ticker", "market", "currency", "event_day", "car", "t_stat", "p_value", "n_est"])
    st.markdown("Per member")
    st.dataframe(members.set_index("ticker"), width="stretch", column_config={
        "car": st.column_config.NumberColumn("CAR", format="percent"),
        "t_stat": st.column_config.NumberColumn("t", format="%.3f"),
        "p_value": st.column_config.NumberColumn("p", format="%.4f"),
    })
    if result["excluded"]:
        with st.expander(f"Left out ({len(result['excluded'])})"):
            st.dataframe(pd.DataFrame(result["excluded"]), hide_index=True, width="stretch")
    for note in result["notes"]:
        st.caption(note)
