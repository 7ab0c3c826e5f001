"""Yahoo Finance provider: daily bars through `yfinance` (an edge module; the core never imports it).

`YahooProvider.fetch` calls ``yfinance.download`` once per exchange time zone (in batches), keeps both
``Close`` and ``Adj Close`` (``auto_adjust=False``), and turns its wide frame into canonical bars per ticker
(`screener.data.bars.normalize_bars`). Rate limits and network failures are retried with exponential backoff
and full jitter; only the tickers that failed are asked for again.

How per-ticker failures are detected
------------------------------------
``yfinance.download`` (1.x) never raises for a ticker: ``multi._download_one`` catches every exception, gives
the ticker an all-NaN frame and, after the batch, logs one ERROR record per distinct failure on the
``yfinance`` logger, ``"['MP', 'LYC.AX']: <repr(exception)>"``, or the plain message for a "soft" failure
(``"['XYZ']: possibly delisted; no timezone found"``). The frame alone cannot tell an unknown symbol from a
rate limit or a dropped connection, so while a download runs we attach a handler to that logger, keep the
ERROR records emitted on the calling thread (``threads=False`` keeps yfinance's work on it), and parse which
tickers failed and why: by exception class name when the record carries a ``repr``, by message otherwise.
A ticker with rows is kept whatever was logged; one without rows is a failure if a record names it, else
simply empty.

yfinance hides some exceptions unless ``yfinance.config.debug.hide_exceptions`` is false: with the default
(true) a connection error while fetching a chart is swallowed and reported as "possibly delisted; no price
data found", which would make an offline machine look like a list of delisted symbols. Each download
therefore runs with that flag set to false (restored afterwards, under `_DOWNLOAD_LOCK`), so the exception
reaches ``_download_one`` and its ``repr`` reaches the log. The parser still understands the default mode's
records (``"Failed to get ticker 'MP' reason: ..."`` marks a network failure) in case a yfinance version
ignores the flag.
"""

from __future__ import annotations

import ast
import logging
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import metadata
from typing import Any, Literal

import pandas as pd

from screener.data.bars import normalize_bars
from screener.data.providers import FetchResult, Progress
from screener.exceptions import DataError, OfflineError, ProviderError, RateLimitError
from screener.markets import timezone_of

__all__ = ["YahooProvider", "yfinance_version"]

# One yfinance download at a time per process: download() shares global state (the YfData session
# singleton with its cookie and crumb, yfinance.config, the logger we attach to) and we flip a config flag.
_DOWNLOAD_LOCK = threading.Lock()

_LOGGER_NAME = "yfinance"

Download = Callable[..., pd.DataFrame | None]
"""``yfinance.download``'s signature."""
FailureKind = Literal["empty", "error", "network", "rate_limit"]
# Severity order when several records name one ticker: the most actionable wins.
_SEVERITY: dict[str, int] = {"empty": 0, "error": 1, "network": 2, "rate_limit": 3}
_RETRYABLE = frozenset({"network", "rate_limit"})

# yfinance's column names -> canonical bar columns (matched case-insensitively).
_FIELDS: dict[str, str] = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
    "volume": "volume",
}

_RATE_LIMIT_NAMES = frozenset({"YFRateLimitError"})
_MISSING_DATA_NAMES = frozenset({"YFPricesMissingError", "YFTzMissingError", "YFTickerMissingError"})
# Names of network exceptions, for records (which carry only a class name) and for libraries that are not
# importable here. Importable classes are also matched through their MRO (see `_exception_names`).
_NETWORK_NAMES = frozenset({
    "OSError", "IOError", "ConnectionError", "ConnectionResetError", "ConnectionRefusedError",
    "ConnectionAbortedError", "BrokenPipeError", "TimeoutError", "timeout", "gaierror", "herror",
    "SSLError", "CertificateVerifyError", "CurlError", "RequestException", "Timeout", "ReadTimeout",
    "ConnectTimeout", "DNSError", "ProxyError", "ChunkedEncodingError", "ContentDecodingError",
    "IncompleteRead", "RemoteDisconnected", "HTTPException", "ProtocolError", "NewConnectionError",
    "MaxRetryError", "ReadTimeoutError", "ConnectTimeoutError", "URLError", "RetryError", "SessionClosed",
    "InterfaceError", "JSONDecodeError",  # Yahoo answers an HTML or empty body when it throttles
})
# OSError subclasses that are not network trouble, and ValueError mixins (curl_cffi's InvalidURL is both).
_NOT_NETWORK_NAMES = frozenset({
    "FileNotFoundError", "FileExistsError", "PermissionError", "IsADirectoryError", "NotADirectoryError",
    "ValueError", "TypeError",
})
# Modules whose exception classes let a class name from a record be resolved to its MRO.
# Modules are only looked up in sys.modules: yfinance has imported its HTTP stack by the time it logs.
_EXCEPTION_MODULES = (
    "builtins", "yfinance.exceptions", "curl_cffi.requests.exceptions", "curl_cffi", "requests.exceptions",
    "urllib3.exceptions", "socket", "ssl", "http.client", "urllib.error", "json",
)

_SOFT_RATE_LIMIT = re.compile(r"too many requests|rate.?limit", re.IGNORECASE)
_SOFT_EMPTY = re.compile(
    r"possibly delisted|no price data|no timezone|no data found|may be delisted|doesn't exist|not found",
    re.IGNORECASE,
)
_SUMMARY_RECORD = re.compile(r"^\s*(\[[^\]]*\]):\s?(.*)$", re.DOTALL)
_TZ_FETCH_RECORD = re.compile(r"^\s*Failed to get ticker '(?P<ticker>[^']+)' reason: (?P<why>.*)$", re.DOTALL)
_TICKER_RECORD = re.compile(r"^\s*\$(?P<ticker>[^:\s]+): (?P<why>.*)$", re.DOTALL)
_REPR = re.compile(r"^(?P<name>[A-Za-z_]\w*)\((?P<args>.*)\)$", re.DOTALL)
_HTTP_STATUS = re.compile(r"\b(?:HTTP Error (\d{3})|(\d{3}) (?:Client|Server) Error)")


def yfinance_version() -> str | None:
    """Return the installed yfinance version, or None when it is not installed."""
    try:
        return metadata.version("yfinance")
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class _Failure:
    """Why a ticker came back without rows."""

    kind: FailureKind
    detail: str


class YahooProvider:
    """Daily bars from Yahoo Finance through ``yfinance.download``.

    Parameters
    ----------
    download : callable, optional
        A function with ``yfinance.download``'s signature; default ``yfinance.download``, imported on the
        first fetch (importing this module does not import yfinance).
    max_retries : int, default 5
        Retries after a rate limit or network failure (so at most ``max_retries + 1`` requests per ticker).
    base_delay, max_delay : float, default 1.0 and 60.0
        Backoff before retry ``k`` (from 0) is drawn uniformly from
        ``[0, min(max_delay, base_delay * 2**k)]`` seconds ("full jitter").
    sleep : callable, default `time.sleep`
        Called with the delay before each retry (tests pass a recorder).
    rng : random.Random, optional
        Source of jitter; a fresh unseeded generator when omitted.
    batch_size : int, default 40
        Tickers per download call.
    timeout : float, default 20
        Seconds yfinance waits for each HTTP response.
    """

    name = "yahoo"

    def __init__(
        self,
        *,
        download: Download | None = None,
        max_retries: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        sleep: Callable[[float], Any] = time.sleep,
        rng: random.Random | None = None,
        batch_size: int = 40,
        timeout: float = 20,
    ) -> None:
        self.download = download
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.rng = rng
        self.batch_size = batch_size
        self.timeout = timeout

    def __repr__(self) -> str:
        return (f"YahooProvider(max_retries={self.max_retries}, base_delay={self.base_delay}, "
                f"max_delay={self.max_delay}, batch_size={self.batch_size}, timeout={self.timeout})")

    def fetch(
        self,
        tickers: Sequence[str],
        start: date | None = None,
        end: date | None = None,
        progress: Progress | None = None,
    ) -> FetchResult:
        """Return bars for ``tickers`` between ``start`` and ``end`` (both inclusive).

        Parameters
        ----------
        tickers : sequence of str
            Yahoo symbols (``"MP"``, ``"LYC.AX"``); results are keyed by the strings given.
        start, end : datetime.date, optional
            First and last trading date wanted; the whole history when ``start`` is omitted, up to the
            latest bar when ``end`` is omitted.
        progress : callable, optional
            Called as ``progress(done, total, ticker)`` after each ticker is resolved (bars, empty or error).

        Returns
        -------
        FetchResult
            ``bars`` per ticker with rows, ``empty`` tickers (unknown, delisted or no rows in the range),
            ``errors`` per ticker still failing after retries. Keys follow the order of ``tickers``.

        Raises
        ------
        OfflineError
            Every ticker failed with a network error: Yahoo Finance cannot be reached.
        RateLimitError
            Every ticker was still rate limited after the retries.
        ProviderError
            yfinance is missing, or ``download`` failed in a way that is not a network or rate-limit error.
        """
        self._validate_params()
        symbols = _validate_tickers(tickers)
        start, end = _validate_dates(start, end)
        if not symbols:
            return FetchResult()
        download = self.download if self.download is not None else _yfinance_download()
        rng = self.rng if self.rng is not None else random.Random()

        run = _Run(symbols, progress)
        for group in _group_by_timezone(symbols):
            for i in range(0, len(group), self.batch_size):
                self._fetch_batch(download, group[i:i + self.batch_size], start, end, rng, run)
        return run.finish(self.max_retries)

    # -- internals -------------------------------------------------------------------------------------

    def _validate_params(self) -> None:
        if self.download is not None and not callable(self.download):
            raise TypeError(f"`download` must be callable, got {type(self.download).__name__}")
        if not callable(self.sleep):
            raise TypeError(f"`sleep` must be callable, got {type(self.sleep).__name__}")
        if self.rng is not None and not callable(getattr(self.rng, "uniform", None)):
            raise TypeError(f"`rng` must be a random.Random, got {type(self.rng).__name__}")
        for name in ("max_retries", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"`{name}` must be an integer, got {type(value).__name__}")
        if self.max_retries < 0:
            raise ValueError(f"`max_retries` must be >= 0, got {self.max_retries}")
        if self.batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {self.batch_size}")
        for name in ("base_delay", "max_delay", "timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TypeError(f"`{name}` must be a number of seconds, got {type(value).__name__}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError(f"`base_delay` and `max_delay` must be >= 0, got {self.base_delay} and "
                             f"{self.max_delay}")
        if self.timeout <= 0:
            raise ValueError(f"`timeout` must be > 0 seconds, got {self.timeout}")

    def _backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before retry ``attempt`` (0-based)."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def _fetch_batch(
        self,
        download: Download,
        batch: list[str],
        start: date | None,
        end: date | None,
        rng: random.Random,
        run: _Run,
    ) -> None:
        # When everything so far has failed even after full retries, Yahoo is down or refusing us: give the
        # remaining batches a single try instead of another round of backoff each.
        max_retries = 0 if run.hopeless() else self.max_retries
        pending = batch
        attempt = 0
        while True:
            outcomes = self._download_once(download, pending, start, end)
            retry: list[str] = []
            for symbol in pending:
                outcome = outcomes[symbol]
                if isinstance(outcome, _Failure) and outcome.kind in _RETRYABLE:
                    retry.append(symbol)
                else:
                    run.resolve(symbol, outcome)
            if not retry:
                return
            if attempt >= max_retries:
                for symbol in retry:
                    run.resolve(symbol, outcomes[symbol], retries=attempt, exhausted=True)
                return
            self.sleep(self._backoff(attempt, rng))
            attempt += 1
            pending = retry

    def _download_once(
        self,
        download: Download,
        symbols: list[str],
        start: date | None,
        end: date | None,
    ) -> dict[str, pd.DataFrame | _Failure]:
        """One ``download`` call for ``symbols``: bars or a failure per symbol."""
        queries = list(dict.fromkeys(s.strip() for s in symbols))
        kwargs: dict[str, Any] = {
            "start": start.isoformat() if start is not None else None,
            # yfinance's `end` is exclusive; ours is the last date wanted.
            "end": (end + timedelta(days=1)).isoformat() if end is not None else None,
            "interval": "1d",
            "auto_adjust": False,  # keep both Close and Adj Close
            "actions": False,
            "progress": False,
            "threads": False,  # keeps yfinance's log records on this thread (see the module docstring)
            "group_by": "column",
            "multi_level_index": True,
            "ignore_tz": True,
            "repair": False,
            "keepna": False,
            "timeout": self.timeout,
        }
        if start is None:
            kwargs["period"] = "max"  # without start, yfinance would fetch one month
        with _DOWNLOAD_LOCK, _yfinance_raises_errors(), _capture_yfinance_errors() as messages:
            try:
                frame = download(queries, **kwargs)
            except Exception as exc:  # classified below; anything unexpected is re-raised
                failure = _classify_exception(exc)
                if failure.kind in _RETRYABLE or failure.kind == "empty":
                    return dict.fromkeys(symbols, failure)
                raise ProviderError(f"yfinance download failed for {', '.join(queries)}: {exc!r}") from exc
        logged = _parse_records(messages)
        frames = _split_by_ticker(frame, queries)
        out: dict[str, pd.DataFrame | _Failure] = {}
        for symbol in symbols:
            query = symbol.strip()
            sub = frames.get(query)
            if sub is None:
                sub = frames.get(query.upper())
            if sub is None:
                sub = next((f for t, f in frames.items() if t.upper() == query.upper()), None)
            bars: pd.DataFrame | None = None
            if sub is not None:
                try:
                    bars = _to_bars(sub, query)
                except DataError as exc:
                    out[symbol] = _Failure("error", str(exc))
                    continue
            if bars is not None and not bars.empty:
                out[symbol] = bars
            else:
                out[symbol] = logged.get(query.upper(), _Failure("empty", "no rows"))
        return out


class _Run:
    """Bookkeeping for one `YahooProvider.fetch`: outcome per ticker, and progress reports."""

    def __init__(self, symbols: list[str], progress: Progress | None) -> None:
        self.symbols = symbols
        self.progress = progress
        self.bars: dict[str, pd.DataFrame] = {}
        self.empty: set[str] = set()
        self.errors: dict[str, str] = {}
        self.failures: dict[str, _Failure] = {}
        self.exhausted = False

    def resolve(self, symbol: str, outcome: pd.DataFrame | _Failure, retries: int = 0,
                exhausted: bool = False) -> None:
        if isinstance(outcome, pd.DataFrame):
            self.bars[symbol] = outcome
        elif outcome.kind == "empty":
            self.empty.add(symbol)
        else:
            self.failures[symbol] = outcome
            self.errors[symbol] = _reason(outcome, retries)
            self.exhausted = self.exhausted or exhausted
        if self.progress is not None:
            done = len(self.bars) + len(self.empty) + len(self.errors)
            self.progress(done, len(self.symbols), symbol)

    def hopeless(self) -> bool:
        """Tell whether a batch exhausted its retries and every ticker so far failed that way."""
        return (self.exhausted and not self.bars and not self.empty
                and all(f.kind in _RETRYABLE for f in self.failures.values()))

    def finish(self, max_retries: int) -> FetchResult:
        if len(self.failures) == len(self.symbols):
            kinds = {f.kind for f in self.failures.values()}
            n = len(self.symbols)
            if kinds == {"network"}:
                detail = self.failures[self.symbols[0]].detail
                raise OfflineError(f"Yahoo Finance is unreachable: {detail} (all {n} tickers failed, "
                                   f"{max_retries} retries with backoff)")
            if kinds == {"rate_limit"}:
                raise RateLimitError(f"Yahoo Finance rate-limited every request (all {n} tickers) even after "
                                     f"{max_retries} retries with backoff; wait a few minutes and try again")
        return FetchResult(
            bars={s: self.bars[s] for s in self.symbols if s in self.bars},
            empty=[s for s in self.symbols if s in self.empty],
            errors={s: self.errors[s] for s in self.symbols if s in self.errors},
        )


def _reason(failure: _Failure, retries: int) -> str:
    """Word a failure for `FetchResult.errors`."""
    if failure.kind == "rate_limit":
        return f"rate limited by Yahoo Finance after {retries} retries"
    if failure.kind == "network":
        return f"network error: {failure.detail} (after {retries} retries)"
    return f"yfinance error: {failure.detail}"


# -- inputs ----------------------------------------------------------------------------------------------


def _validate_tickers(tickers: Sequence[str]) -> list[str]:
    if isinstance(tickers, str):
        raise TypeError(f"`tickers` must be a sequence of symbols, not a string: got {tickers!r}, "
                        f"pass [{tickers!r}]")
    if not isinstance(tickers, Iterable):
        raise TypeError(f"`tickers` must be a sequence of symbols, got {type(tickers).__name__}")
    symbols = list(dict.fromkeys(tickers))
    bad = [t for t in symbols if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"`tickers` must be non-empty strings, got {bad!r}")
    return symbols


def _validate_dates(start: date | None, end: date | None) -> tuple[date | None, date | None]:
    out = []
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, datetime):  # also pd.Timestamp: the date is what matters
            value = value.date()
        elif value is not None and not isinstance(value, date):
            raise TypeError(f"`{name}` must be a datetime.date or None, got {type(value).__name__} {value!r}")
        out.append(value)
    if out[0] is not None and out[1] is not None and out[0] > out[1]:
        raise ValueError(f"`start` ({out[0]}) must not be after `end` ({out[1]})")
    return out[0], out[1]


def _group_by_timezone(symbols: list[str]) -> list[list[str]]:
    """Symbols grouped by exchange time zone, in order of first appearance.

    yfinance aligns every ticker of one call on the union of their dates; one call per time zone keeps
    (for example) Sydney and New York sessions from being mixed in one index.
    """
    groups: dict[str, list[str]] = {}
    for symbol in symbols:
        groups.setdefault(timezone_of(symbol.strip()), []).append(symbol)
    return list(groups.values())


def _yfinance_download() -> Download:
    try:
        import yfinance
    except ImportError as exc:
        raise ProviderError("yfinance is not installed; install it (`pip install yfinance`) or pass "
                            "`download=` to YahooProvider") from exc
    return yfinance.download


# -- around each download call ---------------------------------------------------------------------------


class _ErrorCollector(logging.Handler):
    """Keeps the messages of ERROR records emitted on one thread."""

    def __init__(self, thread: int) -> None:
        super().__init__(level=logging.ERROR)
        self.thread = thread
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            try:
                self.messages.append(record.getMessage())
            except Exception:  # a malformed record must not break the download
                self.messages.append(str(record.msg))


@contextmanager
def _capture_yfinance_errors() -> Iterator[list[str]]:
    """Collect the 'yfinance' logger's ERROR messages from this thread while the block runs.

    The records still propagate to the application's handlers as usual. If the application silenced the
    logger (level above ERROR, or disabled), it is opened to ERROR for the block with propagation off, so
    it stays silent to everyone but the collector.
    """
    logger = logging.getLogger(_LOGGER_NAME)
    collector = _ErrorCollector(threading.get_ident())
    saved = (logger.level, logger.propagate, logger.disabled)
    silenced = logger.disabled or logger.getEffectiveLevel() > logging.ERROR
    if silenced:
        logger.setLevel(logging.ERROR)
        logger.propagate = False
        logger.disabled = False
    logger.addHandler(collector)
    try:
        yield collector.messages
    finally:
        logger.removeHandler(collector)
        if silenced:
            logger.setLevel(saved[0])
            logger.propagate, logger.disabled = saved[1], saved[2]


@contextmanager
def _yfinance_raises_errors() -> Iterator[None]:
    """Run with ``yfinance.config.debug.hide_exceptions = False`` so network errors are not disguised.

    Without it, yfinance reports a failed chart request as "possibly delisted; no price data found". The
    flag is global; callers hold `_DOWNLOAD_LOCK`. Nothing happens if yfinance is not imported (an injected
    ``download`` that does not use it).
    """
    yf = sys.modules.get("yfinance")
    debug = getattr(getattr(yf, "config", None), "debug", None)
    if debug is None:
        yield
        return
    saved = debug.hide_exceptions
    debug.hide_exceptions = False
    try:
        yield
    finally:
        debug.hide_exceptions = saved


# -- classifying failures --------------------------------------------------------------------------------


def _class_by_name(name: str) -> type[BaseException] | None:
    """Find the exception class of that name in an already-imported networking or yfinance module."""
    for module_name in _EXCEPTION_MODULES:
        cls = getattr(sys.modules.get(module_name), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls
    return None


def _exception_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _classify(names: set[str], message: str) -> _Failure:
    """Classify a failure from its exception class names (own class and bases) and its message."""
    detail = message.strip() or "unknown error"
    if names & _RATE_LIMIT_NAMES:
        return _Failure("rate_limit", detail)
    if names & _MISSING_DATA_NAMES:
        return _Failure("empty", detail)
    if "HTTPError" in names:
        match = _HTTP_STATUS.search(message)
        status = int(match.group(1) or match.group(2)) if match else None
        if status == 429:
            return _Failure("rate_limit", detail)
        if status == 404:
            return _Failure("empty", detail)
        return _Failure("network", detail)  # 5xx and Yahoo's transient 401 "invalid crumb"
    if "YFDataException" in names and "down" in message.lower():
        return _Failure("network", detail)  # "*** YAHOO! FINANCE IS CURRENTLY DOWN! ***"
    if "JSONDecodeError" in names or (names & _NETWORK_NAMES and not names & _NOT_NETWORK_NAMES):
        return _Failure("network", detail)
    return _Failure("error", detail)


def _classify_exception(exc: BaseException) -> _Failure:
    return _classify(_exception_names(exc), f"{type(exc).__name__}: {exc}")


def _classify_text(text: str) -> _Failure:
    """Classify a logged failure: ``ClassName('message')`` (a ``repr``) or a plain soft-error message."""
    text = text.strip()
    match = _REPR.match(text)
    if match:
        name = match.group("name")
        cls = _class_by_name(name)
        if cls is not None or name.endswith(("Error", "Exception", "Timeout")):
            names = {c.__name__ for c in cls.__mro__} if cls is not None else {name}
            try:
                args = ast.literal_eval(f"({match.group('args')},)")
                message = " ".join(str(a) for a in args)
            except (ValueError, SyntaxError):
                message = match.group("args")
            return _classify(names | {name}, f"{name}: {message}")
    if _SOFT_RATE_LIMIT.search(text):
        return _Failure("rate_limit", text)
    if _SOFT_EMPTY.search(text):
        return _Failure("empty", text)
    return _Failure("error", text)


def _merge(failures: dict[str, _Failure], ticker: str, failure: _Failure) -> None:
    key = ticker.strip().upper()
    if key not in failures or _SEVERITY[failure.kind] > _SEVERITY[failures[key].kind]:
        failures[key] = failure


def _parse_records(messages: list[str]) -> dict[str, _Failure]:
    """Failures per upper-case symbol from yfinance's ERROR messages (most severe per symbol)."""
    failures: dict[str, _Failure] = {}
    for message in messages:
        summary = _SUMMARY_RECORD.match(message)
        if summary:
            try:
                tickers = ast.literal_eval(summary.group(1))
            except (ValueError, SyntaxError):
                tickers = None
            if isinstance(tickers, list):
                failure = _classify_text(summary.group(2))
                for ticker in tickers:
                    _merge(failures, str(ticker), failure)
                continue
        tz_fetch = _TZ_FETCH_RECORD.match(message)
        if tz_fetch:
            why = tz_fetch.group("why").strip()
            kind: FailureKind = "rate_limit" if _SOFT_RATE_LIMIT.search(why) else "network"
            _merge(failures, tz_fetch.group("ticker"), _Failure(kind, why))
            continue
        own = _TICKER_RECORD.match(message)
        if own:
            _merge(failures, own.group("ticker"), _classify_text(own.group("why")))
    return failures


# -- reshaping -------------------------------------------------------------------------------------------


def _field(label: object) -> str | None:
    return _FIELDS.get(str(label).strip().lower())


def _split_by_ticker(frame: pd.DataFrame | None, symbols: list[str]) -> dict[str, pd.DataFrame]:
    """Split yfinance's wide frame into one frame of yfinance columns per ticker.

    Accepts MultiIndex columns in (Price, Ticker) order (``group_by="column"``) or (Ticker, Price) order
    (``group_by="ticker"``), and flat price columns when one ticker was requested.
    """
    if frame is None:
        return {}
    if not isinstance(frame, pd.DataFrame):
        raise ProviderError(f"yfinance download returned {type(frame).__name__}, expected a DataFrame")
    columns = frame.columns
    if isinstance(columns, pd.MultiIndex):
        if columns.nlevels != 2:
            raise ProviderError(f"yfinance returned {columns.nlevels} column levels, "
                                "expected 2 (Price, Ticker)")
        level = _ticker_level(columns)
        return {str(t): frame.xs(t, axis=1, level=level) for t in columns.get_level_values(level).unique()}
    if len(columns) == 0:
        return {}
    if any(_field(c) for c in columns):
        if len(symbols) != 1:
            raise ProviderError(f"yfinance returned single-level columns for {len(symbols)} tickers; "
                                "cannot tell which column belongs to which ticker")
        return {symbols[0]: frame}
    raise ProviderError(f"yfinance returned unrecognised columns: {', '.join(map(str, columns[:8]))}")


def _ticker_level(columns: pd.MultiIndex) -> int:
    """Which of two column levels holds tickers: by level name, else the level that is not price fields."""
    names = [str(n).lower() if n is not None else "" for n in columns.names]
    if "ticker" in names:
        return names.index("ticker")
    if "price" in names:
        return 1 - names.index("price")
    fields = [sum(_field(v) is not None for v in columns.levels[i]) / max(len(columns.levels[i]), 1)
              for i in (0, 1)]
    return 1 if fields[0] >= fields[1] else 0


def _to_bars(frame: pd.DataFrame, symbol: str) -> pd.DataFrame | None:
    """Canonical bars from one ticker's yfinance columns; None when it has no ``Close`` column."""
    renames = {c: _field(c) for c in frame.columns if _field(c) is not None}
    if "close" not in renames.values():
        return None
    out = frame[list(renames)].rename(columns=renames)
    out = out.loc[:, ~out.columns.duplicated()]
    index = out.index
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        # A bar stamped 00:00 Australia/Sydney is that Sydney date, not the previous UTC day.
        out.index = index.tz_convert(timezone_of(symbol)).tz_localize(None)
    out = out.dropna(how="all")  # yfinance pads each ticker to the union of the batch's dates
    return normalize_bars(out, symbol)
