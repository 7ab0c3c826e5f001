from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.stattools import durbin_watson

from screener.analytics.commands import regress_command
from screener.analytics.regression import (
    RegressionResult,
    compound_returns,
    equal_weight_basket,
    factor_regression,
    newey_west_lags,
    regression_table,
    rolling_betas,
)
from screener.data.calendar import listing_returns
from screener.data.panel import load_prices
from screener.exceptions import ConfigError, DataError, MissingDataError


def make_data(n: int = 500, seed: int = 42, holes: bool = True) -> tuple[pd.Series, pd.DataFrame]:
    r = np.random.default_rng(seed)
    index = pd.bdate_range("2021-01-04", periods=n, name="date")
    factors = pd.DataFrame(r.normal(0.0004, 0.01, (n, 2)), index=index, columns=["SPY", "REMX"])
    e = r.normal(0, 0.01, n)
    # AR(1) errors so that HAC and OLS standard errors differ.
    for t in range(1, n):
        e[t] += 0.4 * e[t - 1]
    y = pd.Series(0.0003 + 1.1 * factors["SPY"] + 0.6 * factors["REMX"] + e, index=index, name="strategy")
    if holes:
        y.iloc[[0, 7, n // 3]] = np.nan  # first return, a holiday, a halt
        factors.iloc[[3, n // 2], 1] = np.nan
    return y, factors


# -- OLS and HAC ------------------------------------------------------------------------------------------------


def test_coefficients_match_numpy_lstsq_on_common_dates():
    y, f = make_data()
    res = factor_regression(y, f)
    both = pd.concat([y, f], axis=1).dropna()
    x = np.column_stack([np.ones(len(both)), both[["SPY", "REMX"]].to_numpy()])
    beta, *_ = np.linalg.lstsq(x, both["strategy"].to_numpy(), rcond=None)
    np.testing.assert_allclose(res.coefficients["coef"].to_numpy(), beta, rtol=1e-10, atol=1e-14)
    assert list(res.coefficients["term"]) == ["alpha", "SPY", "REMX"]
    assert res.n == len(both) == 500 - 5
    assert res.n_dropped == 5  # dates with some but not all series present


@pytest.mark.parametrize("lags", [None, 0, 3, 10])
def test_hac_standard_errors_match_a_direct_statsmodels_fit(lags):
    y, f = make_data()
    res = factor_regression(y, f, hac_lags=lags)
    both = pd.concat([y, f], axis=1).dropna()
    used = newey_west_lags(len(both)) if lags is None else lags
    direct = sm.OLS(both["strategy"].to_numpy(), sm.add_constant(both[["SPY", "REMX"]].to_numpy())).fit(
        cov_type="HAC", cov_kwds={"maxlags": used})
    assert res.hac_lags == used
    np.testing.assert_allclose(res.coefficients["se"], direct.bse, rtol=1e-10)
    np.testing.assert_allclose(res.coefficients["t"], direct.tvalues, rtol=1e-10)
    np.testing.assert_allclose(res.coefficients["p"], direct.pvalues, rtol=1e-8, atol=1e-300)
    ci = direct.conf_int(0.05)
    np.testing.assert_allclose(res.coefficients[["ci_low", "ci_high"]].to_numpy(), ci, rtol=1e-10)
    assert res.r2 == pytest.approx(direct.rsquared) and res.adj_r2 == pytest.approx(direct.rsquared_adj)
    assert res.durbin_watson == pytest.approx(durbin_watson(direct.resid))


def test_hac_errors_are_wider_than_ols_errors_under_positive_autocorrelation():
    y, f = make_data(n=2000)
    hac = factor_regression(y, f, hac_lags=10)
    ols = factor_regression(y, f, hac_lags=0)  # 0 lags = White (HC0) errors
    assert hac.coefficients.loc[0, "se"] > ols.coefficients.loc[0, "se"]
    assert hac.durbin_watson < 1.5  # the AR(1) errors show up in Durbin-Watson


@pytest.mark.parametrize(("n", "lags"), [(10, 2), (60, 3), (100, 4), (250, 4), (1000, 6), (2520, 8)])
def test_default_lag_rule_is_newey_west_1994(n, lags):
    # floor(4 * (n / 100) ** (2 / 9))
    assert newey_west_lags(n) == lags


def test_confidence_interval_level_follows_alpha():
    y, f = make_data()
    wide = factor_regression(y, f, alpha=0.01).coefficients
    narrow = factor_regression(y, f, alpha=0.10).coefficients
    assert ((wide["ci_high"] - wide["ci_low"]) > (narrow["ci_high"] - narrow["ci_low"])).all()


# -- compounding ------------------------------------------------------------------------------------------------


def test_weekly_compounding_by_hand():
    index = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05",  # Mon, Tue, Wed, Fri
                            "2024-01-08", "2024-01-12"])  # next Mon and Fri
    r = pd.Series([0.01, np.nan, -0.02, 0.03, 0.05, -0.01], index=index)
    weekly = compound_returns(r, "W")
    assert list(weekly.index) == list(pd.to_datetime(["2024-01-05", "2024-01-12"]))  # weeks end on Friday
    assert weekly.iloc[0] == pytest.approx(1.01 * 0.98 * 1.03 - 1)  # the NaN day is skipped, not a zero
    assert weekly.iloc[1] == pytest.approx(1.05 * 0.99 - 1)


def test_monthly_compounding_by_hand_and_empty_months_are_missing():
    index = pd.to_datetime(["2024-01-30", "2024-01-31", "2024-02-01", "2024-04-02"])
    r = pd.DataFrame({"a": [0.10, -0.05, 0.02, 0.01], "b": [np.nan, np.nan, 0.03, np.nan]}, index=index)
    monthly = compound_returns(r, "M")
    assert list(monthly.index) == list(pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]))
    assert monthly.loc["2024-01-31", "a"] == pytest.approx(1.10 * 0.95 - 1)
    assert monthly.loc["2024-02-29", "a"] == pytest.approx(0.02)
    assert np.isnan(monthly.loc["2024-03-31", "a"]) and np.isnan(monthly.loc["2024-01-31", "b"])


@pytest.mark.parametrize(("freq", "rule"), [("W", "W-FRI"), ("M", "ME")])
def test_compounding_agrees_with_pandas_resample(freq, rule):
    y, f = make_data(n=700)
    data = pd.concat([y, f], axis=1, sort=True)
    data.iloc[100:130] = np.nan  # a month without any return stays a NaN period
    expected = (1 + data).resample(rule).prod(min_count=1) - 1
    pd.testing.assert_frame_equal(compound_returns(data, freq), expected, check_freq=False, rtol=1e-12)


def test_weekly_regression_runs_on_compounded_returns_of_the_common_span():
    y, f = make_data(holes=False)
    y = y.iloc[8:]  # the target starts on a Wednesday: the factors' first partial week must be cut the same way
    res = factor_regression(y, f, freq="W")
    both = compound_returns(pd.concat([y, f], axis=1, sort=True).loc[y.index[0]:], "W").dropna()
    x = np.column_stack([np.ones(len(both)), both[["SPY", "REMX"]].to_numpy()])
    beta, *_ = np.linalg.lstsq(x, both["strategy"].to_numpy(), rcond=None)
    np.testing.assert_allclose(res.coefficients["coef"], beta, rtol=1e-10)
    assert res.n == len(both) and res.hac_lags == newey_west_lags(len(both)) and res.freq == "W"


def test_monthly_regression_matches_hand_compounded_lstsq():
    y, f = make_data(n=1000, holes=False)
    res = factor_regression(y, f, freq="M")
    data = pd.concat([y, f], axis=1)
    monthly = data.groupby(data.index.to_period("M")).apply(lambda g: (1 + g).prod() - 1)
    x = np.column_stack([np.ones(len(monthly)), monthly[["SPY", "REMX"]].to_numpy()])
    beta, *_ = np.linalg.lstsq(x, monthly["strategy"].to_numpy(), rcond=None)
    np.testing.assert_allclose(res.coefficients["coef"], beta, rtol=1e-9)


# -- excess returns, several targets, output ------------------------------------------------------------------


def test_risk_free_lowers_alpha_by_the_per_period_rate_and_leaves_betas():
    # Subtracting a constant from y shifts only the intercept.
    y, f = make_data()
    base = factor_regression(y, f).coefficients.set_index("term")["coef"]
    excess = factor_regression(y, f, risk_free=0.05).coefficients.set_index("term")["coef"]
    assert excess["alpha"] == pytest.approx(base["alpha"] - (1.05 ** (1 / 252) - 1), rel=1e-9)
    np.testing.assert_allclose(excess[["SPY", "REMX"]], base[["SPY", "REMX"]], rtol=1e-9)


def test_excess_factors_give_a_jensen_alpha():
    y, f = make_data()
    rf = 1.05 ** (1 / 252) - 1
    res = factor_regression(y, f[["SPY"]], risk_free=0.05, excess_factors=["SPY"]).coefficients.set_index("term")
    both = pd.concat([y, f[["SPY"]]], axis=1).dropna() - rf
    beta, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(both)), both["SPY"]]), both["strategy"], rcond=None)
    np.testing.assert_allclose(res["coef"], beta, rtol=1e-9)


def test_risk_free_series_is_used_by_date():
    y, f = make_data(holes=False)
    rf = pd.Series(0.05, index=y.index)
    a = factor_regression(y, f, risk_free=rf).coefficients["coef"]
    b = factor_regression(y, f, risk_free=0.05).coefficients["coef"]
    np.testing.assert_allclose(a, b, rtol=1e-9)


def test_dataframe_target_gives_one_result_per_column():
    y, f = make_data()
    targets = pd.DataFrame({"MP": y, "LYC.AX": 2 * y})
    results = factor_regression(targets, f, freq="W")
    assert list(results) == ["MP", "LYC.AX"]
    alone = factor_regression(targets["LYC.AX"], f, freq="W")
    pd.testing.assert_frame_equal(results["LYC.AX"].coefficients, alone.coefficients)
    table = regression_table(results)
    assert list(table["target"].unique()) == ["MP", "LYC.AX"] and len(table) == 6


def test_to_dict_has_exactly_the_documented_keys_and_is_json():
    y, f = make_data()
    d = factor_regression(y, f).to_dict()
    assert set(d) == {"coefficients", "r2", "adj_r2", "n", "durbin_watson", "hac_lags"}
    assert [set(c) for c in d["coefficients"]] == [{"term", "coef", "se", "t", "p", "ci_low", "ci_high"}] * 3
    json.dumps(d, allow_nan=False)


def test_inputs_are_not_mutated():
    y, f = make_data()
    y0, f0 = y.copy(), f.copy()
    factor_regression(y, f, freq="M", risk_free=0.03, excess_factors=["SPY"])
    rolling_betas(y, f, window=30)
    pd.testing.assert_series_equal(y, y0)
    pd.testing.assert_frame_equal(f, f0)


# -- errors -----------------------------------------------------------------------------------------------------


def test_too_few_common_periods_is_a_data_error_naming_the_target():
    y, f = make_data(n=40)
    with pytest.raises(DataError, match=r"'strategy'.*only 2 periods"):
        factor_regression(y, f, freq="M")


def test_collinear_factors_are_a_data_error():
    y, f = make_data()
    f["twice"] = 2 * f["SPY"]
    with pytest.raises(DataError, match="collinear"):
        factor_regression(y, f)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"freq": "Q"}, "`freq`"),
    ({"hac_lags": -1}, "`hac_lags`"),
    ({"alpha": 1.5}, "`alpha`"),
    ({"risk_free": "3%"}, "`risk_free`"),
])
def test_bad_options_name_the_argument(kwargs, match):
    y, f = make_data()
    with pytest.raises((TypeError, ValueError), match=match):
        factor_regression(y, f, **kwargs)


def test_bad_inputs_name_the_argument():
    y, f = make_data()
    with pytest.raises(TypeError, match="`y`"):
        factor_regression(y.to_numpy(), f)
    with pytest.raises(TypeError, match="`factors`"):
        factor_regression(y, f["SPY"])
    with pytest.raises(ValueError, match="'alpha'"):
        factor_regression(y, f.rename(columns={"SPY": "alpha"}))
    with pytest.raises(KeyError, match="`excess_factors`"):
        factor_regression(y, f, excess_factors=["URA"])


# -- rolling betas and the basket -------------------------------------------------------------------------------


def test_rolling_betas_match_a_loop_of_ols():
    y, f = make_data(n=80)
    window, min_periods = 20, 8
    betas = rolling_betas(y, f, window=window, min_periods=min_periods)
    both = pd.concat([y, f], axis=1).dropna()
    assert betas.index.equals(both.index) and list(betas.columns) == ["SPY", "REMX"]
    for i in range(len(both)):
        chunk = both.iloc[max(0, i + 1 - window):i + 1]
        if len(chunk) < min_periods:
            assert betas.iloc[i].isna().all()
            continue
        x = np.column_stack([np.ones(len(chunk)), chunk[["SPY", "REMX"]].to_numpy()])
        beta, *_ = np.linalg.lstsq(x, chunk["strategy"].to_numpy(), rcond=None)
        np.testing.assert_allclose(betas.iloc[i].to_numpy(), beta[1:], rtol=1e-8)


def test_rolling_betas_default_needs_a_full_window():
    y, f = make_data(n=60, holes=False)
    betas = rolling_betas(y, f, window=30)
    assert betas.iloc[:29].isna().all().all() and betas.iloc[29:].notna().all().all()
    with pytest.raises(ValueError, match="`min_periods`"):
        rolling_betas(y, f, window=30, min_periods=40)
    with pytest.raises(ValueError, match="`window`"):
        rolling_betas(y, f, window=2)


def test_equal_weight_basket_averages_the_members_that_traded():
    index = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])
    r = pd.DataFrame({"a": [0.01, np.nan, np.nan], "b": [0.03, 0.02, np.nan]}, index=index)
    basket = equal_weight_basket(r)
    assert basket.iloc[0] == pytest.approx(0.02) and basket.iloc[1] == pytest.approx(0.02)
    assert np.isnan(basket.iloc[2]) and basket.name == "basket"


# -- the command, on the real snapshot --------------------------------------------------------------------------


def test_regress_command_on_tickers_matches_the_pure_function(snapshot_dir, home):
    out = regress_command(None, ["MP", "LYC.AX", "NOPE"], ["SPY", "REMX"], freq="W", start="2021-01-01",
                          end="2023-12-31", hac_lags=None, snapshot=snapshot_dir)
    assert [d["target"] for d in out] == ["MP", "LYC.AX", "NOPE"]
    assert "no prices" in out[2]["error"]
    data = load_prices(["MP", "SPY", "REMX"], start="2020-12-22", end="2023-12-31", snapshot=snapshot_dir)
    r = listing_returns(data.prices).loc["2021-01-01":]
    expected = factor_regression(r["MP"], r[["SPY", "REMX"]], freq="W")
    assert isinstance(expected, RegressionResult)
    for got, want in zip(out[0]["coefficients"], expected.to_dict()["coefficients"], strict=True):
        assert got["term"] == want["term"]
        assert [got[k] for k in ("coef", "se", "p")] == pytest.approx([want[k] for k in ("coef", "se", "p")], rel=1e-9)
    assert out[0]["n"] == expected.n and out[0]["currency"] == "USD"
    assert out[1]["start"] >= "2021-01-01" and out[1]["end"] <= "2023-12-31"
    json.dumps(out, allow_nan=False)


def test_regress_command_on_a_strategy_with_the_universe_basket(snapshot_dir, home):
    out = regress_command("strategies/us_magnet_chain_fixed.toml", None, ["SPY", "basket"], freq="M",
                          snapshot=snapshot_dir)
    (d,) = out
    assert d["target"].startswith("strategy") and [c["term"] for c in d["coefficients"]] == ["alpha", "SPY", "basket"]
    assert d["n"] > 40 and 0 < d["r2"] < 1


def test_regress_command_errors(snapshot_dir, home):
    # Option errors are ConfigError (a ScreenerError the CLI prints in one line, and a ValueError).
    with pytest.raises(ConfigError, match="exactly one"):
        regress_command(None, None, ["SPY"], snapshot=snapshot_dir)
    with pytest.raises(ConfigError, match="`freq`"):
        regress_command(None, ["MP"], ["SPY"], freq="Q", snapshot=snapshot_dir)
    with pytest.raises(ConfigError, match="`hac_lags`"):
        regress_command(None, ["MP"], ["SPY"], hac_lags=-2, snapshot=snapshot_dir)
    with pytest.raises(ValueError, match="`factors`"):
        regress_command(None, ["MP"], [], snapshot=snapshot_dir)
    with pytest.raises(MissingDataError, match="NOPE"):
        regress_command(None, ["MP"], ["NOPE"], snapshot=snapshot_dir)
    with pytest.raises(DataError, match="no target could be regressed"):
        regress_command(None, ["NOPE"], ["SPY"], snapshot=snapshot_dir)
