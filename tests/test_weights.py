from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import optimize

from screener.exceptions import ConfigError
from screener.weights import (
    FALLBACK,
    METHODS,
    MIN_OBSERVATIONS,
    OptimisationError,
    WeightResult,
    cap_weights,
    ledoit_wolf,
    max_sharpe_weights,
    min_variance_weights,
    risk_contributions,
    risk_parity_weights,
    weigh,
)

NAN = np.nan
ABC = ["A", "B", "C"]
RETURN_METHODS = ("inverse_vol", "risk_parity", "min_variance", "max_sharpe")


def make_returns(n_assets: int = 5, n_rows: int = 120, seed: int = 42, drift: float = 0.0005) -> pd.DataFrame:
    """One market factor plus noise of different sizes: a positive definite covariance, distinct volatilities."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.01, (n_rows, 1))
    scale = np.linspace(0.5, 2.0, n_assets)
    values = market * rng.uniform(0.5, 1.5, n_assets) + rng.normal(drift, 0.015, (n_rows, n_assets)) * scale
    columns = [f"T{i:02d}" for i in range(n_assets)]
    return pd.DataFrame(values, index=pd.bdate_range("2023-01-02", periods=n_rows, name="date"), columns=columns)


def all_inputs(returns: pd.DataFrame) -> dict:
    tickers = list(returns.columns)
    return {
        "returns": returns,
        "scores": pd.Series(np.linspace(-1, 2, len(tickers)), index=tickers),
        "market_caps": pd.Series(np.linspace(1e9, 5e9, len(tickers)), index=tickers),
        "fixed_weights": {t: 1 / len(tickers) for t in tickers},
    }


def assert_portfolio(result: WeightResult, selected, total: float = 1.0) -> None:
    w = result.weights
    assert list(w.index) == list(selected)
    assert w.name == "weight"
    assert w.notna().all() and (w >= 0).all()
    assert w.sum() == pytest.approx(total, abs=1e-12)


# ---------------------------------------------------------------- hand-sized cases


def test_equal_is_one_over_n_in_the_callers_order():
    result = weigh(["C", "A", "B"], method="equal")
    pd.testing.assert_series_equal(
        result.weights, pd.Series([1 / 3] * 3, index=pd.Index(["C", "A", "B"], name="asset"), name="weight")
    )
    assert result.method_used == "equal" and result.fallbacks == () and result.cash == 0


def test_empty_selection_is_all_cash_with_a_note():
    result = weigh([], method="max_sharpe")
    assert result.weights.empty and result.weights.name == "weight" and result.weights.dtype == np.float64
    assert result.cash == 1.0
    assert any("empty selection" in n for n in result.notes)


def test_inverse_vol_matches_numpy_with_ddof_1():
    returns = pd.DataFrame(
        {"A": [0.01, -0.02, 0.03, 0.00, 0.01], "B": [0.002, 0.001, -0.001, 0.0, 0.003],
         "C": [NAN, 0.05, -0.04, 0.02, NAN]},
        index=pd.bdate_range("2024-01-01", periods=5),
    )
    vol = np.array([np.std(returns[c].dropna().to_numpy(), ddof=1) for c in ABC])
    expected = (1 / vol) / (1 / vol).sum()
    result = weigh(ABC, method="inverse_vol", returns=returns, lookback=5)
    np.testing.assert_allclose(result.weights.to_numpy(), expected, rtol=1e-12)
    assert_portfolio(result, ABC)


def test_inverse_vol_drops_a_name_with_one_return_and_says_so():
    returns = pd.DataFrame({"A": [0.01, -0.02, 0.03], "B": [0.02, 0.01, -0.01], "C": [NAN, NAN, 0.05]})
    result = weigh(ABC, method="inverse_vol", returns=returns)
    vol = returns[["A", "B"]].std(ddof=1).to_numpy()
    np.testing.assert_allclose(result.weights[["A", "B"]], (1 / vol) / (1 / vol).sum(), rtol=1e-12)
    assert result.weights["C"] == 0
    assert any("dropped 1 name" in n and "C" in n for n in result.notes)


def test_weigh_reads_only_the_last_lookback_rows():
    returns = make_returns(n_assets=4, n_rows=100)
    tickers = list(returns.columns)
    changed = returns.copy()
    changed.iloc[:-20] = changed.iloc[:-20] * 7 + 0.01  # rewrite everything before the window
    for method in RETURN_METHODS:
        a = weigh(tickers, method=method, returns=returns, lookback=20)
        b = weigh(tickers, method=method, returns=changed, lookback=20)
        pd.testing.assert_series_equal(a.weights, b.weights, check_exact=False, rtol=1e-9, atol=1e-12)
        assert a.method_used == b.method_used == method
    inside = returns.copy()
    inside.iloc[-5, 0] = 0.2  # a change inside the window does move the weights
    moved = weigh(tickers, method="inverse_vol", returns=inside, lookback=20)
    assert not np.allclose(moved.weights, weigh(tickers, method="inverse_vol", returns=returns, lookback=20).weights)


def test_fixed_weights_of_unselected_tickers_are_held_in_cash():
    result = weigh(["A", "B"], method="fixed", fixed_weights={"A": 0.5, "B": 0.3, "C": 0.2})
    assert result.weights.to_dict() == {"A": 0.5, "B": 0.3}
    assert result.cash == pytest.approx(0.2)
    assert any("cash 0.2" in n and "C (0.2)" in n for n in result.notes)


def test_fixed_weights_a_selected_name_without_a_weight_gets_zero_and_short_weights_leave_cash():
    result = weigh(["A", "D"], method="fixed", fixed_weights={"A": 0.7})
    assert result.weights.to_dict() == {"A": 0.7, "D": 0.0}
    assert result.cash == pytest.approx(0.3)
    assert any("no fixed weight" in n and "D" in n for n in result.notes)


def test_fixed_weights_with_max_weight_redistribute_to_the_other_weighted_names():
    result = weigh(ABC, method="fixed", fixed_weights={"A": 0.6, "B": 0.2, "C": 0.2}, max_weight=0.4)
    np.testing.assert_allclose(result.weights.to_numpy(), [0.4, 0.3, 0.3], rtol=1e-12)


def test_score_uses_the_positive_part_and_missing_scores_count_as_zero():
    scores = pd.Series({"A": 2.0, "B": -1.0, "C": 1.0, "D": NAN, "Z": 100.0})  # Z is not selected
    result = weigh(["A", "B", "C", "D"], method="score", scores=scores)
    np.testing.assert_allclose(result.weights.to_numpy(), [2 / 3, 0, 1 / 3, 0], rtol=1e-12)
    assert result.method_used == "score" and result.fallbacks == ()


def test_score_all_non_positive_falls_back_to_equal():
    result = weigh(ABC, method="score", scores=pd.Series({"A": -1.0, "B": 0.0, "C": NAN}))
    assert result.method_used == "equal"
    assert result.fallbacks == ("score: no selected name has a positive score",)
    np.testing.assert_allclose(result.weights.to_numpy(), [1 / 3] * 3)


def test_score_with_a_cap_too_tight_for_the_positive_names_leaves_cash():
    scores = pd.Series({"A": 3.0, "B": 1.0, "C": -1.0, "D": -2.0, "E": -3.0})
    result = weigh(list("ABCDE"), method="score", scores=scores, max_weight=0.3)
    np.testing.assert_allclose(result.weights.to_numpy(), [0.3, 0.3, 0, 0, 0], atol=1e-15)
    assert result.cash == pytest.approx(0.4)
    assert any(n.startswith("cash 0.4") for n in result.notes)


def test_market_cap_is_proportional_and_a_missing_cap_falls_back_to_equal():
    caps = pd.Series({"A": 3e9, "B": 1e9, "C": 1e9})
    np.testing.assert_allclose(weigh(ABC, method="market_cap", market_caps=caps).weights, [0.6, 0.2, 0.2])
    result = weigh(ABC, method="market_cap", market_caps=caps.drop("C"))
    assert result.method_used == "equal"
    assert result.fallbacks == ("market_cap: 1 name(s) have no positive market cap: C",)


# ---------------------------------------------------------------- risk parity, min variance, max Sharpe


def test_risk_contributions_hand_case():
    cov = pd.DataFrame([[1.0, 0.0], [0.0, 3.0]], index=["A", "B"], columns=["A", "B"])
    rc = risk_contributions(pd.Series({"B": 0.5, "A": 0.5}), cov)
    assert rc.to_dict() == {"B": 0.75, "A": 0.25} and rc.name == "risk_contribution"


def test_risk_parity_on_a_diagonal_covariance_is_inverse_volatility():
    vol = np.array([0.1, 0.2, 0.4])
    cov = pd.DataFrame(np.diag(vol**2), index=ABC, columns=ABC)
    np.testing.assert_allclose(risk_parity_weights(cov), (1 / vol) / (1 / vol).sum(), rtol=1e-12)


def test_risk_parity_contributions_are_equal():
    returns = make_returns(n_assets=12, n_rows=63)
    tickers = list(returns.columns)
    result = weigh(tickers, method="risk_parity", returns=returns)
    assert result.method_used == "risk_parity"
    cov, _ = ledoit_wolf(returns)
    rc = risk_contributions(result.weights, cov)
    np.testing.assert_allclose(rc.to_numpy(), 1 / 12, atol=1e-10)  # the brief asks 1e-6
    assert_portfolio(result, tickers)


def two_asset_cov(s1: float, s2: float, rho: float) -> pd.DataFrame:
    c = rho * s1 * s2
    return pd.DataFrame([[s1**2, c], [c, s2**2]], index=["A", "B"], columns=["A", "B"])


@pytest.mark.parametrize(("s1", "s2", "rho"), [(0.2, 0.3, 0.1), (0.1, 0.1, 0.5), (0.25, 0.15, -0.4), (0.3, 0.2, 0.9)])
def test_min_variance_two_assets_matches_the_closed_form(s1, s2, rho):
    cov = two_asset_cov(s1, s2, rho)
    v1, v2, c = cov.iloc[0, 0], cov.iloc[1, 1], cov.iloc[0, 1]
    w1 = min(max((v2 - c) / (v1 + v2 - 2 * c), 0.0), 1.0)  # long-only: the closed form clipped to [0, 1]
    np.testing.assert_allclose(min_variance_weights(cov).to_numpy(), [w1, 1 - w1], rtol=1e-12, atol=1e-15)


def test_min_variance_through_weigh_is_the_closed_form_on_the_ledoit_wolf_covariance():
    returns = make_returns(n_assets=2, n_rows=63, seed=3)
    cov, shrinkage = ledoit_wolf(returns)
    assert 0 < shrinkage < 1
    v1, v2, c = cov.iloc[0, 0], cov.iloc[1, 1], cov.iloc[0, 1]
    w1 = (v2 - c) / (v1 + v2 - 2 * c)
    assert 0 < w1 < 1
    result = weigh(list(returns.columns), method="min_variance", returns=returns)
    np.testing.assert_allclose(result.weights.to_numpy(), [w1, 1 - w1], rtol=1e-12)
    assert any("shrinkage" in n for n in result.notes)


def test_max_sharpe_without_binding_constraints_is_the_tangency_portfolio():
    cov = pd.DataFrame([[0.04, 0.006, 0.0], [0.006, 0.09, 0.01], [0.0, 0.01, 0.0625]], index=ABC, columns=ABC)
    mu = pd.Series({"A": 0.06, "B": 0.09, "C": 0.07})
    raw = np.linalg.solve(cov.to_numpy(), mu.to_numpy() - 0.01)
    assert (raw > 0).all()
    got = max_sharpe_weights(mu, cov, risk_free=0.01)
    np.testing.assert_allclose(got.to_numpy(), raw / raw.sum(), rtol=1e-12)


def sharpe(w, mu, cov):
    return (w @ mu) / np.sqrt(w @ cov @ w)


@pytest.mark.parametrize("seed", range(5))
def test_max_sharpe_with_caps_beats_multistart_slsqp(seed):
    rng = np.random.default_rng(seed)
    n = 8
    a = rng.normal(size=(n, n))
    cov = a @ a.T / n + np.diag(rng.uniform(0.05, 0.5, n))
    mu = rng.normal(0.05, 0.1, n)
    mu[0] = abs(mu[0])
    tickers = [f"X{i}" for i in range(n)]
    got = max_sharpe_weights(pd.Series(mu, index=tickers), pd.DataFrame(cov, index=tickers, columns=tickers),
                             max_weight=0.3).to_numpy()
    assert got.max() <= 0.3 + 1e-12 and got.sum() == pytest.approx(1)
    best = -np.inf
    for _ in range(10):
        res = optimize.minimize(lambda w: -sharpe(w, mu, cov), rng.dirichlet(np.ones(n)), method="SLSQP",
                                bounds=[(0, 0.3)] * n, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}])
        if res.success:
            best = max(best, -res.fun)
    assert sharpe(got, mu, cov) >= best - 1e-9


def test_min_variance_with_caps_beats_slsqp():
    returns = make_returns(n_assets=10, n_rows=63, seed=5)
    cov, _ = ledoit_wolf(returns)
    groups = {"country": {t: ("CN" if i < 5 else "AU") for i, t in enumerate(returns.columns)}}
    got = min_variance_weights(cov, max_weight=0.15, group_caps={"country": {"CN": 0.35}}, groups=groups)
    c = cov.to_numpy()
    res = optimize.minimize(lambda w: w @ c @ w, np.full(10, 0.1), method="SLSQP", bounds=[(0, 0.15)] * 10,
                            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1},
                                         {"type": "ineq", "fun": lambda w: 0.35 - w[:5].sum()}],
                            options={"ftol": 1e-15})
    w = got.to_numpy()
    assert w.max() <= 0.15 + 1e-12 and w[:5].sum() <= 0.35 + 1e-12 and w.sum() == pytest.approx(1)
    assert w @ c @ w <= res.fun * (1 + 1e-9)


# ---------------------------------------------------------------- Ledoit-Wolf


@pytest.mark.parametrize(("n_rows", "n_assets", "seed"), [(63, 20, 0), (10, 30, 1), (250, 5, 2), (3, 4, 3)])
def test_ledoit_wolf_matches_sklearn(n_rows, n_assets, seed):
    covariance = pytest.importorskip(
        "sklearn.covariance", reason="scikit-learn (a test-only dependency) is the reference for Ledoit-Wolf"
    )
    returns = make_returns(n_assets=n_assets, n_rows=n_rows, seed=seed)
    ours, shrinkage = ledoit_wolf(returns)
    ref = covariance.LedoitWolf().fit(returns.to_numpy())
    np.testing.assert_allclose(ours.to_numpy(), ref.covariance_, rtol=1e-10, atol=1e-18)
    assert shrinkage == pytest.approx(ref.shrinkage_, rel=1e-10)
    assert list(ours.index) == list(ours.columns) == list(returns.columns)


def test_ledoit_wolf_drops_rows_with_nan_and_needs_two_rows():
    returns = make_returns(n_assets=3, n_rows=30)
    holed = returns.copy()
    holed.iloc[[2, 7], 1] = NAN
    pd.testing.assert_frame_equal(ledoit_wolf(holed)[0], ledoit_wolf(returns.drop(returns.index[[2, 7]]))[0])
    with pytest.raises(ValueError, match="at least 2 rows"):
        ledoit_wolf(returns.iloc[:1])


# ---------------------------------------------------------------- caps


def test_water_filling_hand_case():
    w = cap_weights(pd.Series({"A": 0.5, "B": 0.3, "C": 0.2}), max_weight=0.4)
    np.testing.assert_allclose(w.to_numpy(), [0.4, 0.36, 0.24], rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(arrays(float, st.integers(2, 30), elements=st.floats(0.01, 1e3)), st.floats(0.05, 1))
def test_capped_weights_are_a_portfolio(raw, cap):
    assume(cap * len(raw) >= 1)  # otherwise no capped portfolio exists
    target = raw / raw.sum()
    w = cap_weights(pd.Series(target), max_weight=cap).to_numpy()
    assert w.sum() == pytest.approx(1, abs=1e-12) and (w >= 0).all() and (w <= cap + 1e-9).all()
    # Names below the cap keep their relative weights; the ranking of all names is kept.
    free = w < cap - 1e-9
    if free.sum() >= 2:
        ratio = w[free] / target[free]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
    order = np.argsort(target, kind="stable")
    assert (np.diff(w[order]) >= -1e-12).all()


@pytest.mark.parametrize(("n", "cap"), [(5, 0.1), (3, 0.3), (10, 0.05)])
def test_max_weight_below_one_over_n_is_a_config_error(n, cap):
    tickers = [f"T{i}" for i in range(n)]
    with pytest.raises(ConfigError, match=rf"`max_weight` = {cap:g} cannot be met with {n} selected names \(needs >= "):
        weigh(tickers, method="equal", max_weight=cap)


def test_max_weight_error_quotes_the_required_value():
    with pytest.raises(ConfigError) as info:
        weigh([f"T{i}" for i in range(5)], method="equal", max_weight=0.1)
    assert str(info.value) == "`max_weight` = 0.1 cannot be met with 5 selected names (needs >= 0.2)"


def test_group_caps_that_cannot_hold_the_portfolio_are_a_config_error():
    groups = {"country": {"A": "China", "B": "China", "C": "Australia"}}
    with pytest.raises(ConfigError, match=r"`group_caps` cannot be met with the 3 selected names: at most 0\.8 .*"
                                          r"country 'China' = 0\.5; country 'Australia' = 0\.3"):
        weigh(ABC, method="equal", group_caps={"country": {"China": 0.5, "Australia": 0.3}}, groups=groups)
    # A name outside every capped group makes the same caps feasible.
    groups["country"]["D"] = "Canada"
    result = weigh([*ABC, "D"], method="equal", group_caps={"country": {"China": 0.5, "Australia": 0.3}},
                   groups=groups)
    np.testing.assert_allclose(result.weights.to_numpy(), [0.25, 0.25, 0.25, 0.25])


def test_group_cap_scales_its_members_and_the_rest_share_the_excess_pro_rata():
    groups = {"stage": {"A": "mining", "B": "mining", "C": "magnet", "D": "magnet"}}
    scores = pd.Series({"A": 4.0, "B": 2.0, "C": 1.0, "D": 1.0})
    result = weigh(list("ABCD"), method="score", scores=scores, group_caps={"stage": {"mining": 0.5}}, groups=groups)
    np.testing.assert_allclose(result.weights.to_numpy(), [1 / 3, 1 / 6, 0.25, 0.25], rtol=1e-12)
    assert any("stage 'mining' = 0.5" in n for n in result.notes)


def test_a_name_with_several_elements_counts_fully_in_each():
    # B is in both capped groups; the only full investment gives B nothing.
    groups = {"element": {"A": "Nd", "B": ["Nd", "Pr"], "C": ("Pr",)}}
    result = weigh(ABC, method="equal", group_caps={"element": {"Nd": 0.5, "Pr": 0.5}}, groups=groups)
    np.testing.assert_allclose(result.weights.to_numpy(), [0.5, 0.0, 0.5], atol=1e-9)
    assert result.weights.sum() == pytest.approx(1, abs=1e-12)


ELEMENTS = ("Nd", "Pr", "Dy")
COUNTRIES = ("CN", "AU", "US")


@st.composite
def capped_books(draw):
    n = draw(st.integers(2, 8))
    tickers = [f"T{i}" for i in range(n)]
    elements = {t: draw(st.lists(st.sampled_from(ELEMENTS), max_size=3, unique=True)) for t in tickers}
    countries = {t: draw(st.sampled_from(COUNTRIES)) for t in tickers}
    group_caps = {
        "element": draw(st.dictionaries(st.sampled_from(ELEMENTS), st.floats(0.1, 1.0), max_size=3)),
        "country": draw(st.dictionaries(st.sampled_from(COUNTRIES), st.floats(0.1, 1.0), max_size=3)),
    }
    max_weight = draw(st.none() | st.floats(0.15, 1.0))
    raw = np.array(draw(st.lists(st.floats(0.01, 100), min_size=n, max_size=n)))
    return tickers, {"element": elements, "country": countries}, group_caps, max_weight, raw / raw.sum()


def lp_capacity(tickers, groups, group_caps, max_weight) -> float:
    rows, limits = [], []
    for dim, caps in group_caps.items():
        for g, cap in caps.items():
            row = [g in (groups[dim][t] if isinstance(groups[dim][t], list) else [groups[dim][t]]) for t in tickers]
            if any(row):
                rows.append(row)
                limits.append(cap)
    res = optimize.linprog(-np.ones(len(tickers)), A_ub=np.array(rows, float) if rows else None,
                           b_ub=limits or None, bounds=[(0, max_weight or 1)] * len(tickers), method="highs")
    return -res.fun


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capped_books())
def test_group_capped_weights_meet_every_cap_or_the_caps_are_infeasible(book):
    tickers, groups, group_caps, max_weight, target = book
    capacity = lp_capacity(tickers, groups, group_caps, max_weight)
    try:
        w = cap_weights(pd.Series(target, index=tickers), max_weight=max_weight, group_caps=group_caps, groups=groups)
    except ConfigError:
        assert capacity < 1 - 1e-9  # raised only when no portfolio fits
        return
    assert capacity >= 1 - 1e-9
    w = w.to_numpy()
    assert w.sum() == pytest.approx(1, abs=1e-9) and (w >= 0).all()
    if max_weight is not None:
        assert (w <= max_weight + 1e-9).all()
    binding = np.zeros(len(tickers), dtype=bool)
    for dim, caps in group_caps.items():
        for g, cap in caps.items():
            member = np.array([g in (groups[dim][t] if dim == "element" else [groups[dim][t]]) for t in tickers])
            assert w[member].sum() <= cap + 1e-9
            if w[member].sum() >= cap - 1e-7:
                binding |= member
    # Names under no binding cap keep their relative weights.
    free = ~binding & (w < (max_weight or 2) - 1e-7)
    if free.sum() >= 2:
        ratio = w[free] / target[free]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)


def test_optimisers_take_caps_as_constraints():
    returns = make_returns(n_assets=8, n_rows=63, seed=11, drift=0.002)
    tickers = list(returns.columns)
    groups = {"stage": {t: ("mining" if i % 2 else "magnet") for i, t in enumerate(tickers)}}
    for method in RETURN_METHODS:
        result = weigh(tickers, method=method, returns=returns, max_weight=0.2,
                       group_caps={"stage": {"mining": 0.4}}, groups=groups)
        assert result.method_used == method
        assert_portfolio(result, tickers)
        w = result.weights.to_numpy()
        assert w.max() <= 0.2 + 1e-9 and w[1::2].sum() <= 0.4 + 1e-9
        assert not any("moved by" in n for n in result.notes)  # the optimum already met the caps


def test_optimisers_survive_parallel_and_overlapping_caps():
    # A one-name group capped at max_weight duplicates that name's cap; overlapping element groups share names.
    # Both once made the active-set KKT system singular (a dependent constraint picked as blocking).
    returns = make_returns(n_assets=20, n_rows=63, seed=42, drift=0.0008)
    tickers = list(returns.columns)
    groups = {"country": {t: ["CN", "AU", "US", "CA"][i % 4] for i, t in enumerate(tickers)},
              "element": {t: [["Nd", "Pr"], ["Dy"], ["Nd"], ["Tb", "Dy"]][i % 4] for i, t in enumerate(tickers)},
              "stage": {tickers[0]: "magnet"}}
    group_caps = {"country": {"CN": 0.3}, "element": {"Nd": 0.45, "Dy": 0.6}, "stage": {"magnet": 0.1}}
    for method in ("min_variance", "max_sharpe"):
        result = weigh(tickers, method=method, returns=returns, max_weight=0.1, group_caps=group_caps, groups=groups)
        assert result.method_used == method, result.fallbacks
        assert_portfolio(result, tickers)
        assert result.weights.max() <= 0.1 + 1e-9


# ---------------------------------------------------------------- fallbacks


def test_singular_covariance_falls_back_and_records_why():
    # Two rows: the centred rows are opposite, Ledoit-Wolf's intensity is 0 and the covariance has rank 1.
    returns = make_returns(n_assets=3, n_rows=2)
    result = weigh(list(returns.columns), method="min_variance", returns=returns)
    assert result.method_used == "inverse_vol"
    assert len(result.fallbacks) == 1 and result.fallbacks[0].startswith("min_variance: covariance is singular")
    assert_portfolio(result, returns.columns)
    with pytest.raises(OptimisationError, match="singular"):
        min_variance_weights(two_asset_cov(0.2, 0.2, 1.0))


def test_too_short_history_walks_the_whole_chain_to_equal():
    returns = make_returns(n_assets=3, n_rows=1)
    result = weigh(list(returns.columns), method="max_sharpe", returns=returns)
    assert result.method_used == "equal"
    assert [f.split(":")[0] for f in result.fallbacks] == ["max_sharpe", "min_variance", "inverse_vol"]
    assert f"no name has {MIN_OBSERVATIONS} or more non-constant returns" in result.fallbacks[0]
    np.testing.assert_allclose(result.weights.to_numpy(), [1 / 3] * 3)


def test_max_sharpe_without_a_positive_excess_return_falls_back_to_min_variance():
    returns = make_returns(n_assets=4, n_rows=63)
    result = weigh(list(returns.columns), method="max_sharpe", returns=returns, risk_free=1.0)
    assert result.method_used == "min_variance"
    assert result.fallbacks == ("max_sharpe: no name has a mean return above `risk_free` over the lookback",)
    pd.testing.assert_series_equal(result.weights,
                                   weigh(list(returns.columns), method="min_variance", returns=returns).weights)


def test_optimiser_non_convergence_falls_back(monkeypatch):
    import screener.weights as module

    def fail(*_args, **_kwargs):
        raise OptimisationError("optimiser did not converge in 500 active-set steps")

    monkeypatch.setattr(module, "_qp", fail)
    returns = make_returns(n_assets=4, n_rows=63)
    result = weigh(list(returns.columns), method="max_sharpe", returns=returns)
    assert result.method_used == "inverse_vol"
    assert result.fallbacks == (
        "max_sharpe: optimiser did not converge in 500 active-set steps",
        "min_variance: optimiser did not converge in 500 active-set steps",
    )


def test_covariance_methods_drop_short_histories_and_constant_prices():
    returns = make_returns(n_assets=4, n_rows=40)
    returns.iloc[:30, 2] = NAN  # listed 10 rows ago: under half of the window
    returns.iloc[:, 3] = 0.0  # a stale quote
    result = weigh(list(returns.columns), method="risk_parity", returns=returns, lookback=40)
    assert result.method_used == "risk_parity"
    assert result.weights.iloc[2] == 0 and result.weights.iloc[3] == 0
    assert any("dropped 2 name(s)" in n for n in result.notes)
    rc = risk_contributions(result.weights.iloc[:2], ledoit_wolf(returns.iloc[:, :2])[0])
    np.testing.assert_allclose(rc.to_numpy(), 0.5, atol=1e-10)


def test_fallback_chain_is_the_documented_one():
    assert FALLBACK["max_sharpe"] == "min_variance" and FALLBACK["min_variance"] == "inverse_vol"
    assert FALLBACK["inverse_vol"] == "equal" and FALLBACK["risk_parity"] == "inverse_vol"
    assert FALLBACK["equal"] is None and FALLBACK["fixed"] is None
    assert set(FALLBACK) == set(METHODS)


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_a_portfolio_on_messy_data(method):
    returns = make_returns(n_assets=6, n_rows=80)
    returns.iloc[::7, 1] = NAN  # a listing closed on other exchanges' trading days
    returns.iloc[:70, 4] = NAN  # a recent listing
    result = weigh(list(returns.columns), method=method, max_weight=0.4, **all_inputs(returns))
    assert_portfolio(result, returns.columns)
    assert result.weights.max() <= 0.4 + 1e-9


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(METHODS), st.permutations(range(6)))
def test_permuting_tickers_permutes_weights(method, order):
    returns = make_returns(n_assets=6, n_rows=63, seed=7, drift=0.001)
    tickers = list(returns.columns)
    shuffled = [tickers[i] for i in order]
    inputs = all_inputs(returns)
    a = weigh(tickers, method=method, **inputs).weights
    b = weigh(shuffled, method=method, **{**inputs, "returns": returns[shuffled]}).weights
    pd.testing.assert_series_equal(a.reindex(shuffled), b, check_exact=False, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_inputs_are_not_mutated(method):
    returns = make_returns(n_assets=5, n_rows=63)
    returns.iloc[3, 2] = NAN
    inputs = all_inputs(returns)
    groups = {"element": {t: ["Nd", "Pr"] if i < 2 else ["Dy"] for i, t in enumerate(returns.columns)},
              "country": {t: "CN" for t in returns.columns}}
    group_caps = {"element": {"Nd": 0.45}, "country": {"CN": 1.0}}
    selected = list(returns.columns)
    before = copy.deepcopy((selected, inputs, groups, group_caps))
    weigh(selected, method=method, max_weight=0.3, group_caps=group_caps, groups=groups, **inputs)
    assert selected == before[0] and groups == before[2] and group_caps == before[3]
    for key, value in inputs.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, before[1][key])
        elif isinstance(value, pd.Series):
            pd.testing.assert_series_equal(value, before[1][key])
        else:
            assert value == before[1][key]


def test_result_is_frozen():
    result = weigh(ABC, method="equal")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.method_used = "x"  # type: ignore[misc]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "magic"}, ConfigError, r"`method` must be one of 'equal', .*got 'magic'"),
        ({"method": "equal", "lookback": 1}, ConfigError, r"`lookback` must be an integer >= 2, got 1"),
        ({"method": "equal", "max_weight": 1.5}, ConfigError, r"`max_weight` must be in \(0, 1\] or None, got 1.5"),
        ({"method": "equal", "max_weight": 0}, ConfigError, r"`max_weight` must be in \(0, 1\]"),
        ({"method": "fixed"}, ConfigError, r"`fixed_weights` is required when `method` is 'fixed'"),
        ({"method": "fixed", "fixed_weights": {"A": 0.7, "B": 0.6}}, ConfigError,
         r"`fixed_weights` must sum to at most 1 \(the rest is cash\), got 1.3"),
        ({"method": "fixed", "fixed_weights": {"A": -0.1}}, ConfigError, r"`fixed_weights\['A'\]` must be a number"),
        ({"method": "score"}, ConfigError, r"`scores` is required when `method` is 'score'"),
        ({"method": "market_cap"}, ConfigError, r"`market_caps` is required"),
        ({"method": "inverse_vol"}, ConfigError, r"`returns` is required when `method` is 'inverse_vol'"),
        ({"method": "equal", "group_caps": {"sector": {"x": 0.5}}, "groups": {}}, ConfigError,
         r"`group_caps` dimension must be one of 'stage', 'country', 'element', got 'sector'"),
        ({"method": "equal", "group_caps": {"country": {"CN": 0.5}}}, ConfigError, r"`groups` is required"),
        ({"method": "equal", "group_caps": {"country": {"CN": 0.5}}, "groups": {"stage": {}}}, ConfigError,
         r"`groups` has no 'country' dimension"),
        ({"method": "equal", "group_caps": {"country": {"CN": 1.5}}, "groups": {"country": {}}}, ConfigError,
         r"`group_caps\['country'\]\['CN'\]` must be in \[0, 1\], got 1.5"),
        ({"method": "equal", "risk_free": NAN}, ConfigError, r"`risk_free` must be a finite number"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        weigh(ABC, **kwargs)


def test_selected_must_be_a_sequence_without_duplicates():
    with pytest.raises(TypeError, match="`selected` must be a sequence of tickers, got str"):
        weigh("ABC", method="equal")
    with pytest.raises(ValueError, match="`selected` has duplicate tickers: A"):
        weigh(["A", "B", "A"], method="equal")


def test_returns_must_hold_every_selected_ticker_and_be_sorted():
    returns = make_returns(n_assets=3, n_rows=10)
    with pytest.raises(KeyError, match=r"1 selected ticker.*not columns of `returns`: ZZZ"):
        weigh(["T00", "ZZZ"], method="inverse_vol", returns=returns)
    with pytest.raises(ValueError, match="sorted ascending"):
        weigh(["T00"], method="inverse_vol", returns=returns.iloc[::-1])


def test_infinite_returns_warn_and_count_as_missing():
    returns = make_returns(n_assets=3, n_rows=20)
    returns.iloc[5, 0] = np.inf
    with pytest.warns(UserWarning, match="1 infinite value"):
        result = weigh(list(returns.columns), method="inverse_vol", returns=returns)
    clean = returns.copy()
    clean.iloc[5, 0] = NAN
    pd.testing.assert_series_equal(result.weights, weigh(list(returns.columns), method="inverse_vol",
                                                          returns=clean).weights)


# ---------------------------------------------------------------- the real snapshot


@pytest.fixture(scope="module")
def real_returns(snapshot_dir):
    from screener.data.calendar import listing_returns
    from screener.data.panel import load_prices
    from screener.universe import load_universe

    universe = load_universe("rare_earths")
    data = load_prices(universe.tickers, start="2021-01-01", end="2024-06-28", snapshot=snapshot_dir)
    groups = {"stage": {m.ticker: tuple(m.stages) for m in universe.members},
              "country": {m.ticker: tuple(m.asset_countries) for m in universe.members},
              "element": {m.ticker: tuple(m.elements) for m in universe.members}}
    return listing_returns(data.prices), groups


@pytest.mark.parametrize("method", RETURN_METHODS)
def test_every_method_on_the_real_snapshot_with_caps(real_returns, method):
    # Exchanges on four continents: a union calendar with holes, recent listings, penny stocks.
    returns, groups = real_returns
    group_caps = {"country": {"China": 0.3}, "element": {"Dy": 0.5}}
    fell_back = []
    for day in returns.index[126::63]:  # quarterly decisions
        history = returns.loc[:day]
        selected = list(history.columns[history.iloc[-63:].notna().sum() > 0])
        result = weigh(selected, method=method, returns=history, max_weight=0.15, group_caps=group_caps,
                       groups=groups)
        assert_portfolio(result, selected)
        w = result.weights
        assert w.max() <= 0.15 + 1e-9
        for dim, caps in group_caps.items():
            for group, cap in caps.items():
                members = [t for t in selected if group in groups[dim].get(t, ())]
                assert w[members].sum() <= cap + 1e-9
        if result.method_used != method:  # a falling market: no capped portfolio has a positive mean
            assert method == "max_sharpe" and result.method_used == "min_variance", (day, result.fallbacks)
            assert "mean return above `risk_free`" in result.fallbacks[0]
            fell_back.append(day)
    assert len(fell_back) <= 2, fell_back
