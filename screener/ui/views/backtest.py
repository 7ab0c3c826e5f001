"""Backtest page: a `StrategyConfig` built from the form (the object the CLI reads), run, charted, downloadable.

The screen comes from the Factors and screen page (shared URL parameters). The page shows the run of the
submitted config; the config's TOML, downloaded here, makes ``screener backtest`` reproduce the same numbers.
"""

from __future__ import annotations

import json
import math
from datetime import date

import pandas as pd
import streamlit as st

from screener.config import REBALANCES, WEIGHTINGS, PortfolioSpec, ScreenSpec, StrategyConfig
from screener.exceptions import ConfigError, ScreenerError
from screener.ui import cache, charts, common, state
from screener.ui.common import UniverseRef
from screener.ui.views import factors

METRIC_COLUMNS = ("cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "turnover")
"""Columns of the metrics table, as ``screener backtest`` prints them."""
DEFAULT_START = date(2019, 1, 1)
DEFAULT_BENCHMARKS = ["REMX", "SPY"]
NO_CAP = 1.0

NAME = state.Param("bt_name", "")
START = state.Param("bt_start", DEFAULT_START, state.parse_date, state.dump_date)
END = state.Param("bt_end", None, state.parse_date, state.dump_date)
BENCHMARKS = state.Param("bt_bench", DEFAULT_BENCHMARKS, state.parse_list, state.dump_list)
WEIGHTING = state.Param("bt_weighting", "equal", choices=WEIGHTINGS)
FIXED = state.Param("bt_fixed", "")
MAX_WEIGHT = state.Param("bt_max_weight", 0.25, float)
CAPS = state.Param("bt_caps", "")
REBALANCE = state.Param("bt_rebalance", "monthly", choices=REBALANCES)
LAG = state.Param("bt_lag", 0, int)
COSTS = state.Param("bt_costs", 10.0, float)
LOOKBACK = state.Param("bt_lookback", 63, int)
USE_SCREEN = state.Param("bt_screen", True, state.parse_bool, state.dump_bool)
LOG_SCALE = state.Param("bt_log", False, state.parse_bool, state.dump_bool)
TEAR_BENCH = state.Param("bt_tear", "REMX")
TABS = ("Equity", "Drawdowns", "Weights", "Turnover", "Trades and screen log")
TAB = state.Param("bt_tab", TABS[0], choices=TABS)
_TEARSHEET = "_tearsheet_ready"


def format_metric(value: object) -> str:
    """A metric as ``screener backtest`` prints it (four decimals)."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_table(metrics: dict[str, dict[str, float]]) -> pd.DataFrame:
    """The run's metrics, one row per series, formatted as the CLI's table."""
    rows = {series: {m: format_metric(vals.get(m, float("nan"))) for m in METRIC_COLUMNS}
            for series, vals in metrics.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(METRIC_COLUMNS)).rename_axis("series")


def parse_pairs(text: str, what: str) -> list[tuple[str, float]]:
    """``KEY=number`` items separated by commas (``MP=0.3, UUUU=0.2``)."""
    out = []
    for item in (t.strip() for t in text.replace(";", ",").split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not key.strip() or not math.isfinite(number):
            example = "MP=0.3" if "weight" in what else "stage.mining=0.6"
            raise ConfigError(f"{what}: {item!r} is not KEY=number (e.g. {example})")
        out.append((key.strip(), number))
    return out


def parse_caps(text: str) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    """``dimension.group=cap`` items (``stage.mining=0.6, element.Dy=0.3``) as `PortfolioSpec.group_caps`."""
    caps: dict[str, list[tuple[str, float]]] = {}
    for key, cap in parse_pairs(text, "group caps"):
        dim, dot, group = key.partition(".")
        if not dot or not group:
            raise ConfigError(f"group caps: {key!r} must be dimension.group, e.g. stage.mining or element.Dy")
        caps.setdefault(dim, []).append((group, cap))
    return tuple((dim, tuple(items)) for dim, items in caps.items())


def _form(ref: UniverseRef) -> None:
    uni = ref.load()
    from screener.markets import load_markets

    bench_options = list(dict.fromkeys([*uni.benchmarks, *load_markets().benchmarks]))
    with st.form("strategy", border=True):
        c1, c2, c3 = st.columns(3)
        with c1:
            state.bind(st.text_input, "Strategy name", NAME, placeholder=f"{uni.name} strategy")
            state.bind(st.date_input, "Start", START, valid=lambda v: isinstance(v, date), fallback=DEFAULT_START,
                       min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
            state.bind(st.date_input, "End (empty: the last date with data)", END,
                       valid=lambda v: v is None or isinstance(v, date), min_value=date(2000, 1, 1),
                       max_value=date(2100, 1, 1))
            state.many(st.multiselect, "Benchmarks", BENCHMARKS, bench_options)
        with c2:
            state.choice(st.selectbox, "Weighting", WEIGHTING, WEIGHTINGS)
            state.bind(st.text_input, "Fixed weights (weighting = fixed)", FIXED, placeholder="MP=0.4, UUUU=0.3")
            state.bind(st.slider, "Max weight per name (1.0: no cap)", MAX_WEIGHT, 0.05, 1.0, step=0.05,
                       valid=state.clamp(0.05, 1.0))
            state.bind(st.text_input, "Group caps", CAPS, placeholder="stage.mining=0.6, element.Dy=0.3",
                       help="dimension.group=cap; dimensions: stage, country, element")
        with c3:
            state.choice(st.selectbox, "Rebalance", REBALANCE, REBALANCES)
            state.bind(st.number_input, "Lag (trading days from decision to trade)", LAG, min_value=0,
                       max_value=20, step=1, valid=state.clamp(0, 20))
            state.bind(st.slider, "Costs (bps of traded value)", COSTS, 0.0, 100.0, step=1.0,
                       valid=state.clamp(0.0, 100.0))
            state.bind(st.number_input, "Lookback (observations for vol and covariance)", LOOKBACK, min_value=2,
                       max_value=756, step=1, valid=state.clamp(2, 756))
        state.bind(st.checkbox, "Apply the screen from the Factors and screen page", USE_SCREEN)
        st.caption("Screen: " + factors.describe(factors.screen_spec()))
        st.form_submit_button("Run backtest", type="primary", icon=":material/play_arrow:", key="w_run_backtest")


def build_config(ref: UniverseRef) -> StrategyConfig:
    """The strategy config of the submitted form (raises `ConfigError` with the key at fault)."""
    uni = ref.load()
    screen = factors.screen_spec() if state.current(USE_SCREEN) else ScreenSpec()
    weighting = state.current(WEIGHTING)
    max_weight = state.current(MAX_WEIGHT)
    portfolio = PortfolioSpec(
        weighting=weighting,
        fixed_weights=tuple(parse_pairs(state.current(FIXED), "fixed weights")) if weighting == "fixed" else (),
        max_weight=None if max_weight is None or max_weight >= NO_CAP else float(max_weight),
        group_caps=parse_caps(state.current(CAPS)),
        rebalance=state.current(REBALANCE),
        lag=int(state.current(LAG)),
        costs_bps=float(state.current(COSTS)),
        lookback=int(state.current(LOOKBACK)),
    )
    return StrategyConfig(
        name=(state.current(NAME) or "").strip() or f"{uni.name} strategy",
        universe=ref.arg,
        start=state.current(START),
        end=state.current(END),
        base_currency=uni.base_currency,
        benchmarks=tuple(state.current(BENCHMARKS)),
        screen=screen,
        portfolio=portfolio,
        factors=factors.factor_spec(),
    )


def _downloads(cfg: StrategyConfig, ref: UniverseRef, fingerprint: str, run) -> None:
    key = cfg.config_hash()
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in cfg.name).strip("_") or "strategy"
    st.subheader("Downloads")
    c1, c2, c3 = st.columns(3)
    c1.download_button("Strategy config (TOML)", cfg.to_toml(), file_name=f"{stem}.toml", mime="application/toml",
                       on_click="ignore", key="w_dl_config", icon=":material/settings:", type="primary")
    files = cache.run_files(key, ref.token, fingerprint, cfg)
    c2.download_button("All outputs (zip: CSVs, metrics, manifest, config)", cache.zip_files(files, stem),
                       file_name=f"{stem}.zip", mime="application/zip", on_click="ignore", key="w_dl_zip",
                       icon=":material/folder_zip:")
    with c3:
        benches = [b for b in run.returns.columns if b != "strategy"]
        bench = state.choice(st.selectbox, "Tearsheet benchmark", TEAR_BENCH, [*benches, ""],
                             format_func=lambda b: b or "(none)") if benches else ""
        wanted = (key, fingerprint, bench)
        if st.button("Build the tearsheet (HTML)", key="w_build_tearsheet", icon=":material/description:"):
            st.session_state[_TEARSHEET] = wanted
        if st.session_state.get(_TEARSHEET) == wanted:
            try:
                html = cache.tearsheet(key, ref.token, fingerprint, bench or None, cfg)
            except (ScreenerError, ValueError, TypeError) as exc:
                common.show_error(exc)
            else:
                st.download_button("Download the tearsheet", html, file_name=f"{stem}_tearsheet.html",
                                   mime="text/html", on_click="ignore", key="w_dl_tearsheet",
                                   icon=":material/download:")
    cols = st.columns(5)
    for col, name in zip(cols, ("equity.csv", "weights.csv", "trades.csv", "screen_log.csv", "metrics.json"),
                         strict=True):
        if name in files:
            col.download_button(name, files[name], file_name=name, on_click="ignore", key=f"w_dl_{name}",
                                mime="application/json" if name.endswith(".json") else "text/csv")
    st.markdown(f"Reproduce from the command line: `screener backtest {stem}.toml --out {stem}/` "
                "(the same numbers as above).")
    with st.expander("The config (TOML)"):
        st.code(cfg.to_toml(), language="toml")


def render(ref: UniverseRef) -> None:
    """Draw the page."""
    st.header("Backtest")
    _form(ref)
    try:
        cfg = build_config(ref)
    except ConfigError as exc:
        st.error(f"The strategy is not valid: {exc}")
        st.stop()
    fingerprint = cache.data_fingerprint()
    key = cfg.config_hash()
    st.caption(f"Config `{key[:12]}` · universe `{cfg.universe}` · {cfg.start} to {cfg.end or 'the last date'} · "
               f"{cfg.portfolio.weighting}, {cfg.portfolio.rebalance}, lag {cfg.portfolio.lag}, "
               f"{cfg.portfolio.costs_bps:g} bps")
    try:
        run = cache.backtest(key, ref.token, fingerprint, cfg)
    except ScreenerError as exc:
        common.show_error(exc)
        st.stop()
    if run.data_notes:
        with st.expander(f"Data notes ({len(run.data_notes)})"):
            st.markdown("\n".join(f"- {n}" for n in run.data_notes))

    eq = run.equity["strategy"]
    st.subheader("Metrics")
    st.markdown(f"**{cfg.name}**: {eq.index[0].date()} to {eq.index[-1].date()}, final value "
                f"**{format_metric(float(eq.iloc[-1]))}**")
    st.table(metrics_table(run.metrics))
    st.caption("CAGR, volatility, Sharpe and Sortino are annualised from daily returns (risk-free 0); "
               "max drawdown from the compounded curve; turnover per year (screener.analytics.metrics).")

    log_scale = state.bind(st.toggle, "Log scale", LOG_SCALE)
    # Only the open tab is drawn (on_change="rerun"): hidden charts would cost every re-run their payload.
    state.seed(TAB, valid=lambda v: v in TABS)
    tabs = st.tabs(TABS, key=TAB.key, on_change="rerun")
    state.write(TAB, st.session_state.get(TAB.key) or TABS[0])
    opened = dict(zip(TABS, tabs, strict=True))
    if opened["Equity"].open:
        with opened["Equity"]:
            st.plotly_chart(charts.equity_curves(run.equity, bool(log_scale)), key="equity_chart")
    if opened["Drawdowns"].open:
        with opened["Drawdowns"]:
            st.plotly_chart(charts.drawdowns(run.equity), key="drawdown_chart")
    if opened["Weights"].open:
        with opened["Weights"]:
            st.plotly_chart(charts.weights_area(run.drifted_weights), key="weights_chart")
            st.markdown("Target weights at each trade date")
            st.dataframe(run.weights, width="stretch")
    if opened["Turnover"].open:
        with opened["Turnover"]:
            st.metric("Turnover per year", format_metric(run.metrics["strategy"]["turnover"]))
            st.plotly_chart(charts.turnover_bars(run.engine.turnover), key="turnover_chart")
    if opened["Trades and screen log"].open:
        with opened["Trades and screen log"]:
            st.dataframe(run.trades, width="stretch", hide_index=True)
            if not run.screen_log.empty:
                st.dataframe(run.screen_log, width="stretch")
    _downloads(cfg, ref, fingerprint, run)
    with st.expander("Manifest"):
        st.code(json.dumps(run.manifest, indent=2, default=str), language="json")
