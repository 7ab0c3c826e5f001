"""Benchmark: one `weigh` call per method for 20 names x 63 daily returns (a backtest makes ~120 of them).

Prints the median of 15 calls after a warm-up, with and without a 10% name cap.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from screener.weights import weigh

METHODS = ("equal", "inverse_vol", "risk_parity", "min_variance", "max_sharpe")


def returns(n_assets: int = 20, n_rows: int = 63, seed: int = 42) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.01, (n_rows, 1))
    scale = np.linspace(0.5, 2.0, n_assets)
    values = market * rng.uniform(0.5, 1.5, n_assets) + rng.normal(0.001, 0.015, (n_rows, n_assets)) * scale
    return pd.DataFrame(values, index=pd.bdate_range("2023-01-02", periods=n_rows),
                        columns=[f"T{i:02d}" for i in range(n_assets)])


def main() -> None:
    data = returns()
    tickers = list(data.columns)
    print(f"{'method':<14}{'no caps (ms)':>14}{'max_weight 0.1 (ms)':>22}   x 120 rebalances (s)")
    for method in METHODS:
        row = []
        for cap in (None, 0.1):
            weigh(tickers, method=method, returns=data, max_weight=cap)
            times = []
            for _ in range(15):
                start = time.perf_counter()
                weigh(tickers, method=method, returns=data, max_weight=cap)
                times.append(time.perf_counter() - start)
            row.append(statistics.median(times))
        print(f"{method:<14}{row[0] * 1e3:>14.2f}{row[1] * 1e3:>22.2f}   {row[1] * 120:>10.3f}")


if __name__ == "__main__":
    main()
