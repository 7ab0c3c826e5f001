"""Cross-sectional transforms of factor values: z-score, rank, winsorise, neutralise within groups.

Each function works date by date (one cross-section of tickers at a time) and accepts the three shapes a
factor takes in the project, returning the same shape, index, columns and names as its input:

- long: a Series or DataFrame on a (``date``, ``ticker``) MultiIndex (`screener.factors.market.market_factors`);
  the cross-sections are the groups of the first level, and a DataFrame is transformed column by column;
- wide: a DataFrame of shape (n_dates, n_tickers); each row is a cross-section;
- a Series indexed by ticker alone: a single cross-section.

``NaN`` stays ``NaN`` and is left out of every statistic; ``±inf`` is treated as missing, with a warning.
Inputs are never modified. Outputs are float64.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal, TypeVar

import numpy as np
import pandas as pd

__all__ = ["neutralize", "rank", "winsorize", "zscore"]

Values = TypeVar("Values", pd.Series, pd.DataFrame)
NeutralizeMethod = Literal["demean", "zscore"]


# ---------------------------------------------------------------- shapes


def _is_long(values: pd.Series | pd.DataFrame) -> bool:
    return isinstance(values.index, pd.MultiIndex)


def _numeric(column: pd.Series, what: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column.dtype) or not pd.api.types.is_numeric_dtype(column.dtype):
        raise TypeError(f"{what} must hold numbers, got dtype {column.dtype}; select the numeric factor columns first")
    out = column.to_numpy(dtype="float64", na_value=np.nan)
    infinite = np.isinf(out)
    if infinite.any():
        warnings.warn(f"{what}: {int(infinite.sum())} infinite values treated as missing", UserWarning, stacklevel=5)
        out = np.where(infinite, np.nan, out)
    return out


def _columns(values: pd.Series | pd.DataFrame, name: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Flattened value arrays (one per transformed column) and the cross-section code of each element."""
    if not isinstance(values, pd.Series | pd.DataFrame):
        raise TypeError(f"`{name}` must be a Series or DataFrame, got {type(values).__name__}")
    if isinstance(values, pd.Series):
        codes = (
            pd.factorize(values.index.get_level_values(0), use_na_sentinel=False)[0]
            if _is_long(values)
            else np.zeros(len(values), dtype=np.intp)
        )
        return [_numeric(values, f"`{name}`")], codes
    arrays = [_numeric(values.iloc[:, i], f"`{name}[{c!r}]`") for i, c in enumerate(values.columns)]
    if _is_long(values):
        return arrays, pd.factorize(values.index.get_level_values(0), use_na_sentinel=False)[0]
    # Wide: one cross-section per row, flattened row by row.
    flat = np.column_stack(arrays).ravel() if arrays else np.empty(0)
    return [flat], np.repeat(np.arange(values.shape[0]), values.shape[1])


def _rebuild(values: Values, results: list[np.ndarray]) -> Values:
    if isinstance(values, pd.Series):
        return pd.Series(results[0], index=values.index.copy(), name=values.name)
    if _is_long(values):
        data = {i: r for i, r in enumerate(results)}
        out = pd.DataFrame(data, index=values.index.copy())
        out.columns = values.columns.copy()
        return out
    return pd.DataFrame(results[0].reshape(values.shape), index=values.index.copy(), columns=values.columns.copy())


def _apply(values: Values, name: str, kernel: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Values:
    arrays, codes = _columns(values, name)
    return _rebuild(values, [kernel(a, codes) for a in arrays])


# ---------------------------------------------------------------- kernels on (values, group codes)


def _stats(x: np.ndarray, codes: np.ndarray, ddof: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-element group mean, standard deviation and whether the group is constant (or too small).

    The moments are taken on values divided by the group's largest magnitude, so that neither tiny values
    (whose squares underflow) nor huge ones (whose squares overflow) lose the dispersion.
    """
    valid = ~np.isnan(x) & (codes >= 0)
    n_groups = int(codes.max(initial=-1)) + 1
    c, xv = codes[valid], x[valid]
    low = np.full(n_groups, np.inf)
    high = np.full(n_groups, -np.inf)
    np.minimum.at(low, c, xv)
    np.maximum.at(high, c, xv)
    scale = np.maximum(np.abs(low), np.abs(high))
    count = np.bincount(c, minlength=n_groups).astype("float64")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scaled = xv / scale[c]
        mean = np.bincount(c, weights=scaled, minlength=n_groups) / count
        # Two passes: the sum of squared deviations from the mean, not E[x^2] - E[x]^2.
        ss = np.bincount(c, weights=(scaled - mean[c]) ** 2, minlength=n_groups)
        std = np.sqrt(ss / (count - ddof))
        mean, std = mean * scale, std * scale
    safe = np.maximum(codes, 0)
    constant = (low == high)[safe] | (count <= ddof)[safe]
    return np.where(constant, 0.0, mean[safe]), std[safe], constant


def _zscore_kernel(x: np.ndarray, codes: np.ndarray, ddof: int) -> np.ndarray:
    mean, std, constant = _stats(x, codes, ddof)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        z = np.where(constant, 0.0, (x - mean) / std)
    return np.where(np.isnan(x) | (codes < 0), np.nan, z)


def _demean_kernel(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    mean, _, constant = _stats(x, codes, 0)
    return np.where(np.isnan(x) | (codes < 0), np.nan, np.where(constant, 0.0, x - mean))


def _rank_kernel(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    s = pd.Series(x)
    groups = s.groupby(codes)
    r = groups.rank(method="average").to_numpy(dtype="float64")
    n = groups.transform("count").to_numpy(dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1, (r - 1.0) / (n - 1.0), np.where(np.isnan(x), np.nan, 0.5))


def _winsorize_kernel(x: np.ndarray, codes: np.ndarray, lower: float, upper: float) -> np.ndarray:
    groups = pd.Series(x).groupby(codes)
    lo = groups.transform("quantile", lower).to_numpy(dtype="float64")
    hi = groups.transform("quantile", upper).to_numpy(dtype="float64")
    return np.clip(x, lo, hi)


# ---------------------------------------------------------------- public transforms


def _check_ddof(ddof: object) -> int:
    if not isinstance(ddof, int | np.integer) or isinstance(ddof, bool) or ddof < 0:
        raise ValueError(f"`ddof` must be a non-negative integer, got {ddof!r}")
    return int(ddof)


def zscore(values: Values, *, ddof: int = 1) -> Values:
    """Return ``(x - mean) / std`` within each date's cross-section.

    The mean and standard deviation are those of the date's non-missing values, the standard deviation with
    `ddof` (default 1, as pandas' ``std``: each date's z-scores then have ``mean 0`` and ``std() == 1``).
    A cross-section whose values are all equal, or that has no more than `ddof` values, gets 0 for every
    present value: each sits at the cross-sectional mean.

    Parameters
    ----------
    values : Series or DataFrame
        Long ((date, ticker) MultiIndex), wide (n_dates, n_tickers) or one cross-section (index = ticker).
    ddof : int
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    Series or DataFrame
        Same type, shape, index and columns as `values`; ``NaN`` where `values` is missing.
    """
    ddof = _check_ddof(ddof)
    return _apply(values, "values", lambda x, codes: _zscore_kernel(x, codes, ddof))


def rank(values: Values) -> Values:
    """Return percentile ranks in ``[0, 1]`` within each date's cross-section.

    ``(r - 1) / (n - 1)`` with ``r`` the average rank (ties share it) among the date's ``n`` non-missing
    values: the smallest gets 0, the largest 1, and the ranks of a date average 0.5. A lone value gets 0.5.

    Parameters
    ----------
    values : Series or DataFrame
        Long ((date, ticker) MultiIndex), wide (n_dates, n_tickers) or one cross-section (index = ticker).

    Returns
    -------
    Series or DataFrame
        Same type, shape, index and columns as `values`; ``NaN`` where `values` is missing.
    """
    return _apply(values, "values", _rank_kernel)


def winsorize(values: Values, lower: float = 0.05, upper: float = 0.95) -> Values:
    """Clip each date's cross-section to its `lower` and `upper` quantiles.

    Quantiles of the date's non-missing values, linearly interpolated (pandas' default); missing values stay
    missing. With ``lower=0`` and ``upper=1`` nothing changes.

    Parameters
    ----------
    values : Series or DataFrame
        Long ((date, ticker) MultiIndex), wide (n_dates, n_tickers) or one cross-section (index = ticker).
    lower, upper : float
        Quantiles, ``0 <= lower <= upper <= 1``.

    Returns
    -------
    Series or DataFrame
        Same type, shape, index and columns as `values`.
    """
    for name, q in (("lower", lower), ("upper", upper)):
        if isinstance(q, bool) or not isinstance(q, int | float | np.floating | np.integer) or not 0 <= q <= 1:
            raise ValueError(f"`{name}` must be a quantile in [0, 1], got {q!r}")
    if lower > upper:
        raise ValueError(f"`lower` must not exceed `upper`, got lower={lower}, upper={upper}")
    return _apply(values, "values", lambda x, codes: _winsorize_kernel(x, codes, float(lower), float(upper)))


def _group_labels(values: pd.Series | pd.DataFrame, groups: object) -> np.ndarray:
    """Group label of each flattened element of `values` (in `_columns` order)."""
    if not isinstance(groups, pd.Series | pd.DataFrame):
        raise TypeError(
            f"`groups` must be a Series (ticker -> group, or on (date, ticker)) or a DataFrame (date x ticker), "
            f"got {type(groups).__name__}"
        )
    if isinstance(groups, pd.Series) and not _is_long(groups) and groups.index.has_duplicates:
        raise ValueError("`groups` has duplicate tickers; give one group per ticker")
    if _is_long(values):
        index = values.index
        if isinstance(groups, pd.DataFrame):
            groups = groups.stack(future_stack=True)
        if _is_long(groups):
            return groups.reindex(index).to_numpy(dtype=object)
        return groups.reindex(index.get_level_values(1)).to_numpy(dtype=object)
    if isinstance(values, pd.Series):  # one cross-section indexed by ticker
        if isinstance(groups, pd.DataFrame) or _is_long(groups):
            raise TypeError("`groups` must be a Series indexed by ticker when `values` is one cross-section")
        return groups.reindex(values.index).to_numpy(dtype=object)
    if isinstance(groups, pd.DataFrame):
        return groups.reindex(index=values.index, columns=values.columns).to_numpy(dtype=object).ravel()
    if _is_long(groups):
        keys = pd.MultiIndex.from_product([values.index, values.columns])
        return groups.reindex(keys).to_numpy(dtype=object)
    return np.tile(groups.reindex(values.columns).to_numpy(dtype=object), values.shape[0])


def neutralize(
    values: Values, groups: pd.Series | pd.DataFrame, *, method: NeutralizeMethod = "demean", ddof: int = 1
) -> Values:
    """Remove group effects within each date: demean (or z-score) the values of each (date, group).

    Typical use: neutralise a factor by value-chain stage (mining, separation, magnet...) or by country, so
    that a screen compares companies with their peers.

    Parameters
    ----------
    values : Series or DataFrame
        Long ((date, ticker) MultiIndex), wide (n_dates, n_tickers) or one cross-section (index = ticker).
    groups : Series or DataFrame
        Group label of each ticker: a Series indexed by ticker (constant over time), or time-varying labels as
        a Series on (date, ticker) or a DataFrame (date x ticker). A ticker without a label (missing, ``NaN``)
        gets ``NaN``.
    method : {"demean", "zscore"}
        ``"demean"``: ``x - mean(group)``; ``"zscore"``: `zscore` within the group (a group of equal values,
        or of at most `ddof` values, gets 0).
    ddof : int
        Delta degrees of freedom for ``"zscore"``.

    Returns
    -------
    Series or DataFrame
        Same type, shape, index and columns as `values`; every (date, group) of the result has mean 0.
    """
    if method not in ("demean", "zscore"):
        raise ValueError(f"`method` must be 'demean' or 'zscore', got {method!r}")
    ddof = _check_ddof(ddof)
    arrays, dates = _columns(values, "values")
    labels = _group_labels(values, groups)
    group_codes = pd.factorize(labels, use_na_sentinel=True)[0]
    n_groups = max(int(group_codes.max(initial=-1)) + 1, 1)
    codes = np.where(group_codes >= 0, dates * n_groups + group_codes, -1)
    # Compact the (date, group) keys so that the per-group arrays stay small.
    codes = np.where(codes >= 0, pd.factorize(codes)[0], -1)
    if method == "demean":
        results = [_demean_kernel(x, codes) for x in arrays]
    else:
        results = [_zscore_kernel(x, codes, ddof) for x in arrays]
    return _rebuild(values, results)
