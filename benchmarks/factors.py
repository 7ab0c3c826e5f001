"""Benchmark: every factor for `critical_minerals_ai` at 120 month-ends (aim: under 300 ms).

Prices come from the snapshot (``$SCREENER_SNAPSHOT`` or ``../shared/marketdata``) loaded once; the timed work
is `factor_table` (supply-risk + market factors and reasons), and separately the supply-risk and the market
part alone. Medians of 7 runs after a warm-up.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from screener.factors.market import market_factors  # noqa: E402
from screener.factors.supply import supply_factors  # noqa: E402
from screener.factors.table import FACTOR_BENCHMARKS, factor_table, load_factor_data  # noqa: E402
from screener.reference import load_reference  # noqa: E402
from screener.universe import load_universe  # noqa: E402

SNAPSHOT = Path(os.environ.get("SCREENER_SNAPSHOT", REPO.parent / "shared" / "marketdata"))


def timed(fn, repeat: int = 7) -> tuple[float, float, float]:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    uni = load_universe("critical_minerals_ai")
    reference = load_reference()
    dates = pd.date_range("2015-09-30", periods=120, freq="ME", name="date")
    start = time.perf_counter()
    data = load_factor_data(uni, dates[0].date(), dates[-1].date(), snapshot=SNAPSHOT)
    load_time = time.perf_counter() - start
    priced = [t for t in uni.tickers if t in data.tickers]
    adj = data.base["adj_close"].reindex(columns=priced)
    bench = {b: data.base["adj_close"][b] for b in FACTOR_BENCHMARKS if b in data.tickers}
    cases = {
        "factor_table (all factors + reasons)": lambda: factor_table(uni, data, dates, reference=reference),
        "supply-risk factors only": lambda: supply_factors(uni, reference, dates),
        "market factors only": lambda: market_factors(adj, data.base["close"][priced], data.base["volume"][priced],
                                                      dates, benchmarks=bench),
    }
    table = factor_table(uni, data, dates, reference=reference)
    print(f"critical_minerals_ai: {len(uni.tickers)} members ({len(priced)} with snapshot prices), "
          f"{len(dates)} month-ends {dates[0].date()}..{dates[-1].date()}, {len(table)} rows x {table.shape[1]} "
          f"columns; price load (not timed below) {load_time * 1000:.0f} ms")
    for label, fn in cases.items():
        med, lo, hi = timed(fn)
        print(f"  {label:<40} {med * 1000:8.1f} ms  (min {lo * 1000:.1f}, max {hi * 1000:.1f})")


if __name__ == "__main__":
    main()
