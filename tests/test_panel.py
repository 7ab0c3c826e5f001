from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from screener.data.panel import load_prices
from screener.data.snapshot import SnapshotProvider
from screener.data.store import Store

from conftest import make_bars


@pytest.fixture
def store(tmp_path, snapshot_dir) -> Store:
    store = Store(tmp_path / "store")
    provider = SnapshotProvider(snapshot_dir)
    store.import_bars(provider.fetch(["MP", "LYC.AX", "AUDUSD=X", "SPY", "GBPUSD=X"]), source="snapshot")
    return store


def test_union_calendar_keeps_non_trading_days_missing(store):
    data = load_prices(["LYC.AX", "MP"], store=store, snapshot=False, start="2023-01-01", end="2023-12-31")
    prices = data.prices
    assert list(prices.columns) == ["LYC.AX", "MP"]
    # 2023-01-26 is Australia Day (ASX shut, NYSE open); 2023-07-04 the reverse.
    assert np.isnan(prices.loc["2023-01-26", "LYC.AX"]) and prices.loc["2023-01-26", "MP"] > 0
    assert np.isnan(prices.loc["2023-07-04", "MP"]) and prices.loc["2023-07-04", "LYC.AX"] > 0
    assert prices.index.is_unique and prices.index.is_monotonic_increasing
    assert data.sources == {"LYC.AX": "store", "MP": "store"}
    assert data.currencies == {"LYC.AX": "AUD", "MP": "USD"}


def test_aud_listing_converted_with_same_day_fx(store, snapshot_dir):
    data = load_prices(["LYC.AX"], store=store, snapshot=False, start="2024-05-20", end="2024-05-31")
    raw = pd.read_csv(snapshot_dir / "prices" / "LYC.AX.csv", index_col="date", parse_dates=True)["adj_close"]
    aud = pd.read_csv(snapshot_dir / "prices" / "AUDUSD=X.csv", index_col="date", parse_dates=True)["close"]
    for day in data.prices.index:
        assert data.prices.loc[day, "LYC.AX"] == pytest.approx(raw[day] * aud[day], rel=1e-12)
        assert data.local.loc[day, "LYC.AX"] == raw[day]


def test_missing_tickers_are_reported_not_fatal(store):
    data = load_prices(["MP", "NOPE", "ARU.AX"], store=store, snapshot=False)
    assert list(data.prices.columns) == ["MP"]
    assert set(data.missing) == {"NOPE", "ARU.AX"}
    assert "not in the store" in data.missing["NOPE"]


def test_snapshot_serves_what_the_store_lacks(store, snapshot_dir):
    data = load_prices(["MP", "ARU.AX"], store=store, snapshot=snapshot_dir)
    assert data.sources == {"MP": "store", "ARU.AX": "snapshot"}
    assert not data.missing


def test_corrupt_store_file_falls_back_to_snapshot_with_a_note(store, snapshot_dir):
    store.path("MP").write_bytes(b"broken")
    data = load_prices(["MP", "SPY"], store=Store(store.root), snapshot=snapshot_dir)
    assert data.sources["MP"].startswith("snapshot (") and "set aside" in data.sources["MP"]
    assert any("MP" in n for n in data.notes)


def test_staleness_is_judged_against_the_check_date(store):
    data = load_prices(["MP", "LYC.AX"], store=store, snapshot=False, as_of=date(2025, 10, 1))
    assert data.stale == ["LYC.AX"]


def test_london_pence_are_converted_to_pounds_then_dollars(tmp_path):
    store = Store(tmp_path / "store")
    bars = make_bars(20, start="2024-03-01")
    store.write("PRE.L", bars, source="test")
    fx = make_bars(20, start="2024-03-01", seed=5, price=1.25)
    store.write("GBPUSD=X", fx, source="test")
    data = load_prices(["PRE.L"], store=store, snapshot=False)
    expected = bars["adj_close"] * 0.01 * fx["close"]
    np.testing.assert_allclose(data.prices["PRE.L"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert data.currencies == {"PRE.L": "GBp"}


def test_listing_without_fx_series_is_reported(tmp_path):
    store = Store(tmp_path / "store")
    store.write("LYC.AX", make_bars(10), source="test")
    data = load_prices(["LYC.AX"], store=store, snapshot=False)
    assert data.prices.empty
    assert "AUDUSD=X" in data.missing["LYC.AX"]


def test_bad_field_is_a_value_error(store):
    with pytest.raises(ValueError, match="`field` must be one of"):
        load_prices(["MP"], store=store, field="price")
