"""Portfolio weights: the screen's selected tickers (+ returns, scores, market caps) -> long-only target weights.

One entry point, `weigh`, called at each rebalance date with the return history *up to that date* (the caller
slices; `weigh` reads only the last `lookback` rows it is given). It returns a `WeightResult`: a Series of
weights indexed by the selected tickers (caller's order, name ``weight``), never None or NaN, each >= 0,
summing to 1 unless the cash rule applies:

- ``fixed``: weights of tickers in `fixed_weights` that were not selected, and any part of `fixed_weights`
  left unassigned (they sum to less than 1), are held in cash;
- caps: when the names the method gives a positive weight cannot hold the whole portfolio under the caps
  (score-weighting with 3 positive scores and ``max_weight=0.2``), the remainder is held in cash;
- an empty selection is all cash (an empty Series).

Caps that cannot be met by the selected names at all (``max_weight`` < 1/N, group caps too tight) are a
`ConfigError`: that depends only on the configuration and the selection, never on market data.

Optimisers that fail (too little history, singular covariance, no convergence, no positive excess return)
fall back along ``max_sharpe -> min_variance -> inverse_vol -> equal`` (``risk_parity -> inverse_vol ->
equal``; ``score`` and ``market_cap`` -> ``equal``), and the result records each step with its reason.

Pure numpy + scipy (an exact active-set QP for the optimisers, HiGHS LPs for capacities, Newton for risk parity);
Ledoit-Wolf shrinkage is the closed form of Ledoit & Wolf (2004) written out here. ``docs/weights.md`` gives
every formula and rule.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import optimize

from screener.exceptions import ConfigError, ScreenerError

__all__ = [
    "FALLBACK",
    "GROUP_DIMENSIONS",
    "METHODS",
    "MIN_COVERAGE",
    "MIN_OBSERVATIONS",
    "GroupDimension",
    "Method",
    "OptimisationError",
    "WeightResult",
    "cap_weights",
    "ledoit_wolf",
    "max_sharpe_weights",
    "min_variance_weights",
    "risk_contributions",
    "risk_parity_weights",
    "weigh",
]

Method = Literal["equal", "fixed", "inverse_vol", "risk_parity", "score", "min_variance", "max_sharpe", "market_cap"]
METHODS: tuple[str, ...] = get_args(Method)

GroupDimension = Literal["stage", "country", "element"]
GROUP_DIMENSIONS: tuple[str, ...] = get_args(GroupDimension)

#: Where each method goes when it cannot produce weights (None: it always can).
FALLBACK: dict[str, str | None] = {
    "max_sharpe": "min_variance",
    "min_variance": "inverse_vol",
    "risk_parity": "inverse_vol",
    "inverse_vol": "equal",
    "score": "equal",
    "market_cap": "equal",
    "fixed": None,
    "equal": None,
}

#: A volatility needs at least this many returns (sample standard deviation, ddof=1).
MIN_OBSERVATIONS = 2
#: Covariance methods drop a name with returns on fewer than this share of the window's rows: the covariance
#: uses the rows where every kept name has a return, so one short history would shrink everyone's sample.
MIN_COVERAGE = 0.5

_CAP_TOL = 1e-9  # a weight or group may exceed its cap by this much (float rounding)
_ZERO = 1e-12  # optimiser weights below this are set to 0
_SINGULAR_CONDITION = 1e12  # condition number above which a covariance counts as singular
_MAX_ITER = 500


class OptimisationError(ScreenerError):
    """An optimiser could not produce weights: too little data, singular covariance or no convergence."""


@dataclass(frozen=True)
class WeightResult:
    """What `weigh` returns.

    Attributes
    ----------
    weights : Series of shape (n_selected,)
        Target weight of each selected ticker (caller's order, index name ``asset``, name ``weight``): >= 0,
        never NaN, summing to 1 or, under the cash rule, to less (the engine holds the rest in cash).
    method_used : str
        The method that produced `weights`; differs from the requested one after a fallback.
    fallbacks : tuple of str
        One entry per fallback step, ``"<method>: <reason>"``, in the order they happened.
    notes : tuple of str
        Everything else worth knowing: dropped names, binding caps, cash held and why, shrinkage intensity.
    """

    weights: pd.Series
    method_used: str
    fallbacks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def cash(self) -> float:
        """Share of the portfolio held in cash: ``1 - weights.sum()`` (0 when fully invested)."""
        return max(0.0, 1.0 - float(self.weights.sum()))


class _Fallback(Exception):
    """A method cannot produce weights for this data; the message is the reason recorded in `fallbacks`."""


# --------------------------------------------------------------------------------------------------- caps


@dataclass(frozen=True)
class _Caps:
    """Caps over a fixed list of names: per-name upper bounds and group sum limits."""

    upper: np.ndarray  # (n,) per-name cap, 1.0 when there is none
    members: np.ndarray  # (g, n) bool: name j is in group i
    limits: np.ndarray  # (g,) cap of each group
    labels: tuple[str, ...]  # (g,) "country 'China' = 0.3"
    max_weight: float | None
    tickers: tuple[str, ...]  # (n,)

    def subset(self, keep: np.ndarray) -> _Caps:
        members = self.members[:, keep]
        used = members.any(axis=1)
        return _Caps(self.upper[keep], members[used], self.limits[used],
                     tuple(lab for lab, u in zip(self.labels, used, strict=True) if u), self.max_weight,
                     tuple(t for t, k in zip(self.tickers, keep, strict=True) if k))

    @property
    def any(self) -> bool:
        return self.max_weight is not None or len(self.limits) > 0


def _membership(value: object) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence | np.ndarray | pd.Index | set | frozenset):
        return tuple(str(v) for v in value)
    raise TypeError(f"`groups` values must be a str or a sequence of str, got {type(value).__name__}: {value!r}")


def _check_group_caps(
    group_caps: Mapping[str, Mapping[str, float]] | None, groups: Mapping[str, Mapping[str, object]] | None
) -> None:
    if group_caps is None:
        return
    if not isinstance(group_caps, Mapping):
        raise TypeError(f"`group_caps` must be a mapping dimension -> {{group: cap}}, got {type(group_caps).__name__}")
    for dim, caps in group_caps.items():
        if dim not in GROUP_DIMENSIONS:
            raise ConfigError(f"`group_caps` dimension must be one of {', '.join(map(repr, GROUP_DIMENSIONS))}, "
                              f"got {dim!r}")
        if not isinstance(caps, Mapping):
            raise TypeError(f"`group_caps[{dim!r}]` must be a mapping group -> cap, got {type(caps).__name__}")
        for group, cap in caps.items():
            if not isinstance(cap, numbers.Real) or isinstance(cap, bool) or not 0 <= cap <= 1:
                raise ConfigError(f"`group_caps[{dim!r}][{group!r}]` must be in [0, 1], got {cap!r}")
    used = [dim for dim, caps in group_caps.items() if caps]
    if used and groups is None:
        raise ConfigError(f"`groups` is required when `group_caps` is given (dimensions {', '.join(used)})")
    for dim in used:
        if dim not in groups:
            raise ConfigError(f"`groups` has no {dim!r} dimension, which `group_caps` caps; "
                              f"`groups` has {', '.join(map(repr, groups)) or 'none'}")
        if not isinstance(groups[dim], Mapping):
            raise TypeError(f"`groups[{dim!r}]` must be a mapping ticker -> group(s), got {type(groups[dim]).__name__}")


def _build_caps(
    tickers: Sequence[str],
    max_weight: float | None,
    group_caps: Mapping[str, Mapping[str, float]] | None,
    groups: Mapping[str, Mapping[str, object]] | None,
) -> _Caps:
    n = len(tickers)
    upper = np.full(n, 1.0 if max_weight is None else float(max_weight))
    rows: list[np.ndarray] = []
    limits: list[float] = []
    labels: list[str] = []
    for dim, caps in (group_caps or {}).items():
        if not caps:
            continue
        of = groups[dim]
        member_of = [_membership(of.get(t)) for t in tickers]
        for group, cap in caps.items():
            row = np.fromiter((group in m for m in member_of), dtype=bool, count=n)
            if row.any():  # a cap on a group no selected name belongs to constrains nothing
                rows.append(row)
                limits.append(float(cap))
                labels.append(f"{dim} {group!r} = {cap:g}")
    members = np.array(rows, dtype=bool).reshape(len(rows), n)
    return _Caps(upper, members, np.array(limits, dtype=float), tuple(labels), max_weight, tuple(tickers))


def _fill(target: np.ndarray, caps: _Caps, total: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Progressive water-filling of `total` along the shape of `target` under `caps`.

    Every name with a positive target grows in proportion to its target; a name stops when it reaches its cap,
    and all names of a group stop when the group reaches its cap. Stops when `total` is placed or nothing can
    grow. Returns the weights, the names stopped by their own cap, and the groups that bind.
    """
    w = np.zeros_like(target)
    free = target > 0
    at_cap = np.zeros(len(target), dtype=bool)
    binding = np.zeros(len(caps.limits), dtype=bool)
    members = caps.members.astype(float)
    for _ in range(len(target) + len(caps.limits) + 1):
        rate = np.where(free, target, 0.0)
        speed = rate.sum()
        left = total - w.sum()
        if speed <= 0 or left <= _ZERO * total:
            break
        step = left / speed
        with np.errstate(divide="ignore", invalid="ignore"):
            name_room = np.where(free, (caps.upper - w) / rate, np.inf)
            group_speed = members @ rate
            group_room = np.where(group_speed > 0, (caps.limits - members @ w) / group_speed, np.inf)
        step = max(0.0, min(step, name_room.min(initial=np.inf), group_room.min(initial=np.inf)))
        w = w + step * rate
        hit_names = free & (caps.upper - w <= _ZERO)
        hit_groups = (group_speed > 0) & (caps.limits - members @ w <= _ZERO)
        at_cap |= hit_names
        binding |= hit_groups
        free &= ~hit_names & ~caps.members[hit_groups].any(axis=0)
    return np.minimum(w, caps.upper), at_cap, binding


def _capacity(caps: _Caps, allowed: np.ndarray) -> tuple[float, np.ndarray]:
    """The most that fits under `caps` using only the `allowed` names, and a portfolio that does it (HiGHS LP)."""
    n = len(caps.upper)
    out = np.zeros(n)
    if not allowed.any():
        return 0.0, out
    sub = caps.subset(allowed)
    res = optimize.linprog(-np.ones(int(allowed.sum())), A_ub=sub.members.astype(float) if len(sub.limits) else None,
                           b_ub=sub.limits if len(sub.limits) else None,
                           bounds=np.column_stack([np.zeros(len(sub.upper)), sub.upper]), method="highs")
    if res.status != 0:
        return 0.0, out
    out[allowed] = np.clip(res.x, 0.0, sub.upper)
    return float(out.sum()), out


def _cap_rows(caps: _Caps) -> tuple[np.ndarray, np.ndarray]:
    """The caps as ``A w >= b``: ``w >= 0``, ``-w >= -max_weight`` (if set), ``-sum_g w >= -cap_g``."""
    n = len(caps.upper)
    rows = [np.eye(n)]
    bounds = [np.zeros(n)]
    if caps.max_weight is not None:
        rows.append(-np.eye(n))
        bounds.append(-caps.upper)
    if len(caps.limits):
        rows.append(-caps.members.astype(float))
        bounds.append(-caps.limits)
    return np.vstack(rows), np.concatenate(bounds)


def _qp(
    g: np.ndarray, c: np.ndarray, a_eq: np.ndarray, b_eq: np.ndarray, a_in: np.ndarray, b_in: np.ndarray,
    x: np.ndarray,
) -> np.ndarray:
    """Minimise ``x' G x / 2 + c' x`` s.t. ``a_eq x = b_eq``, ``a_in x >= b_in``, from a feasible `x`.

    The primal active-set method (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithm 16.3) for a
    positive definite G: each step solves the KKT system of the constraints in the working set exactly, so the
    answer is exact to rounding (SLSQP stops around 1e-5 on these problems). A blocking constraint is never a
    linear combination of the working set (``a' p`` must be clearly negative), so the KKT matrix stays
    nonsingular.
    """
    n, m = len(x), len(b_eq)
    work: list[int] = []
    for _ in range(_MAX_ITER):
        a_w = np.vstack([a_eq, a_in[work]])
        k = len(a_w)
        kkt = np.zeros((n + k, n + k))
        kkt[:n, :n] = g
        kkt[:n, n:] = a_w.T
        kkt[n:, :n] = a_w
        grad = g @ x + c
        try:
            sol = np.linalg.solve(kkt, np.concatenate([-grad, np.zeros(k)]))
        except np.linalg.LinAlgError:
            raise OptimisationError("optimiser hit degenerate constraints (singular KKT system)") from None
        p = sol[:n]
        if np.abs(p).max() <= 1e-13 * max(1.0, np.abs(x).max()):
            lam = -sol[n + m:]  # multipliers of the working inequalities: all >= 0 at the optimum
            if not work or lam.min() >= -1e-12 * max(1.0, np.abs(grad).max()):
                return x
            work.pop(int(np.argmin(lam)))
            continue
        ap = a_in @ p
        ratio = np.full(len(ap), np.inf)
        # A constraint that depends linearly on the working set has a'p = 0 up to rounding: never let it block.
        block = ap < -1e-11 * np.abs(a_in).sum(axis=1) * np.abs(p).max()
        block[work] = False
        ratio[block] = np.maximum(a_in[block] @ x - b_in[block], 0.0) / -ap[block]
        j = int(np.argmin(ratio)) if len(ratio) else -1
        if j >= 0 and ratio[j] < 1:
            x = x + ratio[j] * p
            work.append(j)
        else:
            x = x + p
    raise OptimisationError(f"optimiser did not converge in {_MAX_ITER} active-set steps")


def _project(target: np.ndarray, caps: _Caps, total: float) -> np.ndarray | None:
    """Weights summing to `total` under `caps`, nearest to `target` in ``sum((w - t)^2 / t)`` (names with t > 0).

    With name caps only this is the water-filling itself; with overlapping groups it places weight that the
    progressive filling strands (a name in two binding groups gives way to names in only one of them).
    """
    pos = target > 0
    room, start = _capacity(caps, pos)
    if room < total - _CAP_TOL:
        return None
    t = target[pos]
    sub = caps.subset(pos)
    a_in, b_in = _cap_rows(sub)
    try:
        w = _qp(np.diag(1.0 / t), -np.ones(len(t)), np.ones((1, len(t))), np.array([total]), a_in, b_in,
                start[pos] * (total / room))
    except OptimisationError:
        return None
    out = np.zeros_like(target)
    out[pos] = np.clip(w, 0.0, sub.upper)
    return out


def _apply_caps(target: np.ndarray, caps: _Caps, total: float) -> tuple[np.ndarray, list[str]]:
    """Cap `target` (summing to `total`); return the weights and notes on what bound and any cash left."""
    if not caps.any or total <= 0:
        return target, []
    w, at_cap, binding = _fill(target, caps, total)
    notes: list[str] = []
    left = total - w.sum()
    if left > _CAP_TOL and len(caps.limits):
        # Overlapping groups can strand weight the caps would allow elsewhere: use the LP's capacity.
        room = min(total, _capacity(caps, target > 0)[0])
        if room > w.sum() + _CAP_TOL:
            better = _project(target, caps, room)
            if better is not None and better.sum() > w.sum():
                w = better
                at_cap = w >= caps.upper - _CAP_TOL
                binding = caps.members.astype(float) @ w >= caps.limits - _CAP_TOL
                notes.append("overlapping group caps: weights projected onto the caps (least relative change)")
        left = total - w.sum()
    if at_cap.any() and caps.max_weight is not None:
        notes.append(f"`max_weight` = {caps.max_weight:g} binds on {int(at_cap.sum())} name(s): "
                     f"{_names(caps.tickers, at_cap)}")
    if binding.any():
        notes.append("group caps bind: " + "; ".join(lab for lab, b in zip(caps.labels, binding, strict=True) if b))
    if left > _CAP_TOL:
        notes.append(f"cash {left:.4g}: the {int((target > 0).sum())} name(s) with a positive weight cannot hold "
                     "more under the caps")
    return w, notes


def _check_feasible(tickers: Sequence[str], caps: _Caps, total: float) -> None:
    """ConfigError when no portfolio of the selected names invests `total` under the caps."""
    n = len(tickers)
    if n == 0 or not caps.any:
        return
    if caps.max_weight is not None and caps.max_weight * n < total - _CAP_TOL:
        raise ConfigError(f"`max_weight` = {caps.max_weight:g} cannot be met with {n} selected names "
                          f"(needs >= {total / n:.4g})")
    if not len(caps.limits):
        return
    w, _, binding = _fill(np.full(n, total / n), caps, total)
    if w.sum() >= total - _CAP_TOL:
        return
    room, _ = _capacity(caps, np.ones(n, dtype=bool))
    if room >= total - _CAP_TOL:
        return
    bound = "; ".join(lab for lab, b in zip(caps.labels, binding, strict=True) if b) or "; ".join(caps.labels)
    also = f" with `max_weight` = {caps.max_weight:g}" if caps.max_weight is not None else ""
    raise ConfigError(f"`group_caps` cannot be met with the {n} selected names{also}: at most {room:.4g} of "
                      f"{total:g} fits under them (binding: {bound}); raise these caps or select names outside "
                      "the capped groups")


def cap_weights(
    weights: pd.Series,
    *,
    max_weight: float | None = None,
    group_caps: Mapping[str, Mapping[str, float]] | None = None,
    groups: Mapping[str, Mapping[str, str | Sequence[str]]] | None = None,
) -> pd.Series:
    """Cap weights per name and per group by water-filling, keeping the ratios among uncapped names.

    Names and groups over their cap are cut to it and the excess goes to the names below their caps in
    proportion to their weights, repeated until nothing exceeds a cap (names at 0 stay at 0). With group caps
    that overlap (a name in several elements), weight the progressive filling would strand is placed by a
    projection that changes each weight as little as possible relative to its size.

    Parameters
    ----------
    weights : Series of shape (n_assets,)
        Non-negative weights indexed by ticker, summing to at most 1.
    max_weight : float, optional
        Cap per name, in (0, 1].
    group_caps : mapping of str to mapping of str to float, optional
        ``{dimension: {group: cap}}``, dimensions from `GROUP_DIMENSIONS`, caps in [0, 1].
    groups : mapping of str to mapping of str to str or sequence of str, optional
        ``{dimension: {ticker: group or groups}}``; a ticker in several groups counts fully in each.

    Returns
    -------
    Series of shape (n_assets,)
        Capped weights, same index and name. The sum is unchanged unless the names with a positive weight
        cannot hold it under the caps; then the remainder is cash (the sum is lower).

    Raises
    ------
    ConfigError
        If a cap is out of range, or no portfolio of these names meets the caps.
    """
    if not isinstance(weights, pd.Series):
        raise TypeError(f"`weights` must be a pandas Series, got {type(weights).__name__}")
    values = weights.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("`weights` must be finite and >= 0")
    total = float(values.sum())
    if total > 1 + _CAP_TOL:
        raise ValueError(f"`weights` must sum to at most 1, got {total!r}")
    _check_max_weight(max_weight)
    _check_group_caps(group_caps, groups)
    tickers = [str(t) for t in weights.index]
    caps = _build_caps(tickers, max_weight, group_caps, groups)
    _check_feasible(tickers, caps, total)
    capped, _ = _apply_caps(values, caps, total)
    return pd.Series(capped, index=weights.index.copy(), name=weights.name)


# ------------------------------------------------------------------------------------------- estimation


def _ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf (2004) shrinkage of the 1/T sample covariance of `x` (T, N) towards mu * I."""
    t, n = x.shape
    x = x - x.mean(axis=0)
    sample = x.T @ x / t
    mu = np.trace(sample) / n
    # d^2 = ||S - mu I||_F^2 / N; b^2 = min(d^2, sum_t ||x_t x_t' - S||_F^2 / (N T^2)).
    x2 = x**2
    b2_bar = ((x2.T @ x2).sum() / t - (sample**2).sum()) / (n * t)
    d2 = ((sample**2).sum() - 2 * mu * np.trace(sample) + n * mu**2) / n
    b2 = min(b2_bar, d2)
    shrinkage = 0.0 if d2 <= 0 else float(b2 / d2)
    cov = (1 - shrinkage) * sample
    cov[np.diag_indices(n)] += shrinkage * mu
    return cov, shrinkage


def ledoit_wolf(returns: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Ledoit-Wolf shrunk covariance of returns (closed form of Ledoit & Wolf, 2004).

    ``(1 - delta) * S + delta * mu * I`` with ``S`` the sample covariance with divisor T (maximum likelihood,
    as in the paper and ``sklearn.covariance.LedoitWolf``), ``mu = trace(S) / N`` and the intensity ``delta``
    in [0, 1] that minimises the estimated expected Frobenius loss.

    Parameters
    ----------
    returns : DataFrame of shape (n_observations, n_assets)
        Simple returns. Rows with any NaN are dropped (the covariance uses dates where every asset has a return).

    Returns
    -------
    cov : DataFrame of shape (n_assets, n_assets)
        Shrunk covariance, per period of `returns` (not annualised), index and columns = `returns.columns`.
    shrinkage : float
        The intensity ``delta``.

    Raises
    ------
    ValueError
        If fewer than 2 rows have a return for every asset.
    """
    if not isinstance(returns, pd.DataFrame):
        raise TypeError(f"`returns` must be a DataFrame, got {type(returns).__name__}")
    x = returns.to_numpy(dtype=np.float64)
    x = x[np.isfinite(x).all(axis=1)]
    if len(x) < MIN_OBSERVATIONS:
        raise ValueError(f"`returns` needs at least {MIN_OBSERVATIONS} rows without NaN for a covariance, "
                         f"got {len(x)}")
    cov, shrinkage = _ledoit_wolf(x)
    return pd.DataFrame(cov, index=returns.columns.copy(), columns=returns.columns.copy()), shrinkage


def risk_contributions(weights: pd.Series, cov: pd.DataFrame) -> pd.Series:
    """Share of portfolio variance each asset contributes: ``w_i (C w)_i / (w' C w)`` (sums to 1).

    Parameters
    ----------
    weights : Series of shape (n_assets,)
        Weights indexed by ticker.
    cov : DataFrame of shape (n, n)
        Covariance with every ticker of `weights` in its index and columns.

    Returns
    -------
    Series of shape (n_assets,)
        Relative risk contributions, index = `weights.index`, name ``risk_contribution``; NaN when the
        portfolio variance is 0.
    """
    missing = weights.index.difference(cov.index)
    if len(missing):
        raise KeyError(f"`cov` has no row for {len(missing)} ticker(s) of `weights`: {', '.join(map(str, missing))}")
    c = cov.loc[weights.index, weights.index].to_numpy(dtype=np.float64)
    w = weights.to_numpy(dtype=np.float64)
    marginal = c @ w
    variance = float(w @ marginal)
    rc = w * marginal / variance if variance > 0 else np.full(len(w), np.nan)
    return pd.Series(rc, index=weights.index.copy(), name="risk_contribution")


# ------------------------------------------------------------------------------------------- optimisers


def _standardise(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlation-scaled covariance and the volatilities; OptimisationError if singular or not finite."""
    if not np.isfinite(cov).all():
        raise OptimisationError("covariance has NaN or infinite entries")
    vol = np.sqrt(np.diag(cov))
    if (vol <= 0).any():
        raise OptimisationError(f"covariance is singular: {int((vol <= 0).sum())} asset(s) with zero variance")
    corr = cov / np.outer(vol, vol)
    eig = np.linalg.eigvalsh(corr)
    if eig[0] <= eig[-1] / _SINGULAR_CONDITION:
        raise OptimisationError(f"covariance is singular (condition number {eig[-1] / max(eig[0], 1e-300):.2g})")
    return corr, vol


def _risk_parity(cov: np.ndarray) -> np.ndarray:
    """Equal risk contributions, long-only, by Newton's method on Spinu's (2013) convex problem.

    Minimise ``y' R y / 2 - b' log(y)`` (R the correlation, b = 1/N); its optimum has ``y_i (R y)_i = b_i``, so
    ``x = y / vol`` has equal risk contributions on the covariance. Damped steps while the Newton decrement is
    large keep ``y > 0``; convergence is quadratic near the optimum.
    """
    corr, vol = _standardise(cov)
    n = len(vol)
    b = np.full(n, 1.0 / n)
    y = np.full(n, 1.0 / math.sqrt(corr.sum()))
    for _ in range(_MAX_ITER):
        ry = corr @ y
        if np.abs(y * ry - b).max() <= 1e-14:
            break
        grad = ry - b / y
        step = np.linalg.solve(corr + np.diag(b / y**2), grad)
        decrement = math.sqrt(max(float(grad @ step), 0.0))
        damp = 1.0 / (1.0 + decrement) if decrement > 0.25 else 1.0
        new = y - damp * step
        while (new <= 0).any():  # never leave the domain of log
            damp /= 2
            new = y - damp * step
        y = new
    else:
        raise OptimisationError(f"risk parity did not converge in {_MAX_ITER} Newton steps")
    x = y / vol
    return x / x.sum()


def _start(caps: _Caps) -> np.ndarray:
    """A fully invested portfolio under `caps`: the capped equal weights, else the LP's (scaled to sum to 1)."""
    n = len(caps.upper)
    w, _, _ = _fill(np.full(n, 1.0 / n), caps, 1.0)
    if w.sum() >= 1 - _CAP_TOL:
        return w / w.sum()
    room, x = _capacity(caps, np.ones(n, dtype=bool))
    if room < 1 - _CAP_TOL:
        raise OptimisationError(f"the caps cannot be met by the {n} name(s) with enough history")
    return x / room


def _min_variance(cov: np.ndarray, caps: _Caps) -> np.ndarray:
    """Long-only minimum variance, weights summing to 1, under `caps` (active-set QP)."""
    corr, vol = _standardise(cov)
    w0 = _start(caps)
    # Solve in z = vol * w, where the quadratic form is the (well-conditioned) correlation matrix.
    inv = 1.0 / vol
    a_in, b_in = _cap_rows(caps)
    z = _qp(corr, np.zeros(len(vol)), inv[None, :], np.ones(1), a_in * inv, b_in, w0 * vol)
    return _clean(z * inv)


def _max_sharpe(mean: np.ndarray, cov: np.ndarray, caps: _Caps, risk_free: float) -> np.ndarray:
    """Long-only tangency portfolio under `caps`, as a convex QP (Cornuejols & Tutuncu, 2006, section 8.2).

    With ``e = mean - risk_free``: minimise ``y' C y`` subject to ``e' y = 1``, ``y >= 0`` and the caps made
    homogeneous (``y_i <= max_weight * sum(y)``, ``sum_g y <= cap_g * sum(y)``); then ``w = y / sum(y)``.
    """
    corr, vol = _standardise(cov)
    excess = mean - risk_free
    if not np.isfinite(excess).all():
        raise OptimisationError("mean returns have NaN")
    if excess.max() <= 0:
        raise OptimisationError("no name has a mean return above `risk_free` over the lookback")
    e = excess / np.abs(excess).max()  # the scale of e does not change w; O(1) keeps the QP well scaled
    w0 = _start(caps)
    if e @ w0 <= 0 and not len(caps.limits):  # greedy: the best names first, each up to its cap
        w0 = np.zeros(len(e))
        for i in np.argsort(-e, kind="stable"):
            w0[i] = min(caps.upper[i], 1.0 - w0.sum())
    if e @ w0 <= 0:  # the best mean excess return any capped portfolio reaches (LP)
        a_in, b_in = _cap_rows(caps)
        res = optimize.linprog(-e, A_ub=-a_in, b_ub=-b_in, A_eq=np.ones((1, len(e))), b_eq=[1.0], method="highs")
        if res.status != 0 or -res.fun <= 0:
            raise OptimisationError("no portfolio under the caps has a mean return above `risk_free`")
        w0 = np.clip(res.x, 0.0, None)
    n = len(vol)
    rows = [np.eye(n)]
    if caps.max_weight is not None:
        rows.append(caps.max_weight * np.ones((n, n)) - np.eye(n))
    if len(caps.limits):
        rows.append(caps.limits[:, None] - caps.members.astype(float))
    inv = 1.0 / vol
    a_in = np.vstack(rows) * inv  # in z = vol * y
    z = _qp(corr, np.zeros(n), (e * inv)[None, :], np.ones(1), a_in, np.zeros(len(a_in)), w0 / (e @ w0) * vol)
    y = np.clip(z * inv, 0.0, None)
    if y.sum() <= 0:
        raise OptimisationError("optimiser returned all-zero weights")
    return _clean(y / y.sum())


def _clean(w: np.ndarray) -> np.ndarray:
    w = np.where(w > _ZERO, w, 0.0)
    return w / w.sum()


def _cov_frame(cov: pd.DataFrame) -> np.ndarray:
    if not isinstance(cov, pd.DataFrame):
        raise TypeError(f"`cov` must be a DataFrame, got {type(cov).__name__}")
    if not cov.index.equals(cov.columns):
        raise ValueError("`cov` must have the same tickers, in the same order, in its index and columns")
    c = cov.to_numpy(dtype=np.float64)
    if not np.allclose(c, c.T, rtol=1e-10, atol=0):
        raise ValueError("`cov` must be symmetric")
    return c


def min_variance_weights(
    cov: pd.DataFrame,
    *,
    max_weight: float | None = None,
    group_caps: Mapping[str, Mapping[str, float]] | None = None,
    groups: Mapping[str, Mapping[str, str | Sequence[str]]] | None = None,
) -> pd.Series:
    """Long-only minimum-variance weights for a given covariance: ``min w' C w`` s.t. ``sum(w) = 1, w >= 0``.

    Parameters
    ----------
    cov : DataFrame of shape (n_assets, n_assets)
        Covariance (any period; the weights do not depend on its scale).
    max_weight, group_caps, groups
        Caps, passed to the optimiser as constraints; see `weigh`.

    Returns
    -------
    Series of shape (n_assets,)
        Weights indexed by ``cov.index``, name ``weight``.

    Raises
    ------
    OptimisationError
        If the covariance is singular or the optimiser does not converge.
    """
    c = _cov_frame(cov)
    _check_max_weight(max_weight)
    _check_group_caps(group_caps, groups)
    caps = _build_caps([str(t) for t in cov.index], max_weight, group_caps, groups)
    return pd.Series(_min_variance(c, caps), index=cov.index.copy(), name="weight")


def max_sharpe_weights(
    expected_returns: pd.Series,
    cov: pd.DataFrame,
    *,
    risk_free: float = 0.0,
    max_weight: float | None = None,
    group_caps: Mapping[str, Mapping[str, float]] | None = None,
    groups: Mapping[str, Mapping[str, str | Sequence[str]]] | None = None,
) -> pd.Series:
    """Long-only maximum-Sharpe weights: ``max (w' mu - rf) / sqrt(w' C w)`` s.t. ``sum(w) = 1, w >= 0``.

    Parameters
    ----------
    expected_returns : Series of shape (n_assets,)
        Expected return per period, indexed like `cov` (reordered to it).
    cov : DataFrame of shape (n_assets, n_assets)
        Covariance over the same period as `expected_returns`.
    risk_free : float, default 0.0
        Risk-free rate per period of `expected_returns`.
    max_weight, group_caps, groups
        Caps, passed to the optimiser as constraints; see `weigh`.

    Returns
    -------
    Series of shape (n_assets,)
        Weights indexed by ``cov.index``, name ``weight``.

    Raises
    ------
    OptimisationError
        If no asset has an expected return above `risk_free`, the covariance is singular or the optimiser does
        not converge.
    """
    c = _cov_frame(cov)
    missing = cov.index.difference(expected_returns.index)
    if len(missing):
        raise KeyError(f"`expected_returns` has no value for: {', '.join(map(str, missing))}")
    _check_max_weight(max_weight)
    _check_group_caps(group_caps, groups)
    caps = _build_caps([str(t) for t in cov.index], max_weight, group_caps, groups)
    mean = expected_returns.reindex(cov.index).to_numpy(dtype=np.float64)
    return pd.Series(_max_sharpe(mean, c, caps, float(risk_free)), index=cov.index.copy(), name="weight")


def risk_parity_weights(cov: pd.DataFrame) -> pd.Series:
    """Long-only equal-risk-contribution weights: ``w_i (C w)_i`` equal for all i, ``sum(w) = 1``.

    Parameters
    ----------
    cov : DataFrame of shape (n_assets, n_assets)
        Positive definite covariance.

    Returns
    -------
    Series of shape (n_assets,)
        Weights indexed by ``cov.index``, name ``weight``.

    Raises
    ------
    OptimisationError
        If the covariance is singular.
    """
    return pd.Series(_risk_parity(_cov_frame(cov)), index=cov.index.copy(), name="weight")


# ------------------------------------------------------------------------------------------------ weigh


class _History:
    """The last `lookback` rows of the selected names' returns, with estimates computed once per call."""

    def __init__(self, returns: pd.DataFrame, tickers: Sequence[str], lookback: int) -> None:
        if not isinstance(returns, pd.DataFrame):
            raise TypeError(f"`returns` must be a DataFrame (dates x tickers), got {type(returns).__name__}")
        if not returns.index.is_monotonic_increasing or not returns.index.is_unique:
            raise ValueError("`returns` index must be sorted ascending and unique (the last rows are the latest)")
        cols = returns.columns.get_indexer(tickers) if returns.columns.is_unique else None
        if cols is None:
            raise ValueError("`returns` has duplicate columns")
        if (cols < 0).any():
            missing = [t for t, c in zip(tickers, cols, strict=True) if c < 0]
            raise KeyError(f"{len(missing)} selected ticker(s) are not columns of `returns`: "
                           f"{', '.join(missing[:10])}")
        window = returns.iloc[-lookback:, cols]
        try:
            x = window.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`returns` must be numeric: {exc}") from None
        bad = np.isinf(x)
        if bad.any():
            warnings.warn(f"`returns` has {int(bad.sum())} infinite value(s) in the last {lookback} rows; "
                          "treated as missing", UserWarning, stacklevel=3)
            x[bad] = np.nan
        self.x = x
        self.rows = len(x)
        self.lookback = lookback
        self.tickers = list(tickers)
        self._cov: tuple | None = None

    def volatility(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-name sample standard deviation (ddof=1) over its own returns, and the counts."""
        valid = np.isfinite(self.x)
        count = valid.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(valid, self.x, 0.0).sum(axis=0) / count
            dev = np.where(valid, self.x - mean, 0.0)
            vol = np.sqrt((dev**2).sum(axis=0) / (count - 1))
        return np.where(count >= MIN_OBSERVATIONS, vol, np.nan), count

    def covariance(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """(eligible mask, mean, Ledoit-Wolf covariance over the eligible names, notes), cached."""
        if self._cov is None:
            self._cov = self._estimate()
        if isinstance(self._cov, str):
            raise _Fallback(self._cov)
        return self._cov

    def _estimate(self) -> tuple | str:
        valid = np.isfinite(self.x)
        count = valid.sum(axis=0)
        vol, _ = self.volatility()
        need = max(MIN_OBSERVATIONS, math.ceil(MIN_COVERAGE * self.rows))
        eligible = (count >= need) & (vol > 0)
        notes = []
        if (~eligible).any():
            notes.append(f"dropped {int((~eligible).sum())} name(s) with fewer than {need} returns or no price "
                         f"movement in the last {self.rows} rows: {_names(self.tickers, ~eligible)}")
        if not eligible.any():
            return f"no name has {need} or more non-constant returns in the last {self.rows} rows"
        x = self.x[:, eligible]
        x = x[np.isfinite(x).all(axis=1)]
        if len(x) < MIN_OBSERVATIONS:
            return (f"too few observations: {len(x)} row(s) where all {int(eligible.sum())} names have returns "
                    f"(needs {MIN_OBSERVATIONS})")
        cov, shrinkage = _ledoit_wolf(x)
        notes.append(f"Ledoit-Wolf covariance of {int(eligible.sum())} names from {len(x)} of {self.rows} rows "
                     f"(shrinkage {shrinkage:.3f})")
        return eligible, x.mean(axis=0), cov, notes


def _check_max_weight(max_weight: float | None) -> None:
    if max_weight is None:
        return
    if isinstance(max_weight, bool) or not isinstance(max_weight, numbers.Real) or not 0 < max_weight <= 1:
        raise ConfigError(f"`max_weight` must be in (0, 1] or None, got {max_weight!r}")


def _series_values(series: pd.Series | None, tickers: Sequence[str], name: str, method: str) -> np.ndarray:
    if series is None:
        raise ConfigError(f"`{name}` is required when `method` is {method!r}")
    if not isinstance(series, pd.Series):
        raise TypeError(f"`{name}` must be a pandas Series indexed by ticker, got {type(series).__name__}")
    if not series.index.is_unique:
        raise ValueError(f"`{name}` has duplicate tickers")
    return series.reindex(tickers).to_numpy(dtype=np.float64, na_value=np.nan)


def _names(tickers: Sequence[str], mask: np.ndarray, limit: int = 10) -> str:
    picked = [t for t, m in zip(tickers, mask, strict=True) if m]
    more = f" (+{len(picked) - limit} more)" if len(picked) > limit else ""
    return ", ".join(picked[:limit]) + more


def _spread(n: int, keep: np.ndarray, shape: np.ndarray) -> np.ndarray:
    out = np.zeros(n)
    out[keep] = shape
    return out


def weigh(
    selected: Sequence[str],
    *,
    method: Method,
    returns: pd.DataFrame | None = None,
    scores: pd.Series | None = None,
    market_caps: pd.Series | None = None,
    fixed_weights: Mapping[str, float] | None = None,
    lookback: int = 63,
    max_weight: float | None = None,
    group_caps: Mapping[str, Mapping[str, float]] | None = None,
    groups: Mapping[str, Mapping[str, str | Sequence[str]]] | None = None,
    risk_free: float = 0.0,
) -> WeightResult:
    """Target weights for the selected tickers at one rebalance date.

    Parameters
    ----------
    selected : sequence of str
        Tickers the screen kept, in the order the weights should follow. No duplicates.
    method : {"equal", "fixed", "inverse_vol", "risk_parity", "score", "min_variance", "max_sharpe", \
"market_cap"}
        ``equal``: 1/N. ``fixed``: `fixed_weights`. ``inverse_vol``: proportional to 1/volatility.
        ``risk_parity``: equal risk contributions. ``score``: proportional to the positive part of `scores`.
        ``min_variance`` / ``max_sharpe``: long-only optimum on the Ledoit-Wolf covariance.
        ``market_cap``: proportional to `market_caps`.
    returns : DataFrame of shape (n_dates, n_tickers), optional
        Daily simple returns up to the decision date (NaN where a listing did not trade), index sorted
        ascending; must contain every selected ticker. Only the last `lookback` rows are read. Required for
        inverse_vol, risk_parity, min_variance and max_sharpe.
    scores : Series of shape (n_tickers,), optional
        Score per ticker (higher is better); required for ``score``. NaN or missing counts as 0.
    market_caps : Series of shape (n_tickers,), optional
        Market capitalisation per ticker in one currency; required for ``market_cap``.
    fixed_weights : mapping of str to float, optional
        Ticker -> weight, each >= 0, summing to at most 1; required for ``fixed``. Weights of tickers not
        selected, and whatever the mapping leaves unassigned, are held in cash.
    lookback : int, default 63
        Number of trailing rows of `returns` used for volatilities, covariances and means (about 3 months).
    max_weight : float, optional
        Cap per name, in (0, 1]; must be >= 1/N for N selected names.
    group_caps : mapping of str to mapping of str to float, optional
        ``{dimension: {group: cap}}`` with dimensions ``stage``, ``country``, ``element``; the total weight of
        the names in a group is at most its cap. Needs `groups`.
    groups : mapping of str to mapping of str to str or sequence of str, optional
        ``{dimension: {ticker: group or groups}}``, e.g. ``{"element": {"MP": ["Nd", "Pr"]}}``. A ticker in
        several groups of a dimension counts fully in each; a ticker without an entry is in no group.
    risk_free : float, default 0.0
        Risk-free rate per row of `returns` (daily: an annual 4% is about 0.04 / 252); used by max_sharpe.

    Returns
    -------
    WeightResult
        ``weights`` (Series of shape (n_selected,), name ``weight``), ``method_used``, ``fallbacks``, ``notes``.

    Raises
    ------
    ConfigError
        If `method`, `lookback`, `max_weight`, `group_caps`, `groups` or `fixed_weights` is invalid, an input
        the method needs is missing, or the caps cannot be met by the selected names.
    KeyError
        If a selected ticker is not a column of `returns` (for the methods that read it).
    """
    tickers = _check_selected(selected)
    if method not in METHODS:
        raise ConfigError(f"`method` must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    if isinstance(lookback, bool) or not isinstance(lookback, int | np.integer) or lookback < MIN_OBSERVATIONS:
        raise ConfigError(f"`lookback` must be an integer >= {MIN_OBSERVATIONS}, got {lookback!r}")
    if isinstance(risk_free, bool) or not isinstance(risk_free, numbers.Real) or not math.isfinite(risk_free):
        raise ConfigError(f"`risk_free` must be a finite number (per period of `returns`), got {risk_free!r}")
    _check_max_weight(max_weight)
    _check_group_caps(group_caps, groups)
    n = len(tickers)
    index = pd.Index(tickers, name="asset")
    if n == 0:
        return WeightResult(pd.Series([], index=index, dtype=np.float64, name="weight"), method,
                            notes=("empty selection: all cash",))

    caps = _build_caps(tickers, max_weight, group_caps, groups)
    total = 1.0
    fixed = None
    if method == "fixed":
        fixed, total, fixed_notes = _fixed(fixed_weights, tickers)
    _check_feasible(tickers, caps, total)

    history: _History | None = None

    def get_history(name: str) -> _History:
        nonlocal history
        if returns is None:
            raise ConfigError(f"`returns` is required when `method` is {name!r}")
        if history is None:
            history = _History(returns, tickers, int(lookback))
        return history

    fallbacks: list[str] = []
    notes: list[str] = []
    current: str = method
    while True:
        try:
            target, method_notes, optimised = _target(current, tickers, caps, get_history, scores, market_caps,
                                                      risk_free, fixed)
            break
        except (_Fallback, OptimisationError) as exc:
            nxt = FALLBACK[current]
            fallbacks.append(f"{current}: {exc}")
            if nxt is None:  # unreachable: equal and fixed never fail
                raise
            current = nxt
    notes.extend(method_notes)
    if current == "fixed":
        notes.extend(fixed_notes)
    weights, cap_notes = _apply_caps(target, caps, float(target.sum()))
    if optimised and np.abs(weights - target).max() > 1e-6:
        cap_notes.append(f"{current}: optimiser weights moved by up to {np.abs(weights - target).max():.2g} to "
                         "meet the caps")
    notes.extend(cap_notes)
    weights = np.where(weights > 0, weights, 0.0)
    return WeightResult(pd.Series(weights, index=index, name="weight"), current, tuple(fallbacks), tuple(notes))


def _check_selected(selected: Sequence[str]) -> list[str]:
    if isinstance(selected, str) or not isinstance(selected, Sequence | pd.Index | np.ndarray):
        raise TypeError(f"`selected` must be a sequence of tickers, got {type(selected).__name__}")
    tickers = [str(t) for t in selected]
    if len(set(tickers)) != len(tickers):
        dup = sorted(t for t, k in Counter(tickers).items() if k > 1)
        raise ValueError(f"`selected` has duplicate tickers: {', '.join(dup)}")
    return tickers


def _fixed(fixed_weights: Mapping[str, float] | None, tickers: list[str]) -> tuple[np.ndarray, float, list[str]]:
    if fixed_weights is None:
        raise ConfigError("`fixed_weights` is required when `method` is 'fixed'")
    if not isinstance(fixed_weights, Mapping):
        raise TypeError(f"`fixed_weights` must be a mapping ticker -> weight, got {type(fixed_weights).__name__}")
    for t, w in fixed_weights.items():
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not 0 <= w <= 1:
            raise ConfigError(f"`fixed_weights[{t!r}]` must be a number in [0, 1], got {w!r}")
    declared = float(sum(fixed_weights.values()))
    if declared > 1 + _CAP_TOL:
        raise ConfigError(f"`fixed_weights` must sum to at most 1 (the rest is cash), got {declared:.6g}")
    target = np.array([float(fixed_weights.get(t, 0.0)) for t in tickers])
    notes = []
    chosen = set(tickers)
    unselected = {t: w for t, w in fixed_weights.items() if t not in chosen and w > 0}
    if unselected:
        listed = ", ".join(f"{t} ({w:g})" for t, w in list(unselected.items())[:10])
        notes.append(f"cash {sum(unselected.values()):.4g}: fixed weights of tickers not selected: {listed}")
    if declared < 1 - _CAP_TOL:
        notes.append(f"cash {1 - declared:.4g}: `fixed_weights` sum to {declared:.6g}")
    unweighted = np.array([t not in fixed_weights for t in tickers])
    if unweighted.any():
        notes.append(f"{int(unweighted.sum())} selected name(s) have no fixed weight and get 0: "
                     f"{_names(tickers, unweighted)}")
    return target, float(target.sum()), notes


def _target(
    method: str,
    tickers: list[str],
    caps: _Caps,
    get_history,
    scores: pd.Series | None,
    market_caps: pd.Series | None,
    risk_free: float,
    fixed: np.ndarray | None,
) -> tuple[np.ndarray, list[str], bool]:
    """Uncapped weights of `method` over `tickers` (optimisers: already capped), notes, and whether optimised."""
    n = len(tickers)
    if method == "equal":
        return np.full(n, 1.0 / n), [], False
    if method == "fixed":
        return fixed, [], False
    if method == "score":
        raw = _series_values(scores, tickers, "scores", method)
        missing = ~np.isfinite(raw)
        notes = [f"{int(missing.sum())} name(s) without a score count as 0: {_names(tickers, missing)}"] \
            if missing.any() else []
        positive = np.where(np.isfinite(raw) & (raw > 0), raw, 0.0)
        if positive.sum() <= 0:
            raise _Fallback("no selected name has a positive score")
        if (positive == 0).any():
            notes.append(f"{int((positive == 0).sum())} name(s) with a score <= 0 get 0: "
                         f"{_names(tickers, positive == 0)}")
        return positive / positive.sum(), notes, False
    if method == "market_cap":
        raw = _series_values(market_caps, tickers, "market_caps", method)
        bad = ~(np.isfinite(raw) & (raw > 0))
        if bad.any():
            raise _Fallback(f"{int(bad.sum())} name(s) have no positive market cap: {_names(tickers, bad)}")
        return raw / raw.sum(), [], False

    history: _History = get_history(method)
    if method == "inverse_vol":
        vol, _ = history.volatility()
        ok = np.isfinite(vol) & (vol > 0)
        if not ok.any():
            raise _Fallback(f"no name has {MIN_OBSERVATIONS} or more non-constant returns in the last "
                            f"{history.rows} rows")
        notes = []
        if (~ok).any():
            notes.append(f"inverse_vol: dropped {int((~ok).sum())} name(s) with fewer than {MIN_OBSERVATIONS} "
                         f"returns or no price movement in the last {history.rows} rows: {_names(tickers, ~ok)}")
        inv = np.where(ok, 1.0 / np.where(ok, vol, 1.0), 0.0)
        return inv / inv.sum(), notes, False

    eligible, mean, cov, cov_notes = history.covariance()
    notes = [f"{method}: {note}" for note in cov_notes]
    if method == "risk_parity":
        return _spread(n, eligible, _risk_parity(cov)), notes, False
    sub = caps.subset(eligible)
    if method == "min_variance":
        return _spread(n, eligible, _min_variance(cov, sub)), notes, True
    if method == "max_sharpe":
        return _spread(n, eligible, _max_sharpe(mean, cov, sub, risk_free)), notes, True
    raise AssertionError(method)  # pragma: no cover - METHODS is checked in weigh
