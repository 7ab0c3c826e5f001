"""The embedded on-disk store: one Parquet file of daily bars per ticker, with its metadata inside.

Layout under ``root`` (default ``$SCREENER_HOME/store``)::

    bars/<TICKER>.parquet        bars + metadata (source, fetched_at, yfinance version, dates, checksum)
    quarantine/<TICKER>.<UTC>.parquet   files found corrupt, set aside (never read again, never deleted)
    locks/<TICKER>.lock          inter-process locks for read-modify-write

Why this shape: a ticker's data and its metadata live in one file replaced atomically (write a temporary
file, fsync, ``os.replace``), so a reader in another process sees the old or the new version, never half of
one, and a damaged file never affects another ticker. A checksum of the data is kept in the metadata and
checked on every read, so corruption that Parquet itself would decode is still caught.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock

from screener.data.bars import BAR_COLUMNS, normalize_bars
from screener.data.providers import FetchResult, Progress, Provider
from screener.data.quality import check_bars
from screener.exceptions import CorruptFileError, OfflineError, RateLimitError, StoreError
from screener.paths import store_dir

SCHEMA_VERSION = 1
_META_KEY = b"screener"
_SAFE = re.compile(r"^[A-Za-z0-9.=^_-]{1,32}$")
DEFAULT_START = date(2010, 1, 1)
STALE_AFTER_DAYS = 4
"""Data whose last bar is more than this many calendar days older than the check date is stale."""


def data_checksum(bars: pd.DataFrame) -> str:
    """BLAKE2b digest of the dates and the bar values (detects silent corruption)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(bars.index.asi8.tobytes())
    h.update(np.ascontiguousarray(bars[list(BAR_COLUMNS)].to_numpy(dtype="float64")).tobytes())
    return h.hexdigest()


class _Damaged(Exception):
    """Internal: a file failed validation (carries the identity of the version read)."""

    def __init__(self, key: tuple[int, int, int], reason: str):
        super().__init__(reason)
        self.key = key
        self.reason = reason


def _utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RefreshReport:
    """What a refresh did, per ticker."""

    updated: dict[str, int] = field(default_factory=dict)
    """Tickers with new rows, and how many."""
    unchanged: list[str] = field(default_factory=list)
    refetched: dict[str, str] = field(default_factory=dict)
    """Tickers whose whole history was re-fetched, and why (e.g. past adjusted prices changed)."""
    empty: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    offline: str | None = None
    """Set when the provider could not be reached; stored data is then served as it is."""


class Store:
    """Daily bars per ticker on disk. Safe for several processes at once.

    Parameters
    ----------
    root : path, optional
        Store directory; default ``store_dir()`` (``$SCREENER_HOME/store``).
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else store_dir()
        self.bars_dir = self.root / "bars"
        self.quarantine_dir = self.root / "quarantine"
        self.locks_dir = self.root / "locks"
        self._memo: dict[str, tuple[tuple[int, int, int], pd.DataFrame, dict]] = {}

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- paths and locks -------------------------------------------------------------------------
    def _check_ticker(self, ticker: str) -> str:
        if not isinstance(ticker, str) or not _SAFE.match(ticker):
            raise StoreError(f"`ticker` {ticker!r} is not a valid symbol (letters, digits and . = ^ _ - only)")
        return ticker

    def path(self, ticker: str) -> Path:
        """File holding a ticker's bars."""
        return self.bars_dir / f"{self._check_ticker(ticker)}.parquet"

    @contextlib.contextmanager
    def lock(self, ticker: str, timeout: float = 60.0) -> Iterator[None]:
        """Inter-process lock for one ticker's read-modify-write."""
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.locks_dir / f"{self._check_ticker(ticker)}.lock"), timeout=timeout)
        try:
            with lock:
                yield
        except TimeoutError:
            raise StoreError(f"{ticker}: store is locked by another process for over {timeout:.0f}s") from None

    def tickers(self) -> list[str]:
        """Tickers with a stored file (valid or not), sorted."""
        if not self.bars_dir.is_dir():
            return []
        return sorted(p.stem for p in self.bars_dir.glob("*.parquet"))

    def __contains__(self, ticker: str) -> bool:
        return self.path(ticker).exists()

    # -- write ---------------------------------------------------------------------------------------
    def write(self, ticker: str, bars: pd.DataFrame, *, source: str, yfinance_version: str | None = None) -> dict:
        """Replace a ticker's bars atomically; returns the metadata written.

        Data-quality checks run here, on every import and fetch; their flags are kept in the metadata.
        """
        path = self.path(ticker)
        bars = normalize_bars(bars, ticker)
        if bars.empty:
            raise StoreError(f"{ticker}: refusing to store an empty history")
        flags = [f.to_dict() for f in check_bars(bars, ticker)]
        meta = {
            "schema_version": SCHEMA_VERSION,
            "ticker": ticker,
            "source": source,
            "fetched_at": _utcnow(),
            "yfinance_version": yfinance_version,
            "first_date": bars.index[0].date().isoformat(),
            "last_date": bars.index[-1].date().isoformat(),
            "rows": len(bars),
            "checksum": data_checksum(bars),
            "warnings": flags,
        }
        table = pa.Table.from_pandas(bars, preserve_index=True)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
        self.bars_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{ticker}.", suffix=".tmp", dir=self.bars_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                pq.write_table(table, fh, compression="zstd", write_page_checksum=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.bars_dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return meta

    # -- read ------------------------------------------------------------------------------------------
    def _parse(self, data: bytes, path: Path, ticker: str) -> tuple[pd.DataFrame, dict]:
        try:
            table = pq.read_table(pa.BufferReader(data))
            raw = (table.schema.metadata or {}).get(_META_KEY)
            if raw is None:
                raise ValueError("no screener metadata in the file")
            meta = json.loads(raw)
            bars = table.to_pandas()
        except (OSError, ValueError, pa.ArrowException, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CorruptFileError(f"{ticker}: {path} is unreadable ({type(exc).__name__}: {exc})") from None
        if list(bars.columns) != list(BAR_COLUMNS) or not isinstance(bars.index, pd.DatetimeIndex):
            raise CorruptFileError(f"{ticker}: {path} has unexpected columns {list(bars.columns)}")
        if len(bars) != meta.get("rows") or data_checksum(bars) != meta.get("checksum"):
            raise CorruptFileError(f"{ticker}: {path} fails its checksum (truncated or damaged)")
        return bars, meta

    def _load(self, ticker: str) -> tuple[tuple[int, int, int], pd.DataFrame, dict]:
        """Read one consistent version of a ticker's file (one open handle; memoised by inode and mtime)."""
        path = self.path(ticker)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise KeyError(ticker) from None
        cached = self._memo.get(ticker)
        if cached is not None and cached[0] == (stat.st_ino, stat.st_mtime_ns, stat.st_size):
            return cached
        try:
            with path.open("rb") as fh:
                stat = os.fstat(fh.fileno())
                data = fh.read()
        except FileNotFoundError:
            raise KeyError(ticker) from None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        try:
            bars, meta = self._parse(data, path, ticker)
        except CorruptFileError as exc:
            raise _Damaged(key, str(exc)) from None
        self._memo[ticker] = (key, bars, meta)
        return key, bars, meta

    def read(self, ticker: str, *, with_meta: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, dict]:
        """Return a ticker's bars (and metadata).

        A corrupt or truncated file is moved to ``quarantine/`` and `CorruptFileError` is raised, so it
        is reported once and never used; other tickers are unaffected.

        Raises
        ------
        KeyError
            When the ticker is not stored.
        CorruptFileError
            When the file is damaged (it has been set aside).
        """
        try:
            _, bars, meta = self._load(ticker)
        except _Damaged as damaged:
            moved = self._quarantine(ticker, damaged.key, damaged.reason)
            if moved is None:  # replaced by a good version meanwhile
                return self.read(ticker, with_meta=with_meta)
            raise CorruptFileError(f"{damaged.reason}; set aside as {moved}") from None
        bars = bars.copy()
        return (bars, dict(meta)) if with_meta else bars

    def read_many(self, tickers: Sequence[str]) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
        """Read several tickers; returns (bars by ticker, problems by ticker). Never raises for one bad file."""
        out: dict[str, pd.DataFrame] = {}
        problems: dict[str, str] = {}
        for t in tickers:
            try:
                out[t] = self.read(t)
            except KeyError:
                problems[t] = "not in the store"
            except (CorruptFileError, StoreError) as exc:
                problems[t] = str(exc)
        return out, problems

    def meta(self, ticker: str) -> dict:
        """Metadata of a stored ticker (reads only the Parquet footer)."""
        path = self.path(ticker)
        try:
            raw = pq.read_schema(path).metadata[_META_KEY]
            return json.loads(raw)
        except FileNotFoundError:
            raise KeyError(ticker) from None
        except (OSError, ValueError, pa.ArrowException, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise CorruptFileError(f"{ticker}: {path} is unreadable ({type(exc).__name__}: {exc})") from None

    # -- corruption ------------------------------------------------------------------------------------------
    def _quarantine(self, ticker: str, key: tuple[int, int, int], reason: str) -> Path | None:
        """Move a damaged file aside, unless another process replaced it since it was read."""
        path = self.path(ticker)
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.quarantine_dir / f"{ticker}.{stamp}.parquet"
        with self.lock(ticker):
            try:
                stat = path.stat()
            except FileNotFoundError:
                return target  # another process set it aside first
            if (stat.st_ino, stat.st_mtime_ns, stat.st_size) != key:
                return None
            os.replace(path, target)
            (self.quarantine_dir / f"{ticker}.{stamp}.reason.txt").write_text(reason + "\n", encoding="utf-8")
        self._memo.pop(ticker, None)
        return target

    def quarantined(self) -> dict[str, list[str]]:
        """Files set aside, by ticker (newest last), with the recorded reason."""
        out: dict[str, list[str]] = {}
        if not self.quarantine_dir.is_dir():
            return out
        for p in sorted(self.quarantine_dir.glob("*.reason.txt")):
            ticker = p.name.rsplit(".", 3)[0]
            out.setdefault(ticker, []).append(p.read_text(encoding="utf-8").strip())
        return out

    # -- status ------------------------------------------------------------------------------------------------
    def status(self, as_of: date | None = None, stale_after_days: int = STALE_AFTER_DAYS) -> list[dict]:
        """One record per stored (or set-aside) ticker: dates, rows, source, staleness, problems, warnings.

        ``problems`` say why stored data cannot be used (unreadable, truncated, empty); ``warnings`` are
        data-quality flags on usable data.
        """
        as_of = as_of or date.today()
        quarantined = self.quarantined()
        stored = set(self.tickers())
        records = []
        for ticker in sorted(stored | set(quarantined)):
            rec = {"ticker": ticker, "first_date": None, "last_date": None, "rows": 0, "source": None,
                   "fetched_at": None, "yfinance_version": None, "stale": True, "problems": [], "warnings": []}
            if ticker in stored:
                try:
                    _, meta = self.read(ticker, with_meta=True)
                except CorruptFileError as exc:
                    rec["problems"].append(str(exc))
                else:
                    last = date.fromisoformat(meta["last_date"])
                    rec.update({k: meta.get(k) for k in ("first_date", "last_date", "rows", "source", "fetched_at",
                                                         "yfinance_version")})
                    rec["stale"] = (as_of - last) > timedelta(days=stale_after_days)
                    rec["warnings"] = list(meta.get("warnings", []))
            if ticker in quarantined and not rec["rows"]:
                rec["problems"].extend(f"corrupt file set aside: {r}" for r in quarantined[ticker]
                                       if r not in rec["problems"] and not any(r in p for p in rec["problems"]))
            records.append(rec)
        return records

    # -- import and refresh ------------------------------------------------------------------------------------
    def import_bars(self, result: FetchResult, source: str, yfinance_version: str | None = None) -> list[str]:
        """Write every ticker of a provider result as its full history; returns the tickers written."""
        written = []
        for ticker, bars in result.bars.items():
            with self.lock(ticker):
                self.write(ticker, bars, source=source, yfinance_version=yfinance_version)
            written.append(ticker)
        return written

    def refresh(
        self,
        tickers: Sequence[str],
        provider: Provider,
        *,
        start: date | None = None,
        end: date | None = None,
        overlap_days: int = 10,
        progress: Progress | None = None,
        yfinance_version: str | None = None,
    ) -> RefreshReport:
        """Bring tickers up to date, fetching only what is missing plus a short overlap.

        A ticker not stored (or set aside as corrupt) gets its whole history from ``start``. A stored one is
        fetched from ``last_date - overlap_days``; if the overlap shows that past adjusted closes changed
        (a new split or dividend since the last fetch), its whole history is fetched again. A provider that
        is offline or rate-limited leaves every stored file as it was and sets ``report.offline``.
        """
        report = RefreshReport()
        start = start or DEFAULT_START
        plans: dict[date, list[str]] = {}
        existing: dict[str, pd.DataFrame] = {}
        for ticker in tickers:
            try:
                existing[ticker] = self.read(ticker)
            except (KeyError, CorruptFileError):
                plans.setdefault(start, []).append(ticker)
                continue
            since = existing[ticker].index[-1].date() - timedelta(days=overlap_days)
            plans.setdefault(max(since, start), []).append(ticker)
        done = 0
        total = len(tickers)

        def tick(_d: int, _t: int, ticker: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, ticker)

        full_refetch: list[str] = []
        try:
            for since, group in sorted(plans.items()):
                result = provider.fetch(group, since, end, progress=tick)
                report.errors.update(result.errors)
                report.empty.extend(t for t in result.empty if t not in existing)
                report.unchanged.extend(t for t in result.empty if t in existing)
                for ticker, new in result.bars.items():
                    old = existing.get(ticker)
                    if old is None:
                        with self.lock(ticker):
                            self.write(ticker, new, source=provider.name, yfinance_version=yfinance_version)
                        report.updated[ticker] = len(new)
                        continue
                    reason = _overlap_mismatch(old, new)
                    if reason:
                        report.refetched[ticker] = reason
                        full_refetch.append(ticker)
                        continue
                    merged = pd.concat([old[old.index < new.index[0]], new])
                    added = int((merged.index > old.index[-1]).sum())
                    with self.lock(ticker):
                        self.write(ticker, merged, source=provider.name, yfinance_version=yfinance_version)
                    if added:
                        report.updated[ticker] = added
                    else:
                        report.unchanged.append(ticker)
            if full_refetch:
                first = min(existing[t].index[0].date() for t in full_refetch)
                result = provider.fetch(full_refetch, min(first, start), end)
                report.errors.update(result.errors)
                for ticker, new in result.bars.items():
                    with self.lock(ticker):
                        self.write(ticker, new, source=provider.name, yfinance_version=yfinance_version)
                    report.updated[ticker] = len(new)
        except (OfflineError, RateLimitError) as exc:
            report.offline = str(exc)
        return report


def _overlap_mismatch(old: pd.DataFrame, new: pd.DataFrame, rtol: float = 1e-6) -> str | None:
    """Why stored history disagrees with freshly fetched overlapping rows, or None when it agrees."""
    common = old.index.intersection(new.index)
    if common.empty:
        return None if new.index[0] > old.index[-1] else "no overlapping dates to compare"
    a = old.loc[common, "adj_close"].to_numpy()
    b = new.loc[common, "adj_close"].to_numpy()
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return None
    rel = np.abs(a[both] / b[both] - 1.0)
    if rel.max() > rtol:
        worst = common[both][int(np.argmax(rel))]
        return (f"adjusted close on {worst.date()} changed by {rel.max():.4%} since the last fetch "
                "(new split or distribution): whole history re-fetched")
    return None
