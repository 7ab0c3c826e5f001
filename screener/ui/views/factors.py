"""Factors and screen page: the factor table at a date, a filter builder, score weights, the ranked screen.

The screen built here (filters, score weights, ``top_n``) and the factor options are URL parameters shared
with the Backtest page, which backtests the same screen.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from screener.config import (
    CATEGORICAL_FACTORS,
    EVENT_DATES,
    FACTORS,
    NUMERIC_FACTORS,
    NUMERIC_OPS,
    SET_OPS,
    FactorSpec,
    Filter,
    ScreenSpec,
    StrategyConfig,
)
from screener.exceptions import ConfigError, ScreenerError
from screener.ui import cache, charts, common, state
from screener.ui.common import UniverseRef
from screener.universe import COUNTRIES, STAGES, STATUSES

DEFAULT_FILTERS = [Filter("adv_60d", ">=", 1_000_000.0), Filter("china_dependency", "<=", 0.5)]
DEFAULT_SCORE = {"supply_risk_exposure": -1.0, "momentum_12_1": 0.5}
DEFAULT_TOP_N = 8

AS_OF = state.Param("as_of", None, state.parse_date, state.dump_date)
EVENT_DATE = state.Param("event_date", "announced", choices=EVENT_DATES)
BACKFILL = state.Param("backfill", False, state.parse_bool, state.dump_bool)
FILTERS = state.Param("filters", DEFAULT_FILTERS, state.parse_filters, state.dump_filters)
SCORE = state.Param("score", DEFAULT_SCORE, state.parse_score, state.dump_score)
TOP_N = state.Param("top_n", DEFAULT_TOP_N, int)
EXPLAIN = state.Param("explain", "")
SCORE_FACTORS_KEY = "w_score_factors"
SCORE_RANGE = (-2.0, 2.0)

_NEW_FACTOR, _NEW_OP = "w_new_factor", "w_new_op"
_NEW_NUMBER, _NEW_CATEGORIES = "w_new_number", "w_new_categories"
_FILTER_ERROR = "_filter_error"


# -- shared with the Backtest page -----------------------------------------------------------------------------
def screen_spec() -> ScreenSpec:
    """The screen as the URL holds it (filters, score weights, ``top_n``; 0 or less means no limit)."""
    top_n = state.current(TOP_N)
    return ScreenSpec(filters=tuple(state.from_url(FILTERS)), score=tuple(state.from_url(SCORE).items()),
                      top_n=top_n if top_n and top_n > 0 else None)


def factor_spec() -> FactorSpec:
    """Point-in-time options of the supply-risk factors, from the URL."""
    return FactorSpec(event_date=state.current(EVENT_DATE), backfill=bool(state.current(BACKFILL)))


def describe(spec: ScreenSpec) -> str:
    """One line: the filters, the score weights and ``top_n``."""
    parts = ["filters: " + ("; ".join(f.label() for f in spec.filters) or "none"),
             "score: " + (", ".join(f"{k} × {v:g}" for k, v in spec.score) or "none"),
             f"top {spec.top_n}" if spec.top_n else "no top-n limit"]
    return " · ".join(parts)


def latest_date(ref: UniverseRef, fingerprint: str) -> date | None:
    """Last date with a price among the universe's members (the default as-of date)."""
    prices = cache.uncached_if_empty(cache.member_prices, ref.arg, ref.token, fingerprint)
    dates = prices["last_date"].dropna()
    return max(dates) if len(dates) else None


# -- filter builder -------------------------------------------------------------------------------------------
def _categories(factor: str, ref: UniverseRef) -> list[str]:
    uni = ref.load()
    if factor == "stage":
        return list(STAGES)
    if factor == "status":
        return list(STATUSES)
    if factor == "exchange":
        return sorted({m.exchange for m in uni.members})
    if factor == "country":
        used = sorted({m.country for m in uni.members})
        return used + [c for c in COUNTRIES if c not in used]
    return []


def _add_filter() -> None:
    factor = st.session_state[_NEW_FACTOR]
    op = st.session_state[_NEW_OP]
    raw = st.session_state.get(_NEW_CATEGORIES if factor in CATEGORICAL_FACTORS else _NEW_NUMBER)
    st.session_state[_FILTER_ERROR] = None
    if factor in CATEGORICAL_FACTORS:
        values = tuple(raw or ())
        if not values:
            st.session_state[_FILTER_ERROR] = f"Pick at least one value for {factor}."
            return
        new = Filter(factor, op, values)
    else:
        if raw is None:
            st.session_state[_FILTER_ERROR] = f"Enter a number for {factor}."
            return
        new = Filter(factor, op, float(raw))
    try:
        StrategyConfig(name="check", universe="check", start=date(2000, 1, 1), screen=ScreenSpec(filters=(new,)))
    except ConfigError as exc:
        st.session_state[_FILTER_ERROR] = str(exc)
        return
    state.write(FILTERS, [*state.from_url(FILTERS), new])


def _remove_filter(index: int) -> None:
    filters = list(state.from_url(FILTERS))
    if 0 <= index < len(filters):
        del filters[index]
    state.write(FILTERS, filters)


def _filter_builder(ref: UniverseRef) -> list[Filter]:
    st.markdown("**Filters** (a member must pass every one; a missing value fails)")
    filters = list(state.from_url(FILTERS))
    state.write(FILTERS, filters)
    for i, f in enumerate(filters):
        c1, c2 = st.columns([6, 1], vertical_alignment="center")
        c1.code(f.label(), language=None)
        c2.button("", icon=":material/delete:", key=f"w_remove_filter_{i}", on_click=_remove_filter, args=(i,),
                  help=f"Remove the filter {f.label()}")
    c1, c2, c3, c4 = st.columns([3, 2, 3, 1.3], vertical_alignment="bottom")
    factor = c1.selectbox("Factor", FACTORS, key=_NEW_FACTOR)
    ops = [*SET_OPS, "==", "!="] if factor in CATEGORICAL_FACTORS else list(NUMERIC_OPS)
    if st.session_state.get(_NEW_OP) not in ops:
        st.session_state[_NEW_OP] = ops[0]
    c2.selectbox("Operator", ops, key=_NEW_OP)
    if factor in CATEGORICAL_FACTORS:
        options = _categories(factor, ref)
        st.session_state[_NEW_CATEGORIES] = [v for v in st.session_state.get(_NEW_CATEGORIES, []) if v in options]
        c3.multiselect("Values", options, key=_NEW_CATEGORIES)
    else:
        st.session_state.setdefault(_NEW_NUMBER, None)
        c3.number_input("Value", key=_NEW_NUMBER, format="%g", placeholder="a number, e.g. 1e6")
    c4.button("Add", icon=":material/add:", key="w_add_filter", on_click=_add_filter, width="stretch",
              help="Add this filter to the screen")
    if st.session_state.get(_FILTER_ERROR):
        st.error(st.session_state[_FILTER_ERROR])
    return filters


# -- score weights --------------------------------------------------------------------------------------------
def _score_weights() -> dict[str, float]:
    st.markdown("**Score** (weights on factors z-scored across the members that passed)")
    url_score = state.from_url(SCORE)
    if SCORE_FACTORS_KEY not in st.session_state:
        st.session_state[SCORE_FACTORS_KEY] = [f for f in url_score if f in NUMERIC_FACTORS]
    chosen = st.multiselect("Score factors", NUMERIC_FACTORS, key=SCORE_FACTORS_KEY)
    weights: dict[str, float] = {}
    for f in chosen:
        key = f"w_score_{f}"
        if key not in st.session_state:
            weight = float(url_score.get(f, 1.0))
            st.session_state[key] = min(max(weight, SCORE_RANGE[0]), SCORE_RANGE[1])
        weights[f] = st.slider(f"weight: {f}", *SCORE_RANGE, step=0.1, key=key)
    dropped = [f for f, w in weights.items() if w == 0]
    if dropped:
        st.caption(f"Weight 0 leaves a factor out: {', '.join(dropped)}.")
    weights = {f: w for f, w in weights.items() if w != 0}
    state.write(SCORE, weights)
    state.bind(st.number_input, "Hold the top n (0: every member that passes)", TOP_N, min_value=0,
               max_value=500, step=1, valid=state.clamp(0, 500))
    return weights


# -- page -----------------------------------------------------------------------------------------------------
def _explain(ref: UniverseRef, as_of: date, fingerprint: str, tickers: list[str]) -> None:
    with st.expander("Explain one member's factors (components and sources)"):
        ticker = state.choice(st.selectbox, "Member", EXPLAIN, ["", *tickers],
                              format_func=lambda t: t or "(choose a member)")
        if not ticker:
            return
        spec = factor_spec()
        try:
            report = cache.explain(ref.arg, ref.token, as_of.isoformat(), ticker, spec.event_date, spec.backfill,
                                   fingerprint)
        except (ScreenerError, KeyError, ValueError) as exc:
            common.show_error(exc)
            return
        st.write({k: v for k, v in report["factors"].items()})
        elements = pd.DataFrame(report["exposure"]["elements"])
        if not elements.empty:
            st.markdown("Element exposure and criticality")
            st.dataframe(elements[[c for c in ("element", "weight", "visible", "criticality", "coverage",
                                               "published", "basis", "source", "confidence") if c in elements]],
                         width="stretch", hide_index=True)
        st.json(report, expanded=False)


def render(ref: UniverseRef) -> None:
    """Draw the page."""
    st.header("Factors and screen")
    fingerprint = cache.data_fingerprint()
    last = latest_date(ref, fingerprint)
    if last is None:
        st.info("No member of this universe has prices: the market factors need the store or a snapshot (see "
                "the Data page). Supply-risk factors are still shown.")
    default_day = last or date.today()
    c1, c2, c3 = st.columns([2, 2, 2], vertical_alignment="bottom")
    with c1:
        lo, hi = date(2010, 1, 1), max(default_day, date.today())
        as_of = state.bind(st.date_input, "As of", AS_OF, valid=lambda v: isinstance(v, date) and lo <= v <= hi,
                           fallback=default_day, min_value=lo, max_value=hi,
                           help="Factors use data up to this date only (point in time)")
    with c2:
        event_date = state.choice(st.selectbox, "Export controls count from", EVENT_DATE, EVENT_DATES)
    with c3:
        backfill = state.bind(st.checkbox, "Backfill slow reference data (look-ahead)", BACKFILL)
    if as_of is None:
        st.info("Pick an as-of date.")
        st.stop()

    table = cache.uncached_if_empty(cache.factor_table, ref.arg, ref.token, as_of.isoformat(), event_date,
                                    bool(backfill), fingerprint)
    st.subheader(f"Factor table as of {table.attrs.get('as_of', as_of.isoformat())}")
    st.dataframe(table, width="stretch",
                 column_config={"adv_60d": st.column_config.NumberColumn(format="compact"),
                                "market_cap": st.column_config.NumberColumn(format="compact")})
    _explain(ref, as_of, fingerprint, list(table.index))

    st.subheader("Screen")
    left, right = st.columns(2, gap="large")
    with left:
        filters = _filter_builder(ref)
    with right:
        weights = _score_weights()
    top_n = state.current(TOP_N)
    spec = ScreenSpec(filters=tuple(filters), score=tuple(weights.items()), top_n=top_n if top_n else None)
    try:
        cfg = StrategyConfig(name="screen", universe=ref.arg, start=as_of, screen=spec, factors=factor_spec())
    except ConfigError as exc:
        st.error(str(exc))
        st.stop()
    result = cache.uncached_if_empty(cache.screen, cfg.config_hash(), ref.token, as_of.isoformat(), fingerprint, cfg)
    selected = result.index[result["selected"].to_numpy(dtype=bool)]
    st.markdown(f"**Ranked result as of {result.attrs.get('as_of', as_of.isoformat())}**: "
                f"{len(selected)} selected, {int(result['passed'].sum())} passed the filters, of {len(result)} "
                "members screened.")
    absent = [t for t in table.index if t not in result.index]
    if absent:
        st.caption(f"Not screened, no price in the year before the date ({len(absent)}): {', '.join(absent)}.")
    first = [c for c in ("rank", "selected", "score", "passed") if c in result.columns]
    passes = [c for c in result.columns if c.startswith("pass: ")]
    contribs = [c for c in result.columns if c.startswith("contrib: ")]
    shown = first + passes + contribs + [c for c in result.columns if c not in (*first, *passes, *contribs)]
    st.dataframe(result[shown], width="stretch")
    st.download_button("Download the screen (CSV)", result.to_csv(float_format="%.10g"),
                       file_name=f"screen_{ref.load().name}_{as_of.isoformat()}.csv", mime="text/csv",
                       on_click="ignore", key="w_screen_csv")
    contrib = result.loc[result["passed"].to_numpy(dtype=bool),
                         [c for c in result.columns if c.startswith("contrib: ")]]
    if not contrib.empty and contrib.shape[1]:
        contrib.columns = [c.removeprefix("contrib: ") for c in contrib.columns]
        st.plotly_chart(charts.score_breakdown(contrib.fillna(0.0), "Score breakdown of the members that passed "
                                               "(contribution = weight × z-score)"), key="score_chart")
    st.caption("The Backtest page backtests this screen: " + describe(screen_spec()))
