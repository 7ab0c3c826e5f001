"""screener: screen and backtest rare-earth and critical-mineral equity portfolios with supply-risk factors."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from screener.config import StrategyConfig, load_config
from screener.data.panel import PriceData, load_prices
from screener.data.store import Store
from screener.pipeline import BacktestRun, run_backtest, screen_as_of
from screener.universe import Universe, list_universes, load_universe

try:
    __version__ = version("screener")
except PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.0.0"

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
