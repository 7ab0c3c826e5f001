from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from screener.backtest import FREQUENCIES, rebalance_dates, run_backtest

NAN = np.nan
DAYS = pd.bdate_range("2024-01-01", periods=6, name="date")  # Mon 1 Jan .. Mon 8 Jan 2024


def frame(columns: dict[str, list[float]], index=DAYS) -> pd.DataFrame:
    return pd.DataFrame(columns, index=index[: len(next(iter(columns.values())))])


def targets(rows: dict[int, dict[str, float]], columns=("A", "B", "C")) -> pd.DataFrame:
    return pd.DataFrame([{c: w.get(c, 0.0) for c in columns} for w in rows.values()], index=DAYS[list(rows)])


# ---------------------------------------------------------------- rebalance_dates

# Tue 30 Jan .. Mon 1 Apr 2024: ISO weeks 5, 5, 5, 5, 6, 13, 14; the last row opens a month, quarter and week.
SPRING = pd.DatetimeIndex(
    ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02", "2024-02-05", "2024-03-28", "2024-04-01"], name="date"
)
# Fri 27 Dec 2024 is ISO week 52 of 2024; Mon 30 Dec 2024 .. Fri 3 Jan 2025 are all ISO week 1 of 2025.
NEW_YEAR = pd.DatetimeIndex(["2024-12-27", "2024-12-30", "2024-12-31", "2025-01-02", "2025-01-03"], name="date")


@pytest.mark.parametrize(
    ("index", "frequency", "expected"),
    [
        (SPRING, "daily", SPRING[:-1]),
        (SPRING, "weekly", ["2024-01-30", "2024-02-05", "2024-03-28"]),
        (SPRING, "monthly", ["2024-01-30", "2024-02-01", "2024-03-28"]),
        (SPRING, "quarterly", ["2024-01-30"]),
        (SPRING, "annual", ["2024-01-30"]),
        (SPRING, "never", ["2024-01-30"]),
        (NEW_YEAR, "daily", NEW_YEAR[:-1]),
        (NEW_YEAR, "weekly", ["2024-12-27", "2024-12-30"]),
        (NEW_YEAR, "monthly", ["2024-12-27", "2025-01-02"]),
        (NEW_YEAR, "quarterly", ["2024-12-27", "2025-01-02"]),
        (NEW_YEAR, "annual", ["2024-12-27", "2025-01-02"]),
        (NEW_YEAR, "never", ["2024-12-27"]),
    ],
)
def test_rebalance_dates_first_row_then_period_starts_never_the_last_row(index, frequency, expected):
    got = rebalance_dates(index, frequency)
    pd.testing.assert_index_equal(got, pd.DatetimeIndex(expected, name="date"))


@pytest.mark.parametrize("frequency", FREQUENCIES)
def test_rebalance_dates_single_row_and_empty(frequency):
    # bt checks "first date" before "last date": a one-row backtest still rebalances on it.
    pd.testing.assert_index_equal(rebalance_dates(SPRING[:1], frequency), SPRING[:1])
    assert len(rebalance_dates(SPRING[:0], frequency)) == 0


def test_rebalance_dates_rejects_bad_input():
    with pytest.raises(ValueError, match="`frequency` must be one of daily, weekly, monthly"):
        rebalance_dates(SPRING, "fortnightly")
    with pytest.raises(ValueError, match="`index` must be a DatetimeIndex"):
        rebalance_dates(pd.Index([1, 2, 3]), "monthly")
    with pytest.raises(ValueError, match="`index` dates must be strictly increasing"):
        rebalance_dates(SPRING[::-1], "monthly")


# ---------------------------------------------------------------- hand-sized backtests

def test_weights_drift_between_rebalances():
    prices = frame({"A": [10, 11, 12, 12, 12, 12], "B": [20, 20, 10, 10, 10, 10], "C": [5.0] * 6})
    res = run_backtest(prices, targets({0: {"A": 0.5, "B": 0.5}}), initial_capital=1000)
    # 50 A and 25 B bought at the first close, then held: 50*11 + 25*20, 50*12 + 25*10.
    np.testing.assert_allclose(res.equity, [1000, 1050, 850, 850, 850, 850], rtol=1e-15)
    np.testing.assert_allclose(res.returns, [0, 0.05, 850 / 1050 - 1, 0, 0, 0], rtol=1e-15)
    np.testing.assert_allclose(res.weights.iloc[2], [600 / 850, 250 / 850, 0], rtol=1e-15)
    np.testing.assert_allclose(res.cash_weight, 0, atol=1e-15)
    np.testing.assert_allclose(res.holdings.iloc[0], [50, 25, 0], rtol=1e-15)
    assert res.turnover.iloc[0] == pytest.approx(0.5)  # all cash -> fully invested counts half
    assert list(res.trades.columns) == ["date", "asset", "quantity", "price", "value", "cost"]
    assert res.trades[["asset", "quantity", "value"]].values.tolist() == [["A", 50, 500], ["B", 25, 500]]
    assert res.costs.sum() == 0


def test_weight_on_an_unlisted_asset_stays_in_cash_until_it_lists():
    prices = frame({"A": [10, 11, 12, 12, 12, 13], "B": [20.0] * 6, "C": [NAN, NAN, NAN, 5, 5, 6]})
    res = run_backtest(prices, targets({0: {"A": 0.5, "C": 0.5}, 4: {"A": 0.5, "C": 0.5}}), initial_capital=1000)
    assert res.target_weights.loc[DAYS[0], "C"] == 0  # not eligible on the first trade date
    np.testing.assert_allclose(res.cash_weight.iloc[:4], [0.5, 500 / 1050, 500 / 1100, 500 / 1100], rtol=1e-15)
    # Day 4: V = 500 cash + 50 * 12 = 1100; 550 / 12 shares of A and 550 / 5 of C.
    np.testing.assert_allclose(res.holdings.loc[DAYS[4]], [550 / 12, 0, 110], rtol=1e-15)
    assert res.equity.iloc[5] == pytest.approx(550 / 12 * 13 + 110 * 6, rel=1e-15)
    assert res.cash_weight.iloc[5] == pytest.approx(0, abs=1e-15)


def test_a_delisted_asset_is_valued_at_its_last_close_and_sold_there_at_the_next_rebalance():
    prices = frame({"A": [10, 11, 12, 12, 12, 13], "B": [20, 20, 10, NAN, NAN, NAN], "C": [5.0] * 6})
    res = run_backtest(prices, targets({0: {"A": 0.5, "B": 0.5}, 4: {"A": 0.5, "B": 0.5}}), initial_capital=1000)
    # 50 * 12 + 25 * 10: B at its last close, no invented return.
    assert res.equity.iloc[3] == pytest.approx(850, rel=1e-15)
    assert res.weights.loc[DAYS[3], "B"] == pytest.approx(250 / 850)
    sold = res.trades[res.trades["asset"] == "B"]
    # Never sold before the next rebalance, and then whole, at its last close.
    assert sold["date"].tolist() == [DAYS[0], DAYS[4]]
    np.testing.assert_allclose(sold.iloc[1][["quantity", "price", "value"]].tolist(), [-25, 10, -250], rtol=1e-15)
    assert res.target_weights.loc[DAYS[4], "B"] == 0
    np.testing.assert_allclose(res.holdings.loc[DAYS[4]], [425 / 12, 0, 0], rtol=1e-15)
    assert res.equity.iloc[5] == pytest.approx(425 + 425 / 12 * 13, rel=1e-15)
    assert res.weights.iloc[4:]["B"].tolist() == [0, 0]


def test_a_closed_market_between_trades_is_valuation_only():
    prices = frame({"A": [10, 11, NAN, 12], "B": [1, 1, 1, 1.0]})
    res = run_backtest(prices, pd.DataFrame({"A": [1.0]}, index=DAYS[:1]), initial_capital=1000)
    np.testing.assert_allclose(res.equity, [1000, 1100, 1100, 1200], rtol=1e-15)
    assert res.returns.iloc[2] == 0


def test_a_holding_without_a_close_on_a_trade_date_is_sold_at_its_last_close():
    prices = frame({"A": [10, 11, NAN, 12], "B": [1, 1, 1, 1.0]})
    res = run_backtest(prices, pd.DataFrame({"A": [1.0, 1.0]}, index=DAYS[[0, 2]]), initial_capital=1000)
    assert res.trades["price"].tolist() == [10, 11]
    np.testing.assert_allclose(res.equity, [1000, 1100, 1100, 1100], rtol=1e-15)
    assert res.cash_weight.iloc[-1] == 1


def test_costs_buy_spends_the_amount_sell_raises_it_net_and_close_pays_on_top():
    c = 0.01
    prices = frame({"A": [10.0] * 6})
    plan = pd.DataFrame({"A": [1.0, 0.5, 0.0]}, index=DAYS[[0, 2, 4]])
    res = run_backtest(prices, plan, costs_bps=100, initial_capital=1000)
    q0 = 1000 / (10 * (1 + c))  # spends exactly 1000 incl. the fee
    v0 = q0 * 10
    sell = (v0 - 0.5 * v0) / (10 * (1 - c))  # raises exactly half the value net of the fee
    q1 = q0 - sell
    cash1 = 0.5 * v0
    expected_costs = [c * q0 * 10, c * sell * 10, c * q1 * 10]
    np.testing.assert_allclose(res.costs, expected_costs, rtol=1e-14)
    np.testing.assert_allclose(res.trades["cost"], expected_costs, rtol=1e-14)
    after_sale = cash1 + q1 * 10
    after_close = cash1 + q1 * 10 * (1 - c)
    np.testing.assert_allclose(res.equity, [v0, v0, after_sale, after_sale, after_close, after_close], rtol=1e-14)
    assert res.returns.iloc[0] == pytest.approx(v0 / 1000 - 1)  # first return counts the first day's costs
    assert res.holdings.iloc[-1, 0] == 0


def test_lag_one_trades_at_the_next_close():
    prices = frame({"A": [10, 11, 12, 12, 12, 12], "B": [1.0] * 6})
    plan = pd.DataFrame({"A": [1.0, 0.0]}, index=DAYS[[0, 5]])
    res = run_backtest(prices, plan, lag=1, initial_capital=1100)
    # The last decision would trade after the last row: ignored.
    pd.testing.assert_index_equal(res.target_weights.index, DAYS[[1]])
    np.testing.assert_allclose(res.equity, [1100, 1100, 1200, 1200, 1200, 1200], rtol=1e-15)
    assert res.trades["price"].tolist() == [11]


def test_lag_equals_shifting_the_decisions(rng):
    index = pd.bdate_range("2024-01-01", periods=40)
    prices = pd.DataFrame(rng.lognormal(0, 0.02, (40, 3)).cumprod(axis=0), index=index)
    plan = pd.DataFrame(rng.dirichlet(np.ones(3), 8), index=prices.index[[0, 5, 9, 14, 20, 27, 33, 39]])
    lagged = run_backtest(prices, plan, lag=2, costs_bps=5)
    shifted_plan = plan.iloc[:-1].set_axis(prices.index[[2, 7, 11, 16, 22, 29, 35]])
    shifted = run_backtest(prices, shifted_plan, costs_bps=5)
    pd.testing.assert_series_equal(lagged.equity, shifted.equity)
    pd.testing.assert_frame_equal(lagged.trades, shifted.trades)


def test_a_row_of_zeros_sells_everything_and_nan_targets_count_as_zero():
    prices = frame({"A": [10, 11, 12, 12], "B": [20, 20, 10, 10], "C": [5.0] * 4})
    plan = pd.DataFrame({"A": [0.5, NAN], "B": [0.5, 0.0]}, index=DAYS[[0, 2]])
    res = run_backtest(prices, plan, initial_capital=1000)
    assert res.cash_weight.iloc[2:].tolist() == [1, 1]
    assert res.equity.iloc[-1] == pytest.approx(850, rel=1e-15)


def test_annualised_turnover_over_the_calendar_span():
    prices = pd.DataFrame({"A": np.linspace(10, 20, 367), "B": 10.0}, index=pd.date_range("2024-01-01", periods=367))
    plan = pd.DataFrame({"A": [0.5, 0.5], "B": [0.5, 0.5]}, index=prices.index[[0, 200]])
    res = run_backtest(prices, plan)
    years = 366 / 365.25
    assert res.annualised_turnover() == pytest.approx(res.turnover.iloc[1] / years)
    assert res.annualised_turnover(include_first=True) == pytest.approx(res.turnover.sum() / years)


def test_inputs_are_not_mutated():
    prices = frame({"A": [10, 11, NAN, 12], "B": [NAN, 1, 1, 1.0]})
    plan = pd.DataFrame({"A": [0.5, NAN], "B": [0.5, 1.0]}, index=DAYS[[0, 2]])
    before = prices.copy(), plan.copy()
    run_backtest(prices, plan, costs_bps=10)
    pd.testing.assert_frame_equal(prices, before[0])
    pd.testing.assert_frame_equal(plan, before[1])


GOOD_PRICES = frame({"A": [10, 11, 12], "B": [1, 1, 1.0]})
GOOD_PLAN = pd.DataFrame({"A": [0.5]}, index=DAYS[:1])


@pytest.mark.parametrize(
    ("prices", "plan", "kwargs", "message"),
    [
        (GOOD_PRICES.reset_index(drop=True), GOOD_PLAN, {}, "`prices.index` must be a DatetimeIndex"),
        (GOOD_PRICES.iloc[::-1], GOOD_PLAN, {}, "`prices.index` dates must be strictly increasing"),
        (GOOD_PRICES, GOOD_PLAN.reset_index(drop=True), {}, "`target_weights.index` must be a DatetimeIndex"),
        (GOOD_PRICES, pd.DataFrame({"A": [0.5, 0.5]}, index=DAYS[[1, 0]]), {}, "`target_weights.index` dates"),
        (GOOD_PRICES, pd.DataFrame({"Z": [0.5]}, index=DAYS[:1]), {}, "`target_weights` has assets not in `prices`: Z"),
        (GOOD_PRICES, pd.DataFrame({"A": [-0.1]}, index=DAYS[:1]), {}, "`target_weights` must be >= 0"),
        (GOOD_PRICES, pd.DataFrame({"A": [0.6], "B": [0.5]}, index=DAYS[:1]), {}, "must sum to at most 1"),
        (GOOD_PRICES, pd.DataFrame({"A": [0.5]}, index=DAYS[5:6]), {}, "`target_weights` dates must be dates of"),
        (GOOD_PRICES, pd.DataFrame({"A": [np.inf]}, index=DAYS[:1]), {}, "`target_weights` must be finite"),
        (GOOD_PRICES * 0, GOOD_PLAN, {}, "`prices` must be finite and > 0"),
        (GOOD_PRICES.iloc[:0], GOOD_PLAN.iloc[:0], {}, "`prices` must have at least one row"),
        (GOOD_PRICES, GOOD_PLAN.tz_localize("UTC"), {}, "must share a time zone"),
        (GOOD_PRICES, GOOD_PLAN, {"lag": -1}, "`lag` must be an integer >= 0"),
        (GOOD_PRICES, GOOD_PLAN, {"lag": 1.0}, "`lag` must be an integer >= 0"),
        (GOOD_PRICES, GOOD_PLAN, {"costs_bps": -1.0}, r"`costs_bps` must be in \[0, 10000\)"),
        (GOOD_PRICES, GOOD_PLAN, {"initial_capital": 0.0}, "`initial_capital` must be"),
    ],
)
def test_degenerate_inputs_name_the_argument(prices, plan, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_backtest(prices, plan, **kwargs)


def test_non_frames_are_type_errors():
    with pytest.raises(TypeError, match="`prices` must be a DataFrame"):
        run_backtest(GOOD_PRICES["A"], GOOD_PLAN)


# ---------------------------------------------------------------- properties


@st.composite
def backtest_inputs(draw):
    """Prices with late listings, delistings and holes; target rows summing to at most 1; lag and costs."""
    n = draw(st.integers(2, 25))
    m = draw(st.integers(1, 4))
    levels = draw(arrays(np.float64, (n, m), elements=st.floats(0.5, 200)))
    present = draw(arrays(np.bool_, (n, m), elements=st.booleans()))
    index = pd.bdate_range("2024-01-01", periods=n, name="date")
    prices = pd.DataFrame(np.where(present, levels, np.nan), index=index, columns=[f"X{i}" for i in range(m)])
    rows = sorted(draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True)))
    raw = draw(arrays(np.float64, (len(rows), m), elements=st.floats(0, 1)))
    invested = draw(arrays(np.float64, (len(rows), 1), elements=st.floats(0, 1)))
    sums = raw.sum(axis=1, keepdims=True)
    weights = np.divide(raw, sums, out=np.zeros_like(raw), where=sums > 0) * invested
    plan = pd.DataFrame(weights, index=index[rows], columns=prices.columns)
    lag = draw(st.integers(0, 2))
    costs_bps = draw(st.sampled_from([0.0, 10.0, 250.0]))
    return prices, plan, lag, costs_bps


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(backtest_inputs())
def test_drifted_weights_are_a_portfolio(inputs):
    prices, plan, lag, costs_bps = inputs
    res = run_backtest(prices, plan, lag=lag, costs_bps=costs_bps)
    assert not res.weights.isna().any().any() and not res.cash_weight.isna().any()
    assert (res.weights >= 0).all().all()
    np.testing.assert_allclose(res.weights.sum(axis=1) + res.cash_weight, 1, atol=1e-12)
    # Cash dips below 0 only by the fees on closing positions while the rest is fully invested (as in bt).
    assert (res.cash_weight >= -costs_bps / 10_000 - 1e-12).all()
    assert (res.equity > 0).all()


@PROPERTY_SETTINGS
@given(backtest_inputs(), st.randoms(use_true_random=False))
def test_permuting_assets_permutes_results(inputs, random):
    prices, plan, lag, costs_bps = inputs
    order = list(prices.columns)
    random.shuffle(order)
    res = run_backtest(prices, plan, lag=lag, costs_bps=costs_bps)
    perm = run_backtest(prices[order], plan[order], lag=lag, costs_bps=costs_bps)
    pd.testing.assert_series_equal(perm.equity, res.equity, rtol=1e-12)
    pd.testing.assert_frame_equal(perm.weights, res.weights[order], rtol=1e-12, atol=1e-15)
    pd.testing.assert_frame_equal(perm.holdings, res.holdings[order], rtol=1e-12, atol=1e-12)


@PROPERTY_SETTINGS
@given(backtest_inputs(), st.data())
def test_no_look_ahead_truncating_after_t_changes_nothing_up_to_t(inputs, data):
    prices, plan, lag, costs_bps = inputs
    t = prices.index[data.draw(st.integers(0, len(prices) - 1))]
    full = run_backtest(prices, plan, lag=lag, costs_bps=costs_bps)
    cut = run_backtest(prices.loc[:t], plan.loc[:t], lag=lag, costs_bps=costs_bps)
    pd.testing.assert_series_equal(cut.equity, full.equity.loc[:t], check_exact=True)
    pd.testing.assert_frame_equal(cut.weights, full.weights.loc[:t], check_exact=True)
    pd.testing.assert_frame_equal(cut.trades, full.trades[full.trades["date"] <= t], check_exact=True)


@PROPERTY_SETTINGS
@given(backtest_inputs(), st.data(), st.floats(1e-3, 1e3))
def test_scaling_an_assets_prices_leaves_equity_unchanged(inputs, data, factor):
    prices, plan, lag, costs_bps = inputs
    asset = data.draw(st.sampled_from(list(prices.columns)))
    scaled = prices.copy()
    scaled[asset] = scaled[asset] * factor
    res = run_backtest(prices, plan, lag=lag, costs_bps=costs_bps)
    other = run_backtest(scaled, plan, lag=lag, costs_bps=costs_bps)
    pd.testing.assert_series_equal(other.equity, res.equity, rtol=1e-9)


@PROPERTY_SETTINGS
@given(backtest_inputs())
def test_the_cost_path_tends_to_the_frictionless_one(inputs):
    # Without costs the engine skips its per-date loop; a negligible cost takes the loop instead.
    prices, plan, lag, _ = inputs
    frictionless = run_backtest(prices, plan, lag=lag)
    looped = run_backtest(prices, plan, lag=lag, costs_bps=1e-9)
    pd.testing.assert_series_equal(looped.equity, frictionless.equity, rtol=1e-10)
    pd.testing.assert_frame_equal(looped.weights, frictionless.weights, rtol=0, atol=1e-12)
