"""Benchmark: load the `critical_minerals_ai` panel in USD from the store, cold and warm, beside pandas.read_csv.

Fills a temporary store from the snapshot (``$SCREENER_SNAPSHOT`` or ``../shared/marketdata``), then times
- screener cold: the first `load_prices` in a fresh process (new Store, nothing memoised; OS file cache warm),
- screener warm: repeated `load_prices` in the same process (file stat checked, parsed frames reused),
- pandas.read_csv: reading the same tickers' snapshot CSVs (no FX, no validation) as the floor of plain I/O,
and a synthetic case of 60 tickers x 10 years (the issue's target size). Prints medians and ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from screener.data.panel import load_prices  # noqa: E402
from screener.data.snapshot import SnapshotProvider  # noqa: E402
from screener.data.store import Store  # noqa: E402
from screener.universe import load_universe  # noqa: E402

SNAPSHOT = Path(os.environ.get("SCREENER_SNAPSHOT", REPO.parent / "shared" / "marketdata"))
COLD_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from screener.data.panel import load_prices
from screener.data.store import Store
tickers = {tickers!r}
t = time.perf_counter()
data = load_prices(tickers, currency="USD", start="2015-01-01", store=Store({root!r}), snapshot=False)
print(time.perf_counter() - t, data.prices.shape[0], data.prices.shape[1])
"""


def median_time(fn, repeat: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times)


def cold_times(tickers: list[str], root: Path, repeat: int) -> tuple[float, float, float, tuple[int, int]]:
    script = COLD_SCRIPT.format(repo=str(REPO), tickers=tickers, root=str(root))
    times, shape = [], (0, 0)
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
        shape = (int(out[1]), int(out[2]))
    return statistics.median(times), min(times), max(times), shape


def synthetic_store(root: Path, n_tickers: int = 60, n_days: int = 2520) -> list[str]:
    rng = np.random.default_rng(0)
    index = pd.bdate_range("2015-01-02", periods=n_days, name="date")
    store = Store(root)
    suffixes = ["", ".AX", ".TO", ".L", ".SS", ".HK"]
    tickers = [f"SYN{i:02d}{suffixes[i % len(suffixes)]}" for i in range(n_tickers)]
    for t in tickers:
        close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, n_days)))
        store.write(t, pd.DataFrame({"open": close, "high": close, "low": close, "close": close,
                                     "adj_close": close, "volume": 1e5}, index=index), source="synthetic")
    for fx in ("AUDUSD=X", "CADUSD=X", "GBPUSD=X", "CNY=X", "HKD=X"):
        store.write(fx, pd.DataFrame({c: 1.0 + 0 * np.arange(n_days) for c in
                                      ("open", "high", "low", "close", "adj_close")} | {"volume": 0.0},
                                     index=index), source="synthetic")
    return tickers


def report(label: str, stats: tuple[float, float, float], base: float | None = None) -> None:
    med, lo, hi = stats
    ratio = f"{med / base:6.2f}x read_csv" if base else ""
    print(f"  {label:<34} {med * 1000:8.1f} ms  (min {lo * 1000:.1f}, max {hi * 1000:.1f})  {ratio}")


def main() -> None:
    repeat = int(os.environ.get("BENCH_REPEAT", "7"))
    uni = load_universe("critical_minerals_ai")
    provider = SnapshotProvider(SNAPSHOT)
    available = set(provider.tickers())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        store = Store(root)
        store.import_bars(provider.fetch(provider.tickers()), source="snapshot")
        tickers = [t for t in (*uni.tickers, *uni.benchmarks) if t in available]
        csv_paths = [provider.path(t) for t in tickers]

        def read_csv() -> None:
            for p in csv_paths:
                pd.read_csv(p, index_col="date", parse_dates=True)

        def warm() -> None:
            load_prices(tickers, currency="USD", start="2015-01-01", store=store, snapshot=False)

        warm()
        csv = median_time(read_csv, repeat)
        cold = cold_times(tickers, root, repeat)
        print(f"critical_minerals_ai from the snapshot store: {len(tickers)} tickers with data of "
              f"{len(uni.tickers) + len(uni.benchmarks)}, panel {cold[3][0]} dates x {cold[3][1]} tickers, "
              f"medians of {repeat}")
        report("pandas.read_csv of the same CSVs", csv)
        report("screener cold (fresh process)", cold[:3], csv[0])
        report("screener warm (same process)", median_time(warm, repeat), csv[0])

        syn_root = Path(tmp) / "synthetic"
        syn = synthetic_store(syn_root)
        syn_store = Store(syn_root)

        def syn_warm() -> None:
            load_prices(syn, currency="USD", start="2015-01-01", store=syn_store, snapshot=False)

        syn_warm()
        syn_cold = cold_times(syn, syn_root, repeat)
        print(f"synthetic: 60 tickers x 2,520 days on 6 exchanges (5 FX series), medians of {repeat}")
        report("screener cold (fresh process)", syn_cold[:3])
        report("screener warm (same process)", median_time(syn_warm, repeat))


if __name__ == "__main__":
    main()
