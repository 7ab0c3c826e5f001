"""Daily bars: the one frame shape every provider returns and the store keeps.

A bars frame has a tz-naive ``DatetimeIndex`` named ``date`` (the trading date in the listing's own market,
sorted, unique) and float64 columns ``open, high, low, close, adj_close, volume``. ``close`` is in the
listing's trading currency, split-adjusted; ``adj_close`` is also adjusted for distributions and is the
price used for returns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from screener.exceptions import DataError

BAR_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")


def empty_bars() -> pd.DataFrame:
    """Return an empty bars frame with the canonical columns and index."""
    index = pd.DatetimeIndex([], name="date")
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS}, index=index)


def normalize_bars(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """Coerce a frame to the canonical bars shape, or raise `DataError` naming what is wrong.

    Rows whose prices are all missing are dropped (yfinance pads the union of dates with them);
    non-positive prices become missing. Duplicate dates keep the last row.

    Parameters
    ----------
    frame : DataFrame
        Daily rows indexed by date, with at least ``close``; ``adj_close`` defaults to ``close``.
    ticker : str
        Symbol, for error messages.

    Returns
    -------
    DataFrame of shape (n_days, 6)
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{ticker}: expected a DataFrame of bars, got {type(frame).__name__}")
    if "close" not in frame.columns:
        raise DataError(f"{ticker}: bars have no `close` column (columns: {', '.join(map(str, frame.columns))})")
    out = pd.DataFrame(index=frame.index)
    for col in BAR_COLUMNS:
        source = "close" if col == "adj_close" and col not in frame.columns else col
        if source in frame.columns:
            values = pd.to_numeric(frame[source], errors="coerce")
        else:
            values = pd.Series(np.nan, index=frame.index)
        out[col] = values.astype("float64")
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(pd.to_datetime(index, errors="raise", format="ISO8601"))
        except (ValueError, TypeError) as exc:
            raise DataError(f"{ticker}: bar dates are not dates: {exc}") from None
    if index.tz is not None:
        index = index.tz_localize(None)
    out.index = index.normalize().rename("date")
    if out.index.hasnans:
        raise DataError(f"{ticker}: bars contain a missing date")
    prices = out[list(PRICE_COLUMNS)]
    out[list(PRICE_COLUMNS)] = prices.where(np.isfinite(prices) & (prices > 0))
    out["volume"] = out["volume"].where(np.isfinite(out["volume"]) & (out["volume"] >= 0))
    out = out[out[["close", "adj_close"]].notna().any(axis=1)]
    out = out[~out.index.duplicated(keep="last")].sort_index()
    return out
