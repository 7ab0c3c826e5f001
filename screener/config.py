"""The strategy config: one validated, immutable object shared by the UI, the CLI and the Python API.

A config is written in TOML (see ``docs/strategies.md`` and ``strategies/*.toml``). Filters and scores are
data, never code: a filter is ``{factor, op, value}`` with ``op`` from a fixed list, and nothing a user
wrote is ever evaluated.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

from screener.exceptions import ConfigError, DataError

SUPPLY_FACTORS = ("supply_risk_exposure", "china_dependency", "jurisdiction_risk", "integration")
MARKET_FACTORS = ("momentum_12_1", "momentum_6_1", "volatility_60d", "volatility_252d", "beta_spy", "beta_remx",
                  "adv_60d", "max_drawdown_1y", "market_cap")
NUMERIC_FACTORS = SUPPLY_FACTORS + MARKET_FACTORS
CATEGORICAL_FACTORS = ("stage", "status", "exchange", "country")
FACTORS = NUMERIC_FACTORS + CATEGORICAL_FACTORS

NUMERIC_OPS = (">=", ">", "<=", "<", "==", "!=")
SET_OPS = ("in", "not_in")
WEIGHTINGS = ("equal", "fixed", "inverse_vol", "risk_parity", "score", "min_variance", "max_sharpe", "market_cap")
REBALANCES = ("daily", "weekly", "monthly", "quarterly", "annual", "never")
GROUP_DIMENSIONS = ("stage", "country", "element")
EVENT_DATES = ("announced", "effective")

Weighting = Literal["equal", "fixed", "inverse_vol", "risk_parity", "score", "min_variance", "max_sharpe",
                    "market_cap"]
Rebalance = Literal["daily", "weekly", "monthly", "quarterly", "annual", "never"]


def _hint(value: Any, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(value), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fail(key: str, message: str, where: str = "") -> ConfigError:
    prefix = f"{where}: " if where else ""
    return ConfigError(f"{prefix}`{key}` {message}")


@dataclass(frozen=True)
class Filter:
    """Keep members whose ``factor`` compares to ``value`` with ``op`` (missing factor values fail)."""

    factor: str
    op: str
    value: float | tuple[str, ...]

    def label(self) -> str:
        """Short text such as ``adv_60d >= 1e+06``."""
        value = ", ".join(self.value) if isinstance(self.value, tuple) else f"{self.value:g}"
        return f"{self.factor} {self.op} {value}"

    def to_dict(self) -> dict[str, Any]:
        """TOML/JSON form."""
        return {"factor": self.factor, "op": self.op,
                "value": list(self.value) if isinstance(self.value, tuple) else self.value}


@dataclass(frozen=True)
class ScreenSpec:
    """Which members to hold at each rebalance: filters, then the top ``top_n`` by score."""

    filters: tuple[Filter, ...] = ()
    score: tuple[tuple[str, float], ...] = ()
    top_n: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """TOML/JSON form (``top_n`` omitted when unset)."""
        out: dict[str, Any] = {"filters": [f.to_dict() for f in self.filters], "score": dict(self.score)}
        if self.top_n is not None:
            out["top_n"] = self.top_n
        return out


@dataclass(frozen=True)
class PortfolioSpec:
    """How selected members become weights and trades."""

    weighting: Weighting = "equal"
    fixed_weights: tuple[tuple[str, float], ...] = ()
    max_weight: float | None = None
    group_caps: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    rebalance: Rebalance = "monthly"
    lag: int = 0
    costs_bps: float = 0.0
    initial_capital: float = 1_000_000.0
    lookback: int = 63

    def to_dict(self) -> dict[str, Any]:
        """TOML/JSON form (``max_weight`` omitted when unset)."""
        out: dict[str, Any] = {
            "weighting": self.weighting,
            "fixed_weights": dict(self.fixed_weights),
            "group_caps": {dim: dict(caps) for dim, caps in self.group_caps},
            "rebalance": self.rebalance,
            "lag": self.lag,
            "costs_bps": self.costs_bps,
            "initial_capital": self.initial_capital,
            "lookback": self.lookback,
        }
        if self.max_weight is not None:
            out["max_weight"] = self.max_weight
        return out


@dataclass(frozen=True)
class FactorSpec:
    """Point-in-time options for the supply-risk factors."""

    event_date: Literal["announced", "effective"] = "announced"
    backfill: bool = False

    def to_dict(self) -> dict[str, Any]:
        """TOML/JSON form."""
        return {"event_date": self.event_date, "backfill": self.backfill}


@dataclass(frozen=True)
class StrategyConfig:
    """A complete strategy: universe, dates, screen, portfolio construction and factor options.

    Build it with `load_config` (TOML file), `StrategyConfig.from_dict` or keyword arguments; change it with
    `dataclasses.replace`. It validates on creation and is hashable, so it can key a cache.
    """

    name: str
    universe: str
    start: date
    end: date | None = None
    base_currency: str = "USD"
    benchmarks: tuple[str, ...] = ("REMX", "SPY")
    screen: ScreenSpec = field(default_factory=ScreenSpec)
    portfolio: PortfolioSpec = field(default_factory=PortfolioSpec)
    factors: FactorSpec = field(default_factory=FactorSpec)

    def __post_init__(self) -> None:
        _validate(self)

    # -- construction ----------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "") -> StrategyConfig:
        """Build from parsed TOML; every problem is a `ConfigError` naming the key (and ``where``)."""
        return _from_dict(raw, where)

    @classmethod
    def from_toml(cls, path: str | Path) -> StrategyConfig:
        """Read a TOML strategy file."""
        return load_config(path)

    def to_dict(self) -> dict[str, Any]:
        """Plain form (TOML/JSON-ready) that `from_dict` reads back to an equal config."""
        out: dict[str, Any] = {"name": self.name, "universe": self.universe, "start": self.start}
        if self.end is not None:
            out["end"] = self.end
        out.update({"base_currency": self.base_currency, "benchmarks": list(self.benchmarks),
                    "screen": self.screen.to_dict(), "portfolio": self.portfolio.to_dict(),
                    "factors": self.factors.to_dict()})
        return out

    def to_toml(self) -> str:
        """TOML text that reproduces this config exactly."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    def to_json_dict(self) -> dict[str, Any]:
        """Like `to_dict` with dates as ISO strings."""
        return json.loads(json.dumps(self.to_dict(), default=str))

    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON form: equal configs have equal hashes."""
        text = json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def with_overrides(self, **changes: Any) -> StrategyConfig:
        """Copy with top-level fields replaced (validated again)."""
        return replace(self, **changes)


def load_config(path: str | Path) -> StrategyConfig:
    """Read and validate a strategy TOML file; errors name the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such strategy file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(text, str(path))


def parse_config(text: str, where: str = "<string>") -> StrategyConfig:
    """Parse strategy TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return _from_dict(raw, where)


# -- parsing -----------------------------------------------------------------------------------------------------
_TOP = ("name", "universe", "start", "end", "base_currency", "benchmarks", "screen", "portfolio", "factors")
_SCREEN = ("filters", "score", "top_n")
_PORTFOLIO = tuple(f.name for f in fields(PortfolioSpec))
_FACTORS = tuple(f.name for f in fields(FactorSpec))


def _unknown(raw: Mapping[str, Any], allowed: tuple[str, ...], prefix: str, where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise _fail(prefix + str(key), f"is not a known key{_hint(key, allowed)}; expected one of: "
                        + ", ".join(allowed), where)


def _table(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise _fail(key, f"must be a table, got {type(value).__name__}", where)
    return value


def _date(value: Any, key: str, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(key, f"must be a date (YYYY-MM-DD), got {value!r}", where)


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(key, f"must be a number, got {value!r}", where)
    return float(value)


def _from_dict(raw: Mapping[str, Any], where: str) -> StrategyConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a strategy config must be a table")
    _unknown(raw, _TOP, "", where)
    for key in ("name", "universe", "start"):
        if key not in raw:
            raise _fail(key, "is required", where)
    screen_raw = _table(raw, "screen", where)
    _unknown(screen_raw, _SCREEN, "screen.", where)
    filters_raw = screen_raw.get("filters", [])
    if not isinstance(filters_raw, list):
        raise _fail("screen.filters", "must be a list of {factor, op, value} tables", where)
    filters = []
    for i, f in enumerate(filters_raw, 1):
        key = f"screen.filters[{i}]"
        if not isinstance(f, Mapping) or set(f) != {"factor", "op", "value"}:
            raise _fail(key, f"must be a table with exactly the keys factor, op, value, got {f!r}", where)
        value = f["value"]
        if f["op"] in SET_OPS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _fail(f"{key}.value", f"must be a list of strings with op {f['op']!r}, got {value!r}", where)
            value = tuple(value)
        elif isinstance(value, str) and f["op"] in ("==", "!="):
            value = (value,)
        else:
            value = _number(value, f"{key}.value", where)
        filters.append(Filter(str(f["factor"]), str(f["op"]), value))
    score_raw = screen_raw.get("score", {})
    if not isinstance(score_raw, Mapping):
        raise _fail("screen.score", "must be a table of factor = weight", where)
    score = tuple((str(k), _number(v, f"screen.score.{k}", where)) for k, v in score_raw.items())
    top_n = screen_raw.get("top_n")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int)):
        raise _fail("screen.top_n", f"must be a whole number, got {top_n!r}", where)

    port_raw = _table(raw, "portfolio", where)
    _unknown(port_raw, _PORTFOLIO, "portfolio.", where)
    port: dict[str, Any] = {}
    for key, value in port_raw.items():
        if key == "fixed_weights":
            if not isinstance(value, Mapping):
                raise _fail("portfolio.fixed_weights", "must be a table of ticker = weight", where)
            port[key] = tuple((str(t), _number(w, f"portfolio.fixed_weights.{t}", where)) for t, w in value.items())
        elif key == "group_caps":
            if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
                raise _fail("portfolio.group_caps", "must be a table like { stage = { mining = 0.6 } }", where)
            port[key] = tuple((str(d), tuple((str(g), _number(c, f"portfolio.group_caps.{d}.{g}", where))
                                             for g, c in caps.items())) for d, caps in value.items())
        elif key in ("max_weight", "costs_bps", "initial_capital"):
            port[key] = _number(value, f"portfolio.{key}", where)
        elif key in ("lag", "lookback"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise _fail(f"portfolio.{key}", f"must be a whole number, got {value!r}", where)
            port[key] = value
        else:
            port[key] = value
    fac_raw = _table(raw, "factors", where)
    _unknown(fac_raw, _FACTORS, "factors.", where)
    benchmarks = raw.get("benchmarks", ["REMX", "SPY"])
    if not isinstance(benchmarks, list) or not all(isinstance(b, str) for b in benchmarks):
        raise _fail("benchmarks", f"must be a list of tickers, got {benchmarks!r}", where)
    try:
        return StrategyConfig(
            name=raw["name"],
            universe=raw["universe"],
            start=_date(raw["start"], "start", where),
            end=_date(raw["end"], "end", where) if raw.get("end") is not None else None,
            base_currency=raw.get("base_currency", "USD"),
            benchmarks=tuple(benchmarks),
            screen=ScreenSpec(tuple(filters), score, top_n),
            portfolio=PortfolioSpec(**port),
            factors=FactorSpec(**fac_raw),
        )
    except ConfigError as exc:
        if where and not str(exc).startswith(where):
            raise ConfigError(f"{where}: {exc}") from None
        raise


# -- validation --------------------------------------------------------------------------------------------------
def _validate(cfg: StrategyConfig) -> None:
    if not isinstance(cfg.name, str) or not cfg.name.strip():
        raise _fail("name", f"must be a non-empty string, got {cfg.name!r}")
    if not isinstance(cfg.universe, str) or not cfg.universe.strip():
        raise _fail("universe", f"must be a universe name or a path to a universe file, got {cfg.universe!r}")
    if not isinstance(cfg.start, date):
        raise _fail("start", f"must be a date, got {cfg.start!r}")
    if cfg.end is not None and (not isinstance(cfg.end, date) or cfg.end <= cfg.start):
        raise _fail("end", f"must be a date after `start` ({cfg.start}), got {cfg.end!r}")
    from screener.markets import currency_unit, fx_route

    try:
        fx_route("USD", cfg.base_currency)
    except DataError as exc:
        raise _fail("base_currency", f"{cfg.base_currency!r} cannot be converted to: {exc}") from None
    if currency_unit(cfg.base_currency)[1] != 1.0:
        raise _fail("base_currency", f"must be an ISO currency such as USD, got {cfg.base_currency!r}")
    s = cfg.screen
    for f in s.filters:
        if f.factor not in FACTORS:
            raise _fail("screen.filters.factor", f"{f.factor!r} is not a factor{_hint(f.factor, FACTORS)}; "
                        f"expected one of: {', '.join(FACTORS)}")
        if f.factor in CATEGORICAL_FACTORS:
            if f.op not in (*SET_OPS, "==", "!="):
                raise _fail("screen.filters.op", f"{f.op!r} does not apply to the category {f.factor!r}; "
                            f"expected one of: ==, !=, in, not_in")
            if not isinstance(f.value, tuple):
                raise _fail("screen.filters.value", f"for {f.factor!r} must be text or a list of text")
        elif f.op not in NUMERIC_OPS:
            raise _fail("screen.filters.op", f"{f.op!r} is not an operator for {f.factor!r}{_hint(f.op, NUMERIC_OPS)};"
                        f" expected one of: {', '.join(NUMERIC_OPS)}")
        elif isinstance(f.value, tuple):
            raise _fail("screen.filters.value", f"for {f.factor!r} must be a number, got {list(f.value)!r}")
    for factor, weight in s.score:
        if factor not in NUMERIC_FACTORS:
            raise _fail(f"screen.score.{factor}", f"is not a numeric factor{_hint(factor, NUMERIC_FACTORS)}; "
                        f"expected one of: {', '.join(NUMERIC_FACTORS)}")
        if weight == 0:
            raise _fail(f"screen.score.{factor}", "has weight 0; remove it instead")
    if s.top_n is not None and s.top_n < 1:
        raise _fail("screen.top_n", f"must be at least 1, got {s.top_n}")
    p = cfg.portfolio
    if p.weighting not in WEIGHTINGS:
        raise _fail("portfolio.weighting", f"must be one of: {', '.join(WEIGHTINGS)}; got {p.weighting!r}"
                    + _hint(p.weighting, WEIGHTINGS))
    if p.rebalance not in REBALANCES:
        raise _fail("portfolio.rebalance", f"must be one of: {', '.join(REBALANCES)}; got {p.rebalance!r}"
                    + _hint(p.rebalance, REBALANCES))
    if p.weighting == "fixed":
        if not p.fixed_weights:
            raise _fail("portfolio.fixed_weights", "is required with weighting = \"fixed\"")
        if any(w < 0 for _, w in p.fixed_weights) or sum(w for _, w in p.fixed_weights) > 1 + 1e-9:
            raise _fail("portfolio.fixed_weights", "must be non-negative and sum to at most 1, got "
                        + ", ".join(f"{t}={w:g}" for t, w in p.fixed_weights))
    elif p.fixed_weights:
        raise _fail("portfolio.fixed_weights", f"only applies with weighting = \"fixed\", not {p.weighting!r}")
    if p.weighting == "score" and not s.score:
        raise _fail("portfolio.weighting", "\"score\" needs a [screen] score table")
    if p.max_weight is not None and not 0 < p.max_weight <= 1:
        raise _fail("portfolio.max_weight", f"must be in (0, 1], got {p.max_weight:g}")
    if p.max_weight is not None and s.top_n is not None and p.max_weight * s.top_n < 1 - 1e-12:
        raise _fail("portfolio.max_weight", f"= {p.max_weight:g} cannot be met with top_n = {s.top_n} "
                    f"(needs >= {1 / s.top_n:.4g})")
    for dim, caps in p.group_caps:
        if dim not in GROUP_DIMENSIONS:
            raise _fail(f"portfolio.group_caps.{dim}", f"is not a group dimension{_hint(dim, GROUP_DIMENSIONS)}; "
                        f"expected one of: {', '.join(GROUP_DIMENSIONS)}")
        for group, cap in caps:
            if not 0 < cap <= 1:
                raise _fail(f"portfolio.group_caps.{dim}.{group}", f"must be in (0, 1], got {cap:g}")
    if p.lag < 0:
        raise _fail("portfolio.lag", f"must be >= 0 trading days, got {p.lag}")
    if p.lookback < 2:
        raise _fail("portfolio.lookback", f"must be at least 2 observations, got {p.lookback}")
    if p.costs_bps < 0:
        raise _fail("portfolio.costs_bps", f"must be >= 0, got {p.costs_bps:g}")
    if p.initial_capital <= 0:
        raise _fail("portfolio.initial_capital", f"must be > 0, got {p.initial_capital:g}")
    if cfg.factors.event_date not in EVENT_DATES:
        raise _fail("factors.event_date", f"must be one of: {', '.join(EVENT_DATES)}; got {cfg.factors.event_date!r}")
    if not isinstance(cfg.factors.backfill, bool):
        raise _fail("factors.backfill", f"must be true or false, got {cfg.factors.backfill!r}")
