"""Tests for screener.data.calendar: union panels and per-listing returns across calendars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from screener.data.calendar import listing_returns, union_panel

D = pd.Timestamp


def _series(values: dict[str, float]) -> pd.Series:
    return pd.Series(list(values.values()), index=pd.DatetimeIndex(list(values), name="date"), dtype=float)


@pytest.fixture
def asx_us() -> dict[str, pd.Series]:
    # 2019-01-28 is Australia Day (Monday holiday, US open); 2019-01-21 is MLK day (US shut, ASX open).
    asx = _series({"2019-01-18": 1.60, "2019-01-21": 1.595, "2019-01-25": 1.55, "2019-01-29": 1.555})
    us = _series({"2019-01-18": 266.0, "2019-01-25": 265.0, "2019-01-28": 263.0, "2019-01-29": 262.0})
    return {"LYC.AX": asx, "SPY": us}


def test_union_panel_keeps_nan_and_order(asx_us):
    panel = union_panel(asx_us)
    assert list(panel.columns) == ["LYC.AX", "SPY"]
    assert panel.index.name == "date" and panel.columns.name == "ticker"
    assert list(panel.index) == [D("2019-01-18"), D("2019-01-21"), D("2019-01-25"), D("2019-01-28"),
                                 D("2019-01-29")]
    assert np.isnan(panel.loc["2019-01-28", "LYC.AX"]) and np.isnan(panel.loc["2019-01-21", "SPY"])
    assert (panel.fillna(1.0) != 0).all().all()
    assert panel.dtypes.eq("float64").all()
    # mapping order, not alphabetical order, decides the columns
    assert list(union_panel({"SPY": asx_us["SPY"], "LYC.AX": asx_us["LYC.AX"]}).columns) == ["SPY", "LYC.AX"]


def test_union_panel_sorts_unsorted_input():
    s = pd.Series([2.0, 1.0], index=pd.DatetimeIndex(["2024-01-03", "2024-01-02"]))
    panel = union_panel({"A": s})
    assert panel.index.is_monotonic_increasing
    assert panel["A"].tolist() == [1.0, 2.0]


def test_union_panel_empty_mapping():
    panel = union_panel({})
    assert panel.shape == (0, 0) and isinstance(panel.index, pd.DatetimeIndex) and panel.index.name == "date"


def test_union_panel_rejects_bad_input():
    with pytest.raises(TypeError, match="series"):
        union_panel([pd.Series([1.0])])
    with pytest.raises(TypeError, match="DatetimeIndex"):
        union_panel({"A": pd.Series([1.0, 2.0])})
    dup = pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2024-01-02", "2024-01-02"]))
    with pytest.raises(ValueError, match="duplicate"):
        union_panel({"A": dup})
    aware = pd.Series([1.0], index=pd.DatetimeIndex(["2024-01-02"]).tz_localize("UTC"))
    with pytest.raises(ValueError, match="tz-naive"):
        union_panel({"A": aware})


def test_listing_returns_from_own_previous_trading_day(asx_us):
    panel = union_panel(asx_us)
    before = panel.copy()
    rets = listing_returns(panel)
    pd.testing.assert_frame_equal(panel, before)  # input not mutated
    assert rets.index.equals(panel.index) and rets.columns.equals(panel.columns)
    # LYC.AX skips 2019-01-28: NaN there, and 2019-01-29 returns from 2019-01-25 (its previous day)
    assert np.isnan(rets.loc["2019-01-28", "LYC.AX"])
    assert rets.loc["2019-01-29", "LYC.AX"] == pytest.approx(1.555 / 1.55 - 1, rel=1e-12)
    assert rets.loc["2019-01-25", "LYC.AX"] == pytest.approx(1.55 / 1.595 - 1, rel=1e-12)
    # SPY skips 2019-01-21 (MLK day): 2019-01-25 returns from 2019-01-18
    assert np.isnan(rets.loc["2019-01-21", "SPY"])
    assert rets.loc["2019-01-25", "SPY"] == pytest.approx(265.0 / 266.0 - 1, rel=1e-12)
    # first observations are NaN; no zero returns appear for non-trading days
    assert rets.iloc[0].isna().all()
    assert (rets.notna() == (panel.notna() & (panel.ffill().shift(1).notna()))).all().all()
    assert not (rets == 0).any().any()


def test_listing_returns_compound_to_total_return():
    # a listing that skips days: compounding its returns gives last / first price, nothing lost or invented
    idx = pd.bdate_range("2024-01-01", periods=8, name="date")
    prices = pd.DataFrame({"A": [10, np.nan, 11, np.nan, np.nan, 12.1, 12.0, np.nan],
                           "B": [np.nan, 5, 5.5, 6, 6, 6.6, np.nan, 7.0]}, index=idx)
    rets = listing_returns(prices)
    for col in prices:
        p = prices[col].dropna()
        assert np.prod(1 + rets[col].dropna()) == pytest.approx(p.iloc[-1] / p.iloc[0], rel=1e-12)
    assert rets.loc[idx[5], "A"] == pytest.approx(12.1 / 11 - 1)
    assert rets.loc[idx[7], "B"] == pytest.approx(7.0 / 6.6 - 1)
    assert rets.loc[idx[4], "B"] == 0.0  # a real unchanged price is a real zero return


def test_listing_returns_rejects_bad_prices():
    idx = pd.bdate_range("2024-01-01", periods=3)
    with pytest.raises(ValueError, match="positive"):
        listing_returns(pd.DataFrame({"A": [1.0, 0.0, 2.0]}, index=idx))
    with pytest.raises(ValueError, match="sorted"):
        listing_returns(pd.DataFrame({"A": [1.0, 2.0, 3.0]}, index=idx[::-1]))
    with pytest.raises(TypeError, match="DataFrame"):
        listing_returns(pd.Series([1.0, 2.0, 3.0], index=idx))


_panel_values = arrays(
    float, st.tuples(st.integers(2, 20), st.integers(1, 5)),
    elements=st.one_of(st.floats(0.01, 1e4), st.just(np.nan)),
)


def _frame(values: np.ndarray) -> pd.DataFrame:
    idx = pd.bdate_range("2024-01-01", periods=values.shape[0], name="date")
    return pd.DataFrame(values, index=idx, columns=[f"T{i}" for i in range(values.shape[1])])


@settings(max_examples=60, deadline=None)
@given(_panel_values, st.floats(1e-3, 1e3))
def test_scaling_prices_leaves_returns_unchanged(values, scale):
    # a price scale (a currency unit, a split adjustment) does not change returns
    prices = _frame(values)
    np.testing.assert_allclose(listing_returns(prices * scale).to_numpy(), listing_returns(prices).to_numpy(),
                               rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(_panel_values, st.randoms(use_true_random=False))
def test_permuting_columns_permutes_returns(values, rnd):
    prices = _frame(values)
    order = list(prices.columns)
    rnd.shuffle(order)
    pd.testing.assert_frame_equal(listing_returns(prices[order]), listing_returns(prices)[order])


@settings(max_examples=60, deadline=None)
@given(_panel_values, st.randoms(use_true_random=False))
def test_permuting_the_mapping_permutes_union_panel(values, rnd):
    # each listing on its own calendar: drop its NaN rows, then rebuild the union
    prices = _frame(values)
    series = {t: prices[t].dropna() for t in prices}
    order = list(series)
    rnd.shuffle(order)
    shuffled = union_panel({t: series[t] for t in order})
    pd.testing.assert_frame_equal(shuffled, union_panel(series)[order])
    for t in order:  # every observation kept, nothing added
        pd.testing.assert_series_equal(shuffled[t].dropna(), series[t], check_names=False, check_freq=False)


def test_bridge_closed_days_fills_short_closures_only():
    from screener.data.calendar import bridge_closed_days

    idx = pd.to_datetime(["2023-01-24", "2023-01-25", "2023-01-26", "2023-01-27", "2023-02-20", "2023-02-21"])
    prices = pd.DataFrame({"A": [1.0, 2.0, np.nan, 3.0, np.nan, np.nan],
                           "B": [np.nan, 1.0, 1.0, 1.0, 1.0, 1.0]}, index=idx)
    out = bridge_closed_days(prices, max_gap_days=7)
    assert out.loc["2023-01-26", "A"] == 2.0  # one closed day: last close carried
    assert np.isnan(out.loc["2023-02-20", "A"])  # 24 days since the last close: not carried
    assert np.isnan(out.loc["2023-01-24", "B"])  # nothing before the first close
    pd.testing.assert_frame_equal(prices, prices.copy())  # input untouched
    # No look-ahead: the filled value at t depends only on rows up to t.
    pd.testing.assert_frame_equal(bridge_closed_days(prices.iloc[:3]), out.iloc[:3])
