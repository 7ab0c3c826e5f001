"""Tests for screener.factors.market: point-in-time market factors on each listing's own calendar."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screener.data.calendar import listing_returns
from screener.data.panel import load_prices
from screener.data.store import Store
from screener.factors.market import (
    FACTOR_COLUMNS,
    MAX_STALE_DAYS,
    adv,
    adv_60d,
    beta,
    beta_remx,
    beta_spy,
    market_cap,
    market_factors,
    max_drawdown,
    max_drawdown_1y,
    momentum,
    momentum_6_1,
    momentum_12_1,
    volatility,
    volatility_60d,
    volatility_252d,
)
from screener.periods import (
    ANNUALIZATION_FACTORS,
    DAILY,
    PERIODS,
    TRADING_DAYS_PER_MONTH,
    TRADING_DAYS_PER_YEAR,
    annualization_factor,
    trading_days,
)

SQRT_YEAR = math.sqrt(ANNUALIZATION_FACTORS[DAILY])
FLOAT_COLUMNS = [c for c in FACTOR_COLUMNS if c != "market_cap_pit"]


# ---------------------------------------------------------------- screener.periods (the factors' windows)


def test_annualization_factors_and_windows():
    assert [annualization_factor(p) for p in PERIODS] == [252, 52, 12, 4, 1]
    assert annualization_factor("daily", annualization=365) == 365
    assert TRADING_DAYS_PER_YEAR == 12 * TRADING_DAYS_PER_MONTH == trading_days(years=1) == trading_days(months=12)
    assert trading_days(months=6) == 126 and trading_days(years=1, months=1) == 273


@pytest.mark.parametrize("bad", ["hourly", "Daily", None, 252])
def test_annualization_factor_lists_the_choices(bad):
    with pytest.raises(ValueError, match="`period` must be one of daily, weekly, monthly, quarterly, annual"):
        annualization_factor(bad)


def test_annualization_and_trading_days_reject_bad_values():
    with pytest.raises(ValueError, match="`annualization` must be positive"):
        annualization_factor("daily", annualization=0)
    with pytest.raises(ValueError, match="`months` must be a non-negative integer"):
        trading_days(months=-1)
    with pytest.raises(ValueError, match="`years` must be a non-negative integer"):
        trading_days(years=1.5)


# ---------------------------------------------------------------- a synthetic 3-listing panel


def make_panel(seed: int = 42, n_days: int = 320, hole: float = 0.08) -> dict[str, object]:
    """Three listings on different calendars, two benchmarks, closes and volumes, on a union of weekdays.

    ``A`` trades every day; ``B`` misses random days and a two-week halt (its own calendar, like an ASX
    listing in a US-dominated panel); ``C`` lists a third of the way in. SPY misses a few days of its own.
    """
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2022-01-03", periods=n_days, name="date")
    market = rng.normal(0.0004, 0.011, n_days)
    sector = 0.8 * market + rng.normal(0.0, 0.012, n_days)
    rets = np.column_stack(
        [
            1.3 * market + rng.normal(0, 0.015, n_days),
            0.5 * sector + 0.4 * np.roll(market, 1) + rng.normal(0, 0.02, n_days),
            1.1 * sector + rng.normal(0, 0.03, n_days),
        ]
    )
    prices = pd.DataFrame(
        [40.0, 2.5, 11.0] * np.exp(np.cumsum(rets, axis=0)),
        index=index,
        columns=pd.Index(["A", "B", "C"], name="ticker"),
    )
    prices.loc[rng.random(n_days) < hole, "B"] = np.nan
    prices.iloc[150:160, 1] = np.nan  # a two-week halt
    prices.iloc[: n_days // 3, 2] = np.nan
    spy = pd.Series(400 * np.exp(np.cumsum(market)), index=index, name="SPY")
    spy[rng.random(n_days) < hole / 2] = np.nan
    remx = pd.Series(60 * np.exp(np.cumsum(sector)), index=index, name="REMX")
    close = prices * [1.0, 1.02, 0.97]  # unadjusted closes differ from adjusted ones by a constant here
    volume = pd.DataFrame(rng.integers(0, 50_000, prices.shape).astype(float), index=index, columns=prices.columns)
    volume = volume.where(prices.notna())
    volume.iloc[200, 0] = np.nan  # a day with a close but no volume
    return {"prices": prices, "close": close, "volume": volume, "spy": spy, "remx": remx}


@pytest.fixture(scope="module")
def panel() -> dict[str, object]:
    return make_panel()


@pytest.fixture(scope="module")
def dates(panel) -> pd.DatetimeIndex:
    # Month-ends (some on weekends), a date before the data, one inside B's halt, and dates after the data.
    index = panel["prices"].index
    extra = [
        index[0] - pd.Timedelta(days=5),
        index[158],
        index[-1] + pd.Timedelta(days=3),
        index[-1] + pd.Timedelta(days=40),
    ]
    return pd.DatetimeIndex(sorted({*pd.date_range(index[0], index[-1], freq="ME"), *extra}), name="date")


# ---------------------------------------------------------------- naive references: one (date, ticker) at a time


def own(series: pd.Series, date: pd.Timestamp, stale: int | None = MAX_STALE_DAYS) -> pd.Series | None:
    """The listing's observed values on or before `date`, or None when it has none or the last is stale."""
    s = series.dropna()
    s = s[s.index <= date]
    if s.empty or (stale is not None and (date - s.index[-1]).days > stale):
        return None
    return s


def ref_momentum(series, date, lookback, skip):
    s = own(series, date)
    if s is None or len(s) <= lookback:
        return np.nan
    return s.iloc[-1 - skip] / s.iloc[-1 - lookback] - 1


def ref_volatility(series, date, window, min_obs):
    s = own(series, date)
    if s is None:
        return np.nan
    r = (s / s.shift(1) - 1).dropna().to_numpy()[-window:]
    return np.std(r, ddof=1) * SQRT_YEAR if len(r) >= min_obs else np.nan


def ref_beta(series, bench, date, window=252, min_obs=202, lags=0):
    if own(series, date) is None:
        return np.nan
    both = pd.concat([series, bench], axis=1).dropna()
    both = both[both.index <= date]
    if both.empty or (date - both.index[-1]).days > MAX_STALE_DAYS:
        return np.nan
    rets = both / both.shift(1) - 1
    cols = {"y": rets.iloc[:, 0]} | {f"x{k}": rets.iloc[:, 1].shift(k) for k in range(lags + 1)}
    table = pd.DataFrame(cols).iloc[-window:].dropna()
    if len(table) < min_obs:
        return np.nan
    design = np.column_stack([np.ones(len(table)), table.drop(columns="y").to_numpy()])
    coef = np.linalg.lstsq(design, table["y"].to_numpy(), rcond=None)[0]
    return coef[1:].sum()


def ref_adv(close, volume, date, window=60, min_obs=48):
    s = own(close, date)
    if s is None:
        return np.nan
    value = (s * volume.reindex(s.index)).to_numpy()[-window:]
    value = value[~np.isnan(value)]
    return value.mean() if len(value) >= min_obs else np.nan


def ref_drawdown(series, date, window=252, min_obs=202):
    s = own(series, date)
    if s is None or len(s) - 1 < min_obs:
        return np.nan
    p = s.to_numpy()[-window - 1 :]
    return np.min(p / np.maximum.accumulate(p) - 1)


def reference(fn, frame: pd.DataFrame, dates, *args) -> pd.DataFrame:
    return pd.DataFrame(
        {t: [fn(frame[t], d, *args) for d in dates] for t in frame.columns}, index=dates, columns=frame.columns
    )


# ---------------------------------------------------------------- hand-sized cases

D5 = pd.bdate_range("2024-03-04", periods=7, name="date")  # Mon 4 .. Tue 12 March 2024


def test_momentum_hand_sized_on_own_rows():
    # X misses Wed 6 and Mon 11: its rows are 4, 5, 7, 8, 12 March.
    prices = pd.DataFrame({"X": [10, 11, np.nan, 12, 9, np.nan, 15]}, index=D5, dtype=float)
    got = momentum(prices, ["2024-03-08", "2024-03-10", "2024-03-11", "2024-03-12"], lookback=3, skip=1)
    # On Fri 8 the anchor is row 3 (price 9): P[2] / P[0] - 1 = 12 / 10 - 1; Sun 10 and Mon 11 keep that anchor;
    # on Tue 12 the anchor is row 4 (15): P[3] / P[1] - 1 = 9 / 11 - 1.
    np.testing.assert_allclose(got["X"].to_numpy(), [0.2, 0.2, 0.2, 9 / 11 - 1])
    assert got.index.name == "date" and got.columns.name == "ticker"
    # One row short of the lookback: NaN.
    assert np.isnan(momentum(prices, ["2024-03-07"], lookback=3, skip=1).iloc[0, 0])


def test_volatility_and_drawdown_hand_sized():
    prices = pd.DataFrame({"X": [10, 12, 9, 11, 6, 8, 7]}, index=D5, dtype=float)
    r = np.array([12 / 10, 9 / 12, 11 / 9, 6 / 11, 8 / 6, 7 / 8]) - 1
    vol = volatility(prices, [D5[-1]], window=4, min_obs=4)
    assert vol.iloc[0, 0] == pytest.approx(np.std(r[-4:], ddof=1) * SQRT_YEAR, rel=1e-12)
    # Window of 4 returns = prices 9, 11, 6, 8, 7: peak 11, trough 6.
    assert max_drawdown(prices, [D5[-1]], window=4, min_obs=4).iloc[0, 0] == pytest.approx(6 / 11 - 1)
    # Whole history: peak 12, trough 6.
    assert max_drawdown(prices, [D5[-1]], window=6).iloc[0, 0] == pytest.approx(-0.5)
    # A price that only rises has no drawdown; too short a history gives NaN.
    rising = pd.DataFrame({"X": np.arange(1.0, 8.0)}, index=D5)
    assert max_drawdown(rising, [D5[-1]], window=6).iloc[0, 0] == 0.0
    assert np.isnan(max_drawdown(prices, [D5[2]], window=6).iloc[0, 0])


def test_adv_hand_sized_zero_volume_counts_missing_volume_is_skipped():
    close = pd.DataFrame({"X": [2.0, 2.0, np.nan, 4.0, 4.0, 5.0, 5.0]}, index=D5)
    volume = pd.DataFrame({"X": [100, 0, np.nan, 50, np.nan, 10, 20]}, index=D5, dtype=float)
    got = adv(close, volume, [D5[-1]], window=4, min_obs=3)
    # The last four rows with a close are 7, 8, 11, 12 March: 4 x 50, no volume (skipped), 5 x 10, 5 x 20.
    assert got.iloc[0, 0] == pytest.approx((4 * 50 + 5 * 10 + 5 * 20) / 3)
    got = adv(close, volume, [D5[3]], window=3, min_obs=3)
    assert got.iloc[0, 0] == pytest.approx((200 + 0 + 200) / 3)


def test_beta_hand_sized_matches_slope():
    rng = np.random.default_rng(7)
    index = pd.bdate_range("2024-01-01", periods=40, name="date")
    x = rng.normal(0, 0.01, 40)
    y = 0.002 + 1.7 * x + rng.normal(0, 0.001, 40)
    bench = pd.Series(100 * np.cumprod(1 + x), index=index)
    prices = pd.DataFrame({"Y": 50 * np.cumprod(1 + y)}, index=index)
    got = beta(prices, bench, [index[-1]], window=39, min_obs=39).iloc[0, 0]
    assert got == pytest.approx(np.polyfit(x[1:], y[1:], 1)[0], rel=1e-10)


# ---------------------------------------------------------------- synthetic panel against the naive references


def test_momentum_matches_numpy(panel, dates):
    p = panel["prices"]
    pd.testing.assert_frame_equal(momentum_12_1(p, dates), reference(ref_momentum, p, dates, 252, 21), rtol=1e-12)
    pd.testing.assert_frame_equal(momentum_6_1(p, dates), reference(ref_momentum, p, dates, 126, 21), rtol=1e-12)
    assert momentum_12_1(p, dates).notna().to_numpy().sum() > 0  # the panel is long enough for some values


def test_volatility_matches_numpy(panel, dates):
    p = panel["prices"]
    pd.testing.assert_frame_equal(volatility_60d(p, dates), reference(ref_volatility, p, dates, 60, 48), rtol=1e-9)
    pd.testing.assert_frame_equal(volatility_252d(p, dates), reference(ref_volatility, p, dates, 252, 202), rtol=1e-9)


@pytest.mark.parametrize("lags", [0, 1, 2])
def test_beta_matches_lstsq_on_common_days(panel, dates, lags):
    p = panel["prices"]
    got = beta(p, panel["spy"], dates, lags=lags)
    expected = reference(lambda s, d: ref_beta(s, panel["spy"], d, lags=lags), p, dates)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-8)
    assert got.notna().to_numpy().sum() > 10


def test_beta_wrappers(panel, dates):
    p = panel["prices"]
    pd.testing.assert_frame_equal(beta_spy(p, panel["spy"], dates), beta(p, panel["spy"], dates))
    pd.testing.assert_frame_equal(beta_remx(p, panel["remx"], dates, lags=1), beta(p, panel["remx"], dates, lags=1))


def test_dimson_beta_recovers_a_lagged_response():
    # B responds to yesterday's market (0.4) as well as today's sector (0.5 * 0.8): the same-day beta misses
    # the lagged part, the Dimson sum catches it.
    data = make_panel(seed=3, n_days=2000, hole=0.0)
    p, spy, d = data["prices"][["B"]], data["spy"], [data["prices"].index[-1]]
    same_day = beta(p, spy, d, window=1800).iloc[0, 0]  # a long window: slopes within about 0.05
    dimson = beta(p, spy, d, window=1800, lags=1).iloc[0, 0]
    assert same_day == pytest.approx(0.4, abs=0.15)
    assert dimson == pytest.approx(0.8, abs=0.15)


def test_adv_matches_numpy(panel, dates):
    got = adv_60d(panel["close"], panel["volume"], dates)
    expected = reference(lambda s, d: ref_adv(s, panel["volume"][s.name], d), panel["close"], dates)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-10)


def test_max_drawdown_matches_numpy(panel, dates):
    p = panel["prices"]
    got = max_drawdown_1y(p, dates)
    pd.testing.assert_frame_equal(got, reference(ref_drawdown, p, dates), rtol=1e-12)
    values = got.to_numpy()[~np.isnan(got.to_numpy())]
    assert len(values) and ((values <= 0) & (values >= -1)).all()


def test_factors_are_nan_before_the_data_stale_in_a_halt_and_after_the_data(panel, dates):
    p = panel["prices"]
    vol = volatility_60d(p, dates)
    first = dates[0]
    assert vol.loc[first].isna().all()  # before any price
    halt = p.index[158]  # B has not traded since row 149: more than MAX_STALE_DAYS calendar days
    assert np.isnan(vol.loc[halt, "B"]) and not np.isnan(vol.loc[halt, "A"])
    # Three days after the last price the anchor is still that price.
    last = volatility_60d(p, [p.index[-1]])
    np.testing.assert_array_equal(vol.loc[p.index[-1] + pd.Timedelta(days=3)].to_numpy(), last.iloc[0].to_numpy())
    assert vol.loc[p.index[-1] + pd.Timedelta(days=40)].isna().all()  # the data ended 40 days earlier
    # The staleness rule can be switched off.
    loose = volatility_60d(p, dates, max_stale_days=None)
    assert not np.isnan(loose.loc[halt, "B"]) and loose.loc[p.index[-1] + pd.Timedelta(days=40)].notna().all()


def test_weekend_date_uses_the_friday_anchor(panel):
    p = panel["prices"]
    friday = p.index[p.index.day_of_week == 4][-2]
    got = momentum_6_1(p, [friday, friday + pd.Timedelta(days=2)])
    np.testing.assert_array_equal(got.iloc[0].to_numpy(), got.iloc[1].to_numpy())


def test_market_factors_columns_and_consistency(panel, dates):
    shares = pd.Series({"A": 1e6, "C": 2e6})
    got = market_factors(
        panel["prices"],
        panel["close"],
        panel["volume"],
        dates,
        benchmarks={"SPY": panel["spy"], "REMX": panel["remx"]},
        shares_outstanding=shares,
    )
    assert list(got.columns) == list(FACTOR_COLUMNS)
    assert got.index.names == ["date", "ticker"]
    assert got.index.equals(pd.MultiIndex.from_product([dates, panel["prices"].columns]))
    assert got["market_cap_pit"].dtype == bool and not got["market_cap_pit"].any()
    assert (got[FLOAT_COLUMNS].dtypes == "float64").all()
    p, c, v = panel["prices"], panel["close"], panel["volume"]
    singles = {
        "momentum_12_1": momentum_12_1(p, dates),
        "momentum_6_1": momentum_6_1(p, dates),
        "volatility_60d": volatility_60d(p, dates),
        "volatility_252d": volatility_252d(p, dates),
        "beta_spy": beta_spy(p, panel["spy"], dates),
        "beta_remx": beta_remx(p, panel["remx"], dates),
        "adv_60d": adv_60d(c, v, dates),
        "max_drawdown_1y": max_drawdown_1y(p, dates),
    }
    for name, wide in singles.items():
        np.testing.assert_array_equal(got[name].to_numpy(), wide.to_numpy().ravel(), err_msg=name)
    cap = market_cap(shares, c, dates)
    pd.testing.assert_frame_equal(got[["market_cap", "market_cap_pit"]], cap)


def test_market_cap_is_current_shares_times_close_and_flagged_not_pit(panel, dates):
    c = panel["close"]
    cap = market_cap(pd.Series({"A": 1e6, "B": np.nan}), c, dates)
    assert list(cap.columns) == ["market_cap", "market_cap_pit"]
    day = c.index[-1] + pd.Timedelta(days=3)  # a decision date after the last close: that close is used
    assert cap.loc[(day, "A"), "market_cap"] == pytest.approx(c["A"].iloc[-1] * 1e6)
    assert cap.xs("B", level="ticker")["market_cap"].isna().all()  # NaN shares
    assert cap.xs("C", level="ticker")["market_cap"].isna().all()  # ticker without shares
    assert not cap["market_cap_pit"].any()
    assert market_cap(None, c, dates)["market_cap"].isna().all()


def test_empty_dates_and_tickers(panel):
    p = panel["prices"]
    assert momentum_12_1(p, []).shape == (0, 3)
    assert volatility_60d(p.iloc[:, :0], [p.index[-1]]).shape == (1, 0)
    empty = market_factors(
        p, panel["close"], panel["volume"], [], benchmarks={"SPY": panel["spy"], "REMX": panel["remx"]}
    )
    assert empty.shape == (0, len(FACTOR_COLUMNS))


def test_dates_are_sorted_and_deduplicated(panel):
    p = panel["prices"]
    d = [p.index[-1], p.index[-30], p.index[-1]]
    got = volatility_60d(p, d)
    assert list(got.index) == [p.index[-30], p.index[-1]]


# ---------------------------------------------------------------- errors


def test_errors_name_the_argument(panel):
    p = panel["prices"]
    bm = {"SPY": panel["spy"], "REMX": panel["remx"]}
    with pytest.raises(TypeError, match="`prices` must be a DataFrame"):
        momentum_12_1(p["A"], [p.index[-1]])
    with pytest.raises(ValueError, match="`prices` must have sorted, unique dates"):
        momentum_12_1(p.iloc[::-1], [p.index[-1]])
    with pytest.raises(ValueError, match="`prices` must be positive"):
        volatility_60d(p.assign(A=-1.0), [p.index[-1]])
    with pytest.raises(ValueError, match="`skip` must be smaller than `lookback`"):
        momentum(p, [p.index[-1]], lookback=5, skip=5)
    with pytest.raises(ValueError, match="`lookback` must be an integer >= 1"):
        momentum(p, [p.index[-1]], lookback=0)
    with pytest.raises(ValueError, match="`min_obs` must be at most the window"):
        volatility(p, [p.index[-1]], window=10, min_obs=11)
    with pytest.raises(ValueError, match="`lags` must be an integer >= 0"):
        beta(p, panel["spy"], [p.index[-1]], lags=-1)
    with pytest.raises(TypeError, match="`benchmark` must be a Series"):
        beta(p, panel["spy"].to_frame(), [p.index[-1]])
    with pytest.raises(ValueError, match="`volume` must be non-negative"):
        adv(panel["close"], -panel["volume"].fillna(1.0), [p.index[-1]])
    with pytest.raises(KeyError, match="missing REMX"):
        market_factors(p, panel["close"], panel["volume"], [p.index[-1]], benchmarks={"SPY": bm["SPY"]})
    with pytest.raises(ValueError, match="`shares_outstanding` must be positive"):
        market_cap(pd.Series({"A": -5.0}), panel["close"], [p.index[-1]])
    with pytest.raises(ValueError, match="`dates` must be tz-naive"):
        momentum_12_1(p, pd.DatetimeIndex([p.index[-1]]).tz_localize("UTC"))
    with pytest.raises(TypeError, match="`dates` must be a list-like"):
        momentum_12_1(p, "2024-01-31")
    with pytest.raises(ValueError, match="`max_stale_days` must be an integer >= 0"):
        momentum_12_1(p, [p.index[-1]], max_stale_days=-1)


# ---------------------------------------------------------------- properties


def all_factors(data: dict[str, object], dates, **kw) -> pd.DataFrame:
    return market_factors(
        data["prices"],
        data["close"],
        data["volume"],
        dates,
        benchmarks={"SPY": data["spy"], "REMX": data["remx"]},
        **kw,
    )


def truncate(data: dict[str, object], t: pd.Timestamp) -> dict[str, object]:
    return {k: v.loc[:t] for k, v in data.items()}


PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), hole=st.floats(0.0, 0.4), cut=st.integers(0, 330), lags=st.integers(0, 1))
def test_no_look_ahead_truncating_after_t_leaves_factors_at_t_unchanged(seed, hole, cut, lags):
    data = make_panel(seed=seed, n_days=300, hole=hole)
    index = data["prices"].index
    # t may be a trading day, a weekend or holiday, or after the data.
    t = index[0] + pd.Timedelta(days=cut * 7 // 5)
    full = all_factors(data, [t], beta_lags=lags)
    cut_data = truncate(data, t)
    if cut_data["prices"].empty:
        assert full[FLOAT_COLUMNS].isna().all().all()
        return
    pd.testing.assert_frame_equal(all_factors(cut_data, [t], beta_lags=lags), full)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), order=st.permutations(["A", "B", "C"]))
def test_permuting_tickers_permutes_the_output(seed, order):
    data = make_panel(seed=seed, n_days=300)
    d = pd.date_range(data["prices"].index[0], periods=10, freq="ME")
    base = all_factors(data, d)
    shuffled = {k: (v[order] if isinstance(v, pd.DataFrame) else v) for k, v in data.items()}
    got = all_factors(shuffled, d)
    expected = base.reindex(pd.MultiIndex.from_product([base.index.levels[0], order], names=["date", "ticker"]))
    pd.testing.assert_frame_equal(got, expected)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), ticker=st.sampled_from(["A", "B", "C"]), scale=st.floats(1e-3, 1e3))
def test_scaling_a_ticker_prices_scales_adv_only(seed, ticker, scale):
    data = make_panel(seed=seed, n_days=300)
    d = pd.date_range(data["prices"].index[0], periods=10, freq="ME")
    base = all_factors(data, d)
    scaled = dict(data)
    for key in ("prices", "close"):
        scaled[key] = data[key].assign(**{ticker: data[key][ticker] * scale})
    got = all_factors(scaled, d)
    invariant = [
        "momentum_12_1",
        "momentum_6_1",
        "volatility_60d",
        "volatility_252d",
        "beta_spy",
        "beta_remx",
        "max_drawdown_1y",
    ]
    pd.testing.assert_frame_equal(got[invariant], base[invariant], rtol=1e-7, atol=1e-12)
    pd.testing.assert_series_equal(
        got["adv_60d"].xs(ticker, level="ticker"), base["adv_60d"].xs(ticker, level="ticker") * scale, rtol=1e-9
    )
    # Scaling a benchmark leaves the betas unchanged.
    moved = all_factors({**data, "spy": data["spy"] * scale}, d)
    pd.testing.assert_series_equal(moved["beta_spy"], base["beta_spy"], rtol=1e-7, atol=1e-12)


def test_inputs_are_not_mutated(panel, dates):
    before = copy.deepcopy(panel)
    all_factors(panel, dates, shares_outstanding=pd.Series({"A": 1.0}), beta_lags=1)
    momentum_12_1(panel["prices"], dates)
    beta(panel["prices"], panel["spy"], dates, lags=2)
    adv_60d(panel["close"], panel["volume"], dates)
    max_drawdown_1y(panel["prices"], dates)
    market_cap(pd.Series({"A": 1.0}), panel["close"], dates)
    for key, value in before.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(panel[key], value)
        else:
            pd.testing.assert_series_equal(panel[key], value)


# ---------------------------------------------------------------- the real snapshot

REAL = ["MP", "SPY", "REMX", "USAR", "CRML", "LYC.AX", "STW.AX", "VML.AX"]


@pytest.fixture(scope="module")
def real(snapshot_dir, tmp_path_factory) -> dict[str, pd.DataFrame]:
    store = Store(tmp_path_factory.mktemp("store"))
    loaded = {
        f: load_prices(REAL, field=f, store=store, snapshot=snapshot_dir) for f in ("adj_close", "close", "volume")
    }
    assert not loaded["adj_close"].missing
    return {f: d.prices for f, d in loaded.items()}


@pytest.fixture(scope="module")
def real_factors(real) -> tuple[pd.DatetimeIndex, pd.DataFrame, pd.DataFrame]:
    month_ends = pd.date_range("2015-01-31", "2025-09-30", freq="ME", name="date")
    bm = {"SPY": real["adj_close"]["SPY"], "REMX": real["adj_close"]["REMX"]}
    args = (real["adj_close"], real["close"], real["volume"], month_ends)
    return month_ends, market_factors(*args, benchmarks=bm), market_factors(*args, benchmarks=bm, beta_lags=1)


def test_real_mp_beta_to_spy_over_2024_is_positive_and_plausible(real, real_factors):
    _, factors, _ = real_factors
    got = factors.loc[("2024-12-31", "MP"), "beta_spy"]
    assert 0.8 < got < 3.0
    # The same number from the two return series over their last 252 common days, by lstsq.
    rets = listing_returns(real["adj_close"][["MP", "SPY"]].loc[:"2024-12-31"].dropna()).iloc[-252:]
    design = np.column_stack([np.ones(252), rets["SPY"].to_numpy()])
    assert got == pytest.approx(np.linalg.lstsq(design, rets["MP"].to_numpy(), rcond=None)[0][1], rel=1e-9)


def test_real_asx_factors_on_their_own_calendar(real, real_factors):
    _, factors, _ = real_factors
    lyc = real["adj_close"]["LYC.AX"]
    assert (lyc.notna() & real["adj_close"]["SPY"].isna()).sum() > 50  # ASX days on which New York is shut
    r = listing_returns(lyc.dropna().to_frame())["LYC.AX"].loc[:"2024-05-31"].iloc[-60:]
    assert factors.loc[("2024-05-31", "LYC.AX"), "volatility_60d"] == pytest.approx(np.std(r, ddof=1) * SQRT_YEAR)
    own_prices = lyc.dropna().loc[:"2024-05-31"]
    assert factors.loc[("2024-05-31", "LYC.AX"), "momentum_12_1"] == pytest.approx(
        own_prices.iloc[-22] / own_prices.iloc[-253] - 1
    )
    # The ASX data end on 2024-05-31: a month later every factor of an ASX listing is NaN, not frozen.
    assert factors.loc[("2024-06-30", "LYC.AX"), FLOAT_COLUMNS].isna().all()
    # VML.AX was suspended for 154 days to 2023-12-18: no factors at the month-ends inside the suspension.
    assert factors.loc[("2023-09-30", "VML.AX"), FLOAT_COLUMNS].isna().all()
    assert factors.loc[("2024-01-31", "VML.AX"), "volatility_60d"] > 0


def test_real_asx_same_day_beta_is_biased_to_zero_and_dimson_corrects_it(real_factors):
    # The ASX closes before New York opens: the Australian market's same-day beta to SPY is small, the
    # one-lag Dimson beta near one.
    _, same_day, dimson = real_factors
    key = ("2023-12-31", "STW.AX")
    assert same_day.loc[key, "beta_spy"] < 0.4
    assert 0.6 < dimson.loc[key, "beta_spy"] < 1.5
    # US listings barely change.
    mp = ("2023-12-31", "MP")
    assert dimson.loc[mp, "beta_spy"] == pytest.approx(same_day.loc[mp, "beta_spy"], abs=0.3)


def test_real_usar_has_no_12_1_momentum_before_twelve_months_of_history(real, real_factors):
    _, factors, _ = real_factors
    usar = factors.xs("USAR", level="ticker")["momentum_12_1"]
    first_ok = real["adj_close"]["USAR"].dropna().index[252]  # its 253rd price (2024-07-17)
    assert usar[usar.index < first_ok].isna().all()
    assert usar[usar.index >= first_ok].notna().all()
    assert factors.loc[("2023-12-31", "USAR"), "volatility_60d"] < 0.1  # still a SPAC trading near $10


def test_real_adv_is_close_times_volume_in_usd(real, real_factors):
    _, factors, _ = real_factors
    value = (real["close"]["MP"] * real["volume"]["MP"]).dropna().loc[:"2024-12-31"].iloc[-60:]
    assert factors.loc[("2024-12-31", "MP"), "adv_60d"] == pytest.approx(value.mean())
    assert factors.loc[("2024-04-30", "LYC.AX"), "adv_60d"] > 1e6  # Lynas trades millions of USD a day
