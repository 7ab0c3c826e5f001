"""The screen: factor values at one date -> which members pass each filter, their scores and the selection.

Pure functions over the cross-section of one decision date (ticker x factor). Nothing a user wrote is
evaluated: filters are ``(factor, op, value)`` data applied with a fixed table of comparison functions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np
import pandas as pd

from screener.config import ScreenSpec
from screener.exceptions import ConfigError

_COMPARE: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}


def _category_match(values: pd.Series, wanted: tuple[str, ...]) -> np.ndarray:
    """True where a member's category (a string or a collection of strings, e.g. several stages) is in ``wanted``."""
    want = set(wanted)

    def hit(v: object) -> bool:
        if isinstance(v, str):
            return v in want
        if isinstance(v, (tuple, list, set, frozenset, np.ndarray)):
            return any(x in want for x in v)
        return False

    return np.fromiter((hit(v) for v in values), dtype=bool, count=len(values))


def apply_filter(factors: pd.DataFrame, factor: str, op: str, value: float | tuple[str, ...]) -> pd.Series:
    """Boolean pass mask of one filter over the members (missing values fail).

    Parameters
    ----------
    factors : DataFrame of shape (n_members, n_factors)
        Factor values at one date, indexed by ticker.
    factor, op, value
        The filter, e.g. ``("adv_60d", ">=", 1e6)`` or ``("stage", "in", ("mining",))``.
    """
    if factor not in factors.columns:
        raise ConfigError(f"`screen.filters.factor` {factor!r} is not in the factor table; "
                          f"available: {', '.join(map(str, factors.columns))}")
    col = factors[factor]
    if isinstance(value, tuple):
        hit = _category_match(col, value)
        present = col.notna().to_numpy() if col.dtype != object else np.array([v is not None for v in col])
        mask = hit if op in ("in", "==") else (~hit & present)
    else:
        numbers = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")
        with np.errstate(invalid="ignore"):
            mask = _COMPARE[op](numbers, float(value)) & np.isfinite(numbers)
    return pd.Series(mask, index=factors.index, name=f"{factor} {op} {value}")


def _zscore(x: np.ndarray) -> np.ndarray:
    """z-score across members (ddof=0), NaN-aware; NaN stays NaN; a constant cross-section gives 0."""
    finite = ~np.isnan(x)
    if not finite.any():
        return x.copy()
    mean = x[finite].mean()
    std = x[finite].std()
    if not np.isfinite(std) or std == 0:
        return np.where(finite, 0.0, np.nan)
    return (x - mean) / std


def cross_sectional_zscore(values: pd.Series) -> pd.Series:
    """z-score across members (ddof=0); NaN stays NaN; a constant cross-section gives 0."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    return pd.Series(_zscore(x), index=values.index, name=values.name)


def screen_at(factors: pd.DataFrame, spec: ScreenSpec, eligible: pd.Index | None = None) -> pd.DataFrame:
    """Apply a screen to the members' factors at one date.

    Filters run first; scores are z-scored among the members that passed every filter (so the score ranks
    candidates against each other), weighted by ``spec.score`` and summed; a missing factor value contributes
    0 (the cross-sectional mean) and is counted in ``missing_score_factors``. The ``top_n`` highest scores are
    selected (ties keep the universe order); without a score, every member that passed is selected.

    Parameters
    ----------
    factors : DataFrame of shape (n_members, n_factors)
        Factor values at the decision date, indexed by ticker in universe order.
    spec : ScreenSpec
    eligible : Index, optional
        Members that can be traded on the date (e.g. have a price); others are reported, never selected.

    Returns
    -------
    DataFrame of shape (n_members, ...)
        ``eligible``, one ``pass: <filter>`` column per filter, ``passed``, per score factor ``z: <f>`` and
        ``contrib: <f>``, ``score``, ``missing_score_factors``, ``rank`` (1 = best among passed) and ``selected``.
    """
    n = len(factors.index)
    cols: dict[str, object] = {}
    eligible_mask = np.ones(n, dtype=bool) if eligible is None else factors.index.isin(eligible)
    cols["eligible"] = eligible_mask
    passed = eligible_mask.copy()
    for f in spec.filters:
        mask = apply_filter(factors, f.factor, f.op, f.value).to_numpy()
        cols[f"pass: {f.label()}"] = mask
        passed &= mask
    cols["passed"] = passed
    score = np.zeros(n)
    missing = np.zeros(n, dtype=int)
    for factor, weight in spec.score:
        if factor not in factors.columns:
            raise ConfigError(f"`screen.score.{factor}` is not in the factor table")
        x = pd.to_numeric(factors[factor], errors="coerce").to_numpy(dtype="float64")
        z = np.full(n, np.nan)
        z[passed] = _zscore(x[passed])
        cols[f"z: {factor}"] = z
        contrib = np.where(passed, weight * z, np.nan)
        cols[f"contrib: {factor}"] = contrib
        missing += (np.isnan(z) & passed).astype(int)
        score += np.where(np.isnan(contrib), 0.0, contrib)
    cols["score"] = np.where(passed, score, np.nan) if spec.score else np.full(n, np.nan)
    cols["missing_score_factors"] = np.where(passed, missing, 0)
    candidates = np.flatnonzero(passed)
    if spec.score:
        # Descending score, ties by universe order; only passed members are ranked.
        candidates = candidates[np.lexsort((candidates, -score[candidates]))]
    rank = np.full(n, np.nan)
    rank[candidates] = np.arange(1, len(candidates) + 1, dtype=float)
    cols["rank"] = rank
    chosen = candidates if spec.top_n is None else candidates[: spec.top_n]
    selected = np.zeros(n, dtype=bool)
    selected[chosen] = True
    cols["selected"] = selected
    return pd.DataFrame(cols, index=factors.index)
