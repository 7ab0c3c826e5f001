"""Multi-exchange calendars: panels on the union of trading days, returns per listing.

ASX, US and FX days differ (Australia Day, Thanksgiving, the Chinese New Year in CNY quotes), so a panel
of listings from several markets has days on which some listings did not trade. Those cells stay ``NaN``:
prices are never forward-filled and a day without trading never gets a zero return. Each listing's return
runs from its own previous trading day.

Forward-filling happens in two places only. FX (`screener.data.fx.conversion_rates`): on a day a listing
trades but an FX series has no quote, the last quote at most ``max_gap_days`` calendar days old is used. And
valuation in the backtest (`bridge_closed_days`): a holding is valued, and can be rebalanced, at its last close
over a few days its market was shut; prices and returns used as data are never filled.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["bridge_closed_days", "listing_returns", "union_panel"]


def _check_dates(index: object, what: str) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"{what} must have a DatetimeIndex, got {type(index).__name__}")
    if index.tz is not None:
        raise ValueError(f"{what} must have tz-naive dates (trading dates), got time zone {index.tz}")
    return index


def union_panel(series: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Put per-listing series side by side on the union of their dates.

    Nothing is filled: a listing has ``NaN`` on a union date it did not trade (or had a missing value).

    Parameters
    ----------
    series : mapping of str to Series
        One Series per listing (e.g. ``bars["adj_close"]``), each on its own tz-naive, unique
        ``DatetimeIndex`` (trading days of its market).

    Returns
    -------
    DataFrame of shape (n_union_dates, n_listings)
        float64 values; index = sorted union of all dates, named ``date``; columns in the mapping's order,
        named ``ticker``.

    Raises
    ------
    TypeError
        If `series` is not a mapping of Series with a DatetimeIndex, or a Series is not numeric.
    ValueError
        If a Series has time-zone-aware or duplicate dates.
    """
    if not isinstance(series, Mapping):
        raise TypeError(f"`series` must be a mapping of ticker to Series, got {type(series).__name__}")
    index = pd.DatetimeIndex([], name="date")
    for ticker, s in series.items():
        if not isinstance(s, pd.Series):
            raise TypeError(f"`series[{ticker!r}]` must be a Series, got {type(s).__name__}")
        dates = _check_dates(s.index, f"`series[{ticker!r}]`")
        if dates.has_duplicates:
            dup = dates[dates.duplicated()][0]
            raise ValueError(
                f"`series[{ticker!r}]` has duplicate dates (first: {dup.date()}); deduplicate it first"
            )
        index = index.union(dates)
    index = pd.DatetimeIndex(index.sort_values(), name="date")
    columns = {}
    for ticker, s in series.items():
        try:
            columns[ticker] = s.reindex(index).to_numpy(dtype="float64")
        except (TypeError, ValueError):
            raise TypeError(f"`series[{ticker!r}]` must hold numbers, got dtype {s.dtype}") from None
    out = pd.DataFrame(columns, index=index, columns=list(series.keys()))
    out = out.astype("float64")
    out.columns.name = "ticker"
    return out


def listing_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """Return simple returns of each listing from its own previous observed price.

    On a union date where a listing has a price, its return is ``P_t / P_prev - 1`` with ``P_prev`` the
    listing's last price before ``t`` (its previous trading day, however many union dates back). Dates on
    which the listing has no price get ``NaN``, not a zero return; its first observation is ``NaN``. No
    price is invented: the output has ``NaN`` exactly where `prices` does, plus each first observation.

    Parameters
    ----------
    prices : DataFrame of shape (n_dates, n_listings)
        Positive prices on a sorted, unique, tz-naive ``DatetimeIndex`` (e.g. from `union_panel`),
        ``NaN`` on days a listing did not trade.

    Returns
    -------
    DataFrame of shape (n_dates, n_listings)
        Same index and columns as `prices`; the first row is kept (all ``NaN``) so that the axes match.

    Raises
    ------
    TypeError
        If `prices` is not a DataFrame with a DatetimeIndex or holds non-numbers.
    ValueError
        If the dates are unsorted, duplicated or tz-aware, or a price is zero, negative or infinite.
    """
    if not isinstance(prices, pd.DataFrame):
        raise TypeError(f"`prices` must be a DataFrame, got {type(prices).__name__}")
    dates = _check_dates(prices.index, "`prices`")
    if not dates.is_monotonic_increasing or dates.has_duplicates:
        raise ValueError("`prices` must have sorted, unique dates; sort and deduplicate the index first")
    try:
        values = prices.to_numpy(dtype="float64")
    except (TypeError, ValueError):
        raise TypeError("`prices` must hold numbers only") from None
    bad = ~np.isnan(values) & ~(np.isfinite(values) & (values > 0))
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(
            f"`prices` must be positive and finite where present; {int(bad.sum())} cells are not, first "
            f"{prices.columns[cols[0]]!r} on {dates[rows[0]].date()}: {values[rows[0], cols[0]]}"
        )
    # The forward fill only locates each listing's previous observed price; cells without a price stay NaN
    # in the output because the numerator is NaN there.
    previous = pd.DataFrame(values).ffill().shift(1).to_numpy()
    with np.errstate(invalid="ignore"):
        out = values / previous - 1.0
    return pd.DataFrame(out, index=prices.index.copy(), columns=prices.columns.copy())


def bridge_closed_days(prices: pd.DataFrame, max_gap_days: int = 7) -> pd.DataFrame:
    """Carry each listing's last close over days its market was shut, for valuation and trading only.

    A cell is filled with the listing's last close when that close is at most ``max_gap_days`` calendar
    days old: a holiday in one market (Australia Day on a US rebalance date) then neither forces a sale nor
    blocks a purchase. Longer gaps (a suspension, a listing that stopped trading) stay missing, so the
    backtest sells such a holding at the next rebalance. Nothing before a listing's first close is filled.
    Only past closes are used (no look-ahead).

    Parameters
    ----------
    prices : DataFrame of shape (n_dates, n_listings)
        Closes on the union calendar, ``NaN`` where a listing did not trade.
    max_gap_days : int
        Oldest close, in calendar days, that may stand in for a missing one.

    Returns
    -------
    DataFrame of shape (n_dates, n_listings)
    """
    index = _check_dates(prices.index, "prices")
    if max_gap_days < 0:
        raise ValueError(f"`max_gap_days` must be >= 0, got {max_gap_days}")
    days = index.to_numpy().astype("datetime64[D]").astype(np.int64)
    observed = prices.notna().to_numpy()
    stamp = pd.DataFrame(np.where(observed, days[:, None], np.nan), index=index).ffill().to_numpy()
    age = days[:, None] - stamp
    filled = prices.ffill()
    return filled.where(observed | (age <= max_gap_days))
