"""screener.analytics.bootstrap: coverage, block structure, reproducibility, speed, split report."""

from __future__ import annotations

import math
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest
from numpy.polynomial.hermite_e import hermegauss

from screener.analytics import metrics
from screener.analytics.bootstrap import (
    SPLIT_METRICS,
    bootstrap_ci,
    optimal_block_length,
    split_report,
    stationary_bootstrap_indices,
)


def ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, 0.01, n)
    x = np.empty(n)
    x[0] = e[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def daily(values: np.ndarray, name: str = "strategy") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range("2015-01-01", periods=len(values), name="date"), name=name)


# ------------------------------------------------------------------ coverage


MU, SIGMA, N, REPS = 0.0005, 0.01, 500, 200


def true_cagr(mu: float, sigma: float, periods: int = 252) -> float:
    """exp(periods * E[log(1 + r)]) - 1 for r ~ N(mu, sigma), by Gauss-Hermite quadrature."""
    x, w = hermegauss(60)
    return math.expm1(periods * float(np.sum(w * np.log1p(mu + sigma * x)) / math.sqrt(2 * math.pi)))


@pytest.mark.parametrize(("stat", "truth"), [("sharpe", MU / SIGMA * math.sqrt(252)),
                                             ("cagr", true_cagr(MU, SIGMA))], ids=["sharpe", "cagr"])
def test_95pct_interval_covers_the_true_value_about_95pct_of_the_time(stat, truth):
    # iid normal returns with known Sharpe / CAGR, 200 seeded repetitions of 2 years of daily data
    hits = 0
    for seed in range(REPS):
        r = np.random.default_rng(seed).normal(MU, SIGMA, N)
        ci = bootstrap_ci(r, stat, n_resamples=400, rng=10_000 + seed)
        hits += ci["low"] <= truth <= ci["high"]
    assert 0.88 <= hits / REPS <= 0.99


# ------------------------------------------------------------------ resampling structure


def test_block_length_near_n_gives_rotations_of_the_series():
    idx = stationary_bootstrap_indices(50, 20, 1e12, rng=3)
    for row in idx:
        assert np.array_equal(row, np.roll(np.arange(50), -row[0]))


def test_within_blocks_positions_run_consecutively_and_mean_block_length_matches():
    n, length = 20_000, 8.0
    idx = stationary_bootstrap_indices(n, 5, length, rng=1)
    assert idx.shape == (5, n) and idx.min() >= 0 and idx.max() < n
    steps = np.diff(idx, axis=1)
    breaks = ~((steps == 1) | (steps == 1 - n))
    mean_block = idx.size / (breaks.sum() + idx.shape[0])
    assert mean_block == pytest.approx(length, rel=0.05)


def test_block_resampling_preserves_serial_dependence_that_iid_destroys():
    x = ar1(3000, 0.6, seed=5)

    def lag1(a: np.ndarray) -> float:
        a = a - a.mean(axis=-1, keepdims=True)
        return float(np.mean(np.sum(a[..., 1:] * a[..., :-1], axis=-1) / np.sum(a * a, axis=-1)))

    blocks = x[stationary_bootstrap_indices(x.size, 50, 50.0, rng=2)]
    iid = x[stationary_bootstrap_indices(x.size, 50, 1.0, rng=2)]
    assert lag1(blocks) == pytest.approx(lag1(x), abs=0.05)
    assert abs(lag1(iid)) < 0.05


def test_optimal_block_length_grows_with_dependence_and_is_bounded():
    iid = np.random.default_rng(0).normal(size=2000)
    assert 1.0 <= optimal_block_length(iid) <= 3.0
    assert optimal_block_length(ar1(2000, 0.7, seed=1)) > 8.0
    n = 200
    assert optimal_block_length(ar1(n, 0.99, seed=2)) <= math.ceil(min(3 * math.sqrt(n), n / 3))
    assert optimal_block_length(np.ones(100)) == 1.0
    assert optimal_block_length(np.array([0.1, 0.2])) == 1.0


# ------------------------------------------------------------------ bootstrap_ci


def test_result_keys_point_and_interval_order():
    r = daily(np.random.default_rng(4).normal(0.0006, 0.015, 1500))
    for stat, point in (("sharpe", metrics.sharpe(r)), ("cagr", metrics.cagr(r))):
        ci = bootstrap_ci(r, stat, n_resamples=300, rng=0)
        assert set(ci) >= {"point", "low", "high", "se", "block_length", "n_resamples"}
        assert ci["point"] == pytest.approx(point, rel=1e-12)
        assert ci["low"] < ci["point"] < ci["high"] and ci["se"] > 0
        assert ci["n_resamples"] == 300 and ci["stat"] == stat


def test_sharpe_with_risk_free_bootstraps_excess_returns():
    r = daily(np.random.default_rng(4).normal(0.0006, 0.015, 800))
    rf = pd.Series(0.04, index=r.index[::5])
    ci = bootstrap_ci(r, "sharpe", n_resamples=200, rng=0, risk_free=rf)
    assert ci["point"] == pytest.approx(metrics.sharpe(r, rf), rel=1e-12)
    with pytest.raises(TypeError, match="`risk_free` as a Series"):
        bootstrap_ci(r.to_numpy(), "sharpe", rng=0, risk_free=rf)


def test_seed_reproduces_and_generator_state_advances():
    r = daily(np.random.default_rng(9).normal(0.0004, 0.01, 600))
    assert bootstrap_ci(r, "sharpe", 200, rng=42) == bootstrap_ci(r, "sharpe", 200, rng=42)
    gen = np.random.default_rng(42)
    first, second = bootstrap_ci(r, "sharpe", 200, rng=gen), bootstrap_ci(r, "sharpe", 200, rng=gen)
    assert first == bootstrap_ci(r, "sharpe", 200, rng=np.random.default_rng(42))
    assert first["low"] != second["low"]


def test_explicit_block_length_is_used_and_nan_returns_are_dropped():
    values = np.random.default_rng(1).normal(0.0004, 0.01, 400)
    values[[0, 10]] = np.nan
    ci = bootstrap_ci(daily(values), "cagr", 100, block_length=12.5, rng=0)
    assert ci["block_length"] == 12.5
    assert ci["point"] == pytest.approx(metrics.cagr(daily(values)), rel=1e-12)


def test_too_few_returns_give_nan():
    ci = bootstrap_ci(pd.Series([0.01, np.nan]), "sharpe", 100, rng=0)
    assert all(math.isnan(ci[k]) for k in ("point", "low", "high", "se"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"stat": "sortino"}, "`stat` must be one of sharpe, cagr"),
    ({"n_resamples": 1}, "`n_resamples` must be an integer >= 2"),
    ({"alpha": 1.5}, r"`alpha` must be in \(0, 1\)"),
    ({"block_length": 0.5}, "`block_length` must be a finite number >= 1"),
    ({"rng": "seed"}, "`rng` must be a numpy Generator"),
])
def test_errors_name_the_argument(kwargs, message):
    r = daily(np.random.default_rng(0).normal(0, 0.01, 100))
    with pytest.raises((TypeError, ValueError), match=message):
        bootstrap_ci(r, **{"stat": "sharpe", "n_resamples": 50, **kwargs})


def test_1000_resamples_of_10_years_daily_take_under_a_second():
    r = daily(np.random.default_rng(0).normal(0.0004, 0.012, 2520))
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        bootstrap_ci(r, "sharpe", 1000, rng=0)
        best = min(best, time.perf_counter() - start)
    assert best < 1.0


# ------------------------------------------------------------------ split_report


@pytest.fixture
def strategy_and_benchmark() -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(11)
    r = daily(rng.normal(0.0008, 0.015, 1000), "strategy")
    b = daily(rng.normal(0.0003, 0.01, 1000), "SPY")
    return r, b


def test_split_by_date_matches_metrics_on_each_side(strategy_and_benchmark):
    r, b = strategy_and_benchmark
    before = r.copy()
    report = split_report(r, date(2017, 6, 1), benchmark=b)
    assert r.equals(before)
    assert list(report.index.get_level_values("series").unique()) == ["strategy", "SPY"]
    assert list(report.loc["strategy"].index) == list(SPLIT_METRICS)
    assert list(report.columns) == ["in_sample", "out_of_sample", "change"]
    ins, oos = r[r.index < "2017-06-01"], r[r.index >= "2017-06-01"]
    assert report.attrs["split_date"] == oos.index[0]
    for name, value in metrics.summary(ins).items():
        assert report.loc[("strategy", name), "in_sample"] == pytest.approx(value, rel=1e-12)
    assert report.loc[("strategy", "sharpe"), "out_of_sample"] == pytest.approx(metrics.sharpe(oos), rel=1e-12)
    assert report.loc[("SPY", "cagr"), "out_of_sample"] == pytest.approx(metrics.cagr(b[b.index >= "2017-06-01"]))
    assert report.loc[("strategy", "observations"), "in_sample"] == len(ins)
    np.testing.assert_allclose(report["change"], report["out_of_sample"] - report["in_sample"])
    assert report.loc[("strategy", "psr"), "in_sample"] == pytest.approx(metrics.probabilistic_sharpe_ratio(ins))


def test_split_by_fraction(strategy_and_benchmark):
    r, _ = strategy_and_benchmark
    report = split_report(r, 0.7)
    assert report.loc[("strategy", "observations"), "in_sample"] == 700
    assert report.loc[("strategy", "observations"), "out_of_sample"] == 300
    assert report.attrs["split_date"] == r.index[700]


@pytest.mark.parametrize(("split", "message"), [
    (1.5, r"`split` as a fraction must be in \(0, 1\)"),
    (3, "`split` must be a date or a fraction"),
    (date(2030, 1, 1), "`split` must leave at least two returns on each side"),
    ("not a date", "`split` must be a date or a fraction"),
])
def test_split_errors_name_the_argument(strategy_and_benchmark, split, message):
    with pytest.raises(ValueError, match=message):
        split_report(strategy_and_benchmark[0], split)
