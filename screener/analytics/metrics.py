"""Fast performance metrics over daily simple returns, following quantstats' conventions.

Always returns in (never prices), periods per year explicit. Conventions (those of quantstats 0.0.x, which
the tests cross-check): sample standard deviation (ddof=1); CAGR compounds over ``count / periods`` years;
Sortino's downside deviation is ``sqrt(sum(min(r, 0)^2) / count)``; the maximum drawdown is measured from a
starting value of 1 before the first return; Calmar = CAGR / |max drawdown|. A risk-free rate (annual, a
number or a Series aligned on the dates) is turned into a per-period rate ``(1 + rf) ** (1 / periods) - 1``
and subtracted for Sharpe and Sortino. Undefined statistics are NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar")


def _clean(returns: pd.Series) -> np.ndarray:
    if not isinstance(returns, pd.Series):
        raise TypeError(f"`returns` must be a pandas Series, got {type(returns).__name__}")
    values = returns.to_numpy(dtype="float64")
    return values[np.isfinite(values)]


def _excess(returns: pd.Series, risk_free: float | pd.Series, periods: int) -> np.ndarray:
    if isinstance(risk_free, pd.Series):
        rf = risk_free.reindex(returns.index).to_numpy(dtype="float64")
        per = (1.0 + rf) ** (1.0 / periods) - 1.0
    else:
        per = (1.0 + float(risk_free)) ** (1.0 / periods) - 1.0 if risk_free else 0.0
    excess = returns.to_numpy(dtype="float64") - per
    return excess[np.isfinite(excess)]


def cagr(returns: pd.Series, periods: int = 252) -> float:
    """Compound annual growth rate over ``n / periods`` years of ``n`` returns."""
    r = _clean(returns)
    if r.size == 0:
        return float("nan")
    wealth = float(np.prod(1.0 + r))
    return float(wealth ** (periods / r.size) - 1.0) if wealth > 0 else float("nan")


def volatility(returns: pd.Series, periods: int = 252) -> float:
    """Annualised standard deviation (ddof=1)."""
    r = _clean(returns)
    return float(np.std(r, ddof=1) * np.sqrt(periods)) if r.size > 1 else float("nan")


def sharpe(returns: pd.Series, risk_free: float | pd.Series = 0.0, periods: int = 252) -> float:
    """Annualised Sharpe ratio of excess returns."""
    r = _excess(returns, risk_free, periods)
    if r.size < 2:
        return float("nan")
    sd = np.std(r, ddof=1)
    return float(np.mean(r) / sd * np.sqrt(periods)) if sd > 0 else float("nan")


def sortino(returns: pd.Series, risk_free: float | pd.Series = 0.0, periods: int = 252) -> float:
    """Annualised Sortino ratio (downside deviation over all observations)."""
    r = _excess(returns, risk_free, periods)
    if r.size == 0:
        return float("nan")
    downside = np.sqrt(np.sum(np.minimum(r, 0.0) ** 2) / r.size)
    return float(np.mean(r) / downside * np.sqrt(periods)) if downside > 0 else float("nan")


def max_drawdown(returns: pd.Series) -> float:
    """Largest peak-to-trough fall of the compounded curve, from 1 before the first return (<= 0)."""
    r = _clean(returns)
    if r.size == 0:
        return 0.0
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + r)))
    return float(np.min(wealth / np.maximum.accumulate(wealth)) - 1.0)


def calmar(returns: pd.Series, periods: int = 252) -> float:
    """CAGR divided by the absolute maximum drawdown."""
    dd = max_drawdown(returns)
    return cagr(returns, periods) / abs(dd) if dd < 0 else float("nan")


def summary(returns: pd.Series, risk_free: float | pd.Series = 0.0, periods: int = 252) -> dict[str, float]:
    """The core metrics of one return series as a dict keyed by `METRICS`."""
    return {
        "cagr": cagr(returns, periods),
        "volatility": volatility(returns, periods),
        "sharpe": sharpe(returns, risk_free, periods),
        "sortino": sortino(returns, risk_free, periods),
        "max_drawdown": max_drawdown(returns),
        "calmar": calmar(returns, periods),
    }
