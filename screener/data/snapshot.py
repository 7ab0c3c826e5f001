"""Offline snapshot provider: a directory in the format of ``shared/marketdata``.

Layout: ``prices/<SYMBOL>.csv`` with the header ``date,open,high,low,close,adj_close,volume`` (oldest first,
dates ISO, prices in the listing's currency) and an optional ``MANIFEST.csv`` describing the sources.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from screener.data.bars import BAR_COLUMNS, normalize_bars
from screener.data.providers import FetchResult, Progress
from screener.exceptions import SnapshotError

SNAPSHOT_HEADER: tuple[str, ...] = ("date", *BAR_COLUMNS)


_MEMO: dict[tuple[str, str], tuple[tuple[int, int], pd.DataFrame]] = {}


def read_snapshot_csv(path: str | Path, ticker: str | None = None) -> pd.DataFrame:
    """Read one snapshot price file into canonical bars (parsed once per file version, then reused).

    Raises
    ------
    SnapshotError
        Naming the file (and the row where possible) when the header, a date or a number is malformed,
        or when dates are not strictly increasing.
    """
    path = Path(path)
    ticker = ticker or path.stem
    try:
        stat = path.stat()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc}") from None
    key = (str(path.resolve()), ticker)
    cached = _MEMO.get(key)
    if cached is not None and cached[0] == (stat.st_mtime_ns, stat.st_size):
        return cached[1].copy()
    bars = _parse_snapshot_csv(path, ticker)
    _MEMO[key] = ((stat.st_mtime_ns, stat.st_size), bars)
    return bars.copy()


def _parse_snapshot_csv(path: Path, ticker: str) -> pd.DataFrame:
    try:
        with path.open("r", encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SnapshotError(f"{path}: cannot read: {exc}") from None
    if header is None:
        raise SnapshotError(f"{path}: empty file; expected the header {','.join(SNAPSHOT_HEADER)}")
    if tuple(h.strip() for h in header) != SNAPSHOT_HEADER:
        raise SnapshotError(f"{path}: header is {','.join(header)!r}; expected {','.join(SNAPSHOT_HEADER)}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: not a valid CSV: {exc}") from None
    if raw.empty:
        raise SnapshotError(f"{path}: no rows after the header")
    dates = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    bad = dates.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise SnapshotError(f"{path}: row {row + 2}: date {raw['date'].iloc[row]!r} is not YYYY-MM-DD")
    values = {}
    for col in BAR_COLUMNS:
        text = raw[col].str.strip()
        numbers = pd.to_numeric(text.where(text != "", None), errors="coerce")
        wrong = (numbers.isna() & (text != "")).to_numpy()
        if wrong.any():
            row = int(np.argmax(wrong))
            raise SnapshotError(f"{path}: row {row + 2}: {col} {raw[col].iloc[row]!r} is not a number")
        values[col] = numbers.to_numpy(dtype="float64")
    index = pd.DatetimeIndex(dates, name="date")
    if not index.is_monotonic_increasing or index.has_duplicates:
        position = int(np.argmax(np.diff(index.asi8) <= 0)) + 1
        raise SnapshotError(f"{path}: row {position + 2}: date {index[position].date()} is not after the previous row")
    return normalize_bars(pd.DataFrame(values, index=index), ticker)


class SnapshotProvider:
    """Serve bars from a snapshot directory (no network)."""

    name = "snapshot"

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.prices_dir = self.directory / "prices"
        if not self.prices_dir.is_dir():
            raise SnapshotError(f"{self.directory}: not a snapshot directory (no prices/ folder inside)")

    def tickers(self) -> list[str]:
        """Symbols with a price file, sorted."""
        return sorted(p.stem for p in self.prices_dir.glob("*.csv"))

    def path(self, ticker: str) -> Path:
        """Path of a symbol's price file."""
        return self.prices_dir / f"{ticker}.csv"

    def manifest(self) -> pd.DataFrame:
        """The snapshot's MANIFEST.csv (empty frame when absent)."""
        path = self.directory / "MANIFEST.csv"
        if not path.exists():
            return pd.DataFrame()
        try:
            return pd.read_csv(path, dtype=str).set_index("ticker")
        except (ValueError, KeyError, pd.errors.ParserError) as exc:
            raise SnapshotError(f"{path}: unreadable manifest: {exc}") from None

    def fetch(
        self,
        tickers: Sequence[str],
        start: date | None = None,
        end: date | None = None,
        progress: Progress | None = None,
    ) -> FetchResult:
        """Read the requested symbols; missing files are reported as empty, malformed ones as errors."""
        result = FetchResult()
        for done, ticker in enumerate(tickers, start=1):
            path = self.path(ticker)
            if not path.exists():
                result.empty.append(ticker)
            else:
                try:
                    bars = read_snapshot_csv(path, ticker)
                except SnapshotError as exc:
                    result.errors[ticker] = str(exc)
                else:
                    bars = bars.loc[pd.Timestamp(start) if start else None : pd.Timestamp(end) if end else None]
                    if bars.empty:
                        result.empty.append(ticker)
                    else:
                        result.bars[ticker] = bars
            if progress is not None:
                progress(done, len(tickers), ticker)
        return result
