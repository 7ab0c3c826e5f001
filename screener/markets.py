"""Market metadata: exchanges, benchmark funds and FX series, read from ``universes/_markets.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from screener.exceptions import UniverseError
from screener.paths import universes_dir

MARKETS_FILE = "_markets.toml"

# Sub-unit quotes: Yahoo reports London prices in pence ("GBp", sometimes "GBX").
_SUBUNITS = MappingProxyType({"GBp": ("GBP", 0.01), "GBX": ("GBP", 0.01), "ZAc": ("ZAR", 0.01), "ILA": ("ILS", 0.01)})


@dataclass(frozen=True)
class Exchange:
    """A venue: its Yahoo suffix, time zone and trading currency."""

    code: str
    name: str
    suffix: str
    timezone: str
    currency: str


@dataclass(frozen=True)
class Benchmark:
    """A benchmark fund strategies are compared with."""

    ticker: str
    name: str
    exchange: str
    currency: str
    description: str
    sources: tuple[str, ...]
    first_trade_date: date | None = None


@dataclass(frozen=True)
class FxSeries:
    """A Yahoo FX symbol quoting ``quote_currency`` units per one ``base_currency``."""

    symbol: str
    base_currency: str
    quote_currency: str
    description: str


@dataclass(frozen=True)
class Markets:
    """Everything in ``_markets.toml``."""

    exchanges: MappingProxyType
    benchmarks: MappingProxyType
    fx: MappingProxyType


def _field(table: dict[str, Any], key: str, where: str) -> Any:
    try:
        return table[key]
    except KeyError:
        raise UniverseError(f"{where}: missing field `{key}`") from None


@lru_cache(maxsize=1)
def load_markets() -> Markets:
    """Parse the shipped market metadata (cached: the file is static)."""
    path = universes_dir() / MARKETS_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UniverseError(f"{path}: cannot read market metadata: {exc}") from None
    exchanges = {
        code: Exchange(code, *(_field(t, k, f"{path}: exchanges.{code}") for k in ("name", "suffix", "timezone",
                                                                                    "currency")))
        for code, t in raw.get("exchanges", {}).items()
    }
    benchmarks = {
        tk: Benchmark(
            ticker=tk,
            name=_field(t, "name", f"{path}: benchmarks.{tk}"),
            exchange=_field(t, "exchange", f"{path}: benchmarks.{tk}"),
            currency=_field(t, "currency", f"{path}: benchmarks.{tk}"),
            description=t.get("description", ""),
            sources=tuple(t.get("sources", ())),
            first_trade_date=t.get("first_trade_date"),
        )
        for tk, t in raw.get("benchmarks", {}).items()
    }
    fx = {
        sym: FxSeries(sym, _field(t, "base_currency", f"{path}: fx.{sym}"),
                      _field(t, "quote_currency", f"{path}: fx.{sym}"), t.get("description", ""))
        for sym, t in raw.get("fx", {}).items()
    }
    return Markets(MappingProxyType(exchanges), MappingProxyType(benchmarks), MappingProxyType(fx))


def exchange_of(ticker: str) -> Exchange:
    """Infer a Yahoo symbol's exchange from its suffix (no suffix: a US listing)."""
    exchanges = load_markets().exchanges
    upper = ticker.upper()
    for ex in exchanges.values():
        if ex.suffix and upper.endswith(ex.suffix.upper()):
            return ex
    return exchanges["NYSE"]


def timezone_of(ticker: str) -> str:
    """IANA time zone of the market a Yahoo symbol trades in."""
    return exchange_of(ticker).timezone


def currency_unit(currency: str) -> tuple[str, float]:
    """Split a quote currency into its ISO currency and the scale to it (``"GBp"`` -> ``("GBP", 0.01)``)."""
    if currency in _SUBUNITS:
        return _SUBUNITS[currency]
    return currency.upper(), 1.0


def fx_route(from_currency: str, to_currency: str) -> list[tuple[str, bool]]:
    """Yahoo FX symbols that convert ``from_currency`` into ``to_currency``, crossing through USD.

    Returns
    -------
    list of (symbol, invert)
        Multiply a price by each symbol's rate (or divide, when ``invert``) in turn. Empty when the
        currencies are equal.

    Raises
    ------
    DataError
        When no FX series connects the two currencies.
    """
    from screener.exceptions import DataError

    src, dst = currency_unit(from_currency)[0], currency_unit(to_currency)[0]
    if src == dst:
        return []
    fx = load_markets().fx

    def leg(a: str, b: str) -> tuple[str, bool]:
        for s in fx.values():
            if (s.base_currency, s.quote_currency) == (a, b):
                return s.symbol, False
            if (s.base_currency, s.quote_currency) == (b, a):
                return s.symbol, True
        known = sorted({c for s in fx.values() for c in (s.base_currency, s.quote_currency)})
        raise DataError(f"no FX series converts {a} to {b}; currencies with FX series: {', '.join(known)}")

    if "USD" in (src, dst):
        return [leg(src, dst)]
    return [leg(src, "USD"), leg("USD", dst)]
