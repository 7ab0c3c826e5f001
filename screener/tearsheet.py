"""Edge: quantstats' metric table and HTML tearsheet, offline and safe to call from several threads.

This is the only module that imports quantstats (and, through it, matplotlib's pyplot). Rules it enforces:

- **Returns in, never prices.** quantstats guesses: a Series whose values are all >= 0 with one above 1 is
  taken for prices and turned into returns with ``pct_change()``, and prices that stay below 1 (a sub-$1
  stock, an equity curve below its start) are taken for returns. `check_returns` refuses any input that
  quantstats could misread (and anything that is not simple returns), naming the argument.
- **No download.** Benchmarks are passed as Series; a ticker string would make quantstats call yfinance.
- **Same dates.** The benchmark is put on the strategy's dates (a date it lacks counts as a 0 return, with a
  warning), and quantstats runs with ``match_dates=False``, so it does not drop leading zero returns and its
  CAGR, Sharpe, drawdowns agree with `screener.analytics.metrics` on the same series.
- **Offline HTML.** quantstats inlines its charts as SVG; the written file has its remote favicon link and
  the SVG XML prologs (DTD URLs) removed, the page ``<title>`` set, and is checked with `remote_resources`.
- **One report at a time.** quantstats draws with the global pyplot state: the backend is forced to ``Agg``
  before pyplot is imported, report generation holds a module-level lock, and every figure opened while
  drawing is closed afterwards, so two app sessions (threads) never mix figures.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import re
import threading
import tomllib
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported (by quantstats): no GUI backend, safe off the main thread

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import quantstats as qs

from screener.periods import TRADING_DAYS_PER_YEAR

__all__ = [
    "QUANTSTATS_VERSION",
    "TEARSHEET_FILE",
    "check_returns",
    "quantstats_metrics",
    "remote_resources",
    "tearsheet_from_run_dir",
    "write_tearsheet",
]

QUANTSTATS_VERSION: str = qs.__version__
"""The quantstats version in use (tested against 0.0.86)."""
TEARSHEET_FILE = "tearsheet.html"
"""Name of the tearsheet in a run directory."""

_PLOT_LOCK = threading.Lock()
"""Serialises every call that draws with pyplot (quantstats' charts use the global figure state)."""

_REMOTE = re.compile(
    r"""<(?:link|script|img|iframe|source|embed|object|audio|video)\b[^>]*?\b(?:href|src|data)\s*=\s*["']?\s*"""
    r"""(?:https?:)?//[^"'\s>]*"""
    r"""|url\(\s*["']?\s*(?:https?:)?//[^)]*\)"""
    r"""|@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//[^;]*""",
    re.IGNORECASE,
)
_REMOTE_TAG = re.compile(
    r"""<link\b[^>]*?\bhref\s*=\s*["']?\s*(?:https?:)?//[^>]*>"""
    r"""|<script\b[^>]*?\bsrc\s*=\s*["']?\s*(?:https?:)?//[^>]*>\s*</script\s*>""",
    re.IGNORECASE,
)
_SVG_PROLOG = re.compile(r"<\?xml[^>]*\?>\s*|<!DOCTYPE\s+svg[^>]*>\s*|<metadata>.*?</metadata>\s*",
                         re.IGNORECASE | re.DOTALL)


# ------------------------------------------------------------------ input checks


def check_returns(returns: pd.Series, name: str = "returns") -> pd.Series:
    """Check that `returns` is a Series of simple returns quantstats will read as returns.

    Parameters
    ----------
    returns : Series of shape (n_dates,)
        Simple returns on a ``DatetimeIndex``.
    name : str
        Argument name used in error messages.

    Returns
    -------
    Series
        A float copy without non-finite values, on a tz-naive sorted index, named as `returns`.

    Raises
    ------
    TypeError
        If `returns` is not a Series with a DatetimeIndex.
    ValueError
        If it has fewer than two finite values, a value below -1 (-100%), or looks like prices: every value
        >= 0 with the largest above 1 (quantstats would ``pct_change()`` it), or every value > 0 with a
        median above 5% a period (prices below 1, such as a sub-$1 stock or a falling equity curve).
    """
    if not isinstance(returns, pd.Series):
        raise TypeError(f"`{name}` must be a pandas Series of simple returns, got {type(returns).__name__}")
    if not isinstance(returns.index, pd.DatetimeIndex):
        raise TypeError(f"`{name}` must have a DatetimeIndex, got {type(returns.index).__name__}")
    if not pd.api.types.is_numeric_dtype(returns.dtype) or pd.api.types.is_bool_dtype(returns.dtype):
        raise TypeError(f"`{name}` must hold numbers, got dtype {returns.dtype}")
    values = returns.astype("float64")
    values = values[np.isfinite(values.to_numpy())]
    if values.index.tz is not None:
        values.index = values.index.tz_convert("UTC").tz_localize(None)
    values = values.sort_index()
    if values.index.has_duplicates:
        raise ValueError(f"`{name}` has duplicate dates, e.g. {values.index[values.index.duplicated()][0].date()}")
    if len(values) < 2:
        raise ValueError(f"`{name}` needs at least two finite returns, got {len(values)}")
    low, high, median = float(values.min()), float(values.max()), float(values.median())
    fix = "pass simple returns, e.g. prices.pct_change().dropna()"
    if low < -1.0:
        raise ValueError(f"`{name}` has a return of {low:.4g}, below -100%; {fix}")
    if low >= 0.0 and high > 1.0:
        raise ValueError(
            f"`{name}` looks like prices, not returns: all {len(values)} values are >= 0 and the largest is "
            f"{high:.4g}, so quantstats would convert it with pct_change(); {fix}")
    if low > 0.0 and median > 0.05:
        raise ValueError(
            f"`{name}` looks like prices below 1, not returns: all {len(values)} values are positive with a "
            f"median of {median:.4g}; {fix}")
    return values


def _aligned(returns: pd.Series, benchmark: pd.Series | None) -> tuple[pd.Series, pd.Series | None]:
    r = check_returns(returns, "returns")
    r.name = str(returns.name) if returns.name is not None else "Strategy"
    if benchmark is None:
        return r, None
    b = check_returns(benchmark, "benchmark")
    on_dates = b.reindex(r.index)
    for name, series in (("returns", r), ("benchmark", on_dates)):
        if series.nunique() < 2:
            # quantstats regresses one on the other (beta, alpha) and fails on a constant series
            raise ValueError(f"`{name}` is constant ({series.dropna().iloc[0]:.4g} on every date), so quantstats "
                             f"cannot compare it with a benchmark (e.g. a strategy that stayed in cash); "
                             f"pass benchmark=None")
    missing = int(on_dates.isna().sum())
    if missing == len(r):
        raise ValueError("`benchmark` has no return on any date of `returns`")
    if missing:
        warnings.warn(f"`benchmark` has no return on {missing} of {len(r)} dates of `returns`; they count as "
                      f"0 (flat) in the quantstats report", UserWarning, stacklevel=3)
    on_dates = on_dates.fillna(0.0)
    label = str(benchmark.name) if benchmark.name is not None else "Benchmark"
    on_dates.name = f"{label} (benchmark)" if label == r.name else label
    return r, on_dates


@contextmanager
def _quiet_quantstats() -> Iterator[None]:
    """Silence deprecation notices raised inside quantstats and seaborn, which callers cannot act on."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=r"(quantstats|seaborn)(\.|$)")
        warnings.filterwarnings("ignore", message=".*set_ticklabels.*", category=UserWarning)
        yield


def _check_periods(periods_per_year: int) -> int:
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, int | np.integer) \
            or periods_per_year < 1:
        raise ValueError(f"`periods_per_year` must be a positive integer, got {periods_per_year!r}")
    return int(periods_per_year)


# ------------------------------------------------------------------ metric table


_NUMBER = re.compile(r"^[+-]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def _parse(entry: object) -> tuple[float, str]:
    """Parse a quantstats display entry into (value, text): percentages become fractions, '-' and dates NaN."""
    if isinstance(entry, int | float | np.number) and not isinstance(entry, bool):
        value = float(entry)
        return (value if math.isfinite(value) else math.nan), str(entry)
    text = str(entry).strip()
    body, pct = (text[:-1], True) if text.endswith("%") else (text, False)
    if _NUMBER.match(body):
        value = float(body.replace(",", ""))
        return (value / 100.0 if pct else value), text
    return math.nan, text


def _qs_table(returns: pd.Series, benchmark: pd.Series | None, periods_per_year: int,
              risk_free: float | pd.Series, mode: str) -> pd.DataFrame:
    # `internal` makes quantstats format the table as its tearsheet shows it (percentages as "12.34%",
    # two decimals); its plain numeric mode rounds fractions to two decimals (a CAGR of 0.12).
    with _quiet_quantstats():
        return qs.reports.metrics(
            returns.copy(), benchmark=None if benchmark is None else benchmark.copy(), rf=risk_free,
            display=False, mode=mode, periods_per_year=periods_per_year, compounded=True, match_dates=False,
            strategy_title=str(returns.name), benchmark_title=None if benchmark is None else str(benchmark.name),
            internal="True",
        )


def quantstats_metrics(
    returns: pd.Series,
    benchmark: pd.Series | pd.DataFrame | None = None,
    *,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
    risk_free: float | pd.Series = 0.0,
    mode: Literal["full", "basic"] = "full",
) -> pd.DataFrame:
    """The metric table of ``quantstats.reports.metrics`` for the strategy and each benchmark, tidy.

    Parameters
    ----------
    returns : Series of shape (n_dates,)
        The strategy's simple returns on a DatetimeIndex; its name labels the series (``"Strategy"`` if
        unnamed). Never prices: see `check_returns`.
    benchmark : Series or DataFrame, optional
        Benchmark simple returns (a DataFrame: one benchmark per column), put on the dates of `returns`.
        quantstats compares the strategy with one benchmark at a time; the strategy's relative rows (Beta,
        Alpha, Correlation, Treynor Ratio, R^2, Information Ratio) are against the first benchmark.
    periods_per_year : int
        Returns per year (252 for daily).
    risk_free : float or Series
        Annual risk-free rate, as quantstats takes it.
    mode : {"full", "basic"}
        quantstats' metric set.

    Returns
    -------
    DataFrame
        One row per (series, metric), strategy first then each benchmark, metrics in quantstats' order.
        Columns: ``series`` (str), ``metric`` (quantstats' row label), ``value`` (float; percentages as
        fractions, NaN where quantstats shows "-" and for dates) and ``text`` (the entry as the tearsheet
        shows it, e.g. "12.34%", "0.87", "2021-03-04"). quantstats rounds to two decimals (of a percent
        for percentages).

    Raises
    ------
    TypeError, ValueError
        If `returns` or a benchmark is not a Series of simple returns (see `check_returns`), or an
        argument is out of range.
    """
    if mode not in ("full", "basic"):
        raise ValueError(f"`mode` must be 'full' or 'basic', got {mode!r}")
    periods_per_year = _check_periods(periods_per_year)
    if isinstance(benchmark, pd.DataFrame):
        benchmarks = [benchmark[c].rename(str(c)) for c in benchmark.columns]
        if not benchmarks:
            benchmarks = [None]
    else:
        benchmarks = [benchmark]
    rows = []
    for i, bench in enumerate(benchmarks):
        r, b = _aligned(returns, bench)
        table = _qs_table(r, b, periods_per_year, risk_free, mode)
        # quantstats puts the benchmark's column first, the strategy's second.
        if b is None:
            parts = [(str(r.name), table.iloc[:, 0])]
        else:
            parts = ([(str(r.name), table.iloc[:, 1])] if i == 0 else []) + [(str(b.name), table.iloc[:, 0])]
        for label, col in parts:
            for metric, entry in col.items():
                value, text = _parse(entry)
                rows.append((label, str(metric), value, text))
    return pd.DataFrame(rows, columns=["series", "metric", "value", "text"]).astype(
        {"series": "str", "metric": "str", "value": "float64", "text": "str"})


# ------------------------------------------------------------------ HTML tearsheet


def remote_resources(text: str) -> list[str]:
    """References in an HTML page that a browser would fetch from the network.

    Parameters
    ----------
    text : str
        HTML source.

    Returns
    -------
    list of str
        ``<link href>``, ``<script src>``, ``<img src>`` (and similar) attributes, CSS ``url()`` and
        ``@import`` pointing at ``http(s)://`` or ``//``. Hyperlinks (``<a href>``) and XML namespace URIs are
        not fetched and are not listed.
    """
    return [m.group(0) for m in _REMOTE.finditer(text)]


def _offline(text: str, title: str) -> str:
    text = _REMOTE_TAG.sub("", text)
    text = _SVG_PROLOG.sub("", text)
    text = text.replace('<body onload="save()">', "<body>")  # save() exists only in quantstats' download mode
    text = re.sub(r"<title>.*?</title>", f"<title>{html.escape(title)}</title>", text, count=1, flags=re.DOTALL)
    left = remote_resources(text)
    if left:
        raise RuntimeError(f"the quantstats {QUANTSTATS_VERSION} tearsheet still references remote resources "
                           f"after clean-up: {left[:3]}")
    return text


@contextmanager
def _isolated_pyplot() -> Iterator[None]:
    """Hold the plot lock, keep rc changes local, silence font fallbacks, close the figures opened meanwhile."""
    font_logger = logging.getLogger("matplotlib.font_manager")
    with _PLOT_LOCK:
        before = set(plt.get_fignums())
        level = font_logger.level
        # quantstats asks for Arial by name; where it is missing matplotlib logs one warning per text item.
        font_logger.setLevel(logging.ERROR)
        try:
            # A fixed salt makes matplotlib's SVG ids, hence the file, a function of the inputs alone.
            with matplotlib.rc_context({"svg.hashsalt": "screener"}), _quiet_quantstats():
                yield
        finally:
            font_logger.setLevel(level)
            for num in set(plt.get_fignums()) - before:
                plt.close(num)


def write_tearsheet(
    returns: pd.Series,
    benchmark: pd.Series | None,
    path: str | Path,
    *,
    title: str,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
    risk_free: float = 0.0,
    parameters: Mapping[str, object] | None = None,
) -> Path:
    """Write quantstats' HTML tearsheet of `returns` against `benchmark` as one offline file.

    Parameters
    ----------
    returns : Series of shape (n_dates,)
        The strategy's simple returns on a DatetimeIndex (its name labels it; ``"Strategy"`` if unnamed).
    benchmark : Series or None
        Benchmark simple returns (its name labels it), put on the dates of `returns`.
    path : str or Path
        Output file; its directory is created if needed. Written atomically (temporary file, then rename).
    title : str
        Page title (HTML-escaped; quantstats appends "(Compounded)" to the heading).
    periods_per_year : int
        Returns per year (252 for daily).
    risk_free : float
        Annual risk-free rate (a number: the page header prints one rate).
    parameters : mapping, optional
        Extra ``key: value`` pairs printed in the header (e.g. the config hash).

    Returns
    -------
    Path
        The written file: metrics table, end-of-year returns, worst drawdowns and the quantstats charts
        (cumulative and log returns, volatility-matched returns, yearly returns, return histogram, daily
        returns, rolling beta, volatility, Sharpe and Sortino, drawdown periods, underwater curve, monthly
        heatmap, return quantiles), inlined as SVG.

    Raises
    ------
    TypeError, ValueError
        If an input is not simple returns (see `check_returns`) or an argument is out of range.
    """
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"`title` must be a non-empty string, got {title!r}")
    if isinstance(risk_free, bool) or not isinstance(risk_free, int | float | np.number):
        raise TypeError(f"`risk_free` must be a number for the tearsheet (its header prints one rate), "
                        f"got {type(risk_free).__name__}")
    if not math.isfinite(float(risk_free)):
        raise ValueError(f"`risk_free` must be finite, got {risk_free!r}")
    periods_per_year = _check_periods(periods_per_year)
    r, b = _aligned(returns, benchmark)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    kwargs: dict[str, object] = {"strategy_title": str(r.name)}
    if b is not None:
        kwargs["benchmark_title"] = str(b.name)
    if parameters:
        kwargs["parameters"] = {html.escape(str(k)): html.escape(str(v)) for k, v in parameters.items()}
    try:
        with _isolated_pyplot():
            qs.reports.html(r, benchmark=b, rf=float(risk_free), title=html.escape(title), output=str(tmp),
                            periods_per_year=periods_per_year, compounded=True, match_dates=False,
                            figfmt="svg", **kwargs)
        text = _offline(tmp.read_text(encoding="utf-8"), title)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _run_title(run_dir: Path) -> tuple[str, dict[str, object]]:
    name, params = run_dir.name, {}
    config = run_dir / "config.toml"
    if config.is_file():
        try:
            raw = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{config} is not valid TOML: {exc}") from None
        name = str(raw.get("name") or name)
        for key in ("universe", "start", "end", "base_currency"):
            if key in raw:
                params[key.replace("_", " ").capitalize()] = raw[key]
    manifest = run_dir / "manifest.json"
    if manifest.is_file():
        try:
            meta = json.loads(manifest.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{manifest} is not valid JSON: {exc}") from None
        if isinstance(meta, dict) and meta.get("config_hash"):
            params["Config"] = str(meta["config_hash"])[:12]
    return name, params


def tearsheet_from_run_dir(run_dir: str | Path, *, risk_free: float = 0.0) -> Path:
    """Write ``tearsheet.html`` into a run directory from its ``equity.csv``, ``config.toml``, ``manifest.json``.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by `screener.report.write_run`: ``equity.csv`` has a ``date`` column, the
        ``strategy`` column and one column per benchmark, all starting at 1.0.
    risk_free : float
        Annual risk-free rate.

    Returns
    -------
    Path
        ``run_dir / "tearsheet.html"``: the strategy's daily returns (from its equity, whose first row is
        the 1.0 base) against the first benchmark column, titled with the config's ``name`` (else the
        directory name), with the universe, dates and config hash in the header.

    Raises
    ------
    FileNotFoundError
        If `run_dir` or its ``equity.csv`` is missing.
    ValueError
        If ``equity.csv`` has no ``strategy`` column or fewer than three rows, or a file is malformed.
    """
    run_dir = Path(run_dir)
    equity_file = run_dir / "equity.csv"
    if not equity_file.is_file():
        raise FileNotFoundError(f"no equity.csv in {run_dir}; expected a run directory written by "
                                f"`screener backtest --out`")
    equity = pd.read_csv(equity_file, index_col="date", parse_dates=["date"])
    if "strategy" not in equity.columns:
        raise ValueError(f"{equity_file} has no `strategy` column (columns: {', '.join(equity.columns)})")
    if len(equity) < 3:
        raise ValueError(f"{equity_file} needs at least three rows for a tearsheet, got {len(equity)}")
    # Equity levels -> simple returns, each column on its own rows. The first row is the 1.0 base the run
    # starts from (the day before the first trading day), so the returns are exactly the run's returns.
    returns = {c: equity[c].dropna().pct_change(fill_method=None).iloc[1:] for c in equity.columns}
    strategy = returns.pop("strategy").rename("Strategy")
    benchmark = None
    if returns:
        first = next(iter(returns))
        benchmark = returns[first].rename(first)
    title, params = _run_title(run_dir)
    return write_tearsheet(strategy, benchmark, run_dir / TEARSHEET_FILE, title=title,
                           periods_per_year=TRADING_DAYS_PER_YEAR, risk_free=risk_free, parameters=params)
