"""The whole run: config -> universe and market data -> factors -> screen -> weights -> backtest -> metrics.

`run_backtest` is the Python API behind ``screener backtest`` and the app's backtest page; `screen_as_of`
is the one behind ``screener screen``. Both take the same `StrategyConfig`. I/O (the store, the snapshot,
universe and reference files) happens here, at the edge; every step it calls is a pure function.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from screener.analytics.metrics import summary
from screener.backtest import BacktestResult, rebalance_dates
from screener.backtest import run_backtest as run_engine
from screener.config import CATEGORICAL_FACTORS, StrategyConfig, load_config
from screener.data.calendar import bridge_closed_days, listing_returns
from screener.data.panel import MarketData, load_market_data
from screener.data.snapshot import SnapshotProvider
from screener.data.store import Store
from screener.exceptions import ConfigError, DataError
from screener.factors.table import FACTOR_BENCHMARKS, HISTORY_DAYS, factor_table
from screener.markets import load_markets
from screener.periods import TRADING_DAYS_PER_YEAR
from screener.screen import screen_at
from screener.universe import Universe, load_universe
from screener.weights import weigh

STRATEGY = "strategy"
"""Column of the strategy in `BacktestRun.equity` and key in `BacktestRun.metrics`."""


@dataclass
class BacktestRun:
    """Everything a backtest produced (the same numbers the CLI writes to disk).

    Attributes
    ----------
    config : StrategyConfig
    equity : DataFrame of shape (1 + n_dates, 1 + n_benchmarks)
        The strategy and each benchmark, all 1.0 on a starting row dated the day before the first date
        (bt's convention), then the value at each close (after that day's trades and costs).
    returns : DataFrame
        Daily simple returns of the same columns (benchmarks on their own trading days, 0 elsewhere).
    weights : DataFrame of shape (n_rebalances, n_members)
        Target weights applied on each trade date.
    drifted_weights : DataFrame of shape (n_dates, n_members)
    trades : DataFrame
        One row per fill: date, asset, quantity, price, value, cost.
    metrics : dict
        ``{column: {cagr, volatility, sharpe, sortino, max_drawdown, calmar, turnover}}``.
    screen_log : DataFrame
        Per (date, ticker): pass/fail per filter, score breakdown, rank, selected, weighting method used.
    engine : BacktestResult
    prices : DataFrame of shape (n_dates, n_members)
        The members' adjusted closes in the base currency the engine traded on (NaN before a member's
        ``first_trade_date`` and on days it did not trade).
    data_notes : list of str
        Missing members, stale data and other data problems met on the way.
    manifest : dict
        The parsed config and its hash, a hash of the input prices, package versions.
    """

    config: StrategyConfig
    equity: pd.DataFrame
    returns: pd.DataFrame
    weights: pd.DataFrame
    drifted_weights: pd.DataFrame
    trades: pd.DataFrame
    metrics: dict[str, dict[str, float]]
    screen_log: pd.DataFrame
    engine: BacktestResult
    prices: pd.DataFrame
    data_notes: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


def _resolve(config: StrategyConfig | str | Path) -> tuple[StrategyConfig, Universe]:
    if isinstance(config, StrategyConfig):
        cfg, base = config, None
    else:
        cfg, base = load_config(config), Path(config).resolve().parent
    name = cfg.universe
    looks_like_path = name.endswith(".toml") or "/" in name or "\\" in name
    if looks_like_path and base is not None and not Path(name).is_absolute() and (base / name).exists():
        name = str(base / name)
    return cfg, load_universe(name)


def _currencies(uni: Universe, extra: list[str]) -> dict[str, str]:
    markets = load_markets()
    out = dict(uni.currencies)
    for t in extra:
        bench = markets.benchmarks.get(t)
        if bench is not None:
            out[t] = bench.currency
    return out


def load_run_data(cfg: StrategyConfig, uni: Universe, *, store: Store | None = None,
                  snapshot: str | Path | SnapshotProvider | bool | None = None) -> MarketData:
    """Members, benchmarks and factor benchmarks: adjusted close, close and volume in the base currency."""
    extra = list(dict.fromkeys([*cfg.benchmarks, *FACTOR_BENCHMARKS]))
    tickers = list(dict.fromkeys([*uni.tickers, *extra]))
    return load_market_data(tickers, fields=("adj_close", "close", "volume"), currency=cfg.base_currency,
                            start=cfg.start - timedelta(days=HISTORY_DAYS), end=cfg.end,
                            currencies=_currencies(uni, extra), store=store, snapshot=snapshot)


def _member_prices(data: MarketData, uni: Universe) -> pd.DataFrame:
    members = [t for t in uni.tickers if t in data.tickers]
    if not members:
        raise DataError(f"no member of universe {uni.name!r} has prices; missing: "
                        + "; ".join(f"{t}: {why}" for t, why in list(data.missing.items())[:5]))
    return uni.mask_unlisted(data.base["adj_close"][members])


_FACTOR_MEMO: dict[tuple, pd.DataFrame] = {}
_FACTOR_MEMO_SIZE = 4


def compute_factors(cfg: StrategyConfig, uni: Universe, data: MarketData, dates: pd.DatetimeIndex,
                    fingerprint: str | None = None) -> pd.DataFrame:
    """Factor table at ``dates`` for the universe's members: (date, ticker) x factor, from data up to each date.

    With a ``fingerprint`` of the input data, the table is remembered for a few calls: runs that differ only
    in portfolio settings (costs, caps, weighting) reuse it. Callers must not modify the returned frame.
    """
    from screener.reference import load_reference

    reference = load_reference()  # one object per version of the reference files
    key = None
    if fingerprint is not None:
        key = (fingerprint, uni, id(reference), cfg.factors, dates.asi8.tobytes())
        cached = _FACTOR_MEMO.get(key)
        if cached is not None:
            return cached
    table = factor_table(uni, data, dates, reference=reference, event_date=cfg.factors.event_date,
                         backfill=cfg.factors.backfill)
    if key is not None:
        if len(_FACTOR_MEMO) >= _FACTOR_MEMO_SIZE:
            _FACTOR_MEMO.pop(next(iter(_FACTOR_MEMO)))
        _FACTOR_MEMO[key] = table
    return table


def _groups(uni: Universe) -> dict[str, dict[str, tuple[str, ...]]]:
    return {
        "stage": {m.ticker: tuple(m.stages) for m in uni.members},
        "country": {m.ticker: tuple(m.asset_countries) for m in uni.members},
        "element": {m.ticker: tuple(m.elements) for m in uni.members},
    }


def _needs_factors(cfg: StrategyConfig) -> bool:
    return bool(cfg.screen.filters or cfg.screen.score or cfg.portfolio.weighting == "market_cap")


def _categorical(uni: Universe, tickers: list[str]) -> pd.DataFrame:
    members = {m.ticker: m for m in uni.members}
    return pd.DataFrame({
        "stage": [tuple(members[t].stages) for t in tickers],
        "status": [members[t].status for t in tickers],
        "exchange": [members[t].exchange for t in tickers],
        "country": [members[t].country for t in tickers],
    }, index=pd.Index(tickers, name="ticker"))


def _factor_frames(factors: pd.DataFrame | None, base: pd.DataFrame) -> dict[pd.Timestamp, pd.DataFrame]:
    """Per decision date, the members' numeric factors joined with their categories (ticker x factor)."""
    if factors is None:
        return {}
    numeric = factors.drop(columns=[c for c in CATEGORICAL_FACTORS if c in factors.columns and c in base.columns])
    dates = numeric.index.get_level_values("date").unique()
    full = numeric.reindex(pd.MultiIndex.from_product([dates, base.index], names=["date", "ticker"]))
    n = len(base.index)
    values = {c: full[c].to_numpy().reshape(len(dates), n) for c in full.columns}
    categories = {c: base[c].to_numpy() for c in base.columns}
    return {day: pd.DataFrame({**{c: v[i] for c, v in values.items()}, **categories}, index=base.index)
            for i, day in enumerate(dates)}


def cap_with_cash(weights: pd.Series, max_weight: float | None, group_caps: dict[str, dict[str, float]],
                  groups: dict[str, dict[str, tuple[str, ...]]]) -> pd.Series:
    """Scale weights down until no name or group exceeds its cap; what is cut is held in cash.

    Used when the selected names cannot hold the whole portfolio under the caps (the caps always win).
    """
    w = weights.astype("float64").copy()
    for _ in range(100):
        if max_weight is not None:
            w = w.clip(upper=max_weight)
        over = False
        for dim, caps in group_caps.items():
            for group, cap in caps.items():
                names = [t for t in w.index if group in groups.get(dim, {}).get(t, ())]
                total = w[names].sum()
                if total > cap + 1e-12:
                    w[names] *= cap / total
                    over = True
        if not over:
            break
    return w


def _benchmark_equity(prices: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Buy-and-hold value of each benchmark, 1.0 at its first price in the window.

    The last price is carried over days its market was shut (valuation only), never past its last price.
    """
    window = prices.reindex(index)
    first = window.bfill().iloc[0]
    alive = window.notna().cumsum().gt(0) & window[::-1].notna().cumsum()[::-1].gt(0)
    return (window.ffill() / first).where(alive)


def run_backtest(
    config: StrategyConfig | str | Path,
    *,
    store: Store | None = None,
    snapshot: str | Path | SnapshotProvider | bool | None = None,
) -> BacktestRun:
    """Run a strategy config (an object or a path to a TOML file) end to end.

    No look-ahead: at each decision date the screen sees factors computed from data up to that date, the
    weights see returns up to that date, and the trade fills at the close ``lag`` rows later.
    """
    cfg, uni = _resolve(config)
    data = load_run_data(cfg, uni, store=store, snapshot=snapshot)
    notes = [f"{t}: {why}" for t, why in data.missing.items()] + list(data.notes)
    members_all = _member_prices(data, uni)
    end = pd.Timestamp(cfg.end) if cfg.end else members_all.index[-1]
    window = members_all.loc[pd.Timestamp(cfg.start):end]
    benchmarks = [b for b in cfg.benchmarks if b in data.tickers]
    calendar = window.index.union(data.base["adj_close"][benchmarks].loc[pd.Timestamp(cfg.start):end].index)
    calendar = calendar[calendar.isin(data.base["adj_close"].dropna(how="all").index)]
    prices = members_all.reindex(calendar)
    prices = prices.loc[:, prices.notna().any()]
    if prices.empty:
        raise DataError(f"no member of {uni.name!r} has a price between {cfg.start} and {end.date()}")
    members = list(prices.columns)
    decisions = rebalance_dates(prices.index, cfg.portfolio.rebalance)
    fingerprint = data_hash([data.base["adj_close"], data.base["close"], data.base["volume"]])
    factors = compute_factors(cfg, uni, data, decisions, fingerprint) if _needs_factors(cfg) else None
    returns = listing_returns(members_all[members])
    base = _categorical(uni, members)
    groups = _groups(uni)
    caps = {dim: dict(c) for dim, c in cfg.portfolio.group_caps}
    rows, logs, log_extra = [], [], []
    tradable = bridge_closed_days(prices)
    frames = _factor_frames(factors, base)
    for day in decisions:
        eligible = prices.columns[tradable.loc[day].notna().to_numpy()]
        table = screen_at(frames.get(day, base), cfg.screen, eligible)
        selected = list(table.index[table["selected"].to_numpy()])
        if cfg.portfolio.weighting == "fixed":
            selected = [t for t, _ in cfg.portfolio.fixed_weights if t in eligible]
        history = returns.loc[:day].iloc[-(cfg.portfolio.lookback + 1):]
        kwargs = {
            "method": cfg.portfolio.weighting,
            "returns": history,
            "scores": table["score"],
            "market_caps": table["market_cap"] if "market_cap" in table.columns else None,
            "fixed_weights": dict(cfg.portfolio.fixed_weights) or None,
            "lookback": cfg.portfolio.lookback,
        }
        cap_note = ""
        try:
            result = weigh(selected, max_weight=cfg.portfolio.max_weight, group_caps=caps or None,
                           groups=groups if caps else None, **kwargs)
            weights = result.weights
        except ConfigError:
            # Too few names passed the screen on this date to meet the caps fully invested: hold each name at
            # most at its caps and the rest in cash (the config itself was checked against top_n).
            result = weigh(selected, **kwargs)
            weights = cap_with_cash(result.weights, cfg.portfolio.max_weight, caps, groups)
            cap_note = (f"caps cannot be met by {len(selected)} selected names: "
                        f"{1 - weights.sum():.4g} held in cash")
        weights = weights.reindex(members).fillna(0.0)
        rows.append(weights.rename(day))
        logs.append(table)
        log_extra.append((weights.reindex(table.index).fillna(0.0).to_numpy(), result.method_used,
                          "; ".join([*result.fallbacks, cap_note] if cap_note else result.fallbacks)))
    targets = pd.DataFrame(rows, columns=members).fillna(0.0)
    engine = run_engine(bridge_closed_days(prices), targets, lag=cfg.portfolio.lag, costs_bps=cfg.portfolio.costs_bps,
                        initial_capital=cfg.portfolio.initial_capital)
    bench_prices = data.base["adj_close"][benchmarks]
    equity = pd.concat([(engine.equity / cfg.portfolio.initial_capital).rename(STRATEGY),
                        _benchmark_equity(bench_prices, prices.index)], axis=1)
    # A starting row the day before the first date, as bt's value series has: every column is 1.0 before the
    # first trade, so costs paid on the first date show in the strategy's first move.
    start_row = pd.DataFrame(1.0, index=[prices.index[0] - pd.Timedelta(days=1)], columns=equity.columns)
    equity = pd.concat([start_row, equity])
    equity.index.name = "date"
    rets = {STRATEGY: engine.returns}
    for b in benchmarks:
        own = listing_returns(bench_prices[[b]].loc[prices.index[0]:prices.index[-1]])[b]
        rets[b] = own.reindex(prices.index).fillna(0.0)
    rets_frame = pd.DataFrame(rets)
    metrics = {}
    for col, series in rets.items():
        own = series if col == STRATEGY else listing_returns(bench_prices[[col]].loc[prices.index[0]:
                                                                                    prices.index[-1]])[col].dropna()
        m = summary(own, periods=TRADING_DAYS_PER_YEAR)
        m["turnover"] = engine.annualised_turnover() if col == STRATEGY else 0.0
        metrics[col] = m
    for b in cfg.benchmarks:
        if b not in benchmarks:
            notes.append(f"benchmark {b}: no prices ({data.missing.get(b, 'not found')})")
    screen_log = pd.concat(logs, keys=decisions, names=["date", "ticker"]) if logs else pd.DataFrame()
    if logs:
        # Added once for all dates: per-row assignment of text columns is slow in pandas.
        sizes = [len(t) for t in logs]
        screen_log["weight"] = np.concatenate([w for w, _, _ in log_extra])
        screen_log["method_used"] = np.repeat([m for _, m, _ in log_extra], sizes)
        screen_log["fallbacks"] = np.repeat([f for _, _, f in log_extra], sizes)
    run = BacktestRun(config=cfg, equity=equity, returns=rets_frame, weights=engine.target_weights,
                      drifted_weights=engine.weights, trades=engine.trades, metrics=metrics,
                      screen_log=screen_log, engine=engine, prices=prices, data_notes=notes)
    run.manifest = manifest(cfg, data, uni, fingerprint)
    return run


def luck_report(run: BacktestRun, split: date | str | float = 0.5, *, n_resamples: int = 1000,
                seed: int = 0) -> dict:
    """Is it luck? Bootstrap intervals for Sharpe and CAGR, and an in-sample / out-of-sample split.

    The intervals are stationary-bootstrap 95% percentile intervals of the strategy's daily returns; the split
    compares the strategy's metrics with the first benchmark's before and after ``split``.

    Returns
    -------
    dict
        ``bootstrap``: {sharpe, cagr} each with point, low, high, se, block_length, n_resamples; ``split``:
        rows of (series, metric, in_sample, out_of_sample, change); ``split_date``.
    """
    from screener.analytics.bootstrap import bootstrap_ci, split_report

    strategy = run.returns[STRATEGY].iloc[1:] if len(run.returns) > 1 else run.returns[STRATEGY]
    bench_cols = [c for c in run.returns.columns if c != STRATEGY]
    benchmark = run.returns[bench_cols[0]].reindex(strategy.index).rename(bench_cols[0]) if bench_cols else None
    boot = {stat: bootstrap_ci(strategy, stat, n_resamples=n_resamples, rng=seed) for stat in ("sharpe", "cagr")}
    table = split_report(strategy.rename(STRATEGY), split, benchmark)
    rows = [{"series": s, "metric": m, **{k: float(v) for k, v in vals.items()}}
            for (s, m), vals in table.iterrows()]
    return {"bootstrap": boot, "split": rows, "split_date": str(table.attrs.get("split_date"))}


def data_hash(frames: list[pd.DataFrame]) -> str:
    """SHA-256 over the dates, tickers and values of the input frames (identifies the data a run used)."""
    h = hashlib.sha256()
    for frame in frames:
        h.update(",".join(map(str, frame.columns)).encode())
        h.update(frame.index.asi8.tobytes())
        h.update(np.ascontiguousarray(frame.to_numpy(dtype="float64")).tobytes())
    return h.hexdigest()


def _versions() -> dict[str, str | None]:
    out = {}
    for pkg in ("screener", "pandas", "numpy", "scipy", "pyarrow", "yfinance", "quantstats", "statsmodels"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def manifest(cfg: StrategyConfig, data: MarketData, uni: Universe, fingerprint: str | None = None) -> dict:
    """Reproducibility record: the parsed config and its hash, the input data hash, package versions."""
    return {
        "config": cfg.to_json_dict(),
        "config_hash": cfg.config_hash(),
        "universe": {"name": uni.name, "path": str(uni.path), "members": list(uni.tickers)},
        "data_hash": fingerprint or data_hash([data.base["adj_close"], data.base["close"], data.base["volume"]]),
        "data_sources": data.sources,
        "missing": data.missing,
        "versions": _versions(),
        "created": date.today().isoformat(),
    }


def screen_as_of(
    config: StrategyConfig | str | Path,
    as_of: date | str,
    *,
    store: Store | None = None,
    snapshot: str | Path | SnapshotProvider | bool | None = None,
) -> pd.DataFrame:
    """The config's screen at one date (factors from data up to that date): ranked, pass/fail per filter."""
    cfg, uni = _resolve(config)
    day = pd.Timestamp(as_of)
    cfg_window = cfg.with_overrides(start=min(cfg.start, day.date() - timedelta(days=1)), end=day.date())
    data = load_run_data(cfg_window, uni, store=store, snapshot=snapshot)
    prices = _member_prices(data, uni).loc[:day]
    if prices.empty:
        raise DataError(f"no member of {uni.name!r} has a price on or before {day.date()}")
    last = prices.index[-1]
    factors = compute_factors(cfg, uni, data, pd.DatetimeIndex([last], name="date"))
    members = list(prices.columns)
    base = _categorical(uni, members)
    table = screen_at(_factor_frames(factors, base).get(last, base), cfg.screen,
                      prices.columns[prices.loc[last].notna().to_numpy()])
    table.attrs["as_of"] = last.date().isoformat()
    return table.sort_values(["selected", "rank"], ascending=[False, True], na_position="last")
