"""YahooProvider against the real ``yfinance.download``, with Yahoo itself replaced by a fake.

No test touches the network. Most tests run yfinance 1.7's own ``download`` (its concatenation, column
swapping, union reindexing and per-ticker error logging) with ``yfinance.multi.Ticker`` swapped for
`FakeTicker`, whose ``history`` returns frames shaped like ``PriceHistory.history`` or fails the way it
does. The autouse `no_network` fixture fails any test in which yfinance tries to send a request.
"""

from __future__ import annotations

import contextlib
import logging
import random
import subprocess
import sys
import threading
import time
from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yfinance
import yfinance.data
import yfinance.multi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError, YFTickerMissingError, YFTzMissingError

from screener.data import yahoo as yahoo_module
from screener.data.bars import BAR_COLUMNS
from screener.data.yahoo import YahooProvider, yfinance_version
from screener.exceptions import OfflineError, ProviderError, RateLimitError

NY = "America/New_York"
SYDNEY = "Australia/Sydney"
JAN = pd.bdate_range("2024-01-02", "2024-01-31")


def history_frame(dates, tz: str, base: float = 10.0) -> pd.DataFrame:
    """A frame as ``PriceHistory.history(auto_adjust=False, actions=False)`` returns it for daily bars."""
    index = pd.DatetimeIndex(pd.to_datetime(list(dates))).tz_localize(tz).rename("Date")
    close = base + np.arange(len(index), dtype=float)
    return pd.DataFrame(
        {"Open": close - 0.5, "High": close + 1.0, "Low": close - 1.0, "Close": close,
         "Adj Close": close * 0.9, "Volume": (np.arange(len(index)) + 1) * 1000},
        index=index,
    )


class SwallowedByDefault(Exception):
    """Script entry: a chart request failing with ``error``, which yfinance hides by default.

    ``PriceHistory.history`` re-raises an exception from its chart request only when
    ``config.debug.hide_exceptions`` is false; otherwise it carries on with no data and reports
    "possibly delisted; no price data found".
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


class FakeYahoo:
    """Yahoo's side of ``Ticker.history``: listings, scripted failures, and a log of requests."""

    def __init__(self, mode: str = "raise") -> None:
        self.mode = mode
        self.listings: dict[str, pd.DataFrame] = {}
        self.scripts: dict[str, list[BaseException | None]] = {}
        self.requests: list[tuple[str, str | None, str | None]] = []

    def list(self, symbol: str, tz: str, dates=JAN, base: float = 10.0) -> pd.DataFrame:
        self.listings[symbol.upper()] = history_frame(dates, tz, base)
        return self.listings[symbol.upper()]

    def script(self, symbol: str, *outcomes: BaseException | None) -> None:
        """Successive requests for ``symbol`` raise these (None: answer normally); then answer normally."""
        self.scripts[symbol.upper()] = list(outcomes)

    def history(self, ticker: FakeTicker, start, end) -> pd.DataFrame:
        symbol = ticker.ticker
        self.requests.append((symbol, start, end))
        hide = yfinance.config.debug.hide_exceptions
        script = self.scripts.get(symbol)
        failure = script.pop(0) if script else None
        if isinstance(failure, SwallowedByDefault):
            if not hide:
                raise failure.error
            return ticker.soft_error(YFPricesMissingError(symbol, f"(1d {start} -> {end})"), hide)
        if failure is not None:
            if isinstance(failure, YFTickerMissingError):
                return ticker.soft_error(failure, hide)
            if isinstance(failure, OSError) and hide:
                # yfinance's default: the tz lookup logs the network error and carries on without a tz.
                logging.getLogger("yfinance").error(f"Failed to get ticker '{symbol}' reason: {failure}")
                return ticker.soft_error(YFTzMissingError(symbol), hide)
            raise failure
        if symbol not in self.listings:
            return ticker.soft_error(YFTzMissingError(symbol), hide)
        frame = self.listings[symbol]
        local = frame.index.tz_localize(None)
        keep = np.ones(len(frame), dtype=bool)
        if start is not None:
            keep &= local >= pd.Timestamp(start)
        if end is not None:
            keep &= local < pd.Timestamp(end)  # Yahoo's end is exclusive
        if not keep.any():
            return ticker.soft_error(YFPricesMissingError(symbol, f"(1d {start} -> {end})"), hide)
        return frame[keep].copy()


class FakeTicker:
    """Stands in for ``yfinance.Ticker`` inside ``multi._download_one``."""

    yahoo: FakeYahoo

    def __init__(self, ticker: str, session=None) -> None:
        self.ticker = ticker.upper()
        self._price_history = SimpleNamespace(_last_error=None)

    def history(self, period=None, interval="1d", start=None, end=None, prepost=False, actions=True,
                auto_adjust=True, back_adjust=False, repair=False, keepna=False, rounding=False,
                timeout=10, raise_errors=False) -> pd.DataFrame:
        assert interval == "1d" and not auto_adjust and not actions and not repair
        return self.yahoo.history(self, start, end)

    def soft_error(self, exc: YFTickerMissingError, hide: bool) -> pd.DataFrame:
        """What ``PriceHistory.history`` does with a missing-data error: log it, or raise it."""
        if not hide:
            raise exc
        message = str(exc)
        self._price_history._last_error = message.split(": ", 1)[1]
        logging.getLogger("yfinance").error(message)
        return yfinance.utils.empty_df()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail the test if yfinance tries to send any HTTP request."""
    attempts: list[str] = []

    def refuse(self, url, *args, **kwargs):
        attempts.append(url)
        raise RuntimeError(f"test tried to reach {url}")

    monkeypatch.setattr(yfinance.data.YfData, "_make_request", refuse)
    yield
    assert not attempts, f"yfinance tried the network: {attempts}"


@pytest.fixture(params=["raise", "soft"])
def yahoo(request, monkeypatch) -> FakeYahoo:
    """A fake Yahoo behind the real ``yfinance.download``.

    "raise" is how the provider runs yfinance (``hide_exceptions`` off); "soft" keeps yfinance's default,
    to check that the log parser also reads the records yfinance writes then.
    """
    fake = FakeYahoo(request.param)
    monkeypatch.setattr(FakeTicker, "yahoo", fake, raising=False)
    monkeypatch.setattr(yfinance.multi, "Ticker", FakeTicker)
    if request.param == "soft":
        monkeypatch.setattr(yahoo_module, "_yfinance_raises_errors", contextlib.nullcontext)
    return fake


class Sleeps(list):
    """A `sleep` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def provider(**kwargs) -> YahooProvider:
    kwargs.setdefault("sleep", Sleeps())
    kwargs.setdefault("rng", random.Random(7))
    return YahooProvider(**kwargs)


def expected_delays(seed: int, n: int, base: float = 1.0, cap: float = 60.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0, min(cap, base * 2**k)) for k in range(n)]


# -- the harness is faithful -------------------------------------------------------------------------------


def test_harness_reproduces_yfinance_download_shapes(yahoo):
    # yfinance 1.7 returns (Price, Ticker) columns even for one ticker, tz-naive local dates with
    # ignore_tz, and an all-NaN column block for a ticker that failed.
    yahoo.list("MP", NY)
    one = yfinance.download(["MP"], start="2024-01-01", end="2024-02-01", auto_adjust=False,
                            progress=False, threads=False, ignore_tz=True)
    assert one.columns.names == ["Price", "Ticker"]
    assert set(one.columns.get_level_values("Ticker")) == {"MP"}
    assert one.index.tz is None and one.index[0] == pd.Timestamp("2024-01-02")
    two = yfinance.download(["MP", "NOPE"], start="2024-01-01", end="2024-02-01", auto_adjust=False,
                            progress=False, threads=False, ignore_tz=True)
    assert two.xs("NOPE", axis=1, level="Ticker").isna().all().all()


# -- shapes and dates --------------------------------------------------------------------------------------


def test_one_ticker_gives_canonical_bars(yahoo):
    history = yahoo.list("MP", NY)
    result = provider().fetch(["MP"], date(2024, 1, 1), date(2024, 1, 31))
    assert result.empty == [] and result.errors == {}
    bars = result.bars["MP"]
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert bars.index.name == "date" and bars.index.tz is None
    assert (bars.dtypes == "float64").all()
    assert list(bars.index) == list(JAN)
    np.testing.assert_allclose(bars["close"], history["Close"])
    np.testing.assert_allclose(bars["adj_close"], history["Adj Close"])  # auto_adjust=False kept both
    np.testing.assert_allclose(bars["volume"], history["Volume"])


def test_exchanges_keep_their_own_dates(yahoo):
    # 2024-01-15 is a US holiday (MLK day); 2024-01-26 is an Australian one. Each listing keeps its own
    # sessions: no rows padded in from the other market, and Sydney dates stay Sydney dates.
    us_days = JAN.drop(pd.Timestamp("2024-01-15"))
    au_days = JAN.drop(pd.Timestamp("2024-01-26"))
    yahoo.list("MP", NY, us_days)
    yahoo.list("LYC.AX", SYDNEY, au_days, base=7.0)
    calls = []

    def counting_download(tickers, **kwargs):
        calls.append(list(tickers))
        return yfinance.download(tickers, **kwargs)

    result = provider(download=counting_download).fetch(["MP", "LYC.AX"], date(2024, 1, 1), date(2024, 1, 31))
    assert list(result.bars["MP"].index) == list(us_days)
    assert list(result.bars["LYC.AX"].index) == list(au_days)
    assert result.bars["LYC.AX"]["close"].iloc[0] == 7.0
    assert sorted(calls) == [["LYC.AX"], ["MP"]]  # one download per exchange time zone


def test_tz_aware_index_is_dated_in_the_listing_market():
    # Midnight in Sydney is 13:00 UTC the previous day: the bar belongs to the Sydney date.
    sydney = history_frame(["2024-01-02", "2024-01-03"], SYDNEY)
    utc = sydney.tz_convert("UTC")
    assert utc.index[0].day == 1

    def download(tickers, **kwargs):
        return pd.concat({"LYC.AX": utc}, axis=1, names=["Ticker", "Price"]).swaplevel(0, 1, axis=1)

    bars = provider(download=download).fetch(["LYC.AX"]).bars["LYC.AX"]
    assert list(bars.index) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]


@pytest.mark.parametrize("layout", ["price_ticker", "ticker_price", "unnamed_ticker_price", "flat"])
def test_column_layouts(layout):
    frames = {"MP": history_frame(JAN[:3], NY).tz_localize(None)}
    wide = pd.concat(frames, axis=1, names=["Ticker", "Price"])
    if layout == "price_ticker":
        wide = wide.swaplevel(0, 1, axis=1)
    elif layout == "unnamed_ticker_price":
        wide.columns = wide.columns.set_names([None, None])
    elif layout == "flat":
        wide = frames["MP"]
    bars = provider(download=lambda tickers, **kw: wide).fetch(["MP"]).bars["MP"]
    assert list(bars.index) == list(JAN[:3])
    np.testing.assert_allclose(bars["adj_close"], frames["MP"]["Adj Close"])


def test_all_nan_rows_from_the_union_index_are_dropped(yahoo):
    # Same exchange, different histories: yfinance pads each to the union of dates.
    yahoo.list("MP", NY, JAN[:5])
    yahoo.list("USAR", NY, JAN[3:10])
    result = provider().fetch(["MP", "USAR"], date(2024, 1, 1), date(2024, 1, 31))
    assert list(result.bars["MP"].index) == list(JAN[:5])
    assert list(result.bars["USAR"].index) == list(JAN[3:10])


def test_results_are_keyed_by_the_callers_symbols(yahoo):
    yahoo.list("MP", NY)
    result = provider().fetch(["mp", "mp", "NOPE"], date(2024, 1, 1), date(2024, 1, 31))
    assert list(result.bars) == ["mp"]
    assert result.empty == ["NOPE"]


# -- empty and failed tickers ------------------------------------------------------------------------------


def test_unknown_ticker_is_empty_not_retried(yahoo):
    yahoo.list("MP", NY)
    sleeps = Sleeps()
    result = provider(sleep=sleeps).fetch(["MP", "NOPE"], date(2024, 1, 1), date(2024, 1, 31))
    assert list(result.bars) == ["MP"]
    assert result.empty == ["NOPE"] and result.errors == {}
    assert sleeps == []


def test_no_rows_in_range_is_empty(yahoo):
    yahoo.list("MP", NY)
    result = provider().fetch(["MP"], date(2023, 6, 1), date(2023, 6, 30))
    assert result.bars == {} and result.empty == ["MP"] and result.errors == {}


def test_rate_limit_then_success_retries_only_the_failed_ticker(yahoo):
    yahoo.list("MP", NY)
    yahoo.list("USAR", NY, base=20.0)
    yahoo.script("MP", YFRateLimitError(), YFRateLimitError())
    sleeps = Sleeps()
    result = provider(sleep=sleeps, rng=random.Random(3)).fetch(
        ["MP", "USAR"], date(2024, 1, 1), date(2024, 1, 31))
    assert set(result.bars) == {"MP", "USAR"} and result.errors == {}
    assert sleeps == expected_delays(3, 2)  # full jitter: uniform(0, 1), then uniform(0, 2)
    asked = [symbol for symbol, *_ in yahoo.requests]
    assert asked.count("MP") == 3 and asked.count("USAR") == 1


def test_rate_limit_raised_by_download_itself_is_retried():
    frame = pd.concat({"MP": history_frame(JAN[:3], NY).tz_localize(None)}, axis=1,
                      names=["Ticker", "Price"]).swaplevel(0, 1, axis=1)
    answers = [YFRateLimitError(), frame]

    def download(tickers, **kwargs):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    sleeps = Sleeps()
    result = provider(download=download, sleep=sleeps).fetch(["MP"])
    assert list(result.bars) == ["MP"] and len(sleeps) == 1


def test_rate_limited_forever_raises_rate_limit_error(yahoo):
    for symbol in ("MP", "USAR"):
        yahoo.list(symbol, NY)
        yahoo.script(symbol, *[YFRateLimitError()] * 10)
    sleeps = Sleeps()
    with pytest.raises(RateLimitError, match="rate-limited"):
        provider(sleep=sleeps, base_delay=1.0, max_delay=3.0).fetch(["MP", "USAR"], date(2024, 1, 1))
    assert sleeps == expected_delays(7, 5, base=1.0, cap=3.0)
    bounds = [1, 2, 3, 3, 3]  # min(max_delay, base_delay * 2**k)
    assert all(0 <= s <= b for s, b in zip(sleeps, bounds, strict=True))


def test_one_ticker_rate_limited_forever_is_an_error(yahoo):
    yahoo.list("MP", NY)
    yahoo.list("USAR", NY)
    yahoo.script("USAR", *[YFRateLimitError()] * 10)
    result = provider().fetch(["MP", "USAR"], date(2024, 1, 1), date(2024, 1, 31))
    assert list(result.bars) == ["MP"]
    assert result.errors == {"USAR": "rate limited by Yahoo Finance after 5 retries"}


def test_partial_failure_returns_the_rest(yahoo):
    yahoo.list("MP", NY)
    yahoo.list("USAR", NY)
    yahoo.list("LYC.AX", SYDNEY)
    yahoo.script("USAR", KeyError("chart"))  # not a network or rate-limit problem: not retried
    yahoo.script("LYC.AX", *[ConnectionResetError("connection reset by peer")] * 10)
    sleeps = Sleeps()
    result = provider(sleep=sleeps).fetch(["MP", "USAR", "LYC.AX"], date(2024, 1, 1), date(2024, 1, 31))
    assert list(result.bars) == ["MP"]
    assert "KeyError" in result.errors["USAR"] and "chart" in result.errors["USAR"]
    assert result.errors["LYC.AX"].startswith("network error:")
    assert "after 5 retries" in result.errors["LYC.AX"]
    assert len(sleeps) == 5


def _curl_dns_error():
    from curl_cffi.requests.exceptions import DNSError

    return DNSError("Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com")


def _requests_connection_error():
    import requests

    return requests.exceptions.ConnectionError("Max retries exceeded")


@pytest.mark.parametrize("make_error", [
    lambda: ConnectionError("network is unreachable"),
    lambda: TimeoutError("timed out"),
    _curl_dns_error,
    _requests_connection_error,
], ids=["ConnectionError", "TimeoutError", "curl_cffi.DNSError", "requests.ConnectionError"])
def test_all_network_errors_raise_offline_error(yahoo, make_error):
    for symbol, tz in (("MP", NY), ("USAR", NY), ("LYC.AX", SYDNEY)):
        yahoo.list(symbol, tz)
        yahoo.script(symbol, *[make_error() for _ in range(10)])
    sleeps = Sleeps()
    with pytest.raises(OfflineError, match="Yahoo Finance is unreachable"):
        provider(sleep=sleeps, batch_size=1).fetch(["MP", "USAR", "LYC.AX"], date(2024, 1, 1))
    # The first batch used its retries; once nothing has worked, later batches get one try each.
    assert len(sleeps) == 5


def test_chart_request_errors_are_not_mistaken_for_delisting(yahoo):
    # With the tz already cached, yfinance's default mode turns a failed chart request into "possibly
    # delisted; no price data found". The provider switches that off, so the network error shows.
    yahoo.list("MP", NY)
    yahoo.script("MP", *[SwallowedByDefault(_curl_dns_error()) for _ in range(10)])
    if yahoo.mode == "soft":  # what yfinance's default would give: indistinguishable from delisted
        assert provider().fetch(["MP"], date(2024, 1, 1)).empty == ["MP"]
    else:
        with pytest.raises(OfflineError, match="Could not resolve host"):
            provider().fetch(["MP"], date(2024, 1, 1))


def test_downloads_run_with_yfinance_exceptions_shown():
    seen = []

    def download(tickers, **kwargs):
        seen.append(yfinance.config.debug.hide_exceptions)
        return RecordingDownload()(tickers)

    before = yfinance.config.debug.hide_exceptions
    provider(download=download).fetch(["MP"])
    assert seen == [False] and yfinance.config.debug.hide_exceptions == before


def test_network_error_raised_by_download_itself():
    def download(tickers, **kwargs):
        raise ConnectionError("no route to host")

    with pytest.raises(OfflineError, match="no route to host"):
        provider(download=download).fetch(["MP"])


def test_unexpected_download_failure_is_a_provider_error():
    def download(tickers, **kwargs):
        raise ValueError("something broke inside yfinance")

    with pytest.raises(ProviderError, match="something broke"):
        provider(download=download).fetch(["MP"])


@pytest.mark.parametrize(("message", "kind"), [
    ("['MP', 'LYC.AX']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')",
     "rate_limit"),
    ("['MP']: DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com')",
     "network"),
    ("['MP']: ReadTimeout('Operation timed out after 20000 milliseconds')", "network"),
    ("['MP']: possibly delisted; no timezone found", "empty"),
    ("['MP']: YFTzMissingError('$MP: possibly delisted; no timezone found')", "empty"),
    ("['MP']: YFPricesMissingError('$MP: possibly delisted; no price data found  (1d 2024-01-01 -> "
     "2024-02-01)')", "empty"),
    ("['MP']: HTTPError('HTTP Error 404: ')", "empty"),
    ("['MP']: HTTPError('HTTP Error 503: ')", "network"),
    ("['MP']: KeyError('chart')", "error"),
    ("Failed to get ticker 'MP' reason: Failed to perform, curl: (6) Could not resolve host", "network"),
    ("  ['MP']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')", "rate_limit"),
])
def test_parse_records(message, kind):
    failures = yahoo_module._parse_records(["\n2 Failed downloads:", message])
    assert failures["MP"].kind == kind


def test_parse_records_keeps_the_most_actionable_failure():
    # yfinance's default mode logs a network failure in the tz lookup, then "no timezone found".
    failures = yahoo_module._parse_records([
        "Failed to get ticker 'MP' reason: Connection refused",
        "$MP: possibly delisted; no timezone found",
        "['MP']: possibly delisted; no timezone found",
    ])
    assert failures["MP"].kind == "network" and "refused" in failures["MP"].detail


# -- the download call -------------------------------------------------------------------------------------


class RecordingDownload:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict]] = []

    def __call__(self, tickers, **kwargs):
        self.calls.append((list(tickers), kwargs))
        frames = {t: history_frame(JAN, NY).tz_localize(None) for t in tickers}
        return pd.concat(frames, axis=1, names=["Ticker", "Price"]).swaplevel(0, 1, axis=1)


def test_download_is_called_with_explicit_options():
    download = RecordingDownload()
    provider(download=download, timeout=7).fetch(["MP"], date(2024, 1, 2), date(2024, 1, 31))
    (_, kwargs), = download.calls
    assert kwargs["start"] == "2024-01-02"
    assert kwargs["end"] == "2024-02-01"  # yfinance's end is exclusive: our inclusive end plus one day
    assert kwargs["auto_adjust"] is False
    assert kwargs["actions"] is False and kwargs["progress"] is False and kwargs["threads"] is False
    assert kwargs["group_by"] == "column" and kwargs["multi_level_index"] is True
    assert kwargs["ignore_tz"] is True and kwargs["repair"] is False and kwargs["keepna"] is False
    assert kwargs["timeout"] == 7
    assert "period" not in kwargs


def test_without_start_the_whole_history_is_asked_for():
    download = RecordingDownload()
    provider(download=download).fetch(["MP"])
    (_, kwargs), = download.calls
    assert kwargs["period"] == "max" and kwargs["start"] is None and kwargs["end"] is None


def test_end_date_is_inclusive(yahoo):
    yahoo.list("MP", NY)
    bars = provider().fetch(["MP"], date(2024, 1, 10), date(2024, 1, 17)).bars["MP"]
    assert bars.index[0] == pd.Timestamp("2024-01-10")
    assert bars.index[-1] == pd.Timestamp("2024-01-17")


def test_batches_and_time_zone_groups():
    download = RecordingDownload()
    tickers = ["MP", "USAR", "UUUU", "NB", "ARR.AX", "TMRC"]
    provider(download=download, batch_size=2).fetch(tickers)
    batches = [t for t, _ in download.calls]
    assert batches == [["MP", "USAR"], ["UUUU", "NB"], ["TMRC"], ["ARR.AX"]]


# -- progress, lock, state ---------------------------------------------------------------------------------


def test_progress_is_reported_once_per_ticker(yahoo):
    yahoo.list("MP", NY)
    yahoo.list("LYC.AX", SYDNEY)
    yahoo.list("USAR", NY)
    yahoo.script("USAR", KeyError("chart"))
    calls = []
    provider().fetch(["MP", "NOPE", "LYC.AX", "USAR"], date(2024, 1, 1), date(2024, 1, 31),
                     progress=lambda done, total, ticker: calls.append((done, total, ticker)))
    assert [done for done, _, _ in calls] == [1, 2, 3, 4]
    assert {total for _, total, _ in calls} == {4}
    assert sorted(t for _, _, t in calls) == ["LYC.AX", "MP", "NOPE", "USAR"]


def test_downloads_never_overlap_across_threads():
    inside = 0
    overlaps = []
    guard = threading.Lock()

    def slow_download(tickers, **kwargs):
        nonlocal inside
        with guard:
            inside += 1
            overlaps.append(inside > 1)
        time.sleep(0.02)
        with guard:
            inside -= 1
        return RecordingDownload()(tickers)

    start = threading.Barrier(4)
    errors = []

    def worker(symbols):
        try:
            start.wait()
            provider(download=slow_download, batch_size=1).fetch(symbols)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=([f"T{i}A", f"T{i}B"],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors
    assert len(overlaps) == 8 and not any(overlaps)


def test_yfinance_state_is_restored(yahoo):
    yahoo.list("MP", NY)
    logger = logging.getLogger("yfinance")
    handlers = list(logger.handlers)
    hide = yfinance.config.debug.hide_exceptions
    logger.setLevel(logging.CRITICAL)  # an application that silenced yfinance
    try:
        yahoo.script("MP", YFRateLimitError())
        result = provider().fetch(["MP"], date(2024, 1, 1), date(2024, 1, 31))
        assert list(result.bars) == ["MP"]  # the rate limit was still seen (and retried)
        assert logger.level == logging.CRITICAL and logger.propagate
    finally:
        logger.setLevel(logging.NOTSET)
    assert logger.handlers == handlers
    assert yfinance.config.debug.hide_exceptions == hide


# -- properties --------------------------------------------------------------------------------------------

SYMBOLS = ["MP", "USAR", "NB", "LYC.AX", "ARU.AX", "NOPE", "GONE"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tickers=st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=7, unique=True),
    batch_size=st.integers(1, 4),
    failing=st.sets(st.sampled_from(SYMBOLS)),
)
def test_every_ticker_is_resolved_exactly_once(tickers, batch_size, failing):
    # Whatever the batching and failures, each ticker lands in exactly one of bars, empty and errors,
    # and progress counts each one once.
    def download(batch, **kwargs):
        frames = {}
        for t in batch:
            if t in ("NOPE", "GONE"):
                frames[t] = yfinance.utils.empty_df()
            else:
                frames[t] = history_frame(JAN[:4], SYDNEY if t.endswith(".AX") else NY).tz_localize(None)
        for t in batch:
            if t in failing:
                logging.getLogger("yfinance").error(f"['{t}']: KeyError('chart')")
                frames[t] = yfinance.utils.empty_df()
        return pd.concat(frames, axis=1, names=["Ticker", "Price"]).swaplevel(0, 1, axis=1)

    calls = []
    result = provider(download=download, batch_size=batch_size).fetch(
        tickers, progress=lambda d, n, t: calls.append(t))
    seen = list(result.bars) + result.empty + list(result.errors)
    assert sorted(seen) == sorted(tickers)
    assert sorted(calls) == sorted(tickers)
    assert set(result.errors) == set(failing) & set(tickers)


# -- inputs and helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"batch_size": 0}, ValueError),
    ({"max_retries": -1}, ValueError),
    ({"timeout": 0}, ValueError),
    ({"base_delay": -1.0}, ValueError),
    ({"batch_size": 2.5}, TypeError),
    ({"download": "yfinance"}, TypeError),
])
def test_invalid_parameters(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        provider(**kwargs).fetch(["MP"])


def test_invalid_arguments():
    p = provider(download=RecordingDownload())
    with pytest.raises(TypeError, match="not a string"):
        p.fetch("MP")
    with pytest.raises(ValueError, match="must not be after"):
        p.fetch(["MP"], date(2024, 2, 1), date(2024, 1, 1))
    with pytest.raises(TypeError, match="`start`"):
        p.fetch(["MP"], "2024-01-01")
    assert p.fetch([]).bars == {}


def test_importing_the_module_does_not_import_yfinance():
    code = "import sys, screener.data.yahoo; assert 'yfinance' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_yfinance_version(monkeypatch):
    assert yfinance_version() == yfinance.__version__

    def missing(name):
        raise yahoo_module.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(yahoo_module.metadata, "version", missing)
    assert yfinance_version() is None


def test_provider_name():
    assert YahooProvider.name == "yahoo"
