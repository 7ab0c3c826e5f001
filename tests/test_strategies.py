"""The shipped example strategies: CLI and Python API give identical numbers; outputs have the promised shapes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import screener
from screener.cli import main
from screener.pipeline import STRATEGY

from conftest import REPO

STRATEGIES = sorted((REPO / "strategies").glob("*.toml"))
METRIC_KEYS = {"cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "turnover"}


@pytest.fixture
def snapshot_env(home, snapshot_dir, monkeypatch):
    monkeypatch.setenv("SCREENER_SNAPSHOT", str(snapshot_dir))
    return snapshot_dir


def test_three_examples_ship():
    assert len(STRATEGIES) == 3


@pytest.mark.parametrize("path", STRATEGIES, ids=lambda p: p.stem)
def test_cli_and_api_give_identical_numbers(path, snapshot_env, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["backtest", str(path), "--out", str(out)]) == 0
    capsys.readouterr()
    run = screener.run_backtest(screener.load_config(path))
    equity = pd.read_csv(out / "equity.csv", index_col="date", parse_dates=True)
    assert list(equity.columns) == list(run.equity.columns) == [STRATEGY, *run.config.benchmarks]
    np.testing.assert_allclose(equity.to_numpy(), run.equity.to_numpy(), rtol=1e-11)
    assert (equity.iloc[0] == 1.0).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == set(run.metrics)
    for key, values in metrics.items():
        assert set(values) >= METRIC_KEYS
        for m in METRIC_KEYS:
            expected = run.metrics[key][m]
            assert (values[m] is None and np.isnan(expected)) or values[m] == pytest.approx(expected, rel=1e-12)
    weights = pd.read_csv(out / "weights.csv", index_col="date", parse_dates=True)
    np.testing.assert_allclose(weights.to_numpy(), run.weights.to_numpy(), atol=1e-12)
    assert (weights.to_numpy() >= 0).all() and (weights.sum(axis=1) <= 1 + 1e-9).all()
    trades = pd.read_csv(out / "trades.csv")
    assert list(trades.columns) == ["date", "asset", "quantity", "price", "value", "cost"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config_hash"] == run.config.config_hash()
    assert manifest["data_hash"] == run.manifest["data_hash"]
    assert manifest["versions"]["pandas"] == pd.__version__
    html = (out / "tearsheet.html").read_text(encoding="utf-8")
    assert run.config.name in html and "<script src=\"http" not in html and "<link href=\"http" not in html
    # The config written with the run reproduces it.
    again = screener.run_backtest(out / "config.toml")
    np.testing.assert_allclose(again.equity.to_numpy(), run.equity.to_numpy(), rtol=1e-12)


def test_screen_cli_prints_pass_fail_per_filter(snapshot_env, capsys):
    path = REPO / "strategies" / "ex_china_magnet_chain.toml"
    assert main(["screen", str(path), "--as-of", "2023-06-30", "--csv"]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(pd.io.common.StringIO(out), index_col="ticker")
    assert "pass: adv_60d >= 1e+06" in table.columns and "pass: china_dependency <= 0.5" in table.columns
    passed = table["pass: adv_60d >= 1e+06"] & table["pass: china_dependency <= 0.5"]
    assert (table["passed"] == passed).all()
    assert table["selected"].sum() == min(8, int(passed.sum()))
    assert not table.loc[~table["passed"], "selected"].any()


def test_bad_config_is_one_line_naming_the_key(snapshot_env, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text((REPO / "strategies" / "ex_china_magnet_chain.toml").read_text()
                   .replace('weighting = "equal"', 'weighting = "equall"'))
    assert main(["backtest", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "`portfolio.weighting`" in err and "Traceback" not in err and str(bad) in err


def test_report_rewrites_the_tearsheet_of_a_run_dir(snapshot_env, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["backtest", str(STRATEGIES[0]), "--out", str(out), "--no-tearsheet"]) == 0
    assert not (out / "tearsheet.html").exists()
    assert main(["report", str(out)]) == 0
    assert (out / "tearsheet.html").stat().st_size > 10_000
    assert main(["report", str(tmp_path / "missing")]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_luck_report_brackets_the_point_estimates(snapshot_env, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["backtest", str(STRATEGIES[-1]), "--out", str(out), "--no-tearsheet", "--split", "2023-06-30"]) == 0
    luck = json.loads((out / "luck.json").read_text())
    for stat in ("sharpe", "cagr"):
        ci = luck["bootstrap"][stat]
        assert ci["low"] < ci["point"] < ci["high"] and ci["n_resamples"] == 1000
    run = screener.run_backtest(STRATEGIES[-1])
    assert luck["bootstrap"]["sharpe"]["point"] == pytest.approx(run.metrics[STRATEGY]["sharpe"], rel=1e-2)
    assert luck["split_date"].startswith("2023-06-30")
    assert {r["metric"] for r in luck["split"]} >= {"cagr", "sharpe", "max_drawdown"}
