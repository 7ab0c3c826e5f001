"""screener: screen and backtest rare-earth and critical-mineral equity portfolios with supply-risk factors.

The public names are imported lazily (on first use), so ``import screener`` stays fast for the CLI and the app.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("screener")
except PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.0.0"

_EXPORTS = {
    "BacktestRun": "screener.pipeline",
    "PriceData": "screener.data.panel",
    "Store": "screener.data.store",
    "StrategyConfig": "screener.config",
    "Universe": "screener.universe",
    "list_universes": "screener.universe",
    "load_config": "screener.config",
    "load_prices": "screener.data.panel",
    "load_universe": "screener.universe",
    "run_backtest": "screener.pipeline",
    "screen_as_of": "screener.pipeline",
}

__all__ = [
    "BacktestRun",
    "PriceData",
    "Store",
    "StrategyConfig",
    "Universe",
    "__version__",
    "list_universes",
    "load_config",
    "load_prices",
    "load_universe",
    "run_backtest",
    "screen_as_of",
]

if TYPE_CHECKING:
    from screener.config import StrategyConfig, load_config
    from screener.data.panel import PriceData, load_prices
    from screener.data.store import Store
    from screener.pipeline import BacktestRun, run_backtest, screen_as_of
    from screener.universe import Universe, list_universes, load_universe


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'screener' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
