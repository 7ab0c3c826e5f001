"""screener.analytics.metrics: cross-checked against quantstats.stats (0.0.86) to 1e-10, plus invariants."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from screener.analytics import metrics
from screener.data.panel import load_prices
from screener.data.store import Store

qs = pytest.importorskip("quantstats")

RTOL = 1e-10
TICKERS = ["MP", "REMX", "SPY"]


@pytest.fixture(scope="module")
def real_returns(snapshot_dir, tmp_path_factory) -> dict[str, pd.Series]:
    """Daily returns of MP, REMX and SPY 2019-2025, each from its own trading days (MP lists mid-2020)."""
    data = load_prices(TICKERS, currency="USD", start="2019-01-01", end="2025-12-31",
                       store=Store(tmp_path_factory.mktemp("store")), snapshot=snapshot_dir)
    return {t: data.prices[t].dropna().pct_change().dropna().rename(t) for t in TICKERS}


def synthetic(kind: str) -> pd.Series:
    rng = np.random.default_rng(7)
    index = pd.bdate_range("2015-01-01", periods=2520, name="date")
    if kind == "normal":
        values = rng.normal(0.0004, 0.012, len(index))
    elif kind == "fat_tails_with_gaps":
        values = rng.standard_t(3, len(index)) * 0.015 + 0.0003
        values[[3, 250, 251, 1800]] = np.nan  # days without a return are skipped, not zero
    elif kind == "losing":
        values = rng.normal(-0.0008, 0.02, len(index))
    else:  # a short weekly series
        index = pd.date_range("2020-01-03", periods=150, freq="W-FRI", name="date")
        values = rng.normal(0.002, 0.03, len(index))
    return pd.Series(values, index=index, name=kind)


SYNTHETIC = ("normal", "fat_tails_with_gaps", "losing", "weekly")


@pytest.fixture(params=[*TICKERS, *SYNTHETIC])
def series(request, real_returns) -> pd.Series:
    return real_returns[request.param] if request.param in TICKERS else synthetic(request.param)


def weekly_rf(index: pd.DatetimeIndex) -> pd.Series:
    """A time-varying annual rate published on Fridays only, starting after the first return date."""
    dates = pd.date_range(index[0] + pd.Timedelta(days=10), index[-1], freq="W-FRI")
    return pd.Series(np.linspace(0.001, 0.05, len(dates)), index=dates)


def close(ours: float, theirs, rtol: float = RTOL) -> bool:
    theirs = float(theirs)
    return math.isclose(ours, theirs, rel_tol=rtol, abs_tol=1e-15) or (math.isnan(ours) and math.isnan(theirs))


@pytest.mark.parametrize("periods", [252, 52, 12])
def test_cagr_volatility_drawdown_calmar_match_quantstats(series, periods):
    assert close(metrics.cagr(series, periods), qs.stats.cagr(series, periods=periods))
    assert close(metrics.volatility(series, periods), qs.stats.volatility(series, periods))
    assert close(metrics.max_drawdown(series), qs.stats.max_drawdown(series))
    assert close(metrics.calmar(series, periods), qs.stats.calmar(series, periods=periods))


@pytest.mark.parametrize("rf", [0.0, 0.03, "series"])
@pytest.mark.parametrize("periods", [252, 52])
def test_sharpe_sortino_match_quantstats_with_rf_number_and_series(series, rf, periods):
    # A Series rf is aligned as quantstats.utils.to_excess_returns does: exact-date reindex, ffill, bfill, 0.
    rate = weekly_rf(series.index) if rf == "series" else rf
    assert close(metrics.sharpe(series, rate, periods), qs.stats.sharpe(series, rate, periods))
    assert close(metrics.sortino(series, rate, periods), qs.stats.sortino(series, rate, periods))


@pytest.mark.parametrize("rf", [0.0, 0.03])
def test_probabilistic_sharpe_matches_quantstats(series, rf):
    clean = series.dropna()  # quantstats counts NaN rows in n; we count returns
    assert close(metrics.probabilistic_sharpe_ratio(clean, rf, 252),
                 qs.stats.probabilistic_sharpe_ratio(clean, rf, 252))


def test_probabilistic_sharpe_with_rf_series_uses_moments_of_excess_returns(real_returns):
    # quantstats takes skew and kurtosis of the raw returns even with a time-varying rf; we take them of the
    # excess returns whose Sharpe is estimated. Both agree once the rf is subtracted first.
    r = real_returns["SPY"]
    rf = weekly_rf(r.index)
    excess = metrics.excess_returns(r, rf, 252)
    ours = metrics.probabilistic_sharpe_ratio(r, rf, 252)
    assert close(ours, qs.stats.probabilistic_sharpe_ratio(excess, 0.0, 252))
    assert ours == pytest.approx(float(qs.stats.probabilistic_sharpe_ratio(r, rf, 252)), rel=1e-3)


def test_summary_matches_quantstats_on_a_real_series(real_returns):
    r = real_returns["MP"]
    s = metrics.summary(r, 0.02, 252)
    assert tuple(s) == metrics.METRICS
    expected = {"cagr": qs.stats.cagr(r, periods=252), "volatility": qs.stats.volatility(r, 252),
                "sharpe": qs.stats.sharpe(r, 0.02, 252), "sortino": qs.stats.sortino(r, 0.02, 252),
                "max_drawdown": qs.stats.max_drawdown(r), "calmar": qs.stats.calmar(r, periods=252)}
    for key, value in expected.items():
        assert close(s[key], value), key


def test_negative_rf_number_is_subtracted_unlike_quantstats(real_returns):
    # Documented difference: quantstats only applies a number rf when rf > 0, so a negative rate is ignored.
    r = real_returns["REMX"]
    per_period = (1 - 0.005) ** (1 / 252) - 1
    assert close(metrics.sharpe(r, -0.005, 252), qs.stats.sharpe(r - per_period, 0.0, 252))
    assert close(float(qs.stats.sharpe(r, -0.005, 252)), qs.stats.sharpe(r, 0.0, 252))
    assert metrics.sharpe(r, -0.005, 252) > metrics.sharpe(r, 0.0, 252)


def test_rf_series_gaps_take_the_previous_return_dates_rate():
    index = pd.bdate_range("2024-01-01", periods=6)
    r = pd.Series([0.01, -0.02, 0.03, 0.0, 0.01, 0.02], index=index)
    rf = pd.Series([0.252, 0.504], index=[index[1], index[4]])
    per = metrics.excess_returns(r, rf, 252) - r
    annual = (1 + (-per)) ** 252 - 1
    np.testing.assert_allclose(annual.to_numpy(), [0.252, 0.252, 0.252, 0.252, 0.504, 0.504])


def test_hand_sized_values():
    r = pd.Series([0.10, -0.50, 0.50], index=pd.bdate_range("2024-01-01", periods=3))
    wealth = 1.1 * 0.5 * 1.5
    assert metrics.cagr(r, 3) == pytest.approx(wealth - 1)
    assert metrics.max_drawdown(r) == pytest.approx(0.55 / 1.1 - 1)
    assert metrics.volatility(r, 1) == pytest.approx(np.std([0.1, -0.5, 0.5], ddof=1))
    # a loss on the first day counts (the curve starts at 1 before the first return)
    assert metrics.max_drawdown(pd.Series([-0.2, 0.1])) == pytest.approx(-0.2)


def test_degenerate_inputs_give_nan_or_limits():
    assert math.isnan(metrics.cagr(pd.Series([], dtype=float)))
    assert math.isnan(metrics.sharpe(pd.Series([0.01])))
    assert math.isnan(metrics.sharpe(pd.Series([0.01, 0.01, 0.01])))
    assert math.isnan(metrics.sortino(pd.Series([0.01, 0.02])))  # no downside
    assert math.isnan(metrics.calmar(pd.Series([0.01, 0.02])))  # no drawdown
    assert math.isnan(metrics.probabilistic_sharpe_ratio(pd.Series([0.01, -0.01, 0.02])))
    assert metrics.max_drawdown(pd.Series([], dtype=float)) == 0.0
    assert metrics.cagr(pd.Series([0.1, -1.0, 0.2]), 252) == -1.0  # wiped out, as quantstats
    assert qs.stats.cagr(pd.Series([0.1, -1.0, 0.2]), periods=252) == -1.0


@pytest.mark.parametrize(("call", "message"), [
    (lambda: metrics.sharpe(pd.DataFrame({"a": [0.1, 0.2]})), "`returns` must be a pandas Series"),
    (lambda: metrics.cagr([0.1, 0.2]), "`returns` must be a pandas Series"),
    (lambda: metrics.cagr(pd.Series([0.1, 0.2]), periods=0), "`periods` must be a positive number"),
    (lambda: metrics.sharpe(pd.Series([0.1, 0.2]), risk_free="2%"), "`risk_free` must be an annual rate"),
    (lambda: metrics.sharpe(pd.Series([0.1, 0.2]), risk_free=-1.5), "`risk_free` must be a finite annual rate"),
])
def test_errors_name_the_argument(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_psr_target_and_direction():
    r = synthetic("normal")
    base = metrics.probabilistic_sharpe_ratio(r)
    assert 0.5 < base < 1.0  # positive drift: more likely than not above 0
    assert metrics.probabilistic_sharpe_ratio(r, target=metrics.sharpe(r)) == pytest.approx(0.5)
    assert metrics.probabilistic_sharpe_ratio(r, target=5.0) < 0.01


returns_arrays = arrays(float, st.integers(5, 80), elements=st.floats(-0.3, 0.3, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(returns_arrays, st.floats(0.1, 10.0))
def test_sharpe_is_scale_invariant_and_inputs_are_not_mutated(values, scale):
    r = pd.Series(values)
    before = r.copy()
    s = metrics.sharpe(r)
    assert r.equals(before)
    scaled = metrics.sharpe(r * scale)
    assert (math.isnan(s) and math.isnan(scaled)) or scaled == pytest.approx(s, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(returns_arrays, st.floats(-0.05, 0.05))
def test_sharpe_of_returns_with_rf_equals_sharpe_of_excess_returns(values, rf):
    # shifting returns and the risk-free rate together leaves Sharpe unchanged
    r = pd.Series(values)
    a = metrics.sharpe(r, rf)
    b = metrics.sharpe(metrics.excess_returns(r, rf), 0.0)
    assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(returns_arrays, st.floats(0.0, 0.05))
def test_a_positive_shift_never_worsens_max_drawdown(values, shift):
    r = pd.Series(values)
    assert metrics.max_drawdown(r + shift) >= metrics.max_drawdown(r) - 1e-12
    assert -1.0 <= metrics.max_drawdown(r) <= 0.0


def test_drawdown_series_minimum_is_the_max_drawdown():
    from screener.analytics.metrics import drawdown_series, max_drawdown

    rng = np.random.default_rng(7)
    returns = pd.Series(rng.normal(0.0003, 0.02, 500), index=pd.bdate_range("2020-01-01", periods=500))
    equity = pd.concat([pd.Series([1.0], index=[returns.index[0] - pd.Timedelta(days=1)]), (1 + returns).cumprod()])
    dd = drawdown_series(equity)
    assert dd.max() == 0.0 and dd.min() == pytest.approx(max_drawdown(returns), rel=1e-12)
