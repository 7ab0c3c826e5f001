"""Exactness against bt 1.4.1 on real prices: our daily equity equals bt's to 1e-9 relative on every day.

bt runs with ``integer_positions=False`` (fractional shares, as our engine) on the USD panel of MP, UUUU, ALB,
REMX, SPY and USAR from 2019-01-02 to 2025-09-29. MP's first close is 2020-06-22 and USAR's 2023-07-17: before
that their prices are NaN, ``SelectAll`` leaves them out and they join at the first rebalance after listing.
The US listings share one calendar, so no held asset ever lacks a price (bt would stop on one).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from screener.backtest import rebalance_dates, run_backtest
from screener.data.panel import load_prices
from screener.data.store import Store

bt = pytest.importorskip("bt")

TICKERS = ["MP", "UUUU", "ALB", "REMX", "SPY", "USAR"]
FIXED = {"MP": 0.25, "UUUU": 0.15, "ALB": 0.15, "REMX": 0.15, "SPY": 0.10, "USAR": 0.10}  # 10% cash
CAPITAL = 1_000_000.0
RTOL = 1e-9
RUN = {"monthly": bt.algos.RunMonthly, "quarterly": bt.algos.RunQuarterly}


@pytest.fixture(scope="module")
def prices(snapshot_dir, tmp_path_factory) -> pd.DataFrame:
    data = load_prices(
        TICKERS, currency="USD", start="2019-01-02", end="2025-09-29",
        store=Store(tmp_path_factory.mktemp("store")), snapshot=snapshot_dir,
    )
    assert list(data.prices.columns) == TICKERS
    return data.prices


class KeepSelected(bt.core.Algo):
    """Drop specified weights on assets `SelectAll` left out (not listed yet), leaving their share in cash.

    bt's `WeighSpecified` ignores the selection, and `Rebalance` then refuses to buy an asset whose price is
    NaN; our engine's rule for such an asset is to keep its weight in cash, which this step reproduces.
    """

    def __call__(self, target):
        target.temp["weights"] = {k: w for k, w in target.temp["weights"].items() if k in target.temp["selected"]}
        return True


def bt_values(prices: pd.DataFrame, algos: list, commission: float = 0.0) -> pd.Series:
    """bt's daily portfolio value, checked for and stripped of its synthetic first row."""
    strategy = bt.Strategy("s", algos)
    kwargs = {"commissions": lambda q, p: abs(q * p) * commission} if commission else {}
    result = bt.run(bt.Backtest(strategy, prices, integer_positions=False, initial_capital=CAPITAL, **kwargs))
    values = result.backtests["s"].strategy.values
    assert values.index[0] == prices.index[0] - pd.Timedelta(days=1) and values.iloc[0] == CAPITAL
    return values.iloc[1:]


def equal_weight_targets(prices: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """1/n over the assets with a price on each rebalance date (bt's SelectAll + WeighEqually)."""
    listed = prices.loc[rebalance_dates(prices.index, frequency)].notna().astype(float)
    return listed.div(listed.sum(axis=1), axis=0)


def fixed_targets(prices: pd.DataFrame, frequency: str) -> pd.DataFrame:
    dates = rebalance_dates(prices.index, frequency)
    return pd.DataFrame([FIXED] * len(dates), index=dates)


def assert_same_curve(ours: pd.Series, theirs: pd.Series) -> None:
    pd.testing.assert_index_equal(ours.index, theirs.index, check_names=False, exact=False)
    rel = np.abs(ours.to_numpy() / theirs.to_numpy() - 1)
    assert rel.max() <= RTOL, f"max relative difference {rel.max():.3g} on {ours.index[rel.argmax()].date()}"


@pytest.mark.parametrize("frequency", ["monthly", "quarterly"])
def test_equal_weight_matches_bt(prices, frequency):
    theirs = bt_values(prices, [RUN[frequency](), bt.algos.SelectAll(), bt.algos.WeighEqually(), bt.algos.Rebalance()])
    res = run_backtest(prices, equal_weight_targets(prices, frequency), initial_capital=CAPITAL)
    assert_same_curve(res.equity, theirs)


@pytest.mark.parametrize("frequency", ["monthly", "quarterly"])
def test_fixed_weights_with_late_listers_match_bt(prices, frequency):
    algos = [RUN[frequency](), bt.algos.SelectAll(), bt.algos.WeighSpecified(**FIXED), KeepSelected(),
             bt.algos.Rebalance()]
    res = run_backtest(prices, fixed_targets(prices, frequency), initial_capital=CAPITAL)
    assert_same_curve(res.equity, bt_values(prices, algos))
    assert res.target_weights.loc["2019-01-02", "MP"] == 0 and res.target_weights.loc["2020-07-01", "MP"] == 0.25


def test_fixed_weights_once_all_are_listed_match_plain_weigh_specified(prices):
    listed = prices.loc["2023-07-17":]
    algos = [bt.algos.RunMonthly(), bt.algos.SelectAll(), bt.algos.WeighSpecified(**FIXED), bt.algos.Rebalance()]
    res = run_backtest(listed, fixed_targets(listed, "monthly"), initial_capital=CAPITAL)
    assert_same_curve(res.equity, bt_values(listed, algos))


@pytest.mark.parametrize(("weighting", "frequency"), [("equal", "monthly"), ("fixed", "quarterly")])
def test_proportional_commission_matches_bt(prices, weighting, frequency):
    c = 0.001  # 10 bps of traded value
    if weighting == "equal":
        algos = [RUN[frequency](), bt.algos.SelectAll(), bt.algos.WeighEqually(), bt.algos.Rebalance()]
        plan = equal_weight_targets(prices, frequency)
    else:
        algos = [RUN[frequency](), bt.algos.SelectAll(), bt.algos.WeighSpecified(**FIXED), KeepSelected(),
                 bt.algos.Rebalance()]
        plan = fixed_targets(prices, frequency)
    res = run_backtest(prices, plan, costs_bps=c * 10_000, initial_capital=CAPITAL)
    assert_same_curve(res.equity, bt_values(prices, algos, commission=c))
    assert res.costs.sum() > 1000  # the fees are material, so the match tests the cost rule


def test_drifted_weights_match_bt_security_weights(prices):
    strategy = bt.Strategy("s", [bt.algos.RunMonthly(), bt.algos.SelectAll(), bt.algos.WeighEqually(),
                                 bt.algos.Rebalance()])
    theirs = bt.run(bt.Backtest(strategy, prices, integer_positions=False)).backtests["s"].security_weights
    res = run_backtest(prices, equal_weight_targets(prices, "monthly"))
    theirs = theirs.iloc[1:].reindex(columns=TICKERS).fillna(0.0)
    np.testing.assert_allclose(res.weights.to_numpy(), theirs.to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("frequency", "algo"),
    [("daily", bt.algos.RunDaily), ("weekly", bt.algos.RunWeekly), ("monthly", bt.algos.RunMonthly),
     ("quarterly", bt.algos.RunQuarterly), ("annual", bt.algos.RunYearly), ("never", bt.algos.RunOnce)],
)
def test_rebalance_dates_match_bt_run_algos(prices, frequency, algo):
    # bt's Backtest prepends a row dated the day before the first; its Run* algos see that index.
    index = prices.index
    data = pd.DataFrame(index=index.insert(0, index[0] - pd.Timedelta(days=1)))
    run = algo()
    chosen = [d for d in index if run(SimpleNamespace(now=d, data=data))]
    pd.testing.assert_index_equal(rebalance_dates(index, frequency), pd.DatetimeIndex(chosen), check_names=False)
