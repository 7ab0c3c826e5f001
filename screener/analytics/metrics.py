"""Fast performance metrics over simple returns, following quantstats' conventions.

Always returns in (never prices), periods per year explicit. The tests cross-check every function against
``quantstats.stats`` (0.0.86) to 1e-10 relative on real and synthetic series.

Conventions
-----------
- Input: a Series of simple returns. ``NaN`` and ``inf`` values are skipped (a day without a return is not a
  flat day), as ``quantstats.stats`` and pandas aggregations do.
- Volatility and Sharpe use the sample standard deviation (``ddof=1``), annualised by ``sqrt(periods)``.
- CAGR compounds the ``n`` returns over ``n / periods`` years: ``prod(1 + r) ** (periods / n) - 1``; a wiped
  out curve (``prod(1 + r) == 0``) gives -1, a negative one (returns below -100%) NaN.
- Sortino's downside deviation is ``sqrt(sum(min(r - rf, 0) ** 2) / n)`` over all ``n`` observations.
- The maximum drawdown is measured from a starting value of 1 before the first return, so a loss on the
  first day counts; it is <= 0. Calmar = CAGR / |max drawdown|.
- Risk-free rate ``risk_free`` (annual, a number or a Series): turned into a per-period rate
  ``(1 + rf) ** (1 / periods) - 1`` and subtracted for Sharpe, Sortino and the probabilistic Sharpe ratio
  (never for CAGR, volatility or drawdowns). A Series is aligned as ``quantstats.utils.to_excess_returns``
  does: reindexed on the return dates (exact date match), gaps filled with the rate of the previous return
  date, a leading gap with the first rate, and 0 if it has no rate on any return date.
- One documented difference: quantstats ignores a *negative* number ``rf`` (it only subtracts ``rf > 0``);
  we subtract it. A Series with negative rates is subtracted by both.
- Undefined statistics (too few observations, zero dispersion) are NaN.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from screener.periods import TRADING_DAYS_PER_YEAR

__all__ = [
    "METRICS",
    "cagr",
    "calmar",
    "excess_returns",
    "max_drawdown",
    "probabilistic_sharpe_ratio",
    "sharpe",
    "sortino",
    "summary",
    "volatility",
]

METRICS = ("cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar")
"""Keys of `summary`, in order."""

PERIODS = TRADING_DAYS_PER_YEAR
_TINY = 1e-12


def _series(returns: pd.Series, name: str = "returns") -> pd.Series:
    if not isinstance(returns, pd.Series):
        raise TypeError(f"`{name}` must be a pandas Series of simple returns, got {type(returns).__name__}")
    return returns


def _clean(returns: pd.Series) -> np.ndarray:
    values = _series(returns).to_numpy(dtype="float64")
    return values[np.isfinite(values)]


def _check_periods(periods: float) -> float:
    if isinstance(periods, bool) or not isinstance(periods, int | float) or not periods > 0:
        raise ValueError(f"`periods` must be a positive number of returns per year, got {periods!r}")
    return float(periods)


def _per_period_rf(risk_free: float | pd.Series, index: pd.Index, periods: float) -> np.ndarray | float:
    if isinstance(risk_free, pd.Series):
        # quantstats.utils.to_excess_returns: exact-date reindex, then ffill / bfill / 0.
        rf = risk_free.reindex(index).ffill().bfill().fillna(0.0).to_numpy(dtype="float64")
        return (1.0 + rf) ** (1.0 / periods) - 1.0
    if isinstance(risk_free, bool) or not isinstance(risk_free, int | float | np.floating | np.integer):
        raise TypeError(f"`risk_free` must be an annual rate (a number or a Series), got {type(risk_free).__name__}")
    rf = float(risk_free)
    if not math.isfinite(rf) or rf <= -1.0:
        raise ValueError(f"`risk_free` must be a finite annual rate above -100%, got {risk_free!r}")
    return (1.0 + rf) ** (1.0 / periods) - 1.0 if rf else 0.0


def excess_returns(returns: pd.Series, risk_free: float | pd.Series = 0.0,
                   periods: int = PERIODS) -> pd.Series:
    """Returns minus the per-period risk-free rate.

    Parameters
    ----------
    returns : Series of shape (n_dates,)
        Simple returns.
    risk_free : float or Series
        Annual rate; a Series is aligned on the dates of `returns` as described in the module notes.
    periods : int
        Returns per year (252 for daily).

    Returns
    -------
    Series of shape (n_dates,)
        ``returns - ((1 + risk_free) ** (1 / periods) - 1)``, same index and name as `returns`.
    """
    returns = _series(returns)
    per = _per_period_rf(risk_free, returns.index, _check_periods(periods))
    return returns.astype("float64") - per


def _excess(returns: pd.Series, risk_free: float | pd.Series, periods: float) -> np.ndarray:
    values = excess_returns(returns, risk_free, periods).to_numpy(dtype="float64")
    return values[np.isfinite(values)]


def cagr(returns: pd.Series, periods: int = PERIODS) -> float:
    """Compound annual growth rate over ``n / periods`` years of ``n`` returns.

    Parameters
    ----------
    returns : Series of shape (n_dates,)
        Simple returns.
    periods : int
        Returns per year (252 for daily).

    Returns
    -------
    float
        ``prod(1 + r) ** (periods / n) - 1``; -1 for a wiped-out curve, NaN without returns.
    """
    periods = _check_periods(periods)
    r = _clean(returns)
    if r.size == 0:
        return float("nan")
    wealth = float(np.prod(1.0 + r))
    if wealth < 0 or not math.isfinite(wealth):
        return float("nan")
    return float(wealth ** (periods / r.size) - 1.0)


def volatility(returns: pd.Series, periods: int = PERIODS) -> float:
    """Annualised standard deviation (``ddof=1``) times ``sqrt(periods)``; NaN below two returns."""
    periods = _check_periods(periods)
    r = _clean(returns)
    return float(np.std(r, ddof=1) * np.sqrt(periods)) if r.size > 1 else float("nan")


def sharpe(returns: pd.Series, risk_free: float | pd.Series = 0.0, periods: int = PERIODS) -> float:
    """Annualised Sharpe ratio: mean over sample standard deviation of excess returns, times ``sqrt(periods)``.

    Parameters
    ----------
    returns : Series of shape (n_dates,)
        Simple returns.
    risk_free : float or Series
        Annual risk-free rate (see the module notes for a Series).
    periods : int
        Returns per year (252 for daily).

    Returns
    -------
    float
        NaN below two returns or with zero dispersion.
    """
    periods = _check_periods(periods)
    r = _excess(returns, risk_free, periods)
    if r.size < 2:
        return float("nan")
    sd, mean = np.std(r, ddof=1), np.mean(r)
    # A constant series has no Sharpe ratio; rounding leaves it a std of ~1e-17 instead of 0.
    return float(mean / sd * np.sqrt(periods)) if sd > _TINY * abs(mean) else float("nan")


def sortino(returns: pd.Series, risk_free: float | pd.Series = 0.0, periods: int = PERIODS) -> float:
    """Annualised Sortino ratio; downside deviation ``sqrt(sum(min(r, 0)^2) / n)`` over all observations."""
    periods = _check_periods(periods)
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


def calmar(returns: pd.Series, periods: int = PERIODS) -> float:
    """CAGR divided by the absolute maximum drawdown; NaN without a drawdown."""
    dd = max_drawdown(returns)
    return cagr(returns, periods) / abs(dd) if dd < 0 else float("nan")


def _skew_kurt(r: np.ndarray) -> tuple[float, float]:
    """Bias-corrected sample skewness G1 and excess kurtosis G2 (pandas' ``skew`` and ``kurt``)."""
    n = r.size
    d = r - r.mean()
    m2 = np.mean(d**2)
    if n < 4 or m2 == 0:
        return float("nan"), float("nan")
    m3, m4 = np.mean(d**3), np.mean(d**4)
    g1 = math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5
    g2 = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * m4 / m2**2 - 3 * (n - 1))
    return float(g1), float(g2)


def probabilistic_sharpe_ratio(returns: pd.Series, risk_free: float | pd.Series = 0.0,
                               periods: int = PERIODS, target: float = 0.0) -> float:
    """Probability that the true Sharpe ratio exceeds `target` (Bailey & López de Prado, 2012).

    ``PSR = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))`` with ``SR`` the
    per-period (not annualised) Sharpe ratio of the ``n`` excess returns, ``skew`` and ``kurt`` their sample
    skewness and kurtosis (pandas' bias-corrected estimators, ``kurt`` = excess + 3) and ``SR*`` the target
    per period. With ``target=0`` this is quantstats' ``probabilistic_sharpe_ratio``; ``1 - PSR`` is the
    one-sided p-value of "Sharpe <= target", allowing for skewed, fat-tailed returns (iid assumed).

    Parameters
    ----------
    returns : Series of shape (n_dates,)
        Simple returns.
    risk_free : float or Series
        Annual risk-free rate.
    periods : int
        Returns per year (252 for daily).
    target : float
        Annualised Sharpe ratio to beat (divided by ``sqrt(periods)`` internally).

    Returns
    -------
    float
        A probability in [0, 1]; NaN below four returns or with zero dispersion.
    """
    periods = _check_periods(periods)
    r = _excess(returns, risk_free, periods)
    if r.size < 4:
        return float("nan")
    sd, mean = np.std(r, ddof=1), np.mean(r)
    if not sd > _TINY * abs(mean):
        return float("nan")
    sr = float(mean / sd)
    skew, kurt = _skew_kurt(r)
    var = (1.0 - skew * sr + (kurt + 3.0 - 1.0) / 4.0 * sr**2) / (r.size - 1)
    if not var > 0:
        return float("nan")
    z = (sr - target / math.sqrt(periods)) / math.sqrt(var)
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def summary(returns: pd.Series, risk_free: float | pd.Series = 0.0, periods: int = PERIODS) -> dict[str, float]:
    """The core metrics of one return series as a dict keyed by `METRICS`.

    Parameters
    ----------
    returns : Series of shape (n_dates,)
        Simple returns.
    risk_free : float or Series
        Annual risk-free rate (Sharpe and Sortino only).
    periods : int
        Returns per year (252 for daily).

    Returns
    -------
    dict of str to float
        ``cagr, volatility, sharpe, sortino, max_drawdown, calmar``.
    """
    return {
        "cagr": cagr(returns, periods),
        "volatility": volatility(returns, periods),
        "sharpe": sharpe(returns, risk_free, periods),
        "sortino": sortino(returns, risk_free, periods),
        "max_drawdown": max_drawdown(returns),
        "calmar": calmar(returns, periods),
    }


def drawdown_series(equity: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Fall from the running peak of an equity curve (0 at a new high, negative below it).

    Parameters
    ----------
    equity : Series or DataFrame of shape (n_dates,) or (n_dates, n_series)
        Values (not returns), e.g. `BacktestRun.equity`; NaN before a series starts stays NaN.

    Returns
    -------
    Same shape as `equity`; its minimum equals `max_drawdown` of the curve's returns.
    """
    return equity / equity.cummax() - 1.0
