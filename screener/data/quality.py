"""Data-quality checks on daily bars: flag suspicious data, never fix it.

Three kinds of flags, each a `QualityFlag`:

- ``spike_reversal``: a one-day move far beyond the listing's recent volatility that the next day undoes
  (Yahoo's ``CNY=X`` close of 5.863 on 2011-07-18 between 6.43 and 6.47). Usually a bad tick.
- ``stale_quotes``: a run of days repeating the previous close with no volume (FX: repeating the close;
  FX volume is always 0). Usually a provider copying the last quote over days without trading.
- ``split_like_jump``: a one-day move by a common split ratio (x2, x1/10, x14...) that then holds, without
  the surge in turnover real news brings. Usually a split or consolidation the provider did not adjust.

The checks read ``adj_close`` (``close`` where a frame has no ``adj_close`` values) for moves and ``close``
with ``volume`` for stale quotes. What to do about a flag (drop the day, exclude the listing, ignore it)
is the caller's decision.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

__all__ = [
    "EQUITY_THRESHOLDS",
    "FLAG_KINDS",
    "FX_THRESHOLDS",
    "QualityFlag",
    "QualityThresholds",
    "check_bars",
    "check_panel",
]

FlagKind = Literal["spike_reversal", "stale_quotes", "split_like_jump"]
FLAG_KINDS: tuple[str, ...] = get_args(FlagKind)

SPLIT_RATIOS: tuple[float, ...] = (2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 20, 25, 50, 100)
"""Split and consolidation ratios; a price may jump by each of them or by its inverse."""

# For normal returns, median(|r|) = 0.6745 sd: the robust volatility is median(|r|) / 0.6745.
_MAD_TO_SD = 0.674489750196


@dataclass(frozen=True)
class QualityFlag:
    """One suspicious feature of a listing's data.

    Attributes
    ----------
    ticker : str
        Symbol checked.
    kind : {"spike_reversal", "stale_quotes", "split_like_jump"}
        What was found.
    date : Timestamp or date
        Day of the suspicious price (first day of a stale run).
    detail : str
        Prices and sizes, for a person to judge the flag.
    """

    ticker: str
    kind: FlagKind
    date: pd.Timestamp | dt.date
    detail: str

    def __post_init__(self) -> None:
        if self.kind not in FLAG_KINDS:
            raise ValueError(f"`kind` must be one of {', '.join(FLAG_KINDS)}, got {self.kind!r}")

    def to_dict(self) -> dict[str, str]:
        """Return the flag as JSON-ready strings, the date in ISO format (``YYYY-MM-DD``)."""
        return {
            "ticker": str(self.ticker),
            "kind": self.kind,
            "date": pd.Timestamp(self.date).date().isoformat(),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class QualityThresholds:
    """Thresholds of `check_bars`; `EQUITY_THRESHOLDS` and `FX_THRESHOLDS` are the defaults.

    Attributes
    ----------
    spike_min_move : float
        Smallest absolute one-day log move that can be a spike.
    spike_min_sigmas : float
        The move must also exceed this many robust standard deviations: ``median(|log return|) / 0.6745``
        over the `vol_window` previous days (the whole series while fewer than 5 exist).
    spike_max_net : float
        Reversal: the two-day log move (spike plus next day) is at most this fraction of the spike.
    min_ticks : float
        A spike or jump spans at least this many price ticks, a tick being the smallest non-zero price
        change over the `tick_window` previous days; bid-ask bounces of penny stocks are not spikes.
    vol_window, tick_window : int
        Trailing windows, in observations.
    stale_min_days : int
        Shortest run of repeated zero-volume closes that is flagged.
    split_ratios : tuple of float
        Split ratios looked for (each also inverted).
    split_tolerance : float
        Largest relative distance between the one-day price ratio and a split ratio, between consecutive
        trading days. Across a halt (``k`` skipped weekdays) it widens by ``2 sd sqrt(k)`` (robust sd as
        above), up to `split_max_tolerance`.
    split_max_tolerance : float
        Widest tolerance across a halt.
    split_min_move : float
        Smallest absolute one-day log move that can be a split.
    split_persist_days : int
        Days after the jump during which the price must stay nearer the new level than the old (and before
        it, nearer the old level than the new).
    split_max_turnover : float
        A jump whose turnover (close x volume) exceeds this multiple of the median of the `vol_window`
        previous days is news, not a split (a split changes the share count, not the money traded).
    """

    spike_min_move: float
    spike_min_sigmas: float
    spike_max_net: float = 0.25
    min_ticks: float = 3.0
    vol_window: int = 21
    tick_window: int = 63
    stale_min_days: int = 5
    split_ratios: tuple[float, ...] = SPLIT_RATIOS
    split_tolerance: float = 0.03
    split_max_tolerance: float = 0.10
    split_min_move: float = math.log(1.8)
    split_persist_days: int = 5
    split_max_turnover: float = 5.0

    def __post_init__(self) -> None:
        for name in ("spike_min_move", "spike_min_sigmas", "min_ticks", "split_tolerance", "split_min_move",
                     "split_max_tolerance", "split_max_turnover"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.spike_max_net < 1:
            raise ValueError(f"`spike_max_net` must be in [0, 1), got {self.spike_max_net!r}")
        for name in ("vol_window", "tick_window", "stale_min_days", "split_persist_days"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {getattr(self, name)!r}")
        if not self.split_ratios or any(not r > 1 for r in self.split_ratios):
            raise ValueError(f"`split_ratios` must be ratios > 1, got {self.split_ratios!r}")


EQUITY_THRESHOLDS = QualityThresholds(spike_min_move=0.10, spike_min_sigmas=8.0)
"""Listings: a spike moves at least 10% (log) and 8 robust sd."""

FX_THRESHOLDS = QualityThresholds(spike_min_move=0.01, spike_min_sigmas=6.0)
"""FX rates: a spike moves at least 1% (log) and 6 robust sd."""


def _trailing(values: np.ndarray, window: int, how: str) -> np.ndarray:
    """Median (at least 5 values) or min (at least 1) of the `window` values before each position; NaN skipped."""
    rolling = pd.Series(values).rolling(window, min_periods=1 if how == "min" else 5)
    out = (rolling.median() if how == "median" else rolling.min()).to_numpy()
    return np.r_[np.nan, out[:-1]]


def _price(bars: pd.DataFrame) -> tuple[str, pd.Series]:
    if "adj_close" in bars.columns and bars["adj_close"].notna().any():
        return "adj_close", bars["adj_close"]
    return "close", bars["close"]


def _day(ts: pd.Timestamp) -> str:
    return ts.date().isoformat()


def _sds(z: float) -> str:
    # The robust sd is 0 when most recent days were unchanged (illiquid listings).
    return f"{z:.1f} robust sd" if np.isfinite(z) else "recent median move 0"


def _moves(ticker: str, col: str, bars: pd.DataFrame, th: QualityThresholds) -> list[QualityFlag]:
    """Flag spike reversals and split-like jumps in the price column `col`."""
    price = pd.to_numeric(bars[col], errors="coerce").astype("float64")
    ok = np.isfinite(price.to_numpy()) & (price.to_numpy() > 0)
    p = price.to_numpy()[ok]
    dates = bars.index[ok]
    if len(p) < 3:
        return []
    logp = np.log(p)
    move = np.diff(logp)  # move[i]: from day i to day i + 1
    size = np.abs(move)
    sigma = _trailing(size, th.vol_window, "median") / _MAD_TO_SD
    sigma = np.where(np.isnan(sigma), np.median(size) / _MAD_TO_SD, sigma)
    step = np.abs(np.diff(p))
    nonzero = np.where(step > 1e-9 * p[:-1], step, np.nan)
    tick = _trailing(nonzero, th.tick_window, "min")
    if np.isfinite(nonzero).any():
        tick = np.where(np.isnan(tick), np.nanmin(nonzero), tick)
    enough_ticks = step >= th.min_ticks * tick * (1 - 1e-9)  # NaN tick (no change yet) -> False
    flags: list[QualityFlag] = []

    nxt = np.r_[move[1:], np.nan]  # the move that follows each move
    with np.errstate(invalid="ignore", divide="ignore"):
        spike = (
            (size > th.spike_min_move)
            & (size > th.spike_min_sigmas * sigma)
            & (np.abs(move + nxt) <= th.spike_max_net * size)
            & enough_ticks
        )
        z = size / sigma
    for i in np.flatnonzero(spike):
        flags.append(QualityFlag(ticker, "spike_reversal", dates[i + 1], (
            f"{col} {p[i + 1]:.6g} on {_day(dates[i + 1])} between {p[i]:.6g} ({_day(dates[i])}) and "
            f"{p[i + 2]:.6g} ({_day(dates[i + 2])}): log move {move[i]:+.2%} ({_sds(z[i])}), "
            f"undone by {nxt[i]:+.2%} the next day"
        )))

    ratios = np.log(np.asarray(th.split_ratios, dtype="float64"))
    ratios = np.r_[ratios, -ratios]
    distance = np.abs(move[:, None] - ratios[None, :])
    nearest = ratios[np.argmin(distance, axis=1)]
    # Across a trading halt (consolidations often come with one) the price also drifts: widen the tolerance
    # by 2 robust sd per square root of the skipped weekdays, up to `split_max_tolerance`.
    skipped = np.maximum(np.busday_count(dates[:-1].values.astype("datetime64[D]"),
                                         dates[1:].values.astype("datetime64[D]")) - 1, 0)
    tolerance = np.minimum(math.log1p(th.split_tolerance) + 2 * np.nan_to_num(sigma) * np.sqrt(skipped),
                           math.log1p(max(th.split_max_tolerance, th.split_tolerance)))
    near = distance.min(axis=1) <= tolerance
    candidates = np.flatnonzero((size > th.split_min_move) & near & enough_ticks)
    if len(candidates) and "volume" in bars.columns:
        close = pd.to_numeric(bars["close"], errors="coerce").to_numpy(dtype="float64")[ok]
        volume = pd.to_numeric(bars["volume"], errors="coerce").to_numpy(dtype="float64")[ok]
        turnover = close * volume
        usual = _trailing(turnover, th.vol_window, "median")
    else:
        turnover = usual = np.full(len(p), np.nan)
    for i in candidates:
        after = logp[i + 2 : i + 2 + th.split_persist_days] - logp[i + 1]
        if np.any(np.abs(after) >= 0.5 * size[i]):
            continue  # went back (part of) the way: not a level shift
        before = logp[max(i - th.split_persist_days, 0) : i] - logp[i]
        if np.any(np.abs(before) >= 0.5 * size[i]):
            continue  # the old level was not settled either (e.g. the day after a one-day spike)
        surge = turnover[i + 1] / usual[i + 1] if usual[i + 1] > 0 else np.nan
        if surge > th.split_max_turnover:
            continue  # heavy trading: news, not an unadjusted split
        factor = round(math.exp(abs(nearest[i])))
        what = f"{factor}:1 split" if nearest[i] < 0 else f"1:{factor} consolidation"
        held = f"held for the next {len(after)} days" if len(after) else "on the last day of data"
        if skipped[i] > 2:  # a halt rather than a holiday
            held = f"after {skipped[i]} weekdays without a price, {held}"
        turnover_note = f", turnover {surge:.1f}x usual" if np.isfinite(surge) else ""
        flags.append(QualityFlag(ticker, "split_like_jump", dates[i + 1], (
            f"{col} {p[i]:.6g} ({_day(dates[i])}) -> {p[i + 1]:.6g} ({_day(dates[i + 1])}): "
            f"x{math.exp(move[i]):.4g}, {held}{turnover_note}; nearest ratio: an unadjusted {what}?"
        )))
    return flags


def _stale(ticker: str, bars: pd.DataFrame, is_fx: bool, th: QualityThresholds) -> list[QualityFlag]:
    """Flag runs of at least `stale_min_days` days repeating the previous close with no volume."""
    close = pd.to_numeric(bars["close"], errors="coerce").to_numpy(dtype="float64")
    if len(close) < 2:
        return []
    with np.errstate(invalid="ignore"):
        repeat = np.abs(close[1:] - close[:-1]) <= 1e-10 * np.abs(close[:-1])  # NaN -> False
    if not is_fx:  # FX volume is always 0: only the repeated close counts
        if "volume" in bars.columns:
            volume = pd.to_numeric(bars["volume"], errors="coerce").to_numpy(dtype="float64")[1:]
            repeat &= np.isnan(volume) | (volume == 0)
    edges = np.diff(np.r_[0, repeat.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # repeat[starts:ends]
    flags = []
    for a, b in zip(starts, ends, strict=True):
        length = int(b - a)
        if length < th.stale_min_days:
            continue
        first, last, quoted = bars.index[a + 1], bars.index[b], bars.index[a]
        why = "repeated" if is_fx else "repeated with zero or missing volume"
        flags.append(QualityFlag(ticker, "stale_quotes", first, (
            f"close {close[a]:.6g} {why} on {length} consecutive days, {_day(first)} to {_day(last)} "
            f"(last real quote {_day(quoted)})"
        )))
    return flags


def check_bars(
    bars: pd.DataFrame,
    ticker: str,
    *,
    is_fx: bool | None = None,
    thresholds: QualityThresholds | None = None,
) -> list[QualityFlag]:
    """Flag one-day spikes that reverse, runs of stale quotes and split-like jumps in a listing's bars.

    - spike: ``|log move| > spike_min_move`` and ``> spike_min_sigmas`` robust sd of the previous
      ``vol_window`` days, at least ``min_ticks`` price ticks, and the next day's move brings the two-day
      move under ``spike_max_net`` of the spike;
    - stale quotes: at least ``stale_min_days`` consecutive days whose close equals the previous close and
      whose volume is zero or missing (FX: close only); one flag per run, dated at its first repeated day;
    - split-like jump: a one-day price ratio within ``split_tolerance`` of a split ratio (or its inverse)
      with ``|log move| > split_min_move`` (default log 1.8), at least ``min_ticks`` ticks, that holds for
      ``split_persist_days`` days (the price stays nearer the new level than the old, and was settled
      at the old level for as many days before) and comes without a turnover surge. The market's move
      that day is unknown here, so persistence is what tells a missing adjustment from a spike, and the
      turnover test spares large real moves on news.

    Nothing is changed; the flags are for a person or a policy to act on.

    Parameters
    ----------
    bars : DataFrame of shape (n_days, n_fields)
        Daily bars (`screener.data.bars`): sorted, unique tz-naive DatetimeIndex, a ``close`` column,
        optionally ``adj_close`` and ``volume``.
    ticker : str
        Symbol, recorded in the flags.
    is_fx : bool, optional
        Whether the series is an FX rate (tighter spike thresholds, volume ignored); default: the ticker
        ends with ``=X``.
    thresholds : QualityThresholds, optional
        Default `FX_THRESHOLDS` for FX, else `EQUITY_THRESHOLDS`.

    Returns
    -------
    list of QualityFlag
        Sorted by date, then kind; empty when nothing is suspicious.

    Raises
    ------
    TypeError
        If `bars` is not a DataFrame with a DatetimeIndex.
    ValueError
        If `bars` has no ``close`` column or its dates are unsorted, duplicated or tz-aware.
    """
    if not isinstance(bars, pd.DataFrame):
        raise TypeError(f"`bars` of {ticker} must be a DataFrame, got {type(bars).__name__}")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise TypeError(f"`bars` of {ticker} must have a DatetimeIndex, got {type(bars.index).__name__}")
    if bars.index.tz is not None:
        raise ValueError(f"`bars` of {ticker} must have tz-naive dates, got time zone {bars.index.tz}")
    if not bars.index.is_monotonic_increasing or bars.index.has_duplicates:
        raise ValueError(f"`bars` of {ticker} must have sorted, unique dates")
    if "close" not in bars.columns:
        columns = ", ".join(map(str, bars.columns))
        raise ValueError(f"`bars` of {ticker} have no `close` column (columns: {columns})")
    if is_fx is None:
        is_fx = str(ticker).upper().endswith("=X")
    if thresholds is None:
        thresholds = FX_THRESHOLDS if is_fx else EQUITY_THRESHOLDS
    if not isinstance(thresholds, QualityThresholds):
        raise TypeError(f"`thresholds` must be a QualityThresholds, got {type(thresholds).__name__}")
    col, _ = _price(bars)
    flags = _moves(ticker, col, bars, thresholds) + _stale(ticker, bars, bool(is_fx), thresholds)
    return sorted(flags, key=lambda f: (pd.Timestamp(f.date), FLAG_KINDS.index(f.kind)))


def check_panel(
    bars_by_ticker: Mapping[str, pd.DataFrame],
    *,
    thresholds: QualityThresholds | None = None,
) -> dict[str, list[QualityFlag]]:
    """Run `check_bars` on each listing (FX inferred from the ``=X`` suffix).

    Parameters
    ----------
    bars_by_ticker : mapping of str to DataFrame
        Bars per ticker.
    thresholds : QualityThresholds, optional
        Used for every ticker; default per ticker as in `check_bars`.

    Returns
    -------
    dict of str to list of QualityFlag
        Every ticker of `bars_by_ticker`, in its order, with its flags (possibly none).
    """
    if not isinstance(bars_by_ticker, Mapping):
        raise TypeError(f"`bars_by_ticker` must map tickers to bars, got {type(bars_by_ticker).__name__}")
    return {t: check_bars(b, t, thresholds=thresholds) for t, b in bars_by_ticker.items()}
