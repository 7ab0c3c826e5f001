"""The factor table and `screener factors`: every factor for every member, point in time, with reasons and sources."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from screener.cli import main
from screener.config import MARKET_FACTORS, SUPPLY_FACTORS
from screener.factors.table import factor_table, load_factor_data
from screener.reference import load_reference
from screener.universe import load_universe

FACTORS = (*SUPPLY_FACTORS, *MARKET_FACTORS)


@pytest.fixture
def snapshot_env(home, snapshot_dir, monkeypatch):
    monkeypatch.setenv("SCREENER_SNAPSHOT", str(snapshot_dir))
    return snapshot_dir


def _factors_json(capsys, as_of: str) -> list[dict]:
    assert main(["factors", "rare_earths", "--as-of", as_of, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_every_factor_for_every_member(snapshot_env, capsys):
    records = _factors_json(capsys, "2025-06-30")
    uni = load_universe("rare_earths")
    assert [r["ticker"] for r in records] == list(uni.tickers)
    for r in records:
        assert set(FACTORS) <= set(r)
        for f in FACTORS:
            assert r[f] is None or isinstance(r[f], int | float)
        if any(r[f] is None for f in (*SUPPLY_FACTORS, "momentum_12_1")):
            assert r["reason"], f"{r['ticker']} has missing factors without a reason"
    mp = next(r for r in records if r["ticker"] == "MP")
    assert all(mp[f] is not None for f in (*SUPPLY_FACTORS, "momentum_12_1", "volatility_60d", "beta_spy",
                                           "beta_remx", "adv_60d", "max_drawdown_1y"))
    assert mp["china_dependency"] == 0.0  # shipments to China stopped 2025-04-17


def test_2023_shows_no_trace_of_the_april_2025_controls(snapshot_env, capsys):
    uni = load_universe("rare_earths")
    ref = load_reference()
    dates = [pd.Timestamp("2023-06-30")]
    data = load_factor_data(uni, dates[0].date(), dates[0].date())
    with_all = factor_table(uni, data, dates, reference=ref)
    without = dataclasses.replace(ref, events=ref.events[ref.events["event_id"] != "E22"].reset_index(drop=True))
    pd.testing.assert_frame_equal(with_all, factor_table(uni, data, dates, reference=without))
    # ...while at 2025-06-30 E22 moves the heavy-REE names.
    later = [pd.Timestamp("2025-06-30")]
    data = load_factor_data(uni, later[0].date(), later[0].date())
    a = factor_table(uni, data, later, reference=ref)["supply_risk_exposure"]
    b = factor_table(uni, data, later, reference=without)["supply_risk_exposure"]
    assert (a.fillna(0) >= b.fillna(0) - 1e-12).all() and (a > b + 1e-9).any()
    assert main(["factors", "rare_earths", "--as-of", "2023-06-30", "--explain", "LYC.AX"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "E22" not in {e["event_id"] for e in report["events"]}


def test_explain_names_sources(snapshot_env, capsys):
    assert main(["factors", "rare_earths", "--as-of", "2025-06-30", "--explain", "MP"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ticker"] == "MP"
    assert report["factors"]["supply_risk_exposure"] == pytest.approx(0.582975)
    elements = report["exposure"]["elements"]
    assert elements and all(e["source"] for e in elements)
    facts = [c["fact"] for e in elements for c in e["components"].values() if c.get("fact")]
    assert facts and all(f["source"] and f["published"] and f["confidence"] for f in facts)
    assert report["market"]["momentum_12_1"] is not None
    assert main(["factors", "rare_earths", "--as-of", "2025-06-30", "--explain", "LYC.AX"]) == 0
    lynas = json.loads(capsys.readouterr().out)
    e22 = [e for e in lynas["events"] if e["event_id"] == "E22"]
    assert e22 and e22[0]["source"]


def test_csv_output_and_unknown_ticker(snapshot_env, capsys):
    assert main(["factors", "rare_earths", "--as-of", "2024-12-31", "--csv"]) == 0
    frame = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out), index_col="ticker")
    assert set(FACTORS) <= set(frame.columns)
    assert np.isfinite(frame.loc["MP", "beta_spy"])
    assert main(["factors", "rare_earths", "--as-of", "2024-12-31", "--explain", "NOPE"]) == 1
    assert "NOPE" in capsys.readouterr().err


def test_truncating_prices_after_t_leaves_factors_at_t_unchanged(snapshot_env):
    uni = load_universe("rare_earths")
    dates = pd.DatetimeIndex(["2023-03-31", "2023-06-30"], name="date")
    full = load_factor_data(uni, dates[0].date(), pd.Timestamp("2025-09-29").date())
    cut = dataclasses.replace(full, base={k: v.loc[: dates[-1]] for k, v in full.base.items()})
    pd.testing.assert_frame_equal(factor_table(uni, full, dates), factor_table(uni, cut, dates))
