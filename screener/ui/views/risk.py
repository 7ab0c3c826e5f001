"""Risk page: factor regressions with Newey-West (HAC) t-statistics, and rolling betas.

The numbers are ``screener regress``'s (`screener.analytics.commands.regress_command`): the strategy of the
Backtest page, or members one by one, on factor returns (benchmark funds, FX, the equal-weight basket).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from screener.analytics.commands import BASKET
from screener.analytics.regression import FREQS
from screener.exceptions import ConfigError, ScreenerError
from screener.ui import cache, charts, common, state
from screener.ui.common import UniverseRef
from screener.ui.views import backtest

TARGETS = {"strategy": "The Backtest page's strategy", "tickers": "Members, one by one"}
FREQ_LABELS = {"D": "daily", "W": "weekly (Fridays)", "M": "monthly"}
FX_FACTORS = ("AUDUSD=X", "CNY=X")

TARGET = state.Param("rk_target", "strategy", choices=tuple(TARGETS))
TICKERS = state.Param("rk_tickers", ["MP"], state.parse_list, state.dump_list)
FACTORS = state.Param("rk_factors", ["SPY", "REMX"], state.parse_list, state.dump_list)
FREQ = state.Param("rk_freq", "D", choices=FREQS)
LAGS = state.Param("rk_lags", None, state.parse_optional_int, lambda v: "" if v is None else str(int(v)))
START = state.Param("rk_start", None, state.parse_date, state.dump_date)
END = state.Param("rk_end", None, state.parse_date, state.dump_date)
WINDOW = state.Param("rk_window", 126, int)

COEF_COLUMNS = ("term", "coef", "se", "t", "p", "ci_low", "ci_high")


def coefficient_frame(result: dict) -> pd.DataFrame:
    """The coefficient table of one `regress_command` result (term, coef, se, t, p, ci_low, ci_high)."""
    return pd.DataFrame(result["coefficients"], columns=list(COEF_COLUMNS)).set_index("term")


def factor_options(ref: UniverseRef) -> list[str]:
    """Factor series offered: benchmark funds, FX, the basket (of the strategy's members or the tickers)."""
    from screener.markets import load_markets

    options = [*load_markets().benchmarks, *FX_FACTORS, BASKET]
    if ref.shipped:
        options.append(f"{BASKET}:{ref.value}")
    return options


def _result(result: dict, rolling: dict[str, pd.DataFrame], window: int) -> None:
    target = result["target"]
    if "error" in result:
        st.error(f"{target}: {result['error']}")
        return
    st.markdown(f"#### {target}")
    st.caption(f"{FREQ_LABELS.get(result['freq'], result['freq'])} excess returns in {result['currency']}, "
               f"{result['start']} to {result['end']}; {result['n_dropped']} periods without every series left out")
    c = st.columns(5)
    c[0].metric("Observations", result["n"])
    c[1].metric("R²", f"{result['r2']:.4f}" if result["r2"] is not None else "n/a")
    c[2].metric("Adjusted R²", f"{result['adj_r2']:.4f}" if result["adj_r2"] is not None else "n/a")
    c[3].metric("Durbin-Watson", f"{result['durbin_watson']:.3f}" if result["durbin_watson"] is not None else "n/a")
    c[4].metric("HAC lags", result["hac_lags"])
    table = coefficient_frame(result)
    st.dataframe(table, width="stretch", column_config={
        "t": st.column_config.NumberColumn("t (HAC)", help="Newey-West t-statistic", format="%.3f"),
        "p": st.column_config.NumberColumn("p", format="%.4f"),
        **{c: st.column_config.NumberColumn(c, format="%.5f") for c in ("coef", "se", "ci_low", "ci_high")},
    })
    left, right = st.columns(2)
    left.plotly_chart(charts.coefficients(table.reset_index(), "Coefficients with 95% confidence intervals"),
                      key=f"coef_chart_{target}")
    betas = rolling.get(target)
    if betas is None:
        return
    if betas.attrs.get("error"):
        right.info(f"Rolling betas: {betas.attrs['error']}")
    else:
        right.plotly_chart(charts.rolling_betas(betas, f"Rolling betas ({window} daily observations)"),
                           key=f"rolling_{target}")


def render(ref: UniverseRef) -> None:
    """Draw the page."""
    st.header("Risk: factor regressions")
    uni = ref.load()
    c1, c2, c3 = st.columns([2, 3, 2])
    with c1:
        target = state.choice(st.radio, "Regress", TARGET, list(TARGETS), format_func=TARGETS.__getitem__)
        tickers = state.many(st.multiselect, "Members", TICKERS, list(uni.tickers)) if target == "tickers" else []
    with c2:
        chosen = state.many(st.multiselect, "Factors", FACTORS, factor_options(ref),
                            help="`basket`: the equal-weight basket of the strategy's members (or of the members "
                                 "regressed); `basket:<universe>`: of a whole universe")
        c21, c22 = st.columns(2)
        start = state.bind(c21.date_input, "From (optional)", START,
                           valid=lambda v: v is None or isinstance(v, date), min_value=date(2000, 1, 1),
                           max_value=date(2100, 1, 1))
        end = state.bind(c22.date_input, "To (optional)", END, valid=lambda v: v is None or isinstance(v, date),
                         min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
    with c3:
        freq = state.choice(st.selectbox, "Frequency", FREQ, FREQS, format_func=FREQ_LABELS.__getitem__)
        lags = state.bind(st.number_input, "HAC lags (empty: Newey-West rule)", LAGS, min_value=0, max_value=60,
                          step=1, valid=state.clamp(0, 60), placeholder="auto")
        window = state.bind(st.slider, "Rolling window (days)", WINDOW, 42, 504, step=21, valid=state.clamp(42, 504))
    if not chosen:
        st.info("Pick at least one factor.")
        st.stop()
    if target == "tickers" and not tickers:
        st.info("Pick at least one member.")
        st.stop()

    cfg = None
    config_hash = ""
    if target == "strategy":
        try:
            cfg = backtest.build_config(ref)
        except ConfigError as exc:
            st.error(f"The Backtest page's strategy is not valid: {exc}")
            st.stop()
        config_hash = cfg.config_hash()
        st.caption(f"Strategy `{cfg.name}` (config `{config_hash[:12]}`, set on the Backtest page): "
                   f"{cfg.portfolio.weighting}, {cfg.portfolio.rebalance}, from {cfg.start}.")
    fingerprint = cache.data_fingerprint()
    iso = (start.isoformat() if start else None, end.isoformat() if end else None)
    args = (target, tuple(tickers), tuple(chosen))
    try:
        results = cache.regression(*args, freq, *iso, None if lags is None else int(lags), config_hash, ref.token,
                                   fingerprint, cfg)
    except (ScreenerError, ValueError) as exc:
        common.show_error(exc)
        st.stop()
    try:
        rolling = cache.uncached_if_empty(cache.rolling, *args, *iso, int(window), config_hash, ref.token,
                                          fingerprint, cfg)
    except (ScreenerError, ValueError) as exc:
        common.show_error(exc)
        rolling = {}
    st.caption("OLS of excess returns on factor returns; standard errors, t and p are Newey-West (HAC) with "
               "the lags shown; inference is asymptotic (normal). Same numbers as `screener regress`.")
    for result in results:
        _result(result, rolling, int(window))
