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
(days x assets). Without costs there is no loop at all (the value at each trade date is a cumulative product of
growth factors); with costs the only Python loop runs over trade dates.
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


@dataclass(frozen=True, eq=False)  # fields are pandas objects: no == or hash
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
    if frequency == "weekly":
        # ISO weeks run Monday to Sunday, so (ISO year, week) changes exactly when the Monday-based week number
        # does; 1970-01-01 was a Thursday, so days + 3 counts from the Monday before it. Across a new year
        # this keeps 2024-12-30 and 2025-01-02 in one week, as ISO week 1 of 2025 does.
        local = index.tz_localize(None) if index.tz is not None else index
        days = local.to_numpy().astype("datetime64[D]").astype(np.int64)
        return (days + 3) // 7
    year = index.year.to_numpy(dtype=np.int64)
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
    prices_arr, valid, weights_arr, trade_rows = _validate(prices, target_weights, lag, costs_bps, initial_capital)
    rate = float(costs_bps) / 10_000.0
    n = len(prices_arr)

    last_known = _last_known(prices_arr, valid)  # 0 before an asset's first close

    applied = weights_arr * valid[trade_rows]  # no close on the trade date -> not eligible
    trade_prices = last_known[trade_rows]  # the last known close for a holding that can no longer trade
    if rate:
        holdings, cash, values_before, fees = _rebalance_with_costs(trade_prices, applied, initial_capital, rate)
    else:
        holdings, cash, values_before = _rebalance_frictionless(trade_prices, applied, initial_capital)
        fees = np.zeros_like(applied)
    fills = np.diff(holdings, axis=0)

    # Daily valuation: holdings are constant between trade rows, so repeat each segment's row. One
    # (n_dates, n_assets) buffer serves as holdings, then values, then weights (fresh large arrays cost page
    # faults comparable to the arithmetic), column-major like the prices and like pandas' own blocks.
    counts = np.diff(np.concatenate(([0], trade_rows, [n])))
    daily = np.repeat(np.ascontiguousarray(holdings.T), counts, axis=1).T
    daily_cash = np.repeat(cash, counts)
    np.multiply(daily, last_known, out=daily)
    equity = daily.sum(axis=1) + daily_cash
    np.divide(daily, equity[:, None], out=daily)
    returns = np.empty(n)
    returns[0] = equity[0] / initial_capital - 1.0
    returns[1:] = equity[1:] / equity[:-1] - 1.0

    index = prices.index.rename("date")
    columns = prices.columns.rename("asset")
    trade_index = index[trade_rows]
    traded_value = np.abs(fills) * trade_prices
    return BacktestResult(
        equity=pd.Series(equity, index=index, name="equity"),
        returns=pd.Series(returns, index=index, name="returns"),
        # The arrays are ours alone: no need for pandas to copy them.
        weights=pd.DataFrame(daily, index=index, columns=columns, copy=False),
        cash_weight=pd.Series(daily_cash / equity, index=index, name="cash"),
        target_weights=pd.DataFrame(applied, index=trade_index, columns=columns, copy=False),
        holdings=pd.DataFrame(holdings[1:], index=trade_index, columns=columns, copy=False),
        trades=_trades_frame(trade_index, columns, fills, trade_prices, fees),
        turnover=pd.Series(traded_value.sum(axis=1) / 2.0 / values_before, index=trade_index, name="turnover"),
        costs=pd.Series(fees.sum(axis=1), index=trade_index, name="costs"),
        initial_capital=float(initial_capital),
    )


def _rebalance_frictionless(
    trade_prices: np.ndarray, weights: np.ndarray, capital: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Holdings and cash after each trade date without costs, with no loop over dates.

    Without costs the book after trade j holds exactly ``w_j * V_j / p_j`` shares, so from one trade to the
    next the value grows by ``1 - sum(w_{j-1}) + sum(w_{j-1} * p_j / p_{j-1})`` and ``V_j`` is a cumulative
    product (bt reaches the same numbers through ``q + (w - q p / V) V / p``).

    Returns
    -------
    holdings : ndarray of shape (n_trades + 1, n_assets)
        Row 0 before the first trade (zeros), row j + 1 after trade j.
    cash : ndarray of shape (n_trades + 1,)
    values_before : ndarray of shape (n_trades,)
        Portfolio value at each trade date's close before trading.
    """
    k, m = weights.shape
    holdings = np.zeros((k + 1, m))
    cash = np.full(k + 1, float(capital))
    if k == 0:
        return holdings, cash, np.empty(0)
    held = weights > 0
    per_unit = np.divide(1.0, trade_prices, out=np.zeros_like(trade_prices), where=held)  # shares per $1
    growth = 1.0 - weights[:-1].sum(axis=1) + (weights[:-1] * per_unit[:-1] * trade_prices[1:]).sum(axis=1)
    values = float(capital) * np.cumprod(np.concatenate(([1.0], growth)))
    holdings[1:] = weights * per_unit * values[:, None]
    cash[1:] = values - (holdings[1:] * trade_prices).sum(axis=1)
    return holdings, cash, values


def _rebalance_with_costs(
    trade_prices: np.ndarray, weights: np.ndarray, capital: float, rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Holdings, cash, pre-trade values and fees per trade date with a proportional cost `rate`.

    Shapes as in `_rebalance_frictionless`, plus fees of shape (n_trades, n_assets). One step per trade date:
    the value before trading depends on the previous date's fees.
    """
    k, m = weights.shape
    holdings = np.zeros((k + 1, m))
    cash = np.empty(k + 1)
    values = np.empty(k)
    fees = np.zeros((k, m))
    prices = np.where(trade_prices > 0, trade_prices, 1.0)  # 0 = never traded: nothing held, nothing bought
    q = holdings[0]
    cash_now = cash[0] = float(capital)
    for j in range(k):
        p, w = prices[j], weights[j]
        held_value = q * p
        value = cash_now + held_value.sum()
        values[j] = value
        # bt: amount = (w - current weight) * V from the pre-trade state; a buy spends exactly `amount`
        # including the fee, a sale raises exactly |amount| net of it (bt_semantics 7).
        amount = (w - held_value / value) * value
        trade = amount / (p * np.where(amount > 0, 1.0 + rate, 1.0 - rate))
        # Close = sell all, fee on top: targets of 0 (their sale would need q / (1 - rate) shares), and sales
        # that would need more shares than are held.
        close = trade <= -q
        trade = np.where(close, -q, trade)
        fee = np.abs(trade) * p * rate
        cash_now = cash_now - (trade @ p + fee.sum())
        q = np.where(close, 0.0, q + trade)
        holdings[j + 1] = q
        cash[j + 1] = cash_now
        fees[j] = fee
    return holdings, cash, values, fees


def _last_known(prices: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Forward-filled closes, 0 before an asset's first close: shape (n_dates, n_assets)."""
    gappy = ~valid.all(axis=0)
    if not gappy.any():
        return prices
    filled = prices.copy(order="K")
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
    """Long table of non-zero fills, ordered by date then by the caller's asset order (``asset`` categorical)."""
    flat = np.flatnonzero(fills)
    rows, cols = np.divmod(flat, fills.shape[1])
    quantity = fills.ravel()[flat]
    price = prices.ravel()[flat]
    return pd.DataFrame(
        {
            "date": trade_index[rows],
            "asset": pd.Categorical.from_codes(cols, categories=columns),
            "quantity": quantity,
            "price": price,
            "value": quantity * price,
            "cost": fees.ravel()[flat],
        }
    )


def _check_index(index: object, name: str) -> None:
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"`{name}` must be a DatetimeIndex, got {type(index).__name__}")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError(f"`{name}` dates must be strictly increasing (sorted, no duplicates); sort and dedupe first")


def _validate(
    prices: pd.DataFrame, target_weights: pd.DataFrame, lag: int, costs_bps: float, initial_capital: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check the inputs; return prices, where they are present, targets aligned to the price columns, trade rows."""
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
        # Column-major, as pandas usually stores it already: no copy then, and no mixed-layout arithmetic.
        prices_arr = np.asfortranarray(prices.to_numpy(dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`prices` must be numeric: {exc}") from None
    valid = ~np.isnan(prices_arr)
    if (prices_arr <= 0).any() or not np.array_equal(np.isfinite(prices_arr), valid):  # NaN compares False
        raise ValueError("`prices` must be finite and > 0 where present (NaN marks a day without a close)")

    unknown = target_weights.columns.difference(prices.columns, sort=False)
    if len(unknown):
        raise ValueError(f"`target_weights` has assets not in `prices`: {', '.join(map(str, unknown[:10]))}")
    if prices.index.tz != target_weights.index.tz:
        raise ValueError(
            f"`target_weights` and `prices` dates must share a time zone, got {target_weights.index.tz} and "
            f"{prices.index.tz}"
        )
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
    return prices_arr, valid, weights_arr[keep], trade_rows[keep]
