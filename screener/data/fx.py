"""Currency conversion with same-day Yahoo FX closes.

A Yahoo FX series quotes ``quote_currency`` units per one ``base_currency`` (``AUDUSD=X``: USD per AUD;
``CNY=X``: CNY per USD). `screener.markets.fx_route` says which series convert one currency into another,
crossing through USD, and whether to multiply by each (``invert=False``) or divide.

Forward-filling policy: FX is the only data the library forward-fills, and only over FX holidays. When a
listing trades on a date an FX series has no quote, the last quote at most ``max_gap_days`` calendar days
old is used; beyond that the rate (and the converted price) is ``NaN``. Quotes are never taken from a
later date.

Conversion uses the FX close stamped with the same calendar date as the price. The two closes are not
simultaneous (an ASX close precedes the European and US trading day whose FX close carries that date), so
converted daily returns include a few hours of FX noise; over weeks it is negligible. Bad FX ticks are not
repaired here: `screener.data.quality.check_bars` flags them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from screener.exceptions import DataError
from screener.markets import currency_unit, fx_route

__all__ = ["conversion_rates", "split_fx_return", "to_base_currency"]

_NS_PER_DAY = 86_400 * 1_000_000_000


def _tz_naive_dates(index: object, what: str) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"{what} must have a DatetimeIndex, got {type(index).__name__}")
    if index.tz is not None:
        raise ValueError(f"{what} must have tz-naive dates, got time zone {index.tz}; use .tz_localize(None)")
    return index


def _rate_on(quotes: pd.Series, symbol: str, index: pd.DatetimeIndex, max_gap_days: int) -> np.ndarray:
    """Last quote of `quotes` on or before each date of `index`, at most `max_gap_days` old, else NaN."""
    if not isinstance(quotes, pd.Series):
        raise TypeError(f"`fx_closes[{symbol!r}]` must be a Series of closes, got {type(quotes).__name__}")
    dates = _tz_naive_dates(quotes.index, f"`fx_closes[{symbol!r}]`")
    try:
        values = quotes.to_numpy(dtype="float64")
    except (TypeError, ValueError):
        raise TypeError(f"`fx_closes[{symbol!r}]` must hold numbers, got dtype {quotes.dtype}") from None
    usable = np.isfinite(values) & (values > 0)  # a missing or non-positive quote is no quote
    days = dates.normalize().as_unit("ns").asi8[usable]
    values = values[usable]
    order = np.argsort(days, kind="stable")
    days, values = days[order], values[order]
    if len(days):
        last = np.r_[days[1:] != days[:-1], True]  # duplicate dates: keep the last quote
        days, values = days[last], values[last]
    if not len(days):
        return np.full(len(index), np.nan)
    wanted = index.normalize().as_unit("ns").asi8
    pos = np.searchsorted(days, wanted, side="right") - 1  # last quote on or before the date, no look-ahead
    found = pos >= 0
    pos = np.where(found, pos, 0)
    fresh = found & (wanted - days[pos] <= max_gap_days * _NS_PER_DAY)
    return np.where(fresh, values[pos], np.nan)


def conversion_rates(
    currency: str,
    base: str,
    fx_closes: Mapping[str, pd.Series],
    index: pd.DatetimeIndex,
    max_gap_days: int = 5,
) -> pd.Series:
    """Return the factor turning one unit of `currency` into `base` on each date of `index`.

    ``price_in_base = price_in_currency * rate``. Sub-units are scaled (``"GBp"`` is 0.01 GBP, see
    `screener.markets.currency_unit`); pairs without a direct series cross through USD
    (AUD -> EUR = AUDUSD=X / EURUSD=X). Each FX leg uses its close of the same date; on a date a series has no
    quote (an FX holiday, a gap in the source) its last quote at most `max_gap_days` calendar days old is
    used, and beyond that the rate is ``NaN``. This is the only forward fill in the library.

    Parameters
    ----------
    currency : str
        Currency the prices are quoted in (``"AUD"``, ``"GBp"``, ...).
    base : str
        Currency wanted.
    fx_closes : mapping of str to Series
        Close per Yahoo FX symbol (e.g. ``{"AUDUSD=X": bars["close"]}``), each on a tz-naive DatetimeIndex.
        Only the symbols of the route are read.
    index : DatetimeIndex of shape (n_dates,)
        Tz-naive dates wanted (any order).
    max_gap_days : int, default 5
        Oldest quote, in calendar days, used on a date without a quote; 0 disables the forward fill.

    Returns
    -------
    Series of shape (n_dates,)
        float64 rates on `index`, named ``"<currency>-><base>"``; ``NaN`` where no usable quote exists.

    Raises
    ------
    DataError
        If no FX series connects the currencies, or a series the route needs is not in `fx_closes`.
    TypeError, ValueError
        If `index` or a series is not on tz-naive dates, or `max_gap_days` is not a non-negative integer.
    """
    if isinstance(max_gap_days, bool) or not isinstance(max_gap_days, (int, np.integer)) or max_gap_days < 0:
        raise ValueError(f"`max_gap_days` must be an integer >= 0, got {max_gap_days!r}")
    for name, value in (("currency", currency), ("base", base)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"`{name}` must be a currency code such as 'USD', got {value!r}")
    index = _tz_naive_dates(index, "`index`")
    if not isinstance(fx_closes, Mapping):
        raise TypeError(f"`fx_closes` must map FX symbols to Series, got {type(fx_closes).__name__}")
    route = fx_route(currency, base)
    missing = [symbol for symbol, _ in route if symbol not in fx_closes]
    if missing:
        have = ", ".join(sorted(map(str, fx_closes))) or "none"
        raise DataError(
            f"converting {currency} to {base} needs FX series {', '.join(missing)}, not in `fx_closes` "
            f"(has: {have}); load its closes first"
        )
    rate = np.full(len(index), currency_unit(currency)[1] / currency_unit(base)[1])
    for symbol, invert in route:
        leg = _rate_on(fx_closes[symbol], symbol, index, int(max_gap_days))
        rate = rate / leg if invert else rate * leg
    return pd.Series(rate, index=index.copy(), name=f"{currency}->{base}", dtype="float64")


def to_base_currency(
    prices: pd.DataFrame,
    currencies: Mapping[str, str],
    fx_closes: Mapping[str, pd.Series],
    base: str = "USD",
    max_gap_days: int = 5,
) -> pd.DataFrame:
    """Convert each listing's prices from its trading currency into `base`.

    Each cell is multiplied by `conversion_rates` of its column's currency on its date. Missing prices
    stay missing; a price on a date with no usable FX rate (no quote within `max_gap_days` calendar days)
    becomes ``NaN`` and a `UserWarning` gives the number of cells lost per ticker.

    Parameters
    ----------
    prices : DataFrame of shape (n_dates, n_listings)
        Prices in each listing's trading currency on a tz-naive DatetimeIndex (e.g. from
        `screener.data.calendar.union_panel`).
    currencies : mapping of str to str
        Trading currency per column (``{"LYC.AX": "AUD", "MP": "USD", "RIO.L": "GBp"}``).
    fx_closes : mapping of str to Series
        Close per Yahoo FX symbol; the symbols the routes need must be present.
    base : str, default "USD"
        Currency of the result.
    max_gap_days : int, default 5
        See `conversion_rates`.

    Returns
    -------
    DataFrame of shape (n_dates, n_listings)
        float64 prices in `base`, same index and columns as `prices`.

    Raises
    ------
    DataError
        If a column has no currency in `currencies`, its currency is unknown, or an FX series it needs is
        missing; the message names the ticker.

    Warns
    -----
    UserWarning
        If prices were lost for want of an FX rate.
    """
    if not isinstance(prices, pd.DataFrame):
        raise TypeError(f"`prices` must be a DataFrame, got {type(prices).__name__}")
    index = _tz_naive_dates(prices.index, "`prices`")
    if not isinstance(currencies, Mapping):
        raise TypeError(f"`currencies` must map tickers to currencies, got {type(currencies).__name__}")
    try:
        values = prices.to_numpy(dtype="float64")  # a new array: `prices` is never modified
    except (TypeError, ValueError):
        raise TypeError("`prices` must hold numbers only") from None
    rates: dict[str, np.ndarray] = {}
    factors = np.empty_like(values)
    for j, ticker in enumerate(prices.columns):
        if ticker not in currencies:
            raise DataError(
                f"no trading currency for ticker {ticker!r} in `currencies`; add one (e.g. 'USD')"
            )
        ccy = currencies[ticker]
        if ccy not in rates:
            try:
                rates[ccy] = conversion_rates(ccy, base, fx_closes, index, max_gap_days).to_numpy()
            except DataError as exc:
                raise DataError(f"{ticker}: cannot convert its prices to {base}: {exc}") from None
        factors[:, j] = rates[ccy]
    converted = values * factors
    lost = np.count_nonzero(~np.isnan(values) & np.isnan(factors), axis=0)
    if lost.any():
        per_ticker = ", ".join(f"{t} {n}" for t, n in zip(prices.columns, lost, strict=True) if n)
        warnings.warn(
            f"{int(lost.sum())} prices became NaN for want of an FX rate within {max_gap_days} days "
            f"(per ticker: {per_ticker}); extend the FX history or raise `max_gap_days`",
            UserWarning,
            stacklevel=2,
        )
    return pd.DataFrame(converted, index=prices.index.copy(), columns=prices.columns.copy())


def split_fx_return(local_prices: pd.Series, rates: pd.Series) -> pd.DataFrame:
    """Split a listing's base-currency return into its local, FX and cross parts.

    On the listing's own trading days (where `local_prices` is present), with ``P`` the local price and
    ``X`` the conversion rate (`conversion_rates`) on the same dates:

    - ``local = P_t / P_{t-1} - 1``, the return a local investor earns;
    - ``fx = X_t / X_{t-1} - 1``, the change in the value of the trading currency in base units;
    - ``cross = local * fx``, the interaction term;
    - ``total = (1 + local) * (1 + fx) - 1 = local + fx + cross``, which equals the return of the converted
      price ``P * X`` from one trading day to the next, i.e. the base-currency return.

    ``t-1`` is the listing's previous trading day, so ``fx`` covers the same span as ``local``.

    Parameters
    ----------
    local_prices : Series of shape (n_dates,)
        Prices in the trading currency on a tz-naive DatetimeIndex; ``NaN`` rows are ignored.
    rates : Series
        Conversion rates to the base currency on a tz-naive DatetimeIndex covering the trading days;
        a trading day missing from `rates` gives ``NaN`` ``fx`` and ``total``.

    Returns
    -------
    DataFrame of shape (n_trading_days, 4)
        Columns ``local, fx, cross, total``, indexed by the trading days (named ``date``); the first row is
        ``NaN``.
    """
    for name, s in (("local_prices", local_prices), ("rates", rates)):
        if not isinstance(s, pd.Series):
            raise TypeError(f"`{name}` must be a Series, got {type(s).__name__}")
        dates = _tz_naive_dates(s.index, f"`{name}`")
        if dates.has_duplicates:
            raise ValueError(f"`{name}` has duplicate dates; deduplicate it first")
    prices = local_prices.dropna().astype("float64").sort_index()
    days = pd.DatetimeIndex(prices.index, name="date")
    p = prices.to_numpy()
    x = rates.reindex(days).to_numpy(dtype="float64")
    local = np.full(len(p), np.nan)
    fx = np.full(len(p), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        local[1:] = p[1:] / p[:-1] - 1.0
        fx[1:] = x[1:] / x[:-1] - 1.0
    return pd.DataFrame(
        {"local": local, "fx": fx, "cross": local * fx, "total": (1.0 + local) * (1.0 + fx) - 1.0}, index=days
    )
