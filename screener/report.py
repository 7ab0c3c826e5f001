"""Writing a backtest run to disk: CSVs, JSON metrics and manifest, the config that reproduces it."""

from __future__ import annotations

import json
import math
from pathlib import Path

from screener.pipeline import BacktestRun

RUN_FILES = ("equity.csv", "weights.csv", "trades.csv", "metrics.json", "manifest.json", "screen_log.csv",
             "config.toml", "tearsheet.html")


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_run(run: BacktestRun, out: str | Path, *, tearsheet: bool = True) -> Path:
    """Write a run's files into ``out`` (created if needed); returns the directory.

    ``equity.csv`` (date, strategy, each benchmark, all starting at 1.0), ``weights.csv`` (trade dates x
    tickers), ``trades.csv``, ``metrics.json`` (per column: cagr, volatility, sharpe, sortino, max_drawdown,
    calmar, turnover; null where undefined), ``manifest.json``, ``screen_log.csv``, ``config.toml`` and, unless
    ``tearsheet=False``, ``tearsheet.html`` (quantstats, against the first benchmark; one offline file).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fmt = {"date_format": "%Y-%m-%d", "float_format": "%.12g"}
    run.equity.to_csv(out / "equity.csv", index_label="date", **fmt)
    run.weights.to_csv(out / "weights.csv", index_label="date", **fmt)
    run.trades.to_csv(out / "trades.csv", index=False, **fmt)
    if not run.screen_log.empty:
        run.screen_log.to_csv(out / "screen_log.csv", **fmt)
    (out / "metrics.json").write_text(json.dumps(_json_safe(run.metrics), indent=2) + "\n", encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(_json_safe(run.manifest), indent=2, default=str) + "\n",
                                       encoding="utf-8")
    (out / "config.toml").write_text(run.config.to_toml(), encoding="utf-8")
    if tearsheet:
        from screener.tearsheet import tearsheet_from_run_dir  # quantstats is slow to import: only when asked

        tearsheet_from_run_dir(out)
    return out
