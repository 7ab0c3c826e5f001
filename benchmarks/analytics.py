"""Benchmark: analytics timings on 10 years (2,520 business days) of seeded daily returns.

Cases (one function each, listed in `CASES`; a row of the table per case):
- ``tearsheet``: `screener.tearsheet.write_tearsheet`, strategy against one benchmark, offline HTML (aim < 3 s);
- ``bootstrap_sharpe`` / ``bootstrap_cagr``: `screener.analytics.bootstrap.bootstrap_ci`, 1,000 stationary
  bootstrap resamples with the automatic block length (aim < 1 s);
- ``event_study``: `screener.analytics.events.event_study`, 40 members x 10 events on 2,000 days with late
  listings and gaps, market model, portfolio test (aim < 1 s);
- ``qs_metrics_full``: ``quantstats.reports.metrics(mode="full")`` with a benchmark (the table behind the
  tearsheet), against ``core_summary``: `screener.analytics.metrics.summary` on the same returns.

Each case runs once to warm up, then `RUNS` times; the table prints the median, min-max, the aim and the ratio
of the median to the case named as its baseline. Timings on a shared 2-core machine vary by tens of percent.

Adding a case (e.g. the event study): write ``def case_<name>(data: Data) -> None`` doing one timed run on
``data`` (build inputs at module level or in `Data`, not inside the case), then append
``Case("<name>", case_<name>, aim=..., baseline=...)`` to `CASES`.

Usage: ``python benchmarks/analytics.py [--runs N] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from screener.analytics.bootstrap import bootstrap_ci  # noqa: E402
from screener.analytics.metrics import summary  # noqa: E402

ROWS = 2_520
RUNS = 5
RESAMPLES = 1_000


@dataclass
class Data:
    """Inputs shared by the cases, built once: seeded daily returns and a scratch directory."""

    seed: int = 42
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="screener-bench-")))

    @cached_property
    def benchmark(self) -> pd.Series:
        rng = np.random.default_rng(self.seed)
        index = pd.bdate_range("2015-01-01", periods=ROWS, name="date")
        return pd.Series(rng.normal(0.0004, 0.011, ROWS), index=index, name="SPY")

    @cached_property
    def event_inputs(self) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
        rng = np.random.default_rng(self.seed + 2)
        index = pd.bdate_range("2015-01-01", periods=2000, name="date")
        members = pd.DataFrame(rng.normal(0, 0.02, (2000, 40)), index=index, columns=[f"M{i}" for i in range(40)])
        members.iloc[:300, :10] = np.nan
        members[members.abs() > 0.05] = np.nan
        markets = pd.DataFrame(rng.normal(0, 0.01, (2000, 2)), index=index, columns=["SPY", "STW.AX"])
        market_for = {c: ("SPY" if i % 2 else "STW.AX") for i, c in enumerate(members.columns)}
        events = {f"E{i}": index[400 + 150 * i] for i in range(10)}
        return members, markets, events, market_for

    @cached_property
    def strategy(self) -> pd.Series:
        rng = np.random.default_rng(self.seed + 1)
        values = 0.0002 + 1.2 * self.benchmark.to_numpy() + rng.standard_t(4, ROWS) * 0.008
        return pd.Series(values, index=self.benchmark.index, name="Strategy")


# ------------------------------------------------------------------ cases


def case_tearsheet(data: Data) -> None:
    from screener.tearsheet import write_tearsheet

    write_tearsheet(data.strategy, data.benchmark, data.tmp / "tearsheet.html", title="Benchmark tearsheet")


def case_bootstrap_sharpe(data: Data) -> None:
    bootstrap_ci(data.strategy, "sharpe", n_resamples=RESAMPLES, rng=0)


def case_bootstrap_cagr(data: Data) -> None:
    bootstrap_ci(data.strategy, "cagr", n_resamples=RESAMPLES, rng=0)


def case_event_study(data: Data) -> None:
    from screener.analytics.events import event_study

    members, markets, events, market_for = data.event_inputs
    event_study(members, markets, events, market_for=market_for)


def case_qs_metrics_full(data: Data) -> None:
    import quantstats as qs

    qs.reports.metrics(data.strategy.copy(), benchmark=data.benchmark.copy(), rf=0.0, display=False,
                       mode="full", periods_per_year=252, match_dates=False)


def case_core_summary(data: Data) -> None:
    summary(data.strategy, 0.0, 252)
    summary(data.benchmark, 0.0, 252)  # the quantstats table covers both series too


@dataclass(frozen=True)
class Case:
    """One timed case: its name, the function timed, an aim in seconds and the case its ratio is taken to."""

    name: str
    run: Callable[[Data], None]
    aim: float | None = None
    baseline: str | None = None


CASES: list[Case] = [
    Case("tearsheet", case_tearsheet, aim=3.0),
    Case("bootstrap_sharpe", case_bootstrap_sharpe, aim=1.0),
    Case("bootstrap_cagr", case_bootstrap_cagr, aim=1.0),
    Case("qs_metrics_full", case_qs_metrics_full, baseline="core_summary"),
    Case("core_summary", case_core_summary),
    Case("event_study", case_event_study, aim=1.0),
]


# ------------------------------------------------------------------ timing and table


def time_case(case: Case, data: Data, runs: int) -> list[float]:
    """Seconds per run of `case`, after one untimed warm-up run (imports, caches, fonts)."""
    case.run(data)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        case.run(data)
        out.append(time.perf_counter() - start)
    return out


def table(results: dict[str, list[float]]) -> pd.DataFrame:
    by_name = {c.name: c for c in CASES}
    rows = []
    for name, seconds in results.items():
        case = by_name[name]
        median = statistics.median(seconds)
        base = results.get(case.baseline) if case.baseline else None
        rows.append({
            "case": name,
            "median_s": median,
            "min_s": min(seconds),
            "max_s": max(seconds),
            "aim_s": "" if case.aim is None else f"< {case.aim:g}",
            "within_aim": "" if case.aim is None else ("yes" if median <= case.aim else "NO"),
            "ratio": f"{median / statistics.median(base):,.0f}x {case.baseline}" if base else "",
        })
    return pd.DataFrame(rows).set_index("case")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"timed runs per case (default {RUNS})")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these cases")
    args = parser.parse_args(argv)
    names = [c.name for c in CASES]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}; choose from {', '.join(names)}")
    data = Data()
    results = {}
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        results[case.name] = time_case(case, data, args.runs)
        print(f"  {case.name}: median {statistics.median(results[case.name]):.4f} s", file=sys.stderr)
    import quantstats

    print(f"\n{ROWS:,} daily returns, median of {args.runs} runs after 1 warm-up; quantstats "
          f"{quantstats.__version__}, numpy {np.__version__}, pandas {pd.__version__}\n")
    with pd.option_context("display.width", 120, "display.float_format", "{:.4f}".format):
        print(table(results).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
