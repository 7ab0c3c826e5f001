"""The factor table: supply-risk and market factors of a universe's members at decision dates.

`factor_table` is pure (it takes loaded market data); `factors_as_of` and `explain` load the universe, the
reference files and prices (store, then snapshot) and are what ``screener factors`` calls.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from screener.config import MARKET_FACTORS, SUPPLY_FACTORS
from screener.data.panel import MarketData, load_market_data
from screener.data.snapshot import SnapshotProvider
from screener.data.store import Store
from screener.factors.market import MAX_STALE_DAYS, market_factors
from screener.factors.supply import explain_supply, supply_factors
from screener.reference import Reference, load_reference
from screener.universe import Universe, load_universe

FACTOR_BENCHMARKS = ("SPY", "REMX")
HISTORY_DAYS = 400
"""Calendar days of prices loaded before a date: enough for 12-1 momentum and the one-year windows."""
COLUMNS = (*SUPPLY_FACTORS, *MARKET_FACTORS, "market_cap_pit", "stage", "status", "reason")


def factor_table(
    universe: Universe,
    data: MarketData,
    dates: Any,
    *,
    reference: Reference | None = None,
    event_date: str = "announced",
    backfill: bool = False,
    beta_lags: int = 0,
) -> pd.DataFrame:
    """All factors per (date, member), each from data up to that date only.

    Parameters
    ----------
    universe : Universe
    data : MarketData
        ``adj_close``, ``close`` and ``volume`` of the members (and of SPY and REMX for betas), in the base
        currency, with history before the first date (see `HISTORY_DAYS`).
    dates : list-like of dates
        Decision dates.
    reference : Reference, optional
        Default: the shipped reference files.
    event_date, backfill
        Point-in-time options of the supply-risk factors (see ``docs/factors.md``).
    beta_lags : int
        Dimson lags for the betas (0: same-day).

    Returns
    -------
    DataFrame of shape (n_dates * n_members, len(COLUMNS))
        Index (``date``, ``ticker``); members without prices get NaN market factors, members without
        reference data NaN supply factors, and ``reason`` says why.
    """
    reference = reference if reference is not None else load_reference()
    index = pd.DatetimeIndex(pd.to_datetime(list(dates)), name="date")
    supply = supply_factors(universe, reference, index, event_date=event_date, backfill=backfill)
    members = list(universe.tickers)
    priced = [t for t in members if t in data.tickers]
    adj = universe.mask_unlisted(data.base["adj_close"].reindex(columns=priced))
    close = universe.mask_unlisted(data.base["close"].reindex(columns=priced))
    volume = universe.mask_unlisted(data.base["volume"].reindex(columns=priced))
    benchmarks = {b: data.base["adj_close"][b] for b in FACTOR_BENCHMARKS if b in data.tickers}
    for b in FACTOR_BENCHMARKS:
        benchmarks.setdefault(b, pd.Series(np.nan, index=adj.index))
    market = market_factors(adj, close, volume, index, benchmarks=benchmarks, beta_lags=beta_lags)
    market = market.reindex(pd.MultiIndex.from_product([index, members], names=["date", "ticker"]))
    table = supply.join(market, how="left")
    price_reasons = _price_reasons(adj, index, members, data)
    first = {t: adj[t].first_valid_index() for t in adj.columns}
    short = table[[f for f in MARKET_FACTORS if f != "market_cap"]].isna().to_numpy()
    names = [f for f in MARKET_FACTORS if f != "market_cap"]
    for i, (day, ticker) in enumerate(table.index):
        if not price_reasons[i] and short[i].any():
            lacking = ", ".join(n for n, miss in zip(names, short[i], strict=True) if miss)
            price_reasons[i] = (f"not enough price history before {day.date()} for {lacking} "
                                f"(first price {first[ticker].date()})")
    table["reason"] = [("; ".join(x for x in (a, b) if x)) for a, b in
                       zip(table["reason"].astype(object).fillna(""), price_reasons, strict=True)]
    return table[list(COLUMNS)]


def _price_reasons(adj: pd.DataFrame, index: pd.DatetimeIndex, members: list[str], data: MarketData) -> list[str]:
    """Why a member has no market factors at a date: no prices at all, or none recent enough (date-major)."""
    stamps = np.where(adj.notna().to_numpy(), adj.index.to_numpy()[:, None], np.datetime64("NaT"))
    last = pd.DataFrame(stamps, index=adj.index, columns=adj.columns).ffill()
    last = last.reindex(index, method="ffill") if len(last) else last.reindex(index)
    out = []
    for day in index:
        for t in members:
            if t not in adj.columns:
                out.append(f"no prices: {data.missing.get(t, 'not in the store or snapshot')}")
                continue
            valid = last.at[day, t]
            if pd.isna(valid):
                out.append(f"no prices on or before {day.date()}")
            elif (day - valid).days > MAX_STALE_DAYS:
                out.append(f"market factors: last price {valid.date()}, over {MAX_STALE_DAYS} days before the date")
            else:
                out.append("")
    return out


def load_factor_data(universe: Universe, start: date, end: date, *, currency: str | None = None,
                     store: Store | None = None,
                     snapshot: str | Path | SnapshotProvider | bool | None = None) -> MarketData:
    """Prices the factor table needs for dates in [start, end] (members and factor benchmarks)."""
    tickers = list(dict.fromkeys([*universe.tickers, *FACTOR_BENCHMARKS]))
    return load_market_data(tickers, fields=("adj_close", "close", "volume"),
                            currency=currency or universe.base_currency,
                            start=start - timedelta(days=HISTORY_DAYS), end=end,
                            currencies=universe.currencies, store=store, snapshot=snapshot)


def factors_as_of(
    universe: str | Path | Universe,
    as_of: date | str,
    *,
    store: Store | None = None,
    snapshot: str | Path | SnapshotProvider | bool | None = None,
    event_date: str = "announced",
    backfill: bool = False,
) -> pd.DataFrame:
    """Every factor for every member at one date: one row per member (``attrs["as_of"]`` holds the date)."""
    uni = universe if isinstance(universe, Universe) else load_universe(universe)
    day = pd.Timestamp(as_of)
    data = load_factor_data(uni, day.date(), day.date(), store=store, snapshot=snapshot)
    table = factor_table(uni, data, [day], event_date=event_date, backfill=backfill).xs(day, level="date")
    table.attrs["as_of"] = day.date().isoformat()
    return table


def explain(
    universe: str | Path | Universe,
    as_of: date | str,
    ticker: str,
    *,
    store: Store | None = None,
    snapshot: str | Path | SnapshotProvider | bool | None = None,
    event_date: str = "announced",
    backfill: bool = False,
) -> dict[str, Any]:
    """How each composite factor of one member at one date is made up, with sources; plus its market factors."""
    uni = universe if isinstance(universe, Universe) else load_universe(universe)
    ticker = uni.member(ticker).ticker
    day = pd.Timestamp(as_of)
    reference = load_reference()
    report = explain_supply(ticker, day, reference, uni, event_date=event_date, backfill=backfill)
    data = load_factor_data(uni, day.date(), day.date(), store=store, snapshot=snapshot)
    row = factor_table(uni, data, [day], reference=reference, event_date=event_date,
                       backfill=backfill).loc[(day, ticker)]
    report["market"] = {k: (None if isinstance(row[k], float) and np.isnan(row[k]) else row[k])
                        for k in (*MARKET_FACTORS, "market_cap_pit")}
    report["market_reason"] = row["reason"]
    report["market_definitions"] = "docs/factors.md, section Market factors"
    report["price_source"] = data.sources.get(ticker, data.missing.get(ticker))
    return report
