from __future__ import annotations

from datetime import date

import bt
import numpy as np
import pandas as pd
import pytest

from screener.config import PortfolioSpec, StrategyConfig
from screener.pipeline import STRATEGY, run_backtest
from screener.universe import load_universe

from conftest import REPO

US_CHAIN = str(REPO / "tests" / "data" / "us_chain.toml")


def _bt_equity(prices: pd.DataFrame, algos: list, name: str) -> pd.Series:
    strategy = bt.Strategy(name, algos)
    test = bt.Backtest(strategy, prices, integer_positions=False, initial_capital=1_000_000.0, progress_bar=False)
    res = bt.run(test)
    values = res.backtests[name].strategy.values
    return values  # bt's first row is its synthetic start, the day before the first date


@pytest.mark.parametrize(("rebalance", "run_algo"),
                         [("monthly", bt.algos.RunMonthly), ("quarterly", bt.algos.RunQuarterly)])
def test_equal_weight_pipeline_matches_bt_on_real_prices(snapshot_dir, home, rebalance, run_algo):
    cfg = StrategyConfig(name="ew", universe=US_CHAIN, start=date(2019, 1, 2), end=date(2025, 9, 29),
                         portfolio=PortfolioSpec(weighting="equal", rebalance=rebalance))
    run = run_backtest(cfg, snapshot=snapshot_dir)
    members = list(run.weights.columns)
    frame = run.prices
    assert frame.index.equals(run.equity.index[1:])
    expected = _bt_equity(frame, [run_algo(), bt.algos.SelectAll(), bt.algos.WeighEqually(), bt.algos.Rebalance()],
                          "ew")
    ours = run.equity[STRATEGY] * 1_000_000.0
    assert expected.index.equals(ours.index)
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), rtol=1e-9)
    assert set(members) == set(load_universe(US_CHAIN).tickers)


def test_fixed_weight_waits_in_cash_for_a_late_listing(snapshot_dir, home):
    cfg = StrategyConfig(name="fixed", universe=US_CHAIN, start=date(2024, 6, 3), end=date(2025, 9, 29),
                         portfolio=PortfolioSpec(weighting="fixed", rebalance="quarterly",
                                                 fixed_weights=(("MP", 0.4), ("UUUU", 0.3), ("USAR", 0.3))))
    run = run_backtest(cfg, snapshot=snapshot_dir)
    w = run.weights
    before = w.loc[: pd.Timestamp("2025-03-13")]
    assert (before["USAR"] == 0).all() and np.allclose(before.sum(axis=1), 0.7)
    after = w.loc[pd.Timestamp("2025-04-01"):]
    assert np.allclose(after["USAR"], 0.3) and np.allclose(after.sum(axis=1), 1.0)
    # USAR's weight sits in cash on each rebalance before it lists (then drifts with the holdings).
    np.testing.assert_allclose(run.engine.cash_weight.loc[before.index], 0.3, rtol=1e-12)
    assert run.engine.cash_weight.loc["2025-04-01":].max() < 0.01


def test_run_result_shapes_and_metrics(snapshot_dir, home):
    cfg = StrategyConfig(name="ew", universe=US_CHAIN, start=date(2022, 1, 3), end=date(2024, 12, 31),
                         portfolio=PortfolioSpec(weighting="equal", rebalance="monthly", costs_bps=10))
    run = run_backtest(cfg, snapshot=snapshot_dir)
    assert list(run.equity.columns) == [STRATEGY, "REMX", "SPY"]
    assert (run.equity.iloc[0] == 1.0).all() and run.equity.index[0] == pd.Timestamp("2022-01-02")
    first_cost = run.engine.costs.iloc[0] / 1_000_000.0
    assert run.equity[STRATEGY].iloc[1] == pytest.approx(1.0 - first_cost, abs=1e-12)
    assert set(run.metrics) == {STRATEGY, "REMX", "SPY"}
    for m in run.metrics.values():
        assert set(m) >= {"cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "turnover"}
    assert run.metrics[STRATEGY]["turnover"] > 0
    assert run.trades["cost"].sum() > 0
    assert run.manifest["config_hash"] == cfg.config_hash()
    assert len(run.manifest["data_hash"]) == 64


def test_a_holiday_in_one_market_does_not_force_a_sale(snapshot_dir, home, tmp_path):
    import tomllib

    import tomli_w

    src = tomllib.loads((REPO / "universes" / "rare_earths.toml").read_text())
    src["members"] = [m for m in src["members"] if m["ticker"] in ("MP", "LYC.AX")]
    src["name"] = "mixed"
    path = tmp_path / "mixed.toml"
    path.write_text(tomli_w.dumps(src))
    cfg = StrategyConfig(name="mixed", universe=str(path), start=date(2023, 5, 1), end=date(2023, 7, 31),
                         portfolio=PortfolioSpec(weighting="equal", rebalance="weekly"))
    run = run_backtest(cfg, snapshot=snapshot_dir)
    holiday = pd.Timestamp("2023-06-12")  # King's Birthday: ASX shut, NYSE open, a Monday rebalance
    assert np.isnan(run.prices.loc[holiday, "LYC.AX"]) and holiday in run.weights.index
    assert run.weights.loc[holiday, "LYC.AX"] == pytest.approx(0.5)
    assert not ((run.trades["date"] == holiday) & (run.trades["asset"] == "LYC.AX")
                & (run.trades["quantity"] < -1e3)).any()


def test_too_few_names_for_the_cap_hold_the_rest_in_cash(snapshot_dir, home):
    from screener.config import Filter, ScreenSpec

    cfg = StrategyConfig(name="capped", universe=US_CHAIN, start=date(2023, 1, 3), end=date(2023, 12, 29),
                         screen=ScreenSpec(filters=(Filter("status", "in", ("producing",)),)),
                         portfolio=PortfolioSpec(weighting="equal", rebalance="quarterly", max_weight=0.25))
    run = run_backtest(cfg, snapshot=snapshot_dir)
    producing = [m.ticker for m in load_universe(US_CHAIN).members if m.status == "producing"]
    assert len(producing) == 3
    np.testing.assert_allclose(run.weights[producing].to_numpy(), 0.25)
    np.testing.assert_allclose(run.weights.sum(axis=1), 0.75)
    log = run.screen_log.xs(run.weights.index[0], level="date")
    assert log["fallbacks"].str.contains("caps cannot be met by 3 selected names").all()
