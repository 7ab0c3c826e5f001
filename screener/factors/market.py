"""Point-in-time market factors: momentum, volatility, beta, liquidity, drawdown and (non-PIT) market cap.

Every factor at a decision date ``t`` is computed from data dated on or before ``t`` only, on each listing's
*own* trading days. The inputs are panels on the union of trading days (`screener.data.panel.load_prices`):
a listing has ``NaN`` on a union day it did not trade, and those rows are skipped, never filled. Windows
count the listing's observed rows (`screener.periods`: 21 rows a month, 252 a year), so an ASX listing's
year is 252 ASX sessions and a US listing's year 252 NYSE sessions.

The point-in-time rule, shared by all factors
---------------------------------------------
At decision date ``t`` (any date, e.g. a month-end that falls on a weekend) a listing's *anchor* is its last
observed row on or before ``t``. If it has none, or the anchor is more than ``max_stale_days`` calendar days
before ``t`` (default `MAX_STALE_DAYS`: a halted, suspended or delisted listing, or a listing whose data
ends), every factor of that listing at ``t`` is ``NaN``. Windows end at the anchor and reach back over the
listing's observed rows only.

Definitions (``P`` = adjusted price in the base currency, ``m`` = anchor row, rows counted per listing)
---------------------------------------------------------------------------------------------------
- ``momentum_12_1 = P[m - 21] / P[m - 252] - 1`` and ``momentum_6_1 = P[m - 21] / P[m - 126] - 1``:
  total return from twelve (six) months ago to one month ago; ``NaN`` unless row ``m - 252`` (``m - 126``)
  exists, i.e. the listing has at least 253 (127) observed prices up to ``t``.
- ``volatility_60d``, ``volatility_252d``: ``std(r[m-W+1..m], ddof=1) * sqrt(252)`` with ``r`` the
  listing's simple returns from its own previous observed price; at least 80% of ``W`` returns (48, 202).
- ``beta_spy``, ``beta_remx``: OLS slope (with intercept) of the listing's base-currency returns on the
  benchmark's returns over their last 252 *common* trading days, both returns running from the previous
  common day; at least 202 common returns. ``lags=L`` adds the benchmark returns of the ``L`` previous
  common days as regressors and reports the sum of the slopes (Dimson, 1979).
- ``adv_60d``: mean of ``close_base * volume`` over the listing's last 60 observed rows, at least 48 with
  both a close and a volume; in the base currency (a day with zero volume counts as zero).
- ``max_drawdown_1y``: ``min_s (P[s] / max(P[m-252..s]) - 1)`` over ``s`` in ``[m - 252, m]``, a number in
  ``[-1, 0]`` (negative, as empyrical); at least 202 returns in the window.
- ``market_cap``: ``close_base[m] * shares_outstanding``; **not point in time** (``market_cap_pit`` is
  False): the project has no history of shares outstanding, only current counts.

Limitations
-----------
- Non-synchronous trading: the ASX closes before New York opens, so an ASX listing's return on day ``d``
  reflects the US session of ``d - 1`` more than that of ``d``. A same-day beta to SPY or REMX is biased
  towards zero for such listings; ``lags=1`` (Dimson) corrects most of it. The default is ``lags=0`` (plain
  OLS, comparable with empyrical and for US listings).
- Trading-row windows stretch over halts: after a 154-day suspension a "252-day" window spans well over a
  calendar year.
- SPAC shells (USAR before 2025-03-14, CRML before 2024-02-28) are listed under the same symbol, so their
  momentum and volatility windows include the pre-merger trust-value prices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from screener.periods import (
    DAILY,
    SHORT_WINDOW,
    TRADING_DAYS_PER_MONTH,
    TRADING_DAYS_PER_YEAR,
    annualization_factor,
    trading_days,
)

__all__ = [
    "BENCHMARKS",
    "FACTOR_COLUMNS",
    "MAX_STALE_DAYS",
    "MIN_OBS_FRACTION",
    "adv",
    "adv_60d",
    "beta",
    "beta_remx",
    "beta_spy",
    "market_cap",
    "market_factors",
    "max_drawdown",
    "max_drawdown_1y",
    "momentum",
    "momentum_6_1",
    "momentum_12_1",
    "volatility",
    "volatility_60d",
    "volatility_252d",
]

# A window statistic needs at least this share of its window observed (48 of 60, 202 of 252).
MIN_OBS_FRACTION = 0.8
# Calendar days an anchor may lag the decision date: covers weekends and the longest regular holidays
# (Easter on the ASX, Christmas to New Year) and a five-day gap in the ASX source, not a suspension.
MAX_STALE_DAYS = 10
# Keys of `market_factors(benchmarks=...)` and the beta column each one feeds.
BENCHMARKS: dict[str, str] = {"SPY": "beta_spy", "REMX": "beta_remx"}
FACTOR_COLUMNS: tuple[str, ...] = (
    "momentum_12_1",
    "momentum_6_1",
    "volatility_60d",
    "volatility_252d",
    "beta_spy",
    "beta_remx",
    "adv_60d",
    "max_drawdown_1y",
    "market_cap",
    "market_cap_pit",
)
_NS_PER_DAY = 86_400 * 10**9
# Bound on the number of floats the drawdown windows materialise at once.
_DRAWDOWN_CHUNK = 4_000_000


def _min_obs(window: int, min_obs: int | None) -> int:
    return math.ceil(MIN_OBS_FRACTION * window - 1e-9) if min_obs is None else min_obs


# ---------------------------------------------------------------- validation


def _check_positive_int(value: object, name: str, low: int = 1) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ValueError(f"`{name}` must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_min_obs(min_obs: int | None, window: int, name: str = "min_obs") -> int:
    if min_obs is None:
        return _min_obs(window, None)
    value = _check_positive_int(min_obs, name)
    if value > window:
        raise ValueError(f"`{name}` must be at most the window ({window}), got {value}")
    return value


def _check_stale(max_stale_days: int | None) -> int | None:
    if max_stale_days is None:
        return None
    return _check_positive_int(max_stale_days, "max_stale_days", low=0)


def _check_panel(frame: object, name: str, *, positive: bool = True) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`{name}` must be a DataFrame of shape (n_dates, n_tickers), got {type(frame).__name__}")
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"`{name}` must have a DatetimeIndex, got {type(index).__name__}")
    if index.tz is not None:
        raise ValueError(f"`{name}` must have tz-naive dates, got time zone {index.tz}")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise ValueError(f"`{name}` must have sorted, unique dates; sort and deduplicate the index first")
    if frame.columns.has_duplicates:
        dup = frame.columns[frame.columns.duplicated()][0]
        raise ValueError(f"`{name}` has duplicate columns (first: {dup!r})")
    try:
        values = frame.to_numpy(dtype="float64")
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must hold numbers only") from None
    bad = ~np.isnan(values) & ~(np.isfinite(values) & ((values > 0) if positive else (values >= 0)))
    if bad.any():
        rows, cols = np.nonzero(bad)
        what = "positive and finite" if positive else "non-negative and finite"
        raise ValueError(
            f"`{name}` must be {what} where present; {int(bad.sum())} cells are not, first "
            f"{frame.columns[cols[0]]!r} on {index[rows[0]].date()}: {values[rows[0], cols[0]]}"
        )
    return frame


def _check_dates(dates: object) -> pd.DatetimeIndex:
    if isinstance(dates, str | pd.Timestamp) or not hasattr(dates, "__len__"):
        raise TypeError(f"`dates` must be a list-like of dates, got {type(dates).__name__}")
    try:
        out = pd.DatetimeIndex(dates)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`dates` must be a list-like of dates: {exc}") from None
    if out.tz is not None:
        raise ValueError(f"`dates` must be tz-naive, got time zone {out.tz}")
    if out.hasnans:
        raise ValueError("`dates` must not contain NaT")
    return pd.DatetimeIndex(out.unique().sort_values(), name="date")


def _check_benchmark(benchmark: object, name: str) -> pd.Series:
    if not isinstance(benchmark, pd.Series):
        raise TypeError(f"`{name}` must be a Series of benchmark prices, got {type(benchmark).__name__}")
    _check_panel(benchmark.to_frame(), name)
    return benchmark


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    return index.as_unit("ns").asi8


# ---------------------------------------------------------------- packing each listing's observed rows


@dataclass(frozen=True)
class _Observed:
    """Each column's observed rows packed to the top, and the anchor row of each (date, column).

    ``order[k, j]`` is the union row of column ``j``'s ``k``-th observation; ``anchor[d, j]`` the packed row of
    its last observation on or before ``dates[d]`` (``-1``: none, or stale).
    """

    order: np.ndarray  # (n_obs, n_cols) int
    count: np.ndarray  # (n_cols,) int
    anchor: np.ndarray  # (n_dates, n_cols) int

    def pack(self, values: np.ndarray) -> np.ndarray:
        """Values at each column's observed rows, shape (n_obs, n_cols), NaN below the last observation."""
        n_obs = self.order.shape[0]
        if values.shape[0] == 0:
            return np.full((n_obs, values.shape[1]), np.nan)
        packed = np.take_along_axis(values, self.order, axis=0)
        packed[np.arange(n_obs)[:, None] >= self.count] = np.nan
        return packed


def _observe(mask: np.ndarray, index_ns: np.ndarray, dates_ns: np.ndarray, max_stale_days: int | None) -> _Observed:
    n_rows, n_cols = mask.shape
    count = mask.sum(axis=0)
    n_obs = max(int(count.max(initial=0)), 1)
    if n_rows == 0:
        order = np.zeros((n_obs, n_cols), dtype=np.intp)
        return _Observed(order, count, np.full((len(dates_ns), n_cols), -1, dtype=np.intp))
    # A stable sort of "not observed" puts each column's observed rows first, in date order.
    order = np.argsort(~mask, axis=0, kind="stable")[:n_obs]
    row = np.searchsorted(index_ns, dates_ns, side="right") - 1  # last union row on or before each date
    seen = np.cumsum(mask, axis=0)
    anchor = np.where(row[:, None] >= 0, seen[np.maximum(row, 0)] - 1, -1)
    if max_stale_days is not None and anchor.size:
        anchor_ns = index_ns[order[np.maximum(anchor, 0), np.arange(n_cols)]]
        stale = dates_ns[:, None] - anchor_ns > max_stale_days * _NS_PER_DAY
        anchor = np.where(stale, -1, anchor)
    return _Observed(order, count, anchor)


def _take(packed: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``packed[rows[d, j], j]``, NaN where ``rows < 0``; shape of `rows`."""
    out = packed[np.maximum(rows, 0), np.arange(packed.shape[1])]
    return np.where(rows >= 0, out, np.nan)


def _returns(packed: np.ndarray) -> np.ndarray:
    out = np.full_like(packed, np.nan)
    out[1:] = packed[1:] / packed[:-1] - 1.0
    return out


def _window_sum(packed: np.ndarray, anchor: np.ndarray, window: int) -> np.ndarray:
    """Sum of the non-NaN values in packed rows ``anchor - window + 1 .. anchor``; shape of `anchor`.

    Differences of cumulative sums: the value at an anchor depends on rows up to the anchor only, so later
    data cannot change it, and the cost is one pass over the packed rows whatever the number of dates.
    """
    cum = np.zeros((packed.shape[0] + 1, packed.shape[1]))
    np.nancumsum(packed, axis=0, out=cum[1:])
    cols = np.arange(packed.shape[1])
    hi = np.maximum(anchor + 1, 0)
    lo = np.maximum(anchor + 1 - window, 0)
    return np.where(anchor >= 0, cum[hi, cols] - cum[lo, cols], np.nan)


def _window_count(valid: np.ndarray, anchor: np.ndarray, window: int) -> np.ndarray:
    return _window_sum(valid.astype("float64"), anchor, window)


def _wide(values: np.ndarray, dates: pd.DatetimeIndex, columns: pd.Index) -> pd.DataFrame:
    out = pd.DataFrame(values, index=dates.copy(), columns=columns.copy())
    out.columns.name = "ticker"
    return out


# ---------------------------------------------------------------- kernels on packed rows


def _momentum(packed: np.ndarray, anchor: np.ndarray, lookback: int, skip: int) -> np.ndarray:
    start = np.where(anchor >= 0, anchor - lookback, -1)
    end = np.where(anchor >= 0, anchor - skip, -1)
    return _take(packed, end) / _take(packed, start) - 1.0


def _volatility(packed: np.ndarray, anchor: np.ndarray, window: int, min_obs: int) -> np.ndarray:
    r = _returns(packed)
    n = _window_count(~np.isnan(r), anchor, window)
    s1 = _window_sum(r, anchor, window)
    s2 = _window_sum(r * r, anchor, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Rounding can leave a tiny negative sum of squares for a window of identical returns.
        var = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1)
    return np.where(n >= min_obs, np.sqrt(var) * math.sqrt(annualization_factor(DAILY)), np.nan)


def _mean(packed: np.ndarray, anchor: np.ndarray, window: int, min_obs: int) -> np.ndarray:
    n = _window_count(~np.isnan(packed), anchor, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = _window_sum(packed, anchor, window) / n
    return np.where(n >= min_obs, mean, np.nan)


def _max_drawdown(packed: np.ndarray, anchor: np.ndarray, window: int, min_obs: int) -> np.ndarray:
    n_dates, n_cols = anchor.shape
    out = np.full((n_dates, n_cols), np.nan)
    # Column j of `padded` holds packed column j after `window` NaN, so its prices P[m - window .. m] are
    # padded[j, m .. m + window]: a contiguous block (tickers first keeps the gathered windows contiguous).
    padded = np.hstack([np.full((n_cols, window), np.nan), packed.T])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window + 1, axis=1)  # (n_cols, n_obs, window + 1)
    enough = anchor >= min_obs  # the window then holds min(anchor, window) >= min_obs returns
    d_idx, c_idx = np.nonzero(enough)
    step = max(_DRAWDOWN_CHUNK // (window + 1), 1)
    for lo in range(0, len(d_idx), step):
        d, c = d_idx[lo : lo + step], c_idx[lo : lo + step]
        w = windows[c, anchor[d, c]]  # (n_points, window + 1), NaN before the listing's first price
        peak = np.fmax.accumulate(w, axis=1)  # fmax skips the leading NaN
        with np.errstate(invalid="ignore"):
            out[d, c] = np.fmin.reduce(w / peak - 1.0, axis=1)  # fmin skips them too
    return out


def _beta(
    prices: np.ndarray,
    benchmark: np.ndarray,
    index_ns: np.ndarray,
    dates_ns: np.ndarray,
    own_anchor: np.ndarray,
    *,
    window: int,
    min_obs: int,
    lags: int,
    max_stale_days: int | None,
) -> np.ndarray:
    mask = ~np.isnan(prices) & ~np.isnan(benchmark)[:, None]
    common = _observe(mask, index_ns, dates_ns, max_stale_days)
    # The listing's own last price must be fresh too, not only the last common day.
    anchor = np.where(own_anchor >= 0, common.anchor, -1)
    y = _returns(common.pack(prices))
    x0 = _returns(common.pack(np.broadcast_to(benchmark[:, None], prices.shape)))
    xs = [x0]
    for k in range(1, lags + 1):  # the benchmark's return k common days earlier
        xk = np.full_like(x0, np.nan)
        xk[k:] = x0[:-k]
        xs.append(xk)
    # Complete cases only, so that every moment is taken over the same rows.
    valid = ~np.isnan(y)
    for x in xs:
        valid &= ~np.isnan(x)
    y = np.where(valid, y, np.nan)
    xs = [np.where(valid, x, np.nan) for x in xs]
    n = _window_count(valid, anchor, window)
    sums = [_window_sum(x, anchor, window) for x in xs]
    sum_y = _window_sum(y, anchor, window)
    k = lags + 1
    # Normal equations of the regression with intercept, in centred cross-products.
    gram = np.empty((*anchor.shape, k, k))
    cross = np.empty((*anchor.shape, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(k):
            cross[..., i] = _window_sum(xs[i] * y, anchor, window) - sums[i] * sum_y / n
            for j in range(i, k):
                gram[..., i, j] = gram[..., j, i] = _window_sum(xs[i] * xs[j], anchor, window) - sums[i] * sums[j] / n
    diag = np.diagonal(gram, axis1=-2, axis2=-1)
    ok = (n >= min_obs) & np.isfinite(gram).all(axis=(-2, -1)) & np.isfinite(cross).all(axis=-1)
    ok &= (diag > 0).all(axis=-1)
    if k > 1:  # perfectly collinear lagged returns leave the slopes undetermined
        det = np.linalg.det(np.where(ok[..., None, None], gram, np.eye(k)))
        ok &= det > 1e-12 * np.prod(np.where(ok[..., None], diag, 1.0), axis=-1)
    else:  # a benchmark whose returns are all equal in the window (rounding leaves a tiny positive sum)
        ok &= diag[..., 0] > 1e-14 * np.where(ok, _window_sum(xs[0] * xs[0], anchor, window), 1.0)
    safe_gram = np.where(ok[..., None, None], gram, np.eye(k))
    safe_cross = np.where(ok[..., None], cross, 0.0)
    slopes = np.linalg.solve(safe_gram, safe_cross[..., None])[..., 0]
    return np.where(ok, slopes.sum(axis=-1), np.nan)


# ---------------------------------------------------------------- public factors


def momentum(
    prices: pd.DataFrame,
    dates: object,
    *,
    lookback: int,
    skip: int = TRADING_DAYS_PER_MONTH,
    max_stale_days: int | None = MAX_STALE_DAYS,
) -> pd.DataFrame:
    """Return each listing's total return from `lookback` to `skip` of its own trading rows before each date.

    ``P[m - skip] / P[m - lookback] - 1`` with ``m`` the listing's anchor (last observed row on or before the
    date, see the module docstring); ``NaN`` without an anchor or without row ``m - lookback``.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices (base currency) on the union of trading days, ``NaN`` where a listing did not trade.
    dates : list-like of dates, length n_dates
        Decision dates; sorted and deduplicated.
    lookback : int
        Rows back to the start price (252 for twelve months, `screener.periods.trading_days`).
    skip : int
        Rows back to the end price, ``0 <= skip < lookback`` (21: skip the latest month).
    max_stale_days : int or None
        Calendar days the anchor may lag the date (None: no limit).

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
        Simple returns; index `dates` (``date``), columns as in `prices` (``ticker``).
    """
    prices = _check_panel(prices, "prices")
    lookback = _check_positive_int(lookback, "lookback")
    skip = _check_positive_int(skip, "skip", low=0)
    if skip >= lookback:
        raise ValueError(f"`skip` must be smaller than `lookback` ({lookback}), got {skip}")
    dates = _check_dates(dates)
    values = prices.to_numpy(dtype="float64")
    obs = _observe(~np.isnan(values), _ns(prices.index), _ns(dates), _check_stale(max_stale_days))
    return _wide(_momentum(obs.pack(values), obs.anchor, lookback, skip), dates, prices.columns)


def momentum_12_1(prices: pd.DataFrame, dates: object, *, max_stale_days: int | None = MAX_STALE_DAYS) -> pd.DataFrame:
    """Return from twelve months (252 rows) to one month (21 rows) before each date: `momentum` with those rows.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency, ``NaN`` where a listing did not trade.
    dates : list-like of dates, length n_dates
        Decision dates.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
        ``NaN`` until the listing has 253 observed prices.
    """
    return momentum(
        prices, dates, lookback=trading_days(months=12), skip=trading_days(months=1), max_stale_days=max_stale_days
    )


def momentum_6_1(prices: pd.DataFrame, dates: object, *, max_stale_days: int | None = MAX_STALE_DAYS) -> pd.DataFrame:
    """Return from six months (126 rows) to one month (21 rows) before each date: `momentum` with those rows.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency, ``NaN`` where a listing did not trade.
    dates : list-like of dates, length n_dates
        Decision dates.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
        ``NaN`` until the listing has 127 observed prices.
    """
    return momentum(
        prices, dates, lookback=trading_days(months=6), skip=trading_days(months=1), max_stale_days=max_stale_days
    )


def volatility(
    prices: pd.DataFrame,
    dates: object,
    *,
    window: int,
    min_obs: int | None = None,
    max_stale_days: int | None = MAX_STALE_DAYS,
) -> pd.DataFrame:
    """Return the annualised volatility of each listing's last `window` returns up to each date.

    ``std(r[m - window + 1 .. m], ddof=1) * sqrt(252)``, ``r`` the listing's simple returns from its own
    previous observed price (`screener.data.calendar.listing_returns`), ``m`` its anchor.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency, ``NaN`` where a listing did not trade.
    dates : list-like of dates, length n_dates
        Decision dates.
    window : int
        Number of returns (60, 252).
    min_obs : int, optional
        Returns needed in the window; default 80% of `window` rounded up.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
        Annualised standard deviation (0.45 = 45% a year).
    """
    prices = _check_panel(prices, "prices")
    window = _check_positive_int(window, "window", low=2)
    min_obs = max(_check_min_obs(min_obs, window), 2)
    dates = _check_dates(dates)
    values = prices.to_numpy(dtype="float64")
    obs = _observe(~np.isnan(values), _ns(prices.index), _ns(dates), _check_stale(max_stale_days))
    return _wide(_volatility(obs.pack(values), obs.anchor, window, min_obs), dates, prices.columns)


def volatility_60d(prices: pd.DataFrame, dates: object, *, max_stale_days: int | None = MAX_STALE_DAYS) -> pd.DataFrame:
    """Annualised volatility of the last 60 returns, at least 48: `volatility` with ``window=60``.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency.
    dates : list-like of dates, length n_dates
        Decision dates.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
    """
    return volatility(prices, dates, window=SHORT_WINDOW, max_stale_days=max_stale_days)


def volatility_252d(
    prices: pd.DataFrame, dates: object, *, max_stale_days: int | None = MAX_STALE_DAYS
) -> pd.DataFrame:
    """Annualised volatility of the last 252 returns, at least 202: `volatility` with ``window=252``.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency.
    dates : list-like of dates, length n_dates
        Decision dates.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
    """
    return volatility(prices, dates, window=TRADING_DAYS_PER_YEAR, max_stale_days=max_stale_days)


def beta(
    prices: pd.DataFrame,
    benchmark: pd.Series,
    dates: object,
    *,
    window: int = TRADING_DAYS_PER_YEAR,
    lags: int = 0,
    min_obs: int | None = None,
    max_stale_days: int | None = MAX_STALE_DAYS,
) -> pd.DataFrame:
    """Return each listing's beta to a benchmark over their last `window` common trading days.

    On the days both the listing and the benchmark have a price, both returns run from the previous such
    day; the beta is the OLS slope (intercept included) of the listing's returns on the benchmark's over the
    last `window` of them, up to the last common day on or before each date. With ``lags=L`` the regressors
    are the benchmark's returns on the same and the ``L`` previous common days, and the beta is the sum of
    the ``L + 1`` slopes (Dimson, 1979), for listings that close before the benchmark's market (ASX vs New
    York), whose same-day beta is biased towards zero.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency, ``NaN`` where a listing did not trade.
    benchmark : Series
        The benchmark's adjusted prices in the same currency (e.g. SPY); only its values on the dates of
        `prices` are used, never forward-filled.
    dates : list-like of dates, length n_dates
        Decision dates.
    window : int
        Common returns in the regression (252).
    lags : int
        Lagged benchmark returns added (0: plain OLS beta; 1: Dimson with one lag).
    min_obs : int, optional
        Complete observations needed in the window; default 80% of `window` rounded up (202).
    max_stale_days : int or None
        See `momentum`; applied both to the listing's last price and to the last common day.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
        Betas; ``NaN`` when the benchmark's returns have no variance in the window.
    """
    prices = _check_panel(prices, "prices")
    benchmark = _check_benchmark(benchmark, "benchmark")
    window = _check_positive_int(window, "window", low=2)
    lags = _check_positive_int(lags, "lags", low=0)
    min_obs = _check_min_obs(min_obs, window)
    if min_obs < lags + 3:
        raise ValueError(f"`min_obs` must be at least lags + 3 = {lags + 3} to fit the regression, got {min_obs}")
    dates = _check_dates(dates)
    stale = _check_stale(max_stale_days)
    return _wide(_beta_of(prices, benchmark, dates, window, min_obs, lags, stale), dates, prices.columns)


def _beta_of(
    prices: pd.DataFrame,
    benchmark: pd.Series,
    dates: pd.DatetimeIndex,
    window: int,
    min_obs: int,
    lags: int,
    stale: int | None,
    own: _Observed | None = None,
) -> np.ndarray:
    values = prices.to_numpy(dtype="float64")
    bench = benchmark.reindex(prices.index).to_numpy(dtype="float64")
    index_ns, dates_ns = _ns(prices.index), _ns(dates)
    own = own if own is not None else _observe(~np.isnan(values), index_ns, dates_ns, stale)
    return _beta(
        values, bench, index_ns, dates_ns, own.anchor, window=window, min_obs=min_obs, lags=lags, max_stale_days=stale
    )


def beta_spy(
    prices: pd.DataFrame, spy: pd.Series, dates: object, *, lags: int = 0, max_stale_days: int | None = MAX_STALE_DAYS
) -> pd.DataFrame:
    """252-day beta to SPY: `beta` with ``benchmark=spy``.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency.
    spy : Series
        SPY adjusted prices in the same currency.
    dates : list-like of dates, length n_dates
        Decision dates.
    lags : int
        0 (default, same-day OLS) or more for the Dimson sum of lagged betas.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
    """
    return beta(prices, spy, dates, lags=lags, max_stale_days=max_stale_days)


def beta_remx(
    prices: pd.DataFrame, remx: pd.Series, dates: object, *, lags: int = 0, max_stale_days: int | None = MAX_STALE_DAYS
) -> pd.DataFrame:
    """252-day beta to REMX (VanEck Rare Earth and Strategic Metals ETF): `beta` with ``benchmark=remx``.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency.
    remx : Series
        REMX adjusted prices in the same currency.
    dates : list-like of dates, length n_dates
        Decision dates.
    lags : int
        0 (default, same-day OLS) or more for the Dimson sum of lagged betas.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
    """
    return beta(prices, remx, dates, lags=lags, max_stale_days=max_stale_days)


def _traded_value(close_base: pd.DataFrame, volume: pd.DataFrame) -> np.ndarray:
    vol = volume.reindex(index=close_base.index, columns=close_base.columns).to_numpy(dtype="float64")
    return close_base.to_numpy(dtype="float64") * vol


def adv(
    close_base: pd.DataFrame,
    volume: pd.DataFrame,
    dates: object,
    *,
    window: int = SHORT_WINDOW,
    min_obs: int | None = None,
    max_stale_days: int | None = MAX_STALE_DAYS,
) -> pd.DataFrame:
    """Return the average daily traded value over each listing's last `window` trading days.

    ``mean(close_base * volume)`` over the listing's last `window` rows with a close on or before each date;
    rows with a close but no volume are skipped, rows with zero volume count as zero.

    Parameters
    ----------
    close_base : DataFrame of shape (n_days, n_tickers)
        Unadjusted closes converted to the base currency at same-day FX (``load_prices(field="close")``),
        ``NaN`` where a listing did not trade. Its observed rows are the listing's trading days.
    volume : DataFrame of shape (n_days, n_tickers)
        Shares traded (``load_prices(field="volume")``); aligned to `close_base` by date and ticker.
    dates : list-like of dates, length n_dates
        Decision dates.
    window : int
        Trading days averaged (60).
    min_obs : int, optional
        Days with a traded value needed in the window; default 80% of `window` rounded up (48).
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
        Base-currency value traded per day.
    """
    close_base = _check_panel(close_base, "close_base")
    volume = _check_panel(volume, "volume", positive=False)
    window = _check_positive_int(window, "window")
    min_obs = _check_min_obs(min_obs, window)
    dates = _check_dates(dates)
    close = close_base.to_numpy(dtype="float64")
    obs = _observe(~np.isnan(close), _ns(close_base.index), _ns(dates), _check_stale(max_stale_days))
    value = obs.pack(_traded_value(close_base, volume))
    return _wide(_mean(value, obs.anchor, window, min_obs), dates, close_base.columns)


def adv_60d(
    close_base: pd.DataFrame, volume: pd.DataFrame, dates: object, *, max_stale_days: int | None = MAX_STALE_DAYS
) -> pd.DataFrame:
    """Average daily traded value over the last 60 trading days, at least 48: `adv` with ``window=60``.

    Parameters
    ----------
    close_base : DataFrame of shape (n_days, n_tickers)
        Closes in the base currency.
    volume : DataFrame of shape (n_days, n_tickers)
        Shares traded.
    dates : list-like of dates, length n_dates
        Decision dates.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
    """
    return adv(close_base, volume, dates, window=SHORT_WINDOW, max_stale_days=max_stale_days)


def max_drawdown(
    prices: pd.DataFrame,
    dates: object,
    *,
    window: int = TRADING_DAYS_PER_YEAR,
    min_obs: int | None = None,
    max_stale_days: int | None = MAX_STALE_DAYS,
) -> pd.DataFrame:
    """Return the maximum drawdown of each listing's price over its last `window` returns up to each date.

    ``min_s (P[s] / max(P[m - window .. s]) - 1)`` for ``s`` in ``[m - window, m]`` (``window + 1`` prices),
    ``m`` the anchor: a number in ``[-1, 0]``, 0 for a price that never fell (empyrical's sign).

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency, ``NaN`` where a listing did not trade.
    dates : list-like of dates, length n_dates
        Decision dates.
    window : int
        Returns in the window (252).
    min_obs : int, optional
        Returns needed in the window; default 80% of `window` rounded up (202).
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
        Drawdowns, ``<= 0``.
    """
    prices = _check_panel(prices, "prices")
    window = _check_positive_int(window, "window")
    min_obs = _check_min_obs(min_obs, window)
    dates = _check_dates(dates)
    values = prices.to_numpy(dtype="float64")
    obs = _observe(~np.isnan(values), _ns(prices.index), _ns(dates), _check_stale(max_stale_days))
    return _wide(_max_drawdown(obs.pack(values), obs.anchor, window, min_obs), dates, prices.columns)


def max_drawdown_1y(
    prices: pd.DataFrame, dates: object, *, max_stale_days: int | None = MAX_STALE_DAYS
) -> pd.DataFrame:
    """Maximum drawdown over the last 252 returns, at least 202: `max_drawdown` with ``window=252``.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency.
    dates : list-like of dates, length n_dates
        Decision dates.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates, n_tickers)
    """
    return max_drawdown(prices, dates, window=TRADING_DAYS_PER_YEAR, max_stale_days=max_stale_days)


def _shares(shares_outstanding: pd.Series | None, columns: pd.Index) -> np.ndarray:
    if shares_outstanding is None:
        return np.full(len(columns), np.nan)
    if not isinstance(shares_outstanding, pd.Series):
        raise TypeError(
            f"`shares_outstanding` must be a Series indexed by ticker or None, got {type(shares_outstanding).__name__}"
        )
    if shares_outstanding.index.has_duplicates:
        raise ValueError("`shares_outstanding` has duplicate tickers")
    try:
        shares = shares_outstanding.reindex(columns).to_numpy(dtype="float64")
    except (TypeError, ValueError):
        raise TypeError("`shares_outstanding` must hold numbers") from None
    bad = ~np.isnan(shares) & ~(np.isfinite(shares) & (shares > 0))
    if bad.any():
        first = columns[np.argmax(bad)]
        raise ValueError(f"`shares_outstanding` must be positive where given; {first!r} has {shares[np.argmax(bad)]}")
    return shares


def _market_cap(close: np.ndarray, obs: _Observed, shares: np.ndarray) -> np.ndarray:
    return _take(obs.pack(close), obs.anchor) * shares


def market_cap(
    shares_outstanding: pd.Series | None,
    close_base: pd.DataFrame,
    dates: object,
    *,
    max_stale_days: int | None = MAX_STALE_DAYS,
) -> pd.DataFrame:
    """Return the market capitalisation from *current* share counts: not point in time.

    ``close_base[m] * shares_outstanding`` with ``m`` the listing's anchor. The project has no history of
    shares outstanding, so the same (current) count multiplies every past close: issuance and buybacks since
    a date are wrongly applied to it, which flatters companies that have diluted heavily (most explorers).
    ``market_cap_pit`` says so on every row; a point-in-time source would set it True.

    Parameters
    ----------
    shares_outstanding : Series or None
        Current shares outstanding indexed by ticker; None, a missing ticker or ``NaN`` gives ``NaN``.
    close_base : DataFrame of shape (n_days, n_tickers)
        Unadjusted closes in the base currency, ``NaN`` where a listing did not trade.
    dates : list-like of dates, length n_dates
        Decision dates.
    max_stale_days : int or None
        See `momentum`.

    Returns
    -------
    DataFrame of shape (n_dates * n_tickers, 2)
        Index (``date``, ``ticker``), columns ``market_cap`` (float, base currency) and ``market_cap_pit``
        (bool, False).
    """
    close_base = _check_panel(close_base, "close_base")
    dates = _check_dates(dates)
    shares = _shares(shares_outstanding, close_base.columns)
    close = close_base.to_numpy(dtype="float64")
    obs = _observe(~np.isnan(close), _ns(close_base.index), _ns(dates), _check_stale(max_stale_days))
    cap = _market_cap(close, obs, shares)
    return _long({"market_cap": cap, "market_cap_pit": np.zeros(cap.shape, dtype=bool)}, dates, close_base.columns)


def _long(columns: Mapping[str, np.ndarray], dates: pd.DatetimeIndex, tickers: pd.Index) -> pd.DataFrame:
    index = pd.MultiIndex.from_product([dates, tickers], names=["date", "ticker"])
    return pd.DataFrame({name: values.ravel() for name, values in columns.items()}, index=index)


def market_factors(
    prices_adj_base: pd.DataFrame,
    close_base: pd.DataFrame,
    volume: pd.DataFrame,
    dates: object,
    *,
    benchmarks: Mapping[str, pd.Series],
    shares_outstanding: pd.Series | None = None,
    beta_lags: int = 0,
    max_stale_days: int | None = MAX_STALE_DAYS,
) -> pd.DataFrame:
    """Return all market factors at each decision date, point in time, in long form.

    The columns are the factors of the module docstring, each computed exactly as its own function
    (`momentum_12_1`, ..., `market_cap`) but sharing the packing of each listing's observed rows.

    Parameters
    ----------
    prices_adj_base : DataFrame of shape (n_days, n_tickers)
        Adjusted prices in the base currency (``load_prices(field="adj_close").prices``), ``NaN`` where a
        listing did not trade: momentum, volatility, beta and drawdown.
    close_base : DataFrame of shape (n_days, n_tickers)
        Closes in the base currency (``load_prices(field="close").prices``): ADV and market cap. Aligned to
        `prices_adj_base` by date and ticker.
    volume : DataFrame of shape (n_days, n_tickers)
        Shares traded (``load_prices(field="volume").prices``), aligned the same way.
    dates : list-like of dates, length n_dates
        Decision dates (e.g. month-ends); sorted and deduplicated.
    benchmarks : mapping with keys "SPY" and "REMX"
        Adjusted benchmark prices (Series) in the base currency.
    shares_outstanding : Series, optional
        Current shares outstanding by ticker (see `market_cap`); default all ``NaN``.
    beta_lags : int
        Lagged benchmark returns in the betas (0: same-day OLS; 1: Dimson, advisable for ASX listings).
    max_stale_days : int or None
        Calendar days a listing's last price may lag a date before its factors become ``NaN``.

    Returns
    -------
    DataFrame of shape (n_dates * n_tickers, 10)
        Index (``date``, ``ticker``): every date times every column of `prices_adj_base`, in that order;
        columns `FACTOR_COLUMNS` (``market_cap_pit`` bool, the others float).

    Raises
    ------
    KeyError
        If `benchmarks` lacks "SPY" or "REMX".
    """
    prices = _check_panel(prices_adj_base, "prices_adj_base")
    tickers = prices.columns
    close_frame = _check_panel(close_base, "close_base").reindex(index=prices.index, columns=tickers)
    volume_frame = _check_panel(volume, "volume", positive=False)
    if not isinstance(benchmarks, Mapping):
        raise TypeError(f"`benchmarks` must be a mapping of name to price Series, got {type(benchmarks).__name__}")
    lacking = [k for k in BENCHMARKS if k not in benchmarks]
    if lacking:
        raise KeyError(f"`benchmarks` must have the keys {', '.join(BENCHMARKS)}; missing {', '.join(lacking)}")
    bench = {k: _check_benchmark(benchmarks[k], f"benchmarks[{k!r}]") for k in BENCHMARKS}
    beta_lags = _check_positive_int(beta_lags, "beta_lags", low=0)
    stale = _check_stale(max_stale_days)
    dates = _check_dates(dates)
    shares = _shares(shares_outstanding, tickers)

    index_ns, dates_ns = _ns(prices.index), _ns(dates)
    values = prices.to_numpy(dtype="float64")
    obs = _observe(~np.isnan(values), index_ns, dates_ns, stale)
    packed = obs.pack(values)
    year, month = trading_days(years=1), trading_days(months=1)
    close = close_frame.to_numpy(dtype="float64")
    close_obs = _observe(~np.isnan(close), index_ns, dates_ns, stale)
    out = {
        "momentum_12_1": _momentum(packed, obs.anchor, year, month),
        "momentum_6_1": _momentum(packed, obs.anchor, trading_days(months=6), month),
        "volatility_60d": _volatility(packed, obs.anchor, SHORT_WINDOW, _min_obs(SHORT_WINDOW, None)),
        "volatility_252d": _volatility(packed, obs.anchor, year, _min_obs(year, None)),
    }
    for key, column in BENCHMARKS.items():
        out[column] = _beta_of(prices, bench[key], dates, year, _min_obs(year, None), beta_lags, stale, obs)
    value = close_obs.pack(_traded_value(close_frame, volume_frame))
    out["adv_60d"] = _mean(value, close_obs.anchor, SHORT_WINDOW, _min_obs(SHORT_WINDOW, None))
    out["max_drawdown_1y"] = _max_drawdown(packed, obs.anchor, year, _min_obs(year, None))
    out["market_cap"] = _market_cap(close, close_obs, shares)
    out["market_cap_pit"] = np.zeros(obs.anchor.shape, dtype=bool)
    return _long(out, dates, tickers)
