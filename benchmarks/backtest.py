"""Benchmark: `screener.backtest.run_backtest` against bt 1.4.1 and vectorbt on random-walk prices.

One run prints, side by side, medians (5 timed runs after 1 warm-up, the tools taking turns; a run of a call
under 50 ms repeats it for ~50 ms and counts the mean), min-max and ratios for
- single backtests: 2,520 business days (10 years), monthly rebalance, N = 20 and 200 assets, equal weight and
  inverse volatility (bt's ``WeighInvVol``: 3-month window, lag 0);
- a sweep of 200 momentum variants on N = 20: lookback 1..9, 12 months x top-k 2, 4, 6, 8, 10 x rebalance
  weekly / monthly / quarterly / yearly (bt's ``SelectMomentum`` + ``WeighEqually``). Ours and vectorbt run all
  200 (vectorbt once as 200 calls and once as one batched call); bt runs a subset of 8, timed once each, and its
  200-variant figure is extrapolated per frequency and labelled so.

Every timed path is "prices DataFrame in, equity Series out", including the target-weight computation. Before
timing, each curve is checked against ours (max relative difference printed; the run stops above 1e-9).
bt runs with ``integer_positions=False`` (fractional shares, as ours); vectorbt with ``from_orders``,
target-percent sizes, shared cash, one group and ``call_seq="auto"``. Without vectorbt installed its columns
are skipped with a note. Takes about 3-5 minutes on 2 cores.

Usage: ``python benchmarks/backtest.py [--quick]`` (``--quick``: 1 warm-up + 2 runs, bt subset of 4).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from screener.backtest import rebalance_dates, run_backtest  # noqa: E402

try:
    import bt
except ImportError:  # pragma: no cover - bt is a test dependency
    bt = None
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vectorbt as vbt
except ImportError:
    vbt = None

ROWS = 2_520
CAPITAL = 1_000_000.0
MATCH_RTOL = 1e-9
FREQ_CODES = {"W": "weekly", "M": "monthly", "Q": "quarterly", "Y": "annual"}
LOOKBACKS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12)
TOP_KS = (2, 4, 6, 8, 10)


# ------------------------------------------------------------------ data and target weights


def random_walk_prices(n_assets: int, seed: int = 42) -> pd.DataFrame:
    """Geometric random walks, 2,520 business days from 2015-01-01, daily vol 1-3 % per asset."""
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.01, 0.03, n_assets)
    steps = rng.normal(0.0003, 1.0, (ROWS, n_assets)) * vol
    index = pd.bdate_range("2015-01-01", periods=ROWS, name="date")
    columns = pd.Index([f"A{i:03d}" for i in range(n_assets)], name="asset")
    return pd.DataFrame(100 * np.exp(np.cumsum(steps, axis=0)), index=index, columns=columns)


def _windows(prices: pd.DataFrame, dates: pd.DatetimeIndex, months: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `dates` and of the first row of ``prices.loc[date - months : date]`` (bt's window)."""
    ends = prices.index.get_indexer(dates)
    starts = prices.index.searchsorted(dates - pd.DateOffset(months=months), side="left")
    return starts, ends


def _window_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Column sums of ``values[lo_j:hi_j]`` for each window j: shape (n_windows, n_columns).

    One ``np.add.reduceat`` over the sorted window bounds, then differences of a running sum over those few
    segments: cheaper than a cumulative sum over every row.
    """
    n = len(values)
    bounds = np.unique(np.concatenate((lo, hi)))
    bounds = bounds[bounds < n]
    if len(bounds) == 0:
        return np.zeros((len(lo), values.shape[1]))
    segments = np.add.reduceat(values, bounds, axis=0)
    running = np.concatenate((np.zeros((1, values.shape[1])), np.cumsum(segments, axis=0)))
    return running[np.searchsorted(bounds, hi)] - running[np.searchsorted(bounds, lo)]


def equal_weight_targets(prices: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """bt ``SelectAll`` + ``WeighEqually``: 1/n over the assets with a close on each rebalance date."""
    dates = rebalance_dates(prices.index, frequency)
    listed = prices.loc[dates].notna().to_numpy(dtype=np.float64)
    counts = listed.sum(axis=1, keepdims=True)
    return pd.DataFrame(np.divide(listed, counts, out=np.zeros_like(listed), where=counts > 0), dates, prices.columns)


def inverse_vol_targets(prices: pd.DataFrame, frequency: str, months: int = 3) -> pd.DataFrame:
    """bt ``SelectAll`` + ``WeighInvVol()``: weight proportional to 1 / std(ddof=1) of daily returns.

    The window is ``prices.loc[t - months : t]``; its returns are those between two of its rows; an asset
    needs two of them and a non-zero std; a lone selected asset gets weight 1 (as in bt). Returns are centred
    on their column mean before the windowed sums of x and x^2, which keeps the one-pass variance accurate.
    """
    dates = rebalance_dates(prices.index, frequency)
    starts, ends = _windows(prices, dates, months)
    p = prices.to_numpy(dtype=np.float64)
    returns = np.empty_like(p)
    returns[0] = np.nan
    np.divide(p[1:], p[:-1], out=returns[1:])
    returns[1:] -= 1.0
    has = ~np.isnan(returns)
    if has.all():
        count = (ends - starts)[:, None].astype(np.float64)
    else:
        returns[~has] = 0.0
        count = _window_sums(has.astype(np.float64), starts + 1, ends + 1)
    returns -= returns.sum(axis=0) / np.maximum(has.sum(axis=0), 1)
    if not has.all():
        returns[~has] = 0.0
    lo, hi = starts + 1, ends + 1  # returns on rows start+1 .. end are inside the window
    total = _window_sums(returns, lo, hi)
    squares = _window_sums(returns * returns, lo, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (squares - total * total / count) / (count - 1)
        inv = 1.0 / np.sqrt(var)
    selected = ~np.isnan(p[ends])
    inv = np.where(selected & (count >= 2) & (var > 0) & np.isfinite(inv), inv, 0.0)
    lone = selected.sum(axis=1) == 1
    inv[lone] = selected[lone]
    sums = inv.sum(axis=1, keepdims=True)
    return pd.DataFrame(np.divide(inv, sums, out=np.zeros_like(inv), where=sums > 0), dates, prices.columns)


def momentum_targets(prices: pd.DataFrame, frequency: str, months: int, top_k: int) -> pd.DataFrame:
    """bt ``SelectAll`` + ``SelectMomentum(top_k, DateOffset(months=months))`` + ``WeighEqually``.

    Total return from the first observed close in ``prices.loc[t - months : t]`` to today's (two closes
    needed), top `top_k` by descending return, equal weight.
    """
    dates = rebalance_dates(prices.index, frequency)
    starts, ends = _windows(prices, dates, months)
    p = prices.to_numpy(dtype=np.float64)
    n, m = p.shape
    valid = ~np.isnan(p)
    if valid.all():
        observed = (ends - starts + 1)[:, None]
        first = p[starts]
    else:  # first observed close at or after each window start
        observed = _window_sums(valid.astype(np.float64), starts, ends + 1)
        nxt = np.where(valid, np.arange(n)[:, None], n - 1)
        nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
        first = p[nxt[starts], np.arange(m)]
    stat = p[ends] / first - 1
    stat[(observed < 2) | ~valid[ends]] = np.nan
    order = np.argsort(np.where(np.isnan(stat), np.inf, -stat), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(m)[None, :].repeat(len(dates), axis=0), axis=1)
    keep = (rank < top_k) & ~np.isnan(stat)
    counts = keep.sum(axis=1, keepdims=True)
    weights = np.divide(keep, counts, out=np.zeros(keep.shape), where=counts > 0)
    return pd.DataFrame(weights, dates, prices.columns)


# ------------------------------------------------------------------ the three engines


def ours(prices: pd.DataFrame, targets: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.Series:
    return run_backtest(prices, targets(prices), initial_capital=CAPITAL).equity


def with_bt(prices: pd.DataFrame, algos: list) -> pd.Series:
    strategy = bt.Strategy("s", algos)
    result = bt.run(bt.Backtest(strategy, prices, integer_positions=False, initial_capital=CAPITAL, progress_bar=False))
    return result.backtests["s"].strategy.values.iloc[1:]  # drop bt's synthetic first row


def with_vbt(prices: pd.DataFrame, targets: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.Series:
    sizes = targets(prices).reindex(prices.index)  # NaN = no order on that row
    portfolio = vbt.Portfolio.from_orders(
        prices, size=sizes, size_type="targetpercent", group_by=True, cash_sharing=True, call_seq="auto",
        init_cash=CAPITAL, freq="1D",
    )
    return portfolio.value()


def with_vbt_batched(prices: pd.DataFrame, variants: list[tuple[str, int, int]]) -> pd.DataFrame:
    """All momentum variants in one ``from_orders`` call: 200 groups x N columns, one equity column per group."""
    sizes = [momentum_targets(prices, FREQ_CODES[f], lb, k).reindex(prices.index).to_numpy() for f, lb, k in variants]
    columns = pd.MultiIndex.from_product([range(len(variants)), prices.columns], names=["variant", "asset"])
    close = pd.DataFrame(np.tile(prices.to_numpy(), (1, len(variants))), prices.index, columns)
    portfolio = vbt.Portfolio.from_orders(
        close, size=np.hstack(sizes), size_type="targetpercent", group_by="variant", cash_sharing=True,
        call_seq="auto", init_cash=CAPITAL, freq="1D",
    )
    return portfolio.value()


def bt_algos(kind: str, frequency: str = "M", months: int = 3, top_k: int = 5) -> list:
    run = {"W": bt.algos.RunWeekly, "M": bt.algos.RunMonthly, "Q": bt.algos.RunQuarterly, "Y": bt.algos.RunYearly}
    weigh = {
        "ew": [bt.algos.WeighEqually()],
        "iv": [bt.algos.WeighInvVol()],
        "mom": [bt.algos.SelectMomentum(top_k, lookback=pd.DateOffset(months=months)), bt.algos.WeighEqually()],
    }[kind]
    return [run[frequency](), bt.algos.SelectAll(), *weigh, bt.algos.Rebalance()]


# ------------------------------------------------------------------ timing and printing


def timed(fns: dict[str, Callable[[], object]], runs: int, warmup: int = 1) -> dict[str, tuple[float, float, float]]:
    """Median, min and max wall time per call of each function, interleaved round by round.

    The machine is shared: taking turns exposes every tool to the same background load, so the ratios hold
    even when the absolute times wobble. A run of a fast function (under 50 ms) repeats it enough times to
    last about 50 ms and reports the mean per call, so one scheduler hiccup cannot make a run.
    """
    repeats = {}
    for name, fn in fns.items():
        elapsed = 0.0
        for _ in range(max(warmup, 1)):
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
        repeats[name] = max(1, math.ceil(0.05 / max(elapsed, 1e-6))) if elapsed < 0.05 else 1
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(repeats[name]):
                fn()
            times[name].append((time.perf_counter() - start) / repeats[name])
    return {name: (statistics.median(t), min(t), max(t)) for name, t in times.items()}


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def fmt(t: tuple[float, float, float] | None) -> str:
    if t is None:
        return "-"
    return f"{t[0]:.4g} ({t[1]:.4g}-{t[2]:.4g})"


def ratio(a: tuple[float, float, float] | None, b: tuple[float, float, float]) -> str:
    return f"{a[0] / b[0]:.0f}x" if a is not None else "-"


def max_rel(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a / b - 1)))


def check(label: str, diff: float) -> str:
    if not diff <= MATCH_RTOL:
        raise SystemExit(f"{label}: curves differ by {diff:.3g} relative (> {MATCH_RTOL}); not timing")
    return f"{diff:.1e}"


def single_backtests(runs: int) -> None:
    print("\n## One backtest: 2,520 rows, monthly rebalance, seconds: median (min-max)\n")
    print("| case | ours | bt | vectorbt | bt / ours | vbt / ours | max rel. diff bt, vbt |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for kind, label, targets in (
        ("ew", "equal weight", lambda p: equal_weight_targets(p, "monthly")),
        ("iv", "inverse vol", lambda p: inverse_vol_targets(p, "monthly")),
    ):
        for n in (20, 200):
            prices = random_walk_prices(n)
            ref = ours(prices, targets)
            diffs = [check(f"bt {label} N={n}", max_rel(ref, with_bt(prices, bt_algos(kind))))]
            if vbt is not None:
                diffs.append(check(f"vectorbt {label} N={n}", max_rel(ref, with_vbt(prices, targets))))
            fns = {"ours": lambda p=prices, t=targets: ours(p, t),
                   "bt": lambda p=prices, k=kind: with_bt(p, bt_algos(k))}
            if vbt is not None:
                fns["vbt"] = lambda p=prices, t=targets: with_vbt(p, t)
            got = timed(fns, runs)
            t_ours, t_bt, t_vbt = got["ours"], got["bt"], got.get("vbt")
            print(f"| {label}, N={n} | {fmt(t_ours)} | {fmt(t_bt)} | {fmt(t_vbt)} | {ratio(t_bt, t_ours)} | "
                  f"{ratio(t_vbt, t_ours)} | {', '.join(diffs)} |", flush=True)


def sweep(runs: int, bt_subset: list[tuple[str, int, int]]) -> None:
    prices = random_walk_prices(20)
    variants = [(f, lb, k) for f in FREQ_CODES for lb in LOOKBACKS for k in TOP_KS]

    def run_ours() -> list[pd.Series]:
        return [ours(prices, lambda p, f=f, lb=lb, k=k: momentum_targets(p, FREQ_CODES[f], lb, k))
                for f, lb, k in variants]

    def run_vbt() -> list[pd.Series]:
        return [with_vbt(prices, lambda p, f=f, lb=lb, k=k: momentum_targets(p, FREQ_CODES[f], lb, k))
                for f, lb, k in variants]

    print(f"\n## Sweep: {len(variants)} momentum backtests on N=20 (lookback x top-k x W/M/Q/Y), seconds\n")
    reference = run_ours()
    worst = {}
    if vbt is not None:
        worst["vectorbt, 200 calls"] = max(max_rel(r, v) for r, v in zip(reference, run_vbt(), strict=True))
        batched = with_vbt_batched(prices, variants)
        worst["vectorbt, 1 batched call"] = max(
            max_rel(r, batched.iloc[:, i]) for i, r in enumerate(reference)
        )
    bt_times: dict[str, list[float]] = {f: [] for f in FREQ_CODES}
    bt_worst = 0.0
    for f, lb, k in bt_subset:
        start = time.perf_counter()
        curve = with_bt(prices, bt_algos("mom", f, lb, k))
        bt_times[f].append(time.perf_counter() - start)
        bt_worst = max(bt_worst, max_rel(reference[variants.index((f, lb, k))], curve))
    worst[f"bt, {len(bt_subset)} of {len(variants)}"] = bt_worst
    for label, diff in worst.items():
        check(f"sweep {label}", diff)

    fns = {"ours": run_ours}
    if vbt is not None:
        fns["vectorbt, 200 calls"] = run_vbt
        fns["vectorbt, 1 batched call"] = lambda: with_vbt_batched(prices, variants)
    got = timed(fns, runs)
    t_ours = got["ours"]
    rows = [(label, t, f"{worst[label]:.1e}" if label in worst else "") for label, t in got.items()]
    if vbt is None:
        print("(vectorbt not installed: `pip install vectorbt` to include it)")
    per_freq = {f: statistics.mean(ts) for f, ts in bt_times.items() if ts}
    per_variant = len(variants) // len(FREQ_CODES)
    bt_total = sum(t * per_variant for t in per_freq.values())
    rows.append((f"bt, EXTRAPOLATED from {len(bt_subset)} runs (1 each)", (bt_total, bt_total, bt_total),
                 f"{bt_worst:.1e}"))
    print("| tool | total: median (min-max) | per backtest | / ours | max rel. diff vs ours |")
    print("| --- | --- | --- | --- | --- |")
    for label, t, diff in rows:
        shown = f"{t[0]:.3g}" if label.startswith("bt") else fmt(t)
        print(f"| {label} | {shown} | {t[0] / len(variants) * 1000:.2f} ms | {t[0] / t_ours[0]:.1f}x | {diff} |")
    print("\nbt per backtest by frequency (ms): "
          + ", ".join(f"{FREQ_CODES[f]} {t * 1000:.0f}" for f, t in per_freq.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 warm-up + 2 runs and a bt subset of 4")
    args = parser.parse_args()
    if bt is None:
        raise SystemExit("bt is not installed: pip install bt")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=pd.errors.PerformanceWarning)
    runs = 2 if args.quick else 5
    subset = [("W", 3, 4), ("M", 3, 4), ("Q", 3, 4), ("Y", 3, 4)]
    if not args.quick:
        subset += [("W", 12, 10), ("M", 12, 10), ("Q", 12, 10), ("Y", 12, 10)]
    vbt_note = f"vectorbt {vbt.__version__}" if vbt is not None else "vectorbt NOT INSTALLED (skipped)"
    print(f"# Backtest engines: numpy {np.__version__}, pandas {pd.__version__}, bt {bt.__version__}, {vbt_note}")
    print(f"{runs} timed runs after 1 warm-up; curves checked against ours first (tolerance {MATCH_RTOL:g}).")
    print(f"Load average at start (2 shared cores): {load_average()}")
    start = time.perf_counter()
    single_backtests(runs)
    sweep(runs, subset)
    print(f"\nTotal benchmark time {time.perf_counter() - start:.0f} s; load average {load_average()}")


if __name__ == "__main__":
    main()
