"""Event studies of supply shocks: abnormal returns of members around announcement dates, and group tests.

Conventions
-----------
- **Event time** is counted in each member's own sessions: the days on which the member (and, for the models
  that use one, its market) has a return. Day 0 is the member's first session on or after the event date, a
  calendar date. With dates in Asia/Shanghai (where Chinese measures are announced), day 0 of an ASX listing is
  the Sydney session of that date when Sydney trades that day, and day 0 of a US listing is the New York session
  of that date: it opens (09:30 New York, 21:30 or 22:30 in Beijing) after the Beijing working day is over, so
  it is the first US session able to react. Day 0 moves to the next session when the market is shut.
- **Windows** are inclusive ranges of session offsets: estimation ``[-250, -11]`` and event ``[-5, +20]`` by
  default; the estimation window must end before the event window starts. A member enters an event when the
  event window is complete and it has at least `min_estimation` estimation sessions; otherwise it is listed in
  `EventStudyResult.excluded` with the reason.
- **Models** of the normal return: ``"market"`` (OLS ``R = a + b R_m`` on the estimation window; abnormal
  ``AR = R - a - b R_m``), ``"market_adjusted"`` (``AR = R - R_m``, nothing estimated) and ``"mean"``
  (``AR = R - mean(R)`` of the estimation window).
- **Member test**: ``CAR = sum(AR)`` over the ``L`` event-window sessions, ``t = CAR / sqrt(V)`` with ``s2`` the
  estimation-window residual variance (``n - 2`` degrees of freedom for the market model, ``n - 1`` otherwise)
  and ``V = s2 * (L + L^2 / n + (S_m - L * mean_m)^2 / Sxx_m)`` for the market model (the prediction-error
  correction of MacKinlay 1997, ``S_m`` the sum of market returns in the event window, ``mean_m`` and ``Sxx_m``
  their estimation-window mean and sum of squared deviations), ``V = s2 * (L + L^2 / n)`` for the mean model
  (the estimated mean's error) and ``V = s2 * L`` for the market-adjusted model. ``p`` is two-sided from
  Student's t with the residual degrees of freedom.
- **Group tests** of the mean CAR across the ``N`` members:

  * ``"portfolio"`` (default; Brown and Warner's "crude dependence adjustment"): the equal-weight portfolio of
    the members' abnormal returns, day by day in event time, with its variance estimated from the same
    portfolio's estimation-window residuals, ``V_p = s2_p * L * kappa``, ``kappa`` the members' mean
    prediction-error factor ``V / (L * s2)`` (exact when all members share one market and one calendar).
    Members share the event date, so their abnormal returns are cross-correlated (a sector shock moves them
    together); the portfolio variance includes those covariances and the test keeps its size.
  * ``"cross_sectional"``: ``t = mean(CAR) / (sd(CAR) / sqrt(N))`` with ``N - 1`` degrees of freedom. It
    assumes independent CARs and over-rejects when they are correlated; it is reported for comparison.

- **CAR path**: the mean CAR from the first event-window session to each later one, with a ``1 - alpha``
  confidence band from the chosen test (`car_path`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["DEFAULT_ESTIMATION", "DEFAULT_WINDOW", "MODELS", "TESTS", "EventStudyResult", "event_study"]

Model = Literal["market", "market_adjusted", "mean"]
Test = Literal["portfolio", "cross_sectional"]
MODELS: tuple[str, ...] = ("market", "market_adjusted", "mean")
TESTS: tuple[str, ...] = ("portfolio", "cross_sectional")
DEFAULT_ESTIMATION = (-250, -11)
DEFAULT_WINDOW = (-5, 20)
# Parameters estimated before the residual variance (its degrees of freedom are n minus this).
_PARAMS = {"market": 2, "market_adjusted": 1, "mean": 1}
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

MEMBER_COLUMNS = ("event_id", "ticker", "market", "event_day", "car", "t_stat", "p_value", "n_est", "model")
TEST_COLUMNS = ("event_id", "car", "t_stat", "p_value", "n_members", "method")
PATH_COLUMNS = ("event_id", "rel_day", "mean_car", "lower", "upper")
AR_COLUMNS = ("event_id", "ticker", "rel_day", "date", "ar", "car")
EXCLUDED_COLUMNS = ("event_id", "ticker", "reason")


@dataclass(frozen=True)
class EventStudyResult:
    """Tidy tables of an event study.

    Attributes
    ----------
    members : DataFrame
        One row per (event, member in the study): ``event_id, ticker, market, event_day, car, t_stat, p_value,
        n_est, model``.
    portfolio : DataFrame
        Two rows per event, ``method`` ``"portfolio"`` and ``"cross_sectional"``: ``event_id, car, t_stat,
        p_value, n_members, method`` (``car`` is the mean CAR of the members).
    car_path : DataFrame
        ``event_id, rel_day, mean_car, lower, upper``: mean CAR up to each event-window day and its
        ``1 - alpha`` band from the `test` chosen.
    abnormal : DataFrame
        ``event_id, ticker, rel_day, date, ar, car`` for each member in the study, over the event window.
    excluded : DataFrame
        ``event_id, ticker, reason`` for members left out of an event.
    model, test : str
    estimation, window : tuple of int
    alpha : float
    """

    members: pd.DataFrame
    portfolio: pd.DataFrame
    car_path: pd.DataFrame
    abnormal: pd.DataFrame
    excluded: pd.DataFrame
    model: str
    test: str
    estimation: tuple[int, int]
    window: tuple[int, int]
    alpha: float

    def event_ids(self) -> list[str]:
        """Event ids in the order they were given."""
        return list(dict.fromkeys(self.car_path["event_id"].tolist() + self.excluded["event_id"].tolist()))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return ``{event_id: {"event_id", "members": [{ticker, event_day, car, t_stat}, ...], "portfolio":
        {car, t_stat, p_value}}}`` with plain Python values (ISO dates, ``None`` for NaN); ``"portfolio"`` holds
        the result of the chosen `test`.
        """  # noqa: D205
        out: dict[str, dict[str, Any]] = {}
        for eid in self._ids:
            rows = self.members[self.members["event_id"] == eid]
            members = [{"ticker": r.ticker, "event_day": r.event_day.date().isoformat(), "car": _num(r.car),
                        "t_stat": _num(r.t_stat)} for r in rows.itertuples()]
            test = self.portfolio[(self.portfolio["event_id"] == eid) & (self.portfolio["method"] == self.test)]
            port = ({"car": _num(test["car"].iloc[0]), "t_stat": _num(test["t_stat"].iloc[0]),
                     "p_value": _num(test["p_value"].iloc[0])} if len(test)
                    else {"car": None, "t_stat": None, "p_value": None})
            out[eid] = {"event_id": eid, "members": members, "portfolio": port}
        return out

    @property
    def _ids(self) -> list[str]:
        return list(dict.fromkeys(self.portfolio["event_id"].tolist()))


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _event_day(eid: str, value: Any) -> pd.Timestamp:
    if isinstance(value, str):
        if not _ISO_DAY.match(value.strip()):
            raise ValueError(f"`event_dates[{eid!r}]` must be a day (YYYY-MM-DD), got {value!r}")
        value = value.strip()
    elif not isinstance(value, date | datetime | pd.Timestamp | np.datetime64):
        raise TypeError(f"`event_dates[{eid!r}]` must be a date or an ISO string, got {type(value).__name__}")
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        raise ValueError(f"`event_dates[{eid!r}]` is missing")
    if stamp.tz is not None:
        raise ValueError(f"`event_dates[{eid!r}]` must be a calendar date without a time zone, got {value!r}")
    return stamp.normalize()


def _window(value: Any, name: str) -> tuple[int, int]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair of session offsets (start, end), got {value!r}") from None
    if any(isinstance(v, bool) or not isinstance(v, int | np.integer) for v in (lo, hi)) or lo > hi:
        raise ValueError(f"`{name}` must be two integers with start <= end, got {value!r}")
    return int(lo), int(hi)


def _markets(market_returns: pd.DataFrame | Mapping[str, pd.Series] | None) -> pd.DataFrame | None:
    if market_returns is None:
        return None
    if isinstance(market_returns, pd.DataFrame):
        return market_returns
    if isinstance(market_returns, Mapping):
        for k, s in market_returns.items():
            if not isinstance(s, pd.Series):
                raise TypeError(f"`market_returns[{k!r}]` must be a Series, got {type(s).__name__}")
        return pd.DataFrame(dict(market_returns))
    raise TypeError(f"`market_returns` must be a DataFrame or a mapping of Series, got {type(market_returns).__name__}")


def _check_index(index: pd.Index, name: str) -> None:
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"`{name}` must have a DatetimeIndex, got {type(index).__name__}")
    if index.tz is not None:
        raise ValueError(f"`{name}` must have tz-naive trading dates, got time zone {index.tz}")
    if index.has_duplicates or not index.is_monotonic_increasing:
        raise ValueError(f"`{name}` must have sorted, unique dates")


def _gather(valid: np.ndarray, row_of: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of each member's sessions at ``offsets`` from its first session on or after each event row.

    Parameters
    ----------
    valid : bool ndarray of shape (n_dates, n_members)
        The member's sessions.
    row_of : int ndarray of shape (n_events,)
        First row on or after each event date.
    offsets : int ndarray of shape (n_offsets,)

    Returns
    -------
    rows : int ndarray of shape (n_events, n_members, n_offsets)
        Row of each session (0 where out of range).
    present : bool ndarray of the same shape
        Whether the session exists in the data.
    day0 : int ndarray of shape (n_events, n_members)
        Index of day 0 among the member's sessions (``n_sessions`` when there is none).
    """
    n_dates, n_members = valid.shape
    before = np.zeros((n_dates + 1, n_members), dtype=np.int64)
    np.cumsum(valid, axis=0, out=before[1:])
    n_sessions = before[-1]
    # positions[j, k]: row of member j's k-th session.
    member, row = np.nonzero(valid.T)
    start = np.concatenate([[0], np.cumsum(n_sessions)[:-1]])
    positions = np.zeros((n_members, max(int(n_sessions.max(initial=0)), 1)), dtype=np.int64)
    positions[member, np.arange(member.size) - start[member]] = row
    day0 = before[row_of]  # sessions strictly before the event row = index of the first one on or after it
    k = day0[:, :, None] + offsets[None, None, :]
    present = (k >= 0) & (k < n_sessions[None, :, None])
    k = np.clip(k, 0, positions.shape[1] - 1)
    rows = np.where(present, positions[np.arange(n_members)[None, :, None], k], 0)
    return rows, present, day0


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def event_study(
    returns: pd.DataFrame,
    market_returns: pd.DataFrame | Mapping[str, pd.Series] | None,
    event_dates: Mapping[str, Any],
    *,
    estimation: tuple[int, int] = DEFAULT_ESTIMATION,
    window: tuple[int, int] = DEFAULT_WINDOW,
    model: Model = "market",
    market_for: Mapping[str, str] | None = None,
    test: Test = "portfolio",
    alpha: float = 0.05,
    min_estimation: int | None = None,
    max_gap_days: int | None = None,
) -> EventStudyResult:
    """Abnormal returns of members around events, per member and for the equal-weight group.

    Conventions (event day, windows, models, tests) are in the module docstring.

    Parameters
    ----------
    returns : DataFrame of shape (n_dates, n_members)
        Daily simple returns of the members on their own trading days (``NaN`` when a member did not trade),
        e.g. `screener.data.calendar.listing_returns`, each in the currency of its market series.
    market_returns : DataFrame of shape (n_dates, n_markets), mapping of str to Series, or None
        Daily returns of the market series, by name (e.g. ``SPY``, ``STW.AX``). ``None`` only with
        ``model="mean"``.
    event_dates : mapping of str to date
        Event id -> calendar date of the announcement (a date, Timestamp or ``YYYY-MM-DD`` string).
    estimation : tuple of int, default (-250, -11)
        First and last session offsets of the estimation window (inclusive).
    window : tuple of int, default (-5, 20)
        First and last session offsets of the event window (inclusive); must start after `estimation` ends.
    model : {"market", "market_adjusted", "mean"}, default "market"
        Model of the normal return.
    market_for : mapping of str to str, optional
        Member -> column of `market_returns` to use; default: the single column of `market_returns`.
    test : {"portfolio", "cross_sectional"}, default "portfolio"
        Group test reported by `EventStudyResult.to_dict` and used for the band of `car_path`.
    alpha : float, default 0.05
        Level of the band (``1 - alpha`` coverage).
    min_estimation : int, optional
        Fewest estimation sessions a member needs; default half the estimation window (at least 4).
    max_gap_days : int, optional
        Leave a member out of an event when two consecutive sessions of its event window are more than this
        many calendar days apart (a trading halt inside the window); default: no limit.

    Returns
    -------
    EventStudyResult

    Raises
    ------
    TypeError, ValueError, KeyError
        On malformed inputs (the message names the argument).
    """
    if not isinstance(returns, pd.DataFrame):
        raise TypeError(f"`returns` must be a DataFrame of member returns, got {type(returns).__name__}")
    _check_index(returns.index, "returns")
    if returns.columns.has_duplicates:
        raise ValueError("`returns` has duplicate tickers")
    if model not in MODELS:
        raise ValueError(f"`model` must be one of {', '.join(MODELS)}, got {model!r}")
    if test not in TESTS:
        raise ValueError(f"`test` must be one of {', '.join(TESTS)}, got {test!r}")
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}")
    e0, e1 = _window(estimation, "estimation")
    w0, w1 = _window(window, "window")
    if e1 >= w0:
        raise ValueError(f"`estimation` {estimation!r} must end before `window` {window!r} starts")
    n_params = _PARAMS[model]
    est_len = e1 - e0 + 1
    if min_estimation is None:
        min_estimation = max(n_params + 2, math.ceil(est_len / 2))
    if isinstance(min_estimation, bool) or not isinstance(min_estimation, int | np.integer) \
            or not n_params + 2 <= min_estimation <= est_len:
        raise ValueError(f"`min_estimation` must be an integer in [{n_params + 2}, {est_len}], got {min_estimation!r}")
    if max_gap_days is not None and (isinstance(max_gap_days, bool) or not isinstance(max_gap_days, int | np.integer)
                                     or max_gap_days < 1):
        raise ValueError(f"`max_gap_days` must be a positive integer or None, got {max_gap_days!r}")
    if not isinstance(event_dates, Mapping) or not event_dates:
        raise ValueError("`event_dates` must be a non-empty mapping of event id to date")
    ids = [str(k) for k in event_dates]
    days = [_event_day(str(k), v) for k, v in event_dates.items()]

    tickers = [str(t) for t in returns.columns]
    markets = _markets(market_returns)
    uses_market = model != "mean"
    if uses_market and markets is None:
        raise ValueError(f"`market_returns` is required with model {model!r}")
    index = returns.index
    if markets is not None:
        _check_index(markets.index, "market_returns")
        if market_for is None:
            if markets.shape[1] != 1:
                raise ValueError(f"`market_for` must map each member to one of {', '.join(map(str, markets.columns))}"
                                 " when `market_returns` has several columns")
            market_for = dict.fromkeys(tickers, markets.columns[0])
        unmapped = [t for t in tickers if t not in market_for]
        if unmapped and uses_market:
            raise KeyError(f"`market_for` has no market for: {', '.join(unmapped)}")
        unknown = sorted({str(market_for[t]) for t in tickers if t in market_for} - set(map(str, markets.columns)))
        if unknown and uses_market:
            raise KeyError(f"`market_for` names markets not in `market_returns`: {', '.join(unknown)}")
        index = index.union(markets.index)
    market_of = [str(market_for[t]) if market_for and t in market_for else "" for t in tickers]

    r = returns.reindex(index).to_numpy(dtype="float64", copy=True)
    r[~np.isfinite(r)] = np.nan
    if uses_market:
        m = markets.reindex(index)[market_of].to_numpy(dtype="float64", copy=True)
        m[~np.isfinite(m)] = np.nan
    else:
        m = np.zeros_like(r)
    valid = ~np.isnan(r) & ~np.isnan(m)
    n_dates, n_members = r.shape

    offsets = np.arange(e0, w1 + 1)
    row_of = index.searchsorted(pd.DatetimeIndex(days), side="left")
    rows, present, day0 = _gather(valid, row_of, offsets)
    col = np.arange(n_members)[None, :, None]
    rg = np.where(present, r[rows, col], np.nan)
    mg = np.where(present, m[rows, col], np.nan)
    est, ev = slice(0, est_len), slice(w0 - e0, w1 - e0 + 1)
    r_est, m_est, r_ev, m_ev = rg[..., est], mg[..., est], rg[..., ev], mg[..., ev]
    n_est = present[..., est].sum(axis=-1)
    ev_len = w1 - w0 + 1
    length = np.arange(1, ev_len + 1, dtype="float64")  # sessions from the window start to each day

    with np.errstate(invalid="ignore", divide="ignore"):
        n = n_est.astype("float64")
        mean_r = np.nansum(r_est, axis=-1) / n
        if model == "market":
            mean_m = np.nansum(m_est, axis=-1) / n
            dev_m = m_est - mean_m[..., None]
            sxx = np.nansum(dev_m**2, axis=-1)
            beta = np.nansum(dev_m * (r_est - mean_r[..., None]), axis=-1) / sxx
            intercept = mean_r - beta * mean_m
            resid = r_est - intercept[..., None] - beta[..., None] * m_est
            ar = r_ev - intercept[..., None] - beta[..., None] * m_ev
            excess = np.cumsum(m_ev, axis=-1) - length * mean_m[..., None]
            factor = length + length**2 / n[..., None] + excess**2 / sxx[..., None]
        elif model == "market_adjusted":
            sxx = np.ones_like(n)
            ar_est = r_est - m_est
            resid = ar_est - (np.nansum(ar_est, axis=-1) / n)[..., None]
            ar = r_ev - m_ev
            factor = np.broadcast_to(length, ar.shape)
        else:
            sxx = np.ones_like(n)
            resid = r_est - mean_r[..., None]
            ar = r_ev - mean_r[..., None]
            factor = np.broadcast_to(length + length**2 / n[..., None], ar.shape)
        dof = n - n_params
        s2 = np.nansum(resid**2, axis=-1) / dof
        car_path = np.cumsum(ar, axis=-1)
        var_path = s2[..., None] * factor
        car = car_path[..., -1]
        t_stat = car / np.sqrt(var_path[..., -1])

    has_day0 = day0 < valid.sum(axis=0)[None, :]
    complete = present[..., ev].all(axis=-1)
    enough = n_est >= min_estimation
    varies = np.isfinite(s2) & (s2 > 0) & np.isfinite(sxx) & (sxx > 0)
    if max_gap_days is not None and ev_len > 1:
        stamps = index.values[rows[..., ev]]
        gaps = np.diff(stamps, axis=-1).max(axis=-1) / np.timedelta64(1, "D")
        no_halt = ~complete | (gaps <= max_gap_days)
    else:
        gaps = np.zeros(complete.shape)
        no_halt = np.ones(complete.shape, dtype=bool)
    ok = has_day0 & complete & no_halt & enough & varies & np.isfinite(car)
    with np.errstate(invalid="ignore"):
        p_value = np.where(ok, 2.0 * stats.t.sf(np.abs(t_stat), np.maximum(dof, 1)), np.nan)

    first_rows = np.argmax(valid, axis=0)
    last_rows = n_dates - 1 - np.argmax(valid[::-1], axis=0)
    excluded_rows: list[tuple[str, str, str]] = []
    for e, j in zip(*np.nonzero(~ok), strict=True):
        excluded_rows.append((ids[e], tickers[j], _reason(
            has_day0[e, j], complete[e, j], (no_halt[e, j], gaps[e, j], max_gap_days), enough[e, j],
            int(n_est[e, j]), present[e, j, ev].sum(),
            int(rows[e, j, ev][0]) if present[e, j, ev][0] else None, valid[:, j].any(),
            index[first_rows[j]], index[last_rows[j]], days[e], (e0, e1), (w0, w1), min_estimation, model,
            bool(np.isfinite(sxx[e, j]) and sxx[e, j] > 0), uses_market)))

    # Group tests per event, over the members in the study.
    n_in = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ar_in = np.where(ok[..., None], ar, 0.0)
        ar_p = ar_in.sum(axis=1) / n_in[:, None]
        path_p = np.cumsum(ar_p, axis=-1)
        res_in = np.where(ok[..., None] & ~np.isnan(resid), resid, 0.0)
        count = (ok[..., None] & ~np.isnan(resid)).sum(axis=1)
        resid_p = np.where(count > 0, res_in.sum(axis=1) / np.maximum(count, 1), 0.0)
        n_p = (count > 0).sum(axis=-1).astype("float64")
        dof_p = n_p - n_params
        s2_p = (resid_p**2).sum(axis=-1) / dof_p
        kappa = np.where(ok[..., None], factor / length, 0.0).sum(axis=1) / n_in[:, None]
        var_p = s2_p[:, None] * length * kappa
        t_p = path_p[:, -1] / np.sqrt(var_p[:, -1])
        p_p = 2.0 * stats.t.sf(np.abs(t_p), np.maximum(dof_p, 1))
        car_in = np.where(ok[..., None], car_path, 0.0)
        mean_path = car_in.sum(axis=1) / n_in[:, None]
        sd_path = np.sqrt((np.where(ok[..., None], car_path - mean_path[:, None, :], 0.0) ** 2).sum(axis=1)
                          / (n_in[:, None] - 1))
        t_cs = mean_path[:, -1] / (sd_path[:, -1] / np.sqrt(n_in))
        p_cs = 2.0 * stats.t.sf(np.abs(t_cs), np.maximum(n_in - 1, 1))
    usable_p = (n_in > 0) & (dof_p > 0) & np.isfinite(t_p)
    usable_cs = (n_in > 1) & np.isfinite(t_cs)
    if test == "portfolio":
        crit = stats.t.ppf(1 - alpha / 2, np.maximum(dof_p, 1))[:, None]
        half = np.where(usable_p[:, None], crit * np.sqrt(var_p), np.nan)
    else:
        crit = stats.t.ppf(1 - alpha / 2, np.maximum(n_in - 1, 1))[:, None]
        half = np.where(usable_cs[:, None], crit * sd_path / np.sqrt(n_in)[:, None], np.nan)

    # Tidy tables.
    e_idx, j_idx = np.nonzero(ok)
    # Day 0 is among the gathered offsets whenever e0 <= 0 <= w1 (the usual case).
    event_day = (index[rows[e_idx, j_idx, -e0]] if e0 <= 0 <= w1
                 else _day0_dates(valid, index, day0[e_idx, j_idx], j_idx))
    members = pd.DataFrame({
        "event_id": [ids[e] for e in e_idx], "ticker": [tickers[j] for j in j_idx],
        "market": [market_of[j] if uses_market else "" for j in j_idx], "event_day": pd.DatetimeIndex(event_day),
        "car": car[e_idx, j_idx], "t_stat": t_stat[e_idx, j_idx], "p_value": p_value[e_idx, j_idx],
        "n_est": n_est[e_idx, j_idx].astype("int64"), "model": model,
    }, columns=list(MEMBER_COLUMNS))
    tests = []
    for e, eid in enumerate(ids):
        tests.append((eid, path_p[e, -1] if n_in[e] else np.nan, t_p[e] if usable_p[e] else np.nan,
                      p_p[e] if usable_p[e] else np.nan, int(n_in[e]), "portfolio"))
        tests.append((eid, mean_path[e, -1] if n_in[e] else np.nan, t_cs[e] if usable_cs[e] else np.nan,
                      p_cs[e] if usable_cs[e] else np.nan, int(n_in[e]), "cross_sectional"))
    portfolio = pd.DataFrame(tests, columns=list(TEST_COLUMNS))
    rel = np.arange(w0, w1 + 1)
    has = n_in > 0
    path = pd.DataFrame({
        "event_id": np.repeat(np.array(ids, dtype=object)[has], ev_len),
        "rel_day": np.tile(rel, int(has.sum())),
        "mean_car": path_p[has].ravel(),
        "lower": (path_p - half)[has].ravel(),
        "upper": (path_p + half)[has].ravel(),
    }, columns=list(PATH_COLUMNS))
    abnormal = pd.DataFrame({
        "event_id": np.repeat(np.array([ids[e] for e in e_idx], dtype=object), ev_len),
        "ticker": np.repeat(np.array([tickers[j] for j in j_idx], dtype=object), ev_len),
        "rel_day": np.tile(rel, len(e_idx)),
        "date": index[rows[e_idx, j_idx][:, ev].ravel()] if len(e_idx) else pd.DatetimeIndex([]),
        "ar": ar[e_idx, j_idx].ravel(),
        "car": car_path[e_idx, j_idx].ravel(),
    }, columns=list(AR_COLUMNS))
    excluded = (pd.DataFrame(excluded_rows, columns=list(EXCLUDED_COLUMNS)) if excluded_rows
                else _empty(EXCLUDED_COLUMNS))
    return EventStudyResult(members=members, portfolio=portfolio, car_path=path, abnormal=abnormal,
                            excluded=excluded, model=model, test=test, estimation=(e0, e1), window=(w0, w1),
                            alpha=float(alpha))


def _day0_dates(valid: np.ndarray, index: pd.DatetimeIndex, k: np.ndarray, j: np.ndarray) -> pd.DatetimeIndex:
    """Dates of the ``k``-th session of members ``j`` (used when day 0 is outside the windows)."""
    out = []
    for kk, jj in zip(k, j, strict=True):
        out.append(index[np.flatnonzero(valid[:, jj])[kk]])
    return pd.DatetimeIndex(out)


def _reason(has_day0: bool, complete: bool, halt: tuple[bool, float, int | None], enough: bool, n_est: int,
            n_window: int, first_window_row: int | None,
            any_data: bool, first: pd.Timestamp, last: pd.Timestamp, day: pd.Timestamp, estimation: tuple[int, int],
            window: tuple[int, int], min_estimation: int, model: str, market_varies: bool, uses_market: bool) -> str:
    what = "sessions with a return and a market return" if uses_market else "sessions with a return"
    if not any_data:
        return f"no {what}"
    if not has_day0:
        return f"no session on or after {day.date()} (last session {last.date()})"
    if not complete:
        length = window[1] - window[0] + 1
        where = "starts before" if first_window_row is None else "runs past"
        return (f"event window [{window[0]}, {window[1]}] {where} the member's sessions in the data ({first.date()} to "
                f"{last.date()}): "
                f"{n_window} of {length} sessions")
    if not halt[0]:
        return (f"event window [{window[0]}, {window[1]}] spans {halt[1]:.0f} days without a session (a trading "
                f"halt?), more than the {halt[2]} allowed")
    if not enough:
        return (f"only {n_est} {what} in the estimation window [{estimation[0]}, {estimation[1]}], "
                f"need {min_estimation} (first session {first.date()})")
    if model == "market" and not market_varies:
        return "market return constant over the estimation window"
    return "abnormal returns do not vary over the estimation window (stale prices?)"
