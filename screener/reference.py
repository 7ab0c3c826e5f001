"""Reference data: load and validate the project's supply-risk facts in ``reference/*.csv``.

Six tidy CSV files (described column by column in ``reference/README.md``):

``elements.csv``
    Element facts: mine production, shares, HHI, China's refining shares, critical-list memberships...
``element_groups.csv``
    Which individual elements a group subject (``REE_total``, ``LREE``, ``HREE``, ``NdPr``, ``REE``) stands for.
``countries.csv``
    World Bank governance indicators (WGI estimates) per country.
``events.csv``
    Export controls and policy events with announcement, effective and end dates.
``exposures.csv``
    Per universe member: the elements it is exposed to, with weights summing to 1.
``chain.csv``
    Per universe member: value-chain stages, where they happen, their China link and validity dates.

Every fact carries the date it became public (``published``; ``announced`` for events) so that factors can
be computed point in time. This module is the only one that reads these files. Every problem found is a
`DataError` whose message names the file, the data row (row 1 is the line after the header), the row's
key and the field, one line per problem, for instance::

    reference/events.csv: row 22 (E22), field 'elements': unknown element 'Dyy'; did you mean 'Dy'?
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from screener.exceptions import DataError
from screener.paths import reference_dir
from screener.universe import COUNTRIES, ELEMENTS, STAGES

__all__ = [
    "CONFIDENCE",
    "DIRECTIONS",
    "FILES",
    "PUBLISHED_RULES",
    "REGIONS",
    "WGI_INDICATORS",
    "Reference",
    "load_reference",
]

#: The files of a reference directory, in load order.
FILES: tuple[str, ...] = (
    "elements.csv", "element_groups.csv", "countries.csv", "events.csv", "exposures.csv", "chain.csv",
)

#: Confidence flags of the source files (``computed`` = derived from a cited table); never upgraded.
CONFIDENCE: tuple[str, ...] = ("high", "medium", "low", "computed")

#: Event directions: ``restrictive`` (controls, bans, supply shocks), ``easing`` (suspensions, quota removal,
#: WTO pressure), ``support`` (ex-China supply support) and ``neutral`` (list updates, consolidation).
DIRECTIONS: tuple[str, ...] = ("restrictive", "easing", "support", "neutral")

#: Non-country subjects allowed in the ``country`` column of ``elements.csv``.
REGIONS: tuple[str, ...] = ("World", "EU", "Europe", "Other")

#: WGI estimate columns of ``countries.csv`` (standard-normal units, about -2.5 to +2.5).
WGI_INDICATORS: tuple[str, ...] = (
    "political_stability", "regulatory_quality", "rule_of_law", "government_effectiveness",
    "control_of_corruption", "voice_accountability",
)

#: How a company fact's ``published`` date was set (see ``reference/README.md``).
PUBLISHED_RULES: tuple[str, ...] = (
    "listing", "price_start", "data_start", "source", "event", "memory", "compiled", "segment",
)

_COLUMNS: dict[str, tuple[str, ...]] = {
    "elements.csv": (
        "element", "metric", "country", "year", "value", "unit", "published", "published_confidence", "source",
        "source_url", "confidence", "note",
    ),
    "element_groups.csv": ("group", "element", "specificity", "note"),
    "countries.csv": (
        "country", "iso3", "year", *WGI_INDICATORS, "published", "published_confidence", "source", "source_url",
        "confidence", "note",
    ),
    "events.csv": (
        "event_id", "announced", "effective", "ended", "suspended_until", "jurisdiction", "actor", "event_type",
        "direction", "elements", "instrument", "description", "date_confidence", "source", "source_url", "note",
    ),
    "exposures.csv": (
        "ticker", "element", "weight", "basis", "published", "published_rule", "source", "source_url",
        "confidence", "note",
    ),
    "chain.csv": (
        "ticker", "stage", "country", "china_linked", "valid_from", "valid_to", "weight", "basis", "published",
        "published_rule", "source", "source_url", "confidence", "note",
    ),
}

# Percent metrics must lie in [0, 100]; membership metrics are 0 or 1; HHI in [0, 10000].
_PCT_METRIC = re.compile(r"(_pct($|_)|_share_)")
_LIST_METRICS = frozenset({"us_critical", "us_critical_draft", "eu_critical", "eu_strategic"})
_HHI_METRICS = frozenset({"hhi_mine_production"})
_TICKER_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,23}")
_EVENT_RE = re.compile(r"E\d{2,}")
_ISO3_RE = re.compile(r"[A-Z]{3}")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EARLIEST, _LATEST = date(1900, 1, 1), date(2100, 12, 31)
# Weights are written with six decimals, so a ticker's weights may miss 1 by a few millionths.
_WEIGHT_TOL = 1e-4
_MAX_LINES = 50


@dataclass(frozen=True)
class Reference:
    """The validated reference files as DataFrames (one row per CSV row, in file order).

    Parameters
    ----------
    elements : DataFrame
        ``element`` (symbol or group name), ``metric``, ``country``, ``year`` (int), ``value`` (float, NaN
        when empty), ``unit``, ``published`` (datetime64), ``published_confidence``, ``source``,
        ``source_url``, ``confidence``, ``note``.
    element_groups : DataFrame
        ``group``, ``element``, ``specificity`` (int, 1 = most specific), ``note``.
    countries : DataFrame
        ``country``, ``iso3``, ``year`` (int), the six `WGI_INDICATORS` (float), ``published`` (datetime64),
        ``published_confidence``, ``source``, ``source_url``, ``confidence``, ``note``.
    events : DataFrame
        ``event_id``, ``announced``, ``effective``, ``ended``, ``suspended_until`` (datetime64, NaT when
        empty), ``jurisdiction``, ``actor``, ``event_type``, ``direction``, ``elements`` (tuple of symbols),
        ``instrument``, ``description``, ``date_confidence``, ``source``, ``source_url``, ``note``.
    exposures : DataFrame
        ``ticker``, ``element``, ``weight`` (float), ``basis``, ``published`` (datetime64),
        ``published_rule``, ``source``, ``source_url``, ``confidence``, ``note``.
    chain : DataFrame
        ``ticker``, ``stage``, ``country``, ``china_linked`` (bool), ``valid_from``, ``valid_to`` (datetime64,
        NaT = open-ended), ``weight`` (float), ``basis``, ``published`` (datetime64), ``published_rule``,
        ``source``, ``source_url``, ``confidence``, ``note``.
    directory : str
        Directory the files were read from.
    """

    elements: pd.DataFrame
    element_groups: pd.DataFrame
    countries: pd.DataFrame
    events: pd.DataFrame
    exposures: pd.DataFrame
    chain: pd.DataFrame
    directory: str

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Members of each group subject, e.g. ``{"REE_total": ("La", "Ce", ...), ...}``."""
        return {g: tuple(rows["element"]) for g, rows in self.element_groups.groupby("group", sort=False)}


# ---------------------------------------------------------------------------------------------------------
# Row checks
# ---------------------------------------------------------------------------------------------------------


class _Checker:
    """Collect problems of one file as ``<file>: row <i> (<key>), field '<f>': <problem>`` lines."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.problems: list[str] = []

    def add(self, row: int, key: str, field: str | None, problem: str) -> None:
        where = f"row {row} ({key})" if key else f"row {row}"
        if field is not None:
            where += f", field '{field}'"
        self.problems.append(f"{self.shown}: {where}: {problem}")

    def raise_if_any(self) -> None:
        if self.problems:
            lines = self.problems[:_MAX_LINES]
            if len(self.problems) > _MAX_LINES:
                lines.append(f"{self.shown}: ... and {len(self.problems) - _MAX_LINES} more problems")
            raise DataError("\n".join(lines))


def _hint(value: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    folded = value.casefold()
    for choice in choices:
        if choice.casefold() == folded:
            return f"; did you mean '{choice}'?"
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _date(check: _Checker, row: int, key: str, field: str, text: str, *, required: bool) -> date | None:
    text = text.strip()
    if not text:
        if required:
            check.add(row, key, field, "missing date (expected YYYY-MM-DD)")
        return None
    if not _DATE_RE.fullmatch(text):
        check.add(row, key, field, f"malformed date '{text}' (expected YYYY-MM-DD)")
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        check.add(row, key, field, f"impossible date '{text}'")
        return None
    if not _EARLIEST <= day <= _LATEST:
        check.add(row, key, field, f"implausible date '{text}' (expected {_EARLIEST} to {_LATEST})")
        return None
    return day


def _number(check: _Checker, row: int, key: str, field: str, text: str, *, required: bool = True) -> float | None:
    text = text.strip()
    if not text:
        if required:
            check.add(row, key, field, "missing number")
        return None
    try:
        value = float(text)
    except ValueError:
        check.add(row, key, field, f"not a number: '{text}'")
        return None
    if not np.isfinite(value):
        check.add(row, key, field, f"not a finite number: '{text}'")
        return None
    return value


def _vocab(check: _Checker, row: int, key: str, field: str, text: str, allowed: Iterable[str], what: str) -> bool:
    allowed = tuple(allowed)
    if text in allowed:
        return True
    if not text.strip():
        check.add(row, key, field, f"missing {what}")
    else:
        check.add(row, key, field, f"unknown {what} '{text}'{_hint(text, allowed)}")
    return False


def _text(check: _Checker, row: int, key: str, field: str, text: str) -> bool:
    if text.strip():
        return True
    check.add(row, key, field, "missing value")
    return False


# ---------------------------------------------------------------------------------------------------------
# File parsers: each returns a typed DataFrame or records problems
# ---------------------------------------------------------------------------------------------------------


def _read(path: Path, shown: str, file: str) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{shown}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise DataError(f"{shown}: cannot read CSV: {exc}") from None
    expected = _COLUMNS[file]
    missing = [c for c in expected if c not in raw.columns]
    extra = [c for c in raw.columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(repr(c) for c in missing)}")
        if extra:
            parts.append(f"unknown column(s) {', '.join(repr(c) for c in extra)}")
        raise DataError(f"{shown}: header: {'; '.join(parts)}; expected {', '.join(expected)}")
    return raw[list(expected)]


def _parse_groups(raw: pd.DataFrame, check: _Checker) -> pd.DataFrame:
    specificity = []
    for i, r in enumerate(raw.itertuples(index=False), start=1):
        key = f"{r.group}:{r.element}"
        if _text(check, i, key, "group", r.group) and r.group in ELEMENTS:
            check.add(i, key, "group", f"group name '{r.group}' is an element symbol")
        _vocab(check, i, key, "element", r.element, ELEMENTS, "element")
        spec = _number(check, i, key, "specificity", r.specificity)
        if spec is not None and (spec != int(spec) or spec < 1):
            check.add(i, key, "specificity", f"expected a positive integer, got '{r.specificity}'")
        specificity.append(int(spec) if spec is not None and spec == int(spec) else 0)
    frame = raw.copy()
    frame["specificity"] = np.array(specificity, dtype=np.int64)
    return frame


def _parse_elements(raw: pd.DataFrame, check: _Checker, groups: frozenset[str]) -> pd.DataFrame:
    subjects = (*ELEMENTS, *sorted(groups))
    years, values, published = [], [], []
    for i, r in enumerate(raw.itertuples(index=False), start=1):
        key = f"{r.element} {r.metric}"
        _vocab(check, i, key, "element", r.element, subjects, "element")
        _text(check, i, key, "metric", r.metric)
        if r.country not in REGIONS:
            _vocab(check, i, key, "country", r.country, COUNTRIES, "country")
        year = _number(check, i, key, "year", r.year)
        if year is not None and (year != int(year) or not 1900 <= year <= 2100):
            check.add(i, key, "year", f"implausible year '{r.year}'")
        years.append(int(year) if year is not None and year == int(year) else 0)
        value = _number(check, i, key, "value", r.value, required=False)
        if value is not None:
            if r.metric in _LIST_METRICS and value not in (0.0, 1.0):
                check.add(i, key, "value", f"list membership must be 0 or 1, got '{r.value}'")
            elif r.metric in _HHI_METRICS and not 0 <= value <= 10_000:
                check.add(i, key, "value", f"HHI must be in [0, 10000], got '{r.value}'")
            elif _PCT_METRIC.search(r.metric) and not 0 <= value <= 100:
                check.add(i, key, "value", f"a percentage must be in [0, 100], got '{r.value}'")
            elif value < 0:
                check.add(i, key, "value", f"negative value '{r.value}'")
        values.append(np.nan if value is None else value)
        published.append(_date(check, i, key, "published", r.published, required=True))
        _vocab(check, i, key, "published_confidence", r.published_confidence, CONFIDENCE[:3], "confidence")
        _text(check, i, key, "source", r.source)
        _vocab(check, i, key, "confidence", r.confidence, CONFIDENCE, "confidence")
    frame = raw.copy()
    frame["year"] = np.array(years, dtype=np.int64)
    frame["value"] = np.array(values, dtype=float)
    frame["published"] = pd.to_datetime(published)
    return frame


def _parse_countries(raw: pd.DataFrame, check: _Checker) -> pd.DataFrame:
    seen: dict[tuple[str, str], int] = {}
    columns: dict[str, list[float]] = {k: [] for k in WGI_INDICATORS}
    years, published = [], []
    for i, r in enumerate(raw.itertuples(index=False), start=1):
        key = r.country
        _vocab(check, i, key, "country", r.country, COUNTRIES, "country")
        if not _ISO3_RE.fullmatch(r.iso3):
            check.add(i, key, "iso3", f"expected three capital letters, got '{r.iso3}'")
        year = _number(check, i, key, "year", r.year)
        years.append(int(year) if year is not None and year == int(year) else 0)
        for k in WGI_INDICATORS:
            value = _number(check, i, key, k, getattr(r, k), required=False)
            if value is not None and not -3.5 <= value <= 3.5:
                check.add(i, key, k, f"WGI estimate outside [-3.5, 3.5]: '{getattr(r, k)}'")
            columns[k].append(np.nan if value is None else value)
        published.append(_date(check, i, key, "published", r.published, required=True))
        _vocab(check, i, key, "published_confidence", r.published_confidence, CONFIDENCE[:3], "confidence")
        _text(check, i, key, "source", r.source)
        _vocab(check, i, key, "confidence", r.confidence, CONFIDENCE, "confidence")
        dup = (r.country, r.published)
        if dup in seen:
            check.add(i, key, "published", f"duplicate of row {seen[dup]} (same country and published date)")
        seen.setdefault(dup, i)
    frame = raw.copy()
    frame["year"] = np.array(years, dtype=np.int64)
    for k in WGI_INDICATORS:
        frame[k] = np.array(columns[k], dtype=float)
    frame["published"] = pd.to_datetime(published)
    return frame


def _split_elements(text: str) -> list[str]:
    return [part.strip() for part in text.split(";")] if text.strip() else []


def _parse_events(raw: pd.DataFrame, check: _Checker) -> pd.DataFrame:
    seen: dict[str, int] = {}
    dates: dict[str, list[date | None]] = {k: [] for k in ("announced", "effective", "ended", "suspended_until")}
    elements: list[tuple[str, ...]] = []
    for i, r in enumerate(raw.itertuples(index=False), start=1):
        key = r.event_id
        if not _EVENT_RE.fullmatch(r.event_id):
            check.add(i, key, "event_id", f"expected 'E' and two or more digits, got '{r.event_id}'")
        elif r.event_id in seen:
            check.add(i, key, "event_id", f"duplicate of row {seen[r.event_id]}")
        seen.setdefault(r.event_id, i)
        announced = _date(check, i, key, "announced", r.announced, required=True)
        effective = _date(check, i, key, "effective", r.effective, required=False)
        ended = _date(check, i, key, "ended", r.ended, required=False)
        suspended = _date(check, i, key, "suspended_until", r.suspended_until, required=False)
        if announced and ended and ended < announced:
            check.add(i, key, "ended", f"ended {ended} before announced {announced}")
        if suspended and not ended:
            check.add(i, key, "suspended_until", "a suspension needs the 'ended' date it starts from")
        if suspended and ended and suspended < ended:
            check.add(i, key, "suspended_until", f"suspended_until {suspended} before ended {ended}")
        for k, v in zip(dates, (announced, effective, ended, suspended), strict=True):
            dates[k].append(v)
        _text(check, i, key, "jurisdiction", r.jurisdiction)
        _text(check, i, key, "event_type", r.event_type)
        _vocab(check, i, key, "direction", r.direction, DIRECTIONS, "direction")
        symbols = _split_elements(r.elements)
        for symbol in symbols:
            if symbol not in ELEMENTS:
                hint = _hint(symbol, ELEMENTS) if symbol else ""
                check.add(i, key, "elements", f"unknown element '{symbol}'{hint}")
        if len(set(symbols)) != len(symbols):
            check.add(i, key, "elements", "an element is listed twice")
        elements.append(tuple(symbols))
        _text(check, i, key, "date_confidence", r.date_confidence)
        _text(check, i, key, "source", r.source)
    frame = raw.copy()
    for k, v in dates.items():
        frame[k] = pd.to_datetime(v)
    frame["elements"] = pd.Series(elements, index=frame.index, dtype=object)
    return frame


def _check_weight_sums(check: _Checker, frame: pd.DataFrame, rows: dict[str, list[int]]) -> None:
    for ticker, idx in rows.items():
        total = float(frame.loc[idx, "weight"].sum())
        if abs(total - 1.0) > _WEIGHT_TOL:
            listed = ", ".join(str(i + 1) for i in idx)
            check.add(idx[0] + 1, ticker, "weight",
                      f"weights of {ticker} (rows {listed}) sum to {total:.6g}, expected 1 (tolerance {_WEIGHT_TOL})")


def _parse_exposures(raw: pd.DataFrame, check: _Checker) -> pd.DataFrame:
    weights, published = [], []
    by_ticker: dict[str, list[int]] = {}
    seen: dict[tuple[str, str], int] = {}
    for i, r in enumerate(raw.itertuples(index=False), start=1):
        key = r.ticker
        if not _TICKER_RE.fullmatch(r.ticker):
            check.add(i, key, "ticker", f"not a Yahoo symbol: '{r.ticker}'")
        _vocab(check, i, key, "element", r.element, ELEMENTS, "element")
        if (r.ticker, r.element) in seen:
            check.add(i, key, "element", f"'{r.element}' repeats row {seen[(r.ticker, r.element)]}")
        seen.setdefault((r.ticker, r.element), i)
        weight = _number(check, i, key, "weight", r.weight)
        if weight is not None and not 0 < weight <= 1:
            check.add(i, key, "weight", f"must be in (0, 1], got '{r.weight}'")
        weights.append(np.nan if weight is None else weight)
        published.append(_date(check, i, key, "published", r.published, required=True))
        _vocab(check, i, key, "published_rule", r.published_rule, PUBLISHED_RULES, "published_rule")
        _text(check, i, key, "source", r.source)
        _vocab(check, i, key, "confidence", r.confidence, CONFIDENCE, "confidence")
        by_ticker.setdefault(r.ticker, []).append(i - 1)
    frame = raw.copy()
    frame["weight"] = np.array(weights, dtype=float)
    frame["published"] = pd.to_datetime(published)
    if not check.problems:
        _check_weight_sums(check, frame, by_ticker)
    return frame


def _parse_chain(raw: pd.DataFrame, check: _Checker) -> pd.DataFrame:
    weights, linked = [], []
    dates: dict[str, list[date | None]] = {"valid_from": [], "valid_to": [], "published": []}
    for i, r in enumerate(raw.itertuples(index=False), start=1):
        key = r.ticker
        if not _TICKER_RE.fullmatch(r.ticker):
            check.add(i, key, "ticker", f"not a Yahoo symbol: '{r.ticker}'")
        _vocab(check, i, key, "stage", r.stage, STAGES, "stage")
        _vocab(check, i, key, "country", r.country, COUNTRIES, "country")
        flag = r.china_linked.strip().casefold()
        if flag not in ("0", "1", "true", "false"):
            check.add(i, key, "china_linked", f"expected 0 or 1, got '{r.china_linked}'")
        linked.append(flag in ("1", "true"))
        start = _date(check, i, key, "valid_from", r.valid_from, required=True)
        end = _date(check, i, key, "valid_to", r.valid_to, required=False)
        if start and end and end <= start:
            check.add(i, key, "valid_to", f"valid_to {end} not after valid_from {start}")
        pub = _date(check, i, key, "published", r.published, required=True)
        for k, v in zip(dates, (start, end, pub), strict=True):
            dates[k].append(v)
        weight = _number(check, i, key, "weight", r.weight)
        if weight is not None and not 0 < weight <= 1:
            check.add(i, key, "weight", f"must be in (0, 1], got '{r.weight}'")
        weights.append(np.nan if weight is None else weight)
        _vocab(check, i, key, "published_rule", r.published_rule, PUBLISHED_RULES, "published_rule")
        _text(check, i, key, "source", r.source)
        _vocab(check, i, key, "confidence", r.confidence, CONFIDENCE, "confidence")
    frame = raw.copy()
    frame["china_linked"] = np.array(linked, dtype=bool)
    frame["weight"] = np.array(weights, dtype=float)
    for k, v in dates.items():
        frame[k] = pd.to_datetime(v)
    if not check.problems:
        _check_chain_sums(check, frame)
    return frame


def _check_chain_sums(check: _Checker, frame: pd.DataFrame) -> None:
    # On every date where a ticker has valid rows, their weights must sum to 1: check at each row start.
    for ticker, rows in frame.groupby("ticker", sort=False):
        start = rows["valid_from"].to_numpy().astype("datetime64[D]")
        end = rows["valid_to"].to_numpy().astype("datetime64[D]")
        end = np.where(np.isnat(end), np.datetime64("2262-01-01", "D"), end)
        for day in np.unique(start):
            valid = (start <= day) & (day < end)
            total = float(rows.loc[valid, "weight"].sum())
            if abs(total - 1.0) > _WEIGHT_TOL:
                idx = [int(i) + 1 for i in rows.index[valid]]
                listed = ", ".join(map(str, idx))
                check.add(idx[0], ticker, "weight",
                          f"weights of {ticker} valid on {day} (rows {listed}) sum to "
                          f"{total:.6g}, expected 1 (tolerance {_WEIGHT_TOL})")


# ---------------------------------------------------------------------------------------------------------
# Loader
# ---------------------------------------------------------------------------------------------------------


def load_reference(directory: str | os.PathLike[str] | None = None) -> Reference:
    """Load and validate the reference files of `directory`.

    Parameters
    ----------
    directory : str or path-like, optional
        Directory holding the six `FILES`; default `screener.paths.reference_dir` (``<repo>/reference`` in a
        checkout, the packaged copy in a wheel).

    Returns
    -------
    Reference
        Frozen dataclass of typed DataFrames, rows in file order.

    Raises
    ------
    DataError
        When a file is missing, unreadable or has a wrong header, or when any row breaks a rule: unknown
        element symbol or country, malformed or impossible date, a value out of range, an event that ends
        before it is announced, an unknown direction, or weights of a ticker that do not sum to 1. The
        message has one line per problem: ``<file>: row <i> (<key>), field '<field>': <problem>``.
    """
    root = Path(directory).expanduser() if directory is not None else reference_dir()
    if not root.is_dir():
        raise DataError(f"{root}: reference directory not found")
    versions = []
    for file in FILES:
        try:
            st = (root / file).stat()
            versions.append((file, st.st_mtime_ns, st.st_size))
        except OSError:
            versions.append((file, -1, -1))
    # Parsed once per version of the files: the validation is the slow part and the files rarely change.
    return _load_cached(str(root.resolve()), tuple(versions))


@lru_cache(maxsize=8)
def _load_cached(directory: str, versions: tuple) -> Reference:
    root = Path(directory)

    def parse(file: str, parser: Callable[[pd.DataFrame, _Checker], pd.DataFrame]) -> pd.DataFrame:
        path = root / file
        shown = str(path)
        check = _Checker(shown)
        frame = parser(_read(path, shown, file), check)
        check.raise_if_any()
        return frame

    groups = parse("element_groups.csv", _parse_groups)
    names = frozenset(groups["group"])
    elements = parse("elements.csv", lambda raw, check: _parse_elements(raw, check, names))
    return Reference(
        elements=elements,
        element_groups=groups,
        countries=parse("countries.csv", _parse_countries),
        events=parse("events.csv", _parse_events),
        exposures=parse("exposures.csv", _parse_exposures),
        chain=parse("chain.csv", _parse_chain),
        directory=str(root),
    )
