"""Tests for screener.data.fx: conversion on real ASX/FX calendars, sub-units, crosses, gaps, FX splits."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screener.data.calendar import listing_returns, union_panel
from screener.data.fx import conversion_rates, split_fx_return, to_base_currency
from screener.exceptions import DataError


def _rows(snapshot_dir, symbol: str) -> dict[str, dict[str, str]]:
    """The CSV rows of a snapshot file by ISO date, as text (for hand-computed expectations)."""
    with open(snapshot_dir / "prices" / f"{symbol}.csv", newline="", encoding="utf-8") as fh:
        return {row["date"]: row for row in csv.DictReader(fh)}


def _close(snapshot_dir, symbol: str) -> pd.Series:
    frame = pd.read_csv(snapshot_dir / "prices" / f"{symbol}.csv", index_col="date", parse_dates=True)
    return frame["close"].rename(symbol)


@pytest.fixture(scope="module")
def real(snapshot_dir):
    symbols = ["LYC.AX", "AUDUSD=X", "SPY", "CNY=X"]
    return {s: _close(snapshot_dir, s) for s in symbols}, {s: _rows(snapshot_dir, s) for s in symbols}


def _dates(*days: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(days), name="date")


# -- real data: the ASX and FX calendars differ -------------------------------------------------------------

def test_lyc_in_usd_on_asx_days_without_an_fx_quote(real):
    closes, rows = real
    lyc, aud = rows["LYC.AX"], rows["AUDUSD=X"]
    # 2011-04-15 and 2012-12-04: the ASX traded, AUDUSD=X has no quote; the previous day's quote is used
    assert "2011-04-15" not in aud and "2012-12-04" not in aud
    days = ["2011-04-14", "2011-04-15", "2011-04-18", "2012-12-03", "2012-12-04", "2012-12-05"]
    quote_day = {"2011-04-15": "2011-04-14", "2012-12-04": "2012-12-03"}
    prices = closes["LYC.AX"].loc[pd.DatetimeIndex(days)].to_frame()
    usd = to_base_currency(prices, {"LYC.AX": "AUD"}, {"AUDUSD=X": closes["AUDUSD=X"]})
    for day in days:
        expected = float(lyc[day]["close"]) * float(aud[quote_day.get(day, day)]["close"])
        assert usd.loc[day, "LYC.AX"] == expected
    # 2011-04-15: 25.3 AUD at 1.0498026609420776 USD/AUD (2011-04-14's close)
    assert usd.loc["2011-04-15", "LYC.AX"] == pytest.approx(26.5600, abs=1e-4)


def test_asx_and_us_union_over_christmas_and_australia_day(real):
    closes, rows = real
    panel = union_panel({"LYC.AX": closes["LYC.AX"].loc["2018-12-20":"2019-01-31"],
                         "SPY": closes["SPY"].loc["2018-12-20":"2019-01-31"]})
    before = panel.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every listing day has a same-day or recent FX quote: no loss
        usd = to_base_currency(panel, {"LYC.AX": "AUD", "SPY": "USD"}, {"AUDUSD=X": closes["AUDUSD=X"]})
    pd.testing.assert_frame_equal(panel, before)
    # Boxing Day and Australia Day: the US traded, the ASX did not; LYC.AX stays NaN, nothing is filled
    for day in ["2018-12-26", "2019-01-28"]:
        assert np.isnan(usd.loc[day, "LYC.AX"]) and usd.loc[day, "SPY"] == float(rows["SPY"][day]["close"])
    # MLK day: the ASX traded, the US did not
    assert np.isnan(usd.loc["2019-01-21", "SPY"])
    for day in ["2018-12-24", "2018-12-27", "2019-01-21", "2019-01-25", "2019-01-29"]:
        expected = float(rows["LYC.AX"][day]["close"]) * float(rows["AUDUSD=X"][day]["close"])
        assert usd.loc[day, "LYC.AX"] == expected
    pd.testing.assert_series_equal(usd["SPY"], panel["SPY"])  # USD in USD: untouched
    assert usd.isna().equals(panel.isna())


def test_spy_in_aud_over_the_easter_2025_fx_gap(real):
    closes, rows = real
    # AUDUSD=X has no quote on Good Friday 2025-04-18 nor Easter Monday 2025-04-21; the US traded on the 21st
    assert "2025-04-21" not in rows["AUDUSD=X"] and "2025-04-21" in rows["SPY"]
    prices = closes["SPY"].loc["2025-04-16":"2025-04-23"].to_frame()
    aud = to_base_currency(prices, {"SPY": "USD"}, {"AUDUSD=X": closes["AUDUSD=X"]}, base="AUD")
    expected = float(rows["SPY"]["2025-04-21"]["close"]) / float(rows["AUDUSD=X"]["2025-04-17"]["close"])
    assert aud.loc["2025-04-21", "SPY"] == pytest.approx(expected, rel=1e-15)  # 4 days old: used
    with pytest.warns(UserWarning, match=r"SPY 1\b"):
        strict = to_base_currency(prices, {"SPY": "USD"}, {"AUDUSD=X": closes["AUDUSD=X"]}, base="AUD",
                                  max_gap_days=3)
    assert np.isnan(strict.loc["2025-04-21", "SPY"])
    assert strict.drop(pd.Timestamp("2025-04-21")).notna().all().all()


def test_cny_prices_divide_by_cny_per_usd(real):
    closes, rows = real
    days = _dates("2011-07-15", "2011-07-19")
    rates = conversion_rates("CNY", "USD", {"CNY=X": closes["CNY=X"]}, days)
    for day in days:
        assert rates[day] == 1.0 / float(rows["CNY=X"][day.date().isoformat()]["close"])
    back = conversion_rates("USD", "CNY", {"CNY=X": closes["CNY=X"]}, days)
    np.testing.assert_allclose(rates * back, 1.0, rtol=1e-15)
    # the bad tick of 2011-07-18 is converted as is: repairing it is not this module's job (quality flags it)
    bad = conversion_rates("CNY", "USD", {"CNY=X": closes["CNY=X"]}, _dates("2011-07-18"))
    assert bad.iloc[0] == 1.0 / float(rows["CNY=X"]["2011-07-18"]["close"])


def test_split_fx_return_on_real_lyc(real):
    closes, _ = real
    lyc = closes["LYC.AX"].loc["2018-06-01":"2019-06-30"]
    rates = conversion_rates("AUD", "USD", {"AUDUSD=X": closes["AUDUSD=X"]}, lyc.index)
    parts = split_fx_return(lyc, rates)
    assert list(parts.columns) == ["local", "fx", "cross", "total"] and parts.index.equals(lyc.index)
    body = parts.iloc[1:]
    np.testing.assert_allclose(1 + body["total"], (1 + body["local"]) * (1 + body["fx"]), rtol=1e-14)
    np.testing.assert_allclose(body["total"], body["local"] + body["fx"] + body["cross"], atol=1e-15)
    usd = lyc * rates
    np.testing.assert_allclose(body["total"], (usd / usd.shift(1) - 1).iloc[1:], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(body["local"], lyc.pct_change().iloc[1:], rtol=1e-12)
    assert parts.iloc[0].isna().all()


# -- synthetic: units, crosses, gaps, errors ----------------------------------------------------------------

@pytest.fixture
def fx() -> dict[str, pd.Series]:
    days = pd.bdate_range("2024-01-01", periods=5)
    return {
        "GBPUSD=X": pd.Series([1.25, 1.26, 1.27, 1.28, 1.29], index=days),
        "AUDUSD=X": pd.Series([0.66, 0.67, 0.68, 0.69, 0.70], index=days),
        "EURUSD=X": pd.Series([1.10, 1.11, 1.12, 1.13, 1.14], index=days),
    }


def test_pence_are_scaled_by_one_hundredth(fx):
    days = fx["GBPUSD=X"].index
    prices = pd.DataFrame({"RIO.L": [5000.0, 5100.0, np.nan, 5200.0, 5300.0]}, index=days)
    usd = to_base_currency(prices, {"RIO.L": "GBp"}, fx)
    np.testing.assert_allclose(usd["RIO.L"], prices["RIO.L"] * 0.01 * fx["GBPUSD=X"], rtol=1e-15)
    assert np.isnan(usd["RIO.L"].iloc[2])
    # pence to pounds needs no FX series at all; pounds to pence multiplies by 100
    assert (conversion_rates("GBp", "GBP", {}, days) == 0.01).all()
    assert (conversion_rates("GBP", "GBp", {}, days) == 100.0).all()
    assert (conversion_rates("USD", "USD", {}, days) == 1.0).all()


def test_cross_through_usd(fx):
    days = fx["AUDUSD=X"].index
    rates = conversion_rates("AUD", "EUR", fx, days)
    np.testing.assert_allclose(rates, fx["AUDUSD=X"] / fx["EURUSD=X"], rtol=1e-15)
    assert rates.name == "AUD->EUR" and rates.index.equals(days)
    # each leg is forward-filled on its own: EURUSD=X missing on day 3 uses day 2's quote
    legs = {**fx, "EURUSD=X": fx["EURUSD=X"].drop(days[3])}
    gap = conversion_rates("AUD", "EUR", legs, days)
    assert gap.iloc[3] == pytest.approx(fx["AUDUSD=X"].iloc[3] / fx["EURUSD=X"].iloc[2], rel=1e-15)


def test_gap_beyond_max_gap_days_is_nan_with_a_warning():
    quotes = pd.Series([0.70, 0.80], index=_dates("2024-03-01", "2024-03-11"))
    days = pd.date_range("2024-02-29", "2024-03-12", name="date")
    rates = conversion_rates("AUD", "USD", {"AUDUSD=X": quotes}, days)
    expected = pd.Series(np.nan, index=days)
    expected["2024-03-01":"2024-03-06"] = 0.70  # up to 5 calendar days old
    expected["2024-03-11":] = 0.80
    np.testing.assert_array_equal(rates.to_numpy(), expected.to_numpy())  # 02-29: never a later quote
    assert conversion_rates("AUD", "USD", {"AUDUSD=X": quotes}, days, max_gap_days=0).notna().sum() == 2

    prices = pd.DataFrame({"A.AX": 10.0, "B.AX": np.nan, "MP": 20.0}, index=days)
    prices.loc["2024-03-08", "A.AX"] = np.nan
    before = prices.copy()
    with pytest.warns(UserWarning, match=r"4 prices became NaN.*A\.AX 4") as caught:
        usd = to_base_currency(prices, {"A.AX": "AUD", "B.AX": "AUD", "MP": "USD"}, {"AUDUSD=X": quotes})
    assert "B.AX" not in str(caught[0].message) and "MP" not in str(caught[0].message)
    pd.testing.assert_frame_equal(prices, before)
    assert usd["A.AX"].isna().sum() == 5  # 1 without a price, 4 without a rate
    assert (usd["MP"] == 20.0).all() and usd["B.AX"].isna().all()


def test_missing_fx_series_names_the_symbol(fx):
    days = fx["AUDUSD=X"].index
    with pytest.raises(DataError, match="JPY=X"):
        conversion_rates("JPY", "USD", fx, days)
    with pytest.raises(DataError, match="EURUSD=X"):
        conversion_rates("AUD", "EUR", {"AUDUSD=X": fx["AUDUSD=X"]}, days)
    prices = pd.DataFrame({"7203.T": 2500.0}, index=days)
    with pytest.raises(DataError, match=r"7203\.T.*JPY=X"):
        to_base_currency(prices, {"7203.T": "JPY"}, fx)


def test_unknown_currency_names_the_ticker(fx):
    days = fx["AUDUSD=X"].index
    prices = pd.DataFrame({"MP": 1.0, "NEO.TO": 2.0}, index=days)
    with pytest.raises(DataError, match=r"NEO\.TO"):
        to_base_currency(prices, {"MP": "USD"}, fx)
    with pytest.raises(DataError, match=r"NEO\.TO.*XYZ"):
        to_base_currency(prices, {"MP": "USD", "NEO.TO": "XYZ"}, fx)


def test_inputs_are_not_mutated(fx):
    days = fx["AUDUSD=X"].index
    prices = pd.DataFrame({"A.AX": [1.0, 2.0, np.nan, 4.0, 5.0], "RIO.L": 100.0}, index=days)
    snapshot = ({k: v.copy() for k, v in fx.items()}, prices.copy())
    currencies = {"A.AX": "AUD", "RIO.L": "GBp"}
    to_base_currency(prices, currencies, fx, base="EUR")
    conversion_rates("AUD", "EUR", fx, days)
    split_fx_return(prices["A.AX"], fx["AUDUSD=X"])
    pd.testing.assert_frame_equal(prices, snapshot[1])
    for k, v in fx.items():
        pd.testing.assert_series_equal(v, snapshot[0][k])
    assert currencies == {"A.AX": "AUD", "RIO.L": "GBp"}


def test_bad_arguments():
    days = _dates("2024-01-02")
    with pytest.raises(ValueError, match="max_gap_days"):
        conversion_rates("AUD", "USD", {}, days, max_gap_days=-1)
    with pytest.raises(TypeError, match="index"):
        conversion_rates("AUD", "USD", {}, ["2024-01-02"])
    with pytest.raises(ValueError, match="tz-naive"):
        conversion_rates("USD", "USD", {}, days.tz_localize("UTC"))
    with pytest.raises(TypeError, match="prices"):
        to_base_currency(pd.Series([1.0], index=days), {}, {})


def test_split_fx_return_uses_the_listing_days_only():
    # the listing skips 01-03 (NaN); FX moves on every day: fx spans the listing's own previous day
    days = pd.bdate_range("2024-01-01", periods=4, name="date")
    local = pd.Series([10.0, 11.0, np.nan, 12.1], index=days)
    rates = pd.Series([0.5, 0.6, 0.9, 0.55], index=days)
    parts = split_fx_return(local, rates)
    assert list(parts.index) == [days[0], days[1], days[3]]
    assert parts["local"].iloc[2] == pytest.approx(0.1)
    assert parts["fx"].iloc[2] == pytest.approx(0.55 / 0.6 - 1)
    usd = (local * rates).to_frame("A")
    assert parts["total"].iloc[2] == pytest.approx(listing_returns(usd)["A"].iloc[3], rel=1e-14)
    assert parts["cross"].iloc[2] == pytest.approx(parts["local"].iloc[2] * parts["fx"].iloc[2])


@settings(max_examples=40, deadline=None)
@given(st.permutations(["A.AX", "RIO.L", "MP", "B.AX"]))
def test_permuting_columns_permutes_converted_prices(order):
    days = pd.bdate_range("2024-01-01", periods=5, name="date")
    fx = {"AUDUSD=X": pd.Series([0.66, np.nan, 0.68, 0.69, 0.70], index=days),
          "GBPUSD=X": pd.Series([1.25, 1.26, 1.27, 1.28, 1.29], index=days)}
    prices = pd.DataFrame({"A.AX": [1.0, 2.0, np.nan, 4.0, 5.0], "RIO.L": 100.0, "MP": 3.0, "B.AX": 7.0},
                          index=days)
    currencies = {"A.AX": "AUD", "RIO.L": "GBp", "MP": "USD", "B.AX": "AUD"}
    pd.testing.assert_frame_equal(to_base_currency(prices[order], currencies, fx),
                                  to_base_currency(prices, currencies, fx)[order])
