"""Is it luck? Stationary block bootstrap confidence intervals and in-sample / out-of-sample splits.

Method
------
- Resampling: the stationary bootstrap of Politis & Romano (1994). A resample of ``n`` returns is built from
  blocks of consecutive returns that start at a uniformly drawn date and have geometric lengths with mean
  `block_length` (a new block starts at each step with probability ``1 / block_length``); blocks wrap from
  the last date to the first. Runs of returns keep their serial dependence (volatility clusters, momentum),
  which an iid bootstrap destroys; ``block_length=1`` is the iid bootstrap.
- Default mean block length: the automatic rule of Politis & White (2004) with the correction of Patton,
  Politis & White (2009), `optimal_block_length`, applied to the series that is resampled (excess returns for
  the Sharpe ratio, returns for the CAGR); it lies in ``[1, min(3 sqrt(n), n / 3)]``. The rule looks at the
  autocorrelation of the returns, not of their squares: volatility clustering moves the sampling error of
  the variance, whose share in the Sharpe ratio's error is ``SR^2 / 2`` per period (Lo, 2002), negligible
  for daily returns (a daily Sharpe ratio is about 0.05), while it would inflate the blocks several-fold.
- Interval: the percentile interval, ``[q(alpha / 2), q(1 - alpha / 2)]`` of the resampled statistic; the
  standard error is the standard deviation (``ddof=1``) of the resampled statistic.
- Statistics are those of `screener.analytics.metrics` (Sharpe of excess returns with ``ddof=1``; CAGR over
  ``n / periods`` years), computed on all resamples at once as a matrix (no Python loop over resamples).
- Non-finite returns are dropped before resampling (as the metrics do). Randomness comes only from the
  ``numpy.random.Generator`` passed as `rng` (or seeded from an int), so a seed reproduces the result.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Literal, get_args

import numpy as np
import pandas as pd

from screener.analytics import metrics
from screener.periods import TRADING_DAYS_PER_YEAR

__all__ = [
    "STATS",
    "Stat",
    "bootstrap_ci",
    "optimal_block_length",
    "split_report",
    "stationary_bootstrap_indices",
]

Stat = Literal["sharpe", "cagr"]
STATS: tuple[str, ...] = get_args(Stat)
SPLIT_METRICS = (*metrics.METRICS, "psr", "observations")
"""Rows of `split_report` per series: the core metrics, the probabilistic Sharpe ratio, the number of returns."""


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"`rng` must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _finite_values(returns: pd.Series | np.ndarray, name: str = "returns") -> np.ndarray:
    if isinstance(returns, pd.Series):
        values = returns.to_numpy(dtype="float64")
    elif isinstance(returns, np.ndarray) and returns.ndim == 1:
        values = returns.astype("float64")
    else:
        raise TypeError(f"`{name}` must be a pandas Series or a 1-D numpy array of returns, "
                        f"got {type(returns).__name__}")
    return values[np.isfinite(values)]


def _flat_top(t: np.ndarray) -> np.ndarray:
    """Politis-Romano flat-top lag window: 1 on |t| <= 1/2, falling linearly to 0 at |t| = 1."""
    a = np.abs(t)
    return np.where(a <= 0.5, 1.0, np.where(a <= 1.0, 2.0 * (1.0 - a), 0.0))


def optimal_block_length(x: pd.Series | np.ndarray) -> float:
    """Mean block length for the stationary bootstrap by Politis & White (2004), corrected (PPW 2009).

    With ``n`` observations, autocorrelations ``rho(k)`` and autocovariances ``R(k)`` (1/n estimator):
    ``m`` is the first lag from which ``K = max(5, sqrt(log10 n))`` consecutive ``|rho|`` stay below
    ``2 sqrt(log10(n) / n)``; ``M = min(2 m, ceil(sqrt(n)) + K)``; with the flat-top window ``lambda``,
    ``G = sum_{|k| <= M} lambda(k / M) |k| R(k)`` and ``D = 2 (sum_{|k| <= M} lambda(k / M) R(k))^2``;
    the block length is ``(2 G^2 / D)^(1/3) n^(1/3)``, clipped to ``[1, min(3 sqrt(n), n / 3)]``. The steps
    follow Patton's reference code (``opt_block_length_REV_dec07.m``).

    Parameters
    ----------
    x : Series or ndarray of shape (n,)
        The observations (non-finite values are dropped).

    Returns
    -------
    float
        The mean block length (need not be an integer); 1.0 below 8 observations or without variance.
    """
    v = _finite_values(x, "x")
    n = v.size
    if n < 8:
        return 1.0
    d = v - v.mean()
    r0 = float(d @ d) / n
    if not r0 > 0:
        return 1.0
    kn = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = math.ceil(math.sqrt(n)) + kn
    m_max = min(m_max, n - 1)
    b_max = math.ceil(min(3.0 * math.sqrt(n), n / 3.0))
    acov = np.array([float(d[k:] @ d[: n - k]) / n for k in range(m_max + 1)])
    rho = np.abs(acov[1:] / r0)  # lags 1..m_max
    threshold = 2.0 * math.sqrt(math.log10(n) / n)
    small = rho < threshold
    m_hat = None
    for j in range(m_max - kn + 1):  # lags j+1 .. j+kn all insignificant
        if small[j : j + kn].all():
            m_hat = j + 1
            break
    if m_hat is None:
        significant = np.flatnonzero(~small)
        m_hat = int(significant[-1]) + 1 if significant.size else 1
    big_m = min(2 * m_hat, m_max)
    k = np.arange(1, big_m + 1)
    lam = _flat_top(k / big_m)
    g = 2.0 * float(np.sum(lam * k * acov[1 : big_m + 1]))
    long_run = r0 + 2.0 * float(np.sum(lam * acov[1 : big_m + 1]))
    if long_run == 0:
        return 1.0
    b = (2.0 * g**2 / (2.0 * long_run**2)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(min(max(b, 1.0), b_max))


def stationary_bootstrap_indices(n: int, n_resamples: int, block_length: float,
                                 rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Positions of `n_resamples` stationary-bootstrap resamples of a series of length `n`.

    Parameters
    ----------
    n : int
        Length of the series (and of each resample).
    n_resamples : int
        Number of resamples.
    block_length : float
        Mean block length (>= 1); a new block starts at each step with probability ``1 / block_length``.
    rng : numpy Generator, int or None
        Source of randomness (an int seeds a new Generator).

    Returns
    -------
    ndarray of shape (n_resamples, n)
        Integer positions in ``[0, n)``: within a block each position is the previous one plus 1, modulo `n`.
    """
    for name, value in (("n", n), ("n_resamples", n_resamples)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if not (isinstance(block_length, int | float | np.number) and math.isfinite(block_length)
            and block_length >= 1):
        raise ValueError(f"`block_length` must be a finite number >= 1, got {block_length!r}")
    gen = _as_generator(rng)
    starts = gen.integers(0, n, size=(n_resamples, n))
    new_block = gen.random((n_resamples, n)) < 1.0 / block_length
    new_block[:, 0] = True
    pos = np.arange(n)
    # Position of the latest block start at or before each step, then walk forward from that start.
    last = np.maximum.accumulate(np.where(new_block, pos, 0), axis=1)
    idx = np.take_along_axis(starts, last, axis=1) + (pos - last)
    idx %= n
    return idx


def _check_stat(stat: str) -> str:
    if stat not in STATS:
        raise ValueError(f"`stat` must be one of {', '.join(STATS)}, got {stat!r}")
    return stat


def bootstrap_ci(
    returns: pd.Series | np.ndarray,
    stat: Stat = "sharpe",
    n_resamples: int = 1000,
    block_length: float | None = None,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = None,
    *,
    periods: int = TRADING_DAYS_PER_YEAR,
    risk_free: float | pd.Series = 0.0,
) -> dict[str, float | int | str]:
    """Stationary block bootstrap percentile interval for the Sharpe ratio or the CAGR.

    Parameters
    ----------
    returns : Series or ndarray of shape (n_dates,)
        Simple returns; non-finite values are dropped.
    stat : {"sharpe", "cagr"}
        Statistic (as `screener.analytics.metrics.sharpe` / `cagr`).
    n_resamples : int
        Number of bootstrap resamples (>= 2).
    block_length : float, optional
        Mean block length (>= 1). Default: `optimal_block_length` of the resampled series.
    alpha : float
        ``1 - alpha`` is the confidence level, in (0, 1).
    rng : numpy Generator, int or None
        Source of randomness; an int seeds a new Generator (reproducible), None draws fresh entropy.
    periods : int
        Returns per year (252 for daily).
    risk_free : float or Series
        Annual risk-free rate for the Sharpe ratio (a Series needs `returns` as a Series, for the dates).

    Returns
    -------
    dict
        ``point`` (statistic of the sample), ``low`` and ``high`` (percentile interval), ``se`` (standard
        deviation of the resampled statistic), ``block_length`` (mean block length used), ``n_resamples``,
        ``stat``, ``alpha``. NaN statistics below two finite returns.
    """
    _check_stat(stat)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 2:
        raise ValueError(f"`n_resamples` must be an integer >= 2, got {n_resamples!r}")
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}")
    periods_f = metrics._check_periods(periods)
    if isinstance(risk_free, pd.Series) and not isinstance(returns, pd.Series):
        raise TypeError("`risk_free` as a Series needs `returns` as a Series (to align the rates on its dates)")
    if stat == "sharpe":
        series = returns if isinstance(returns, pd.Series) else pd.Series(np.asarray(returns, dtype="float64"))
        values = _finite_values(metrics.excess_returns(series, risk_free, periods_f))
    else:
        values = _finite_values(returns)
    out: dict[str, float | int | str] = {"stat": stat, "alpha": float(alpha), "n_resamples": int(n_resamples)}
    n = values.size
    if n < 2:
        return {**out, "point": math.nan, "low": math.nan, "high": math.nan, "se": math.nan,
                "block_length": math.nan}
    if block_length is None:
        block_length = optimal_block_length(values)
    idx = stationary_bootstrap_indices(n, int(n_resamples), block_length, rng)
    if stat == "sharpe":
        point = metrics.sharpe(pd.Series(values), 0.0, periods_f)
        sample = values[idx]
        sd = sample.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(sd > 0, sample.mean(axis=1) / sd, np.nan) * math.sqrt(periods_f)
    else:
        point = metrics.cagr(pd.Series(values), periods_f)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log1p(values)
            dist = np.expm1(logs[idx].sum(axis=1) * (periods_f / n))
    dist = dist[np.isfinite(dist)]
    if dist.size < 2:
        low = high = se = math.nan
    else:
        low, high = (float(q) for q in np.quantile(dist, [alpha / 2.0, 1.0 - alpha / 2.0]))
        se = float(dist.std(ddof=1))
    return {**out, "point": float(point), "low": low, "high": high, "se": se, "block_length": float(block_length)}


def _split_position(index: pd.Index, split: date | str | pd.Timestamp | float) -> int:
    if isinstance(split, bool | int | np.integer):
        raise ValueError(f"`split` must be a date or a fraction in (0, 1), got {split!r}")
    if isinstance(split, float):
        if not 0 < split < 1:
            raise ValueError(f"`split` as a fraction must be in (0, 1), got {split!r}")
        return math.floor(split * len(index))
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError("`split` as a date needs `returns` with a DatetimeIndex; pass a fraction instead")
    try:
        day = pd.Timestamp(split)
    except (TypeError, ValueError):
        raise ValueError(f"`split` must be a date or a fraction in (0, 1), got {split!r}") from None
    return int(index.searchsorted(day, side="left"))


def _row(returns: pd.Series, risk_free: float | pd.Series, periods: int) -> dict[str, float]:
    row = metrics.summary(returns, risk_free, periods)
    row["psr"] = metrics.probabilistic_sharpe_ratio(returns, risk_free, periods)
    row["observations"] = float(np.isfinite(returns.to_numpy(dtype="float64")).sum())
    return row


def split_report(
    returns: pd.Series,
    split: date | str | pd.Timestamp | float,
    benchmark: pd.Series | None = None,
    periods: int = TRADING_DAYS_PER_YEAR,
    *,
    risk_free: float | pd.Series = 0.0,
) -> pd.DataFrame:
    """Metrics in-sample, out-of-sample and their change, for the strategy and optionally a benchmark.

    Parameters
    ----------
    returns : Series of shape (n_dates,)
        Simple returns, sorted by date.
    split : date, str, Timestamp or float
        A date: in-sample is before it, out-of-sample from it on (the split date is out-of-sample).
        A fraction in (0, 1): the first ``floor(split * n_dates)`` rows are in-sample.
    benchmark : Series, optional
        Benchmark returns, aligned on the dates of `returns` (dates it lacks count as missing returns).
    periods : int
        Returns per year (252 for daily).
    risk_free : float or Series
        Annual risk-free rate for Sharpe, Sortino and PSR.

    Returns
    -------
    DataFrame
        Index ``(series, metric)``: ``series`` is the name of `returns` (``"strategy"`` if unnamed), then
        the benchmark's (``"benchmark"`` if unnamed); ``metric`` runs over `SPLIT_METRICS` (``psr``: the
        probabilistic Sharpe ratio, probability that the true Sharpe is above 0). Columns ``in_sample``,
        ``out_of_sample`` and ``change`` (out-of-sample minus in-sample). ``attrs["split_date"]`` is the first
        out-of-sample date.

    Raises
    ------
    ValueError
        If `split` leaves fewer than two returns on either side.
    """
    returns = metrics._series(returns)
    if not returns.index.is_monotonic_increasing:
        raise ValueError("`returns` must be sorted by date")
    cut = _split_position(returns.index, split)
    n = len(returns)
    if cut < 2 or n - cut < 2:
        raise ValueError(f"`split` must leave at least two returns on each side; got {cut} in-sample and "
                         f"{n - cut} out-of-sample of {n}")
    series = {str(returns.name) if returns.name is not None else "strategy": returns}
    if benchmark is not None:
        benchmark = metrics._series(benchmark, "benchmark")
        label = str(benchmark.name) if benchmark.name is not None else "benchmark"
        if label in series:
            label = f"{label} (benchmark)"
        series[label] = benchmark.reindex(returns.index)
    frames = []
    for label, s in series.items():
        ins = _row(s.iloc[:cut], risk_free, periods)
        oos = _row(s.iloc[cut:], risk_free, periods)
        frame = pd.DataFrame({"in_sample": ins, "out_of_sample": oos}).reindex(list(SPLIT_METRICS))
        frame["change"] = frame["out_of_sample"] - frame["in_sample"]
        frame.index = pd.MultiIndex.from_product([[label], frame.index], names=["series", "metric"])
        frames.append(frame)
    out = pd.concat(frames)
    out.attrs["split_date"] = returns.index[cut]
    return out
