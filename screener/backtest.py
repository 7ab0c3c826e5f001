"""Vectorised backtest engine: target weights on rebalance dates + prices -> equity, drifted weights, trades.

The rules follow bt 1.4.1 (``Backtest(..., integer_positions=False)`` with ``Rebalance()``) so that the same
strategy gives the same daily equity to rounding; ``docs/backtest.md`` states them in full and says where we
go beyond bt (lag, assets without a price on a trade date, delistings, closed markets).

Timeline, for each trade row ``r`` (the decision row plus ``lag`` rows):

1. ``V`` = cash + sum of share counts times the last known closes, at the close of ``r`` before trading;
2. an asset without a close on ``r`` cannot be traded: its target is dropped, and a holding in it is sold
   whole at its last known close (the only way out of a listing that has stopped trading);
3. every held asset whose target is 0 is sold whole;
4. every other target gets ``amount = (w - q * p / V) * V`` of cash: a buy spends exactly ``amount``
   including the fee, a sell raises exactly ``|amount|`` net of the fee (bt's commission rule).

Share counts are fractional and fixed between trades, so weights drift with prices. All the work is numpy over
(days x assets); the only Python loop runs over trade dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

__all__ = ["FREQUENCIES", "BacktestResult", "Frequency", "rebalance_dates", "run_backtest"]

Frequency = Literal["daily", "weekly", "monthly", "quarterly", "annual", "never"]
FREQUENCIES: tuple[str, ...] = get_args(Frequency)

# A row of target weights may exceed 1 by this much (rounding in the caller's normalisation).
WEIGHT_SUM_TOLERANCE = 1e-9
_DAYS_PER_YEAR = 365.25  # calendar days: turnover is annualised over the calendar span of the backtest


@dataclass(frozen=True)
class BacktestResult:
    """What `run_backtest` returns.

    Attributes
    ----------
    equity : Series of shape (n_dates,)
        Portfolio value at each close after that day's trades (bt's ``strategy.values`` without its synthetic
        first row); flat at ``initial_capital`` until the first trade.
    returns : Series of shape (n_dates,)
        Daily simple returns of `equity`; the first is measured from ``initial_capital``, so it is 0 unless a
        trade on the first row paid costs.
    weights : DataFrame of shape (n_dates, n_assets)
        Drifted weight of each asset at each close after trading: shares x last known close / equity.
        Never NaN; never negative.
    cash_weight : Series of shape (n_dates,)
        Cash / equity; ``weights.sum(axis=1) + cash_weight == 1``. Slightly negative only when costs are
        charged on closing a position while the rest is fully invested (bt does the same).
    target_weights : DataFrame of shape (n_trades, n_assets)
        Targets applied on each trade date (decision date + ``lag`` rows), with assets that had no close on
        the trade date set to 0.
    holdings : DataFrame of shape (n_trades, n_assets)
        Share counts held after each trade date's trades.
    trades : DataFrame of shape (n_fills, 6)
        One row per (trade date, asset) with a non-zero fill: ``date``, ``asset``, ``quantity`` (shares,
        negative for sales), ``price``, ``value`` (quantity x price, before costs), ``cost`` (>= 0).
    turnover : Series of shape (n_trades,)
        Sum of |traded value| / 2 / portfolio value before trading, per trade date (a rebalance from all
        cash into a full portfolio counts 0.5).
    costs : Series of shape (n_trades,)
        Costs paid on each trade date, in the base currency.
    initial_capital : float
        Starting cash.
    """

    equity: pd.Series
    returns: pd.Series
    weights: pd.DataFrame
    cash_weight: pd.Series
    target_weights: pd.DataFrame
    holdings: pd.DataFrame
    trades: pd.DataFrame
    turnover: pd.Series
    costs: pd.Series
    initial_capital: float

    def annualised_turnover(self, *, include_first: bool = False) -> float:
        """Turnover per year: the sum of `turnover` over the calendar years the backtest spans.

        Parameters
        ----------
        include_first : bool
            Count the first trade date (usually the purchase of the portfolio from cash); default False.

        Returns
        -------
        float
            NaN when the backtest spans less than a day.
        """
        turnover = self.turnover if include_first else self.turnover.iloc[1:]
        index = self.equity.index
        years = (index[-1] - index[0]) / pd.Timedelta(days=1) / _DAYS_PER_YEAR if len(index) else 0.0
        return float(turnover.sum() / years) if years > 0 else float("nan")


def rebalance_dates(index: pd.DatetimeIndex, frequency: Frequency) -> pd.DatetimeIndex:
    """Rebalance dates as bt's ``RunDaily`` / ``RunWeekly`` / ... ``RunYearly`` / ``RunOnce`` choose them.

    The first row; then every row whose period (ISO year-week, year-month, year-quarter, year) differs from
    the previous row's, i.e. the first trading day of each period present in the data; never the last row
    (unless it is also the first). ``"daily"`` is every row but the last; ``"never"`` the first row only.

    Parameters
    ----------
    index : DatetimeIndex of shape (n_dates,)
        Trading dates, strictly increasing.
    frequency : {"daily", "weekly", "monthly", "quarterly", "annual", "never"}
        Rebalance period.

    Returns
    -------
    DatetimeIndex of shape (n_rebalances,)
        A subset of `index`, same name.
    """
    _check_index(index, "index")
    if frequency not in FREQUENCIES:
        raise ValueError(f"`frequency` must be one of {', '.join(FREQUENCIES)}, got {frequency!r}")
    n = len(index)
    if n == 0:
        return index.copy()
    if frequency == "daily":
        starts = np.ones(n, dtype=bool)
    elif frequency == "never":
        starts = np.zeros(n, dtype=bool)
    else:
        key = _period_key(index, frequency)
        starts = np.empty(n, dtype=bool)
        starts[1:] = key[1:] != key[:-1]
    starts[0] = True
    if n > 1:
        starts[-1] = False
    return index[starts]


def _period_key(index: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """One integer per date that changes exactly when the period changes."""
    year = index.year.to_numpy(dtype=np.int64)
    if frequency == "weekly":
        iso = index.isocalendar()  # ISO year, not calendar year: 2024-12-30 is in week 1 of 2025
        return iso["year"].to_numpy(dtype=np.int64) * 100 + iso["week"].to_numpy(dtype=np.int64)
    if frequency == "monthly":
        return year * 12 + index.month.to_numpy(dtype=np.int64)
    if frequency == "quarterly":
        return year * 4 + index.quarter.to_numpy(dtype=np.int64)
    return year


def run_backtest(
    prices: pd.DataFrame,
    target_weights: pd.DataFrame,
    *,
    lag: int = 0,
    costs_bps: float = 0.0,
    initial_capital: float = 1_000_000.0,
) -> BacktestResult:
    """Backtest a long-only portfolio rebalanced to `target_weights`, with fractional shares.

    Parameters
    ----------
    prices : DataFrame of shape (n_dates, n_assets)
        Closes (adjusted, in the base currency), ``DatetimeIndex`` strictly increasing, NaN where an asset
        did not trade (before listing, after delisting, market holidays). Values present must be > 0.
    target_weights : DataFrame of shape (n_decisions, n_assets_subset)
        Target weight of each asset decided at each close; index a subset of ``prices.index``, columns a
        subset of ``prices.columns``; NaN counts as 0; each row is >= 0 and sums to at most 1 (the rest is
        cash). A row of zeros sells everything.
    lag : int
        Trading rows between a decision and its trade: 0 trades at the decision's close (as bt does), 1 at
        the next row's close. Decisions whose trade would fall after the last row are ignored.
    costs_bps : float
        Cost in basis points of traded value, paid from cash, in [0, 10000).
    initial_capital : float
        Starting cash (> 0), in the base currency.

    Returns
    -------
    BacktestResult
        Daily equity, returns and drifted weights on ``prices.index``, and per trade date the applied
        targets, holdings, fills, turnover and costs.

    Notes
    -----
    - An asset without a close on a trade date is not eligible that day: it cannot be bought, and a holding in
      it is sold at its last known close (so a listing that stopped trading leaves the portfolio at the first
      trade date after its last close, never earlier).
    - Between trades an asset without a close is valued at its last known close: valuation only, no return is
      invented for the day its market was shut.
    - With costs, a sale that would need more shares than are held to raise its amount net of fees closes
      the position instead (bt would go short by the difference).
    """
    prices_arr, weights_arr, trade_rows = _validate(prices, target_weights, lag, costs_bps, initial_capital)
    rate = float(costs_bps) / 10_000.0
    n, m = prices_arr.shape

    valid = ~np.isnan(prices_arr)
    last_known = _last_known(prices_arr, valid)  # 0 before an asset's first close

    k = len(trade_rows)
    holdings = np.zeros((k + 1, m))  # row j + 1: shares after trade j; row 0: before any trade
    cash = np.empty(k + 1)
    cash[0] = float(initial_capital)
    fills = np.zeros((k, m))
    fees = np.zeros((k, m))
    applied = weights_arr * valid[trade_rows]  # no close on the trade date -> not eligible
    values_before = np.empty(k)
    q = holdings[0]
    cash_now = cash[0]
    for j, r in enumerate(trade_rows):
        p = last_known[r]
        w = applied[j]
        value = cash_now + p @ q
        values_before[j] = value
        held_value = q * p
        # bt: amount = (w - current weight) * V, from the pre-trade state for every asset
        amount = np.where(w > 0, (w - held_value / value) * value, -held_value)
        # A close sells the whole position (fee on top); other trades solve q so that a buy spends exactly
        # `amount` including the fee and a sale raises exactly `|amount|` net of it (bt_semantics 7).
        closing = (w <= 0) & (q != 0)
        if rate:
            with np.errstate(divide="ignore", invalid="ignore"):
                trade = np.where(amount > 0, amount / (p * (1 + rate)), amount / (p * (1 - rate)))
            closing |= (amount < 0) & (-trade >= q)
            trade = np.where(closing, -q, np.where(amount != 0, trade, 0.0))
            fee = np.abs(trade) * p * rate
            cash_now = cash_now - np.sum(np.where(closing, trade * p + fee, amount))
            fees[j] = fee
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                trade = np.where(closing, -q, np.where(amount != 0, amount / p, 0.0))
            cash_now = cash_now - trade @ p
        fills[j] = trade
        q = q + trade
        q[closing] = 0.0  # exact zero, whatever the rounding
        holdings[j + 1] = q
        cash[j + 1] = cash_now

    # Daily valuation: holdings are constant between trade rows, so repeat each segment's row.
    counts = np.diff(np.concatenate(([0], trade_rows, [n])))
    daily_holdings = np.repeat(holdings, counts, axis=0)
    daily_cash = np.repeat(cash, counts)
    asset_values = daily_holdings * last_known
    equity = asset_values.sum(axis=1) + daily_cash
    returns = np.empty(n)
    returns[0] = equity[0] / initial_capital - 1.0
    returns[1:] = equity[1:] / equity[:-1] - 1.0

    index = prices.index.rename("date")
    columns = prices.columns.rename("asset")
    trade_index = index[trade_rows]
    traded_value = np.abs(fills) * last_known[trade_rows]
    return BacktestResult(
        equity=pd.Series(equity, index=index, name="equity"),
        returns=pd.Series(returns, index=index, name="returns"),
        weights=pd.DataFrame(asset_values / equity[:, None], index=index, columns=columns),
        cash_weight=pd.Series(daily_cash / equity, index=index, name="cash"),
        target_weights=pd.DataFrame(applied, index=trade_index, columns=columns),
        holdings=pd.DataFrame(holdings[1:], index=trade_index, columns=columns),
        trades=_trades_frame(trade_index, columns, fills, last_known[trade_rows], fees),
        turnover=pd.Series(traded_value.sum(axis=1) / 2.0 / values_before, index=trade_index, name="turnover"),
        costs=pd.Series(fees.sum(axis=1), index=trade_index, name="costs"),
        initial_capital=float(initial_capital),
    )


def _last_known(prices: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Forward-filled closes, 0 before an asset's first close: shape (n_dates, n_assets)."""
    gappy = ~valid.all(axis=0)
    if not gappy.any():
        return prices
    filled = prices.copy()
    cols = np.flatnonzero(gappy)
    sub_valid = valid[:, cols]
    rows = np.where(sub_valid, np.arange(len(prices))[:, None], -1)
    np.maximum.accumulate(rows, axis=0, out=rows)
    sub = prices[np.maximum(rows, 0), cols]
    sub[rows < 0] = 0.0
    filled[:, cols] = sub
    return filled


def _trades_frame(
    trade_index: pd.DatetimeIndex, columns: pd.Index, fills: np.ndarray, prices: np.ndarray, fees: np.ndarray
) -> pd.DataFrame:
    """Long table of non-zero fills, ordered by date then by the caller's asset order."""
    rows, cols = np.nonzero(fills)
    quantity = fills[rows, cols]
    price = prices[rows, cols]
    return pd.DataFrame(
        {
            "date": trade_index[rows],
            "asset": columns[cols],
            "quantity": quantity,
            "price": price,
            "value": quantity * price,
            "cost": fees[rows, cols],
        }
    )


def _check_index(index: object, name: str) -> None:
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"`{name}` must be a DatetimeIndex, got {type(index).__name__}")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError(f"`{name}` dates must be strictly increasing (sorted, no duplicates); sort and dedupe first")


def _validate(
    prices: pd.DataFrame, target_weights: pd.DataFrame, lag: int, costs_bps: float, initial_capital: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the inputs; return prices, targets aligned to the price columns, and trade rows."""
    for name, frame in (("prices", prices), ("target_weights", target_weights)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"`{name}` must be a DataFrame, got {type(frame).__name__}")
        _check_index(frame.index, f"{name}.index")
        if not frame.columns.is_unique:
            duplicated = sorted(map(str, frame.columns[frame.columns.duplicated()]))
            raise ValueError(f"`{name}` has duplicate columns: {', '.join(duplicated)}")
    if isinstance(lag, bool) or not isinstance(lag, int | np.integer) or lag < 0:
        raise ValueError(f"`lag` must be an integer >= 0, got {lag!r}")
    if not np.isfinite(costs_bps) or not 0 <= costs_bps < 10_000:
        raise ValueError(f"`costs_bps` must be in [0, 10000), got {costs_bps!r}")
    if not np.isfinite(initial_capital) or initial_capital <= 0:
        raise ValueError(f"`initial_capital` must be a finite number > 0, got {initial_capital!r}")
    if len(prices) == 0:
        raise ValueError("`prices` must have at least one row")

    try:
        prices_arr = prices.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`prices` must be numeric: {exc}") from None
    if (prices_arr <= 0).any() or np.isinf(prices_arr).any():  # NaN compares False: allowed
        raise ValueError("`prices` must be finite and > 0 where present (NaN marks a day without a close)")

    unknown = target_weights.columns.difference(prices.columns, sort=False)
    if len(unknown):
        raise ValueError(f"`target_weights` has assets not in `prices`: {', '.join(map(str, unknown[:10]))}")
    decision_rows = prices.index.get_indexer(target_weights.index)
    if (decision_rows < 0).any():
        missing = target_weights.index[decision_rows < 0]
        raise ValueError(
            f"`target_weights` dates must be dates of `prices`; {len(missing)} are not, first "
            f"{missing[0].date()}"
        )
    try:
        weights_arr = target_weights.reindex(columns=prices.columns).to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`target_weights` must be numeric: {exc}") from None
    weights_arr = np.where(np.isnan(weights_arr), 0.0, weights_arr)
    if not np.isfinite(weights_arr).all():
        raise ValueError("`target_weights` must be finite (NaN counts as 0)")
    if (weights_arr < 0).any():
        row = int(np.flatnonzero((weights_arr < 0).any(axis=1))[0])
        raise ValueError(f"`target_weights` must be >= 0 (long only); negative on {target_weights.index[row].date()}")
    sums = weights_arr.sum(axis=1)
    if (sums > 1 + WEIGHT_SUM_TOLERANCE).any():
        row = int(np.flatnonzero(sums > 1 + WEIGHT_SUM_TOLERANCE)[0])
        raise ValueError(
            f"each row of `target_weights` must sum to at most 1 (the rest is cash); "
            f"{target_weights.index[row].date()} sums to {sums[row]!r}"
        )
    trade_rows = decision_rows + int(lag)
    keep = trade_rows < len(prices)
    return prices_arr, weights_arr[keep], trade_rows[keep]
