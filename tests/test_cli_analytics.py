"""`screener regress` and `screener events`: JSON shapes scripts rely on, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from screener.cli import main

from conftest import REPO


@pytest.fixture
def snapshot_env(home, snapshot_dir, monkeypatch):
    monkeypatch.setenv("SCREENER_SNAPSHOT", str(snapshot_dir))
    return snapshot_dir


def test_regress_tickers_json(snapshot_env, capsys):
    code = main(["regress", "--tickers", "MP,UUUU", "--factors", "SPY,REMX", "--freq", "W", "--start", "2021-01-01",
                 "--end", "2024-12-31", "--hac-lags", "4", "--json"])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["target"] for r in results] == ["MP", "UUUU"]
    for r in results:
        assert {"coefficients", "r2", "adj_r2", "n", "durbin_watson"} <= set(r)
        assert [c["term"] for c in r["coefficients"]] == ["alpha", "SPY", "REMX"]
        for c in r["coefficients"]:
            assert set(c) >= {"term", "coef", "se", "t", "p", "ci_low", "ci_high"}
            assert c["ci_low"] <= c["coef"] <= c["ci_high"]
        assert r["hac_lags"] == 4 and 0 <= r["r2"] <= 1 and r["n"] > 150


def test_regress_a_config(snapshot_env, capsys):
    config = REPO / "strategies" / "us_magnet_chain_fixed.toml"
    assert main(["regress", str(config), "--factors", "SPY,REMX", "--freq", "M", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["n"] >= 40 and np.isfinite(result["r2"])


def test_regress_needs_config_or_tickers(snapshot_env, capsys):
    assert main(["regress", "--factors", "SPY"]) == 1
    assert "CONFIG or --tickers" in capsys.readouterr().err


def test_events_json_for_the_april_2025_controls(snapshot_env, capsys):
    assert main(["events", "rare_earths", "--event", "E22", "--json"]) == 0
    [event] = json.loads(capsys.readouterr().out)
    assert event["event_id"] == "E22"
    assert {m["ticker"] for m in event["members"]} >= {"MP", "UUUU"}
    for m in event["members"]:
        assert set(m) >= {"ticker", "event_day", "car", "t_stat"}
        assert m["event_day"].startswith("2025-04-0")
    assert set(event["portfolio"]) >= {"car", "t_stat", "p_value"}
    assert np.isfinite(event["portfolio"]["car"])


def test_events_custom_date_window_and_unknown_event(snapshot_env, capsys):
    assert main(["events", "rare_earths", "--date", "2023-07-03", "--window", "-2,5", "--model", "market_adjusted",
                 "--json"]) == 0
    [event] = json.loads(capsys.readouterr().out)
    days = {m["ticker"]: m["event_day"] for m in event["members"]}
    assert days["LYC.AX"] == "2023-07-03" and days["MP"] == "2023-07-03"
    assert main(["events", "rare_earths", "--event", "E99"]) == 1
    err = capsys.readouterr().err
    assert "E99" in err and "Traceback" not in err
