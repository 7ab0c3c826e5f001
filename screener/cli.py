"""Command-line interface: ``screener data ...``, ``screener universe ...``, ``screener app``.

User errors print one line on stderr and exit with status 1 (2 for usage errors); never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from screener.exceptions import ScreenerError


class _UsageError(ScreenerError):
    """A command-line argument is invalid."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _tickers(text: str) -> list[str]:
    tickers = [t.strip() for t in text.split(",") if t.strip()]
    if not tickers:
        raise argparse.ArgumentTypeError("expected comma-separated tickers, e.g. MP,LYC.AX")
    return tickers


class _ProgressBar:
    """A one-line progress bar on stderr (silent when stderr is not a terminal, except for the final line)."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def __call__(self, done: int, total: int, ticker: str) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        line = f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {ticker:<12}"
        if self.tty:
            self.stream.write(line)
            self.stream.flush()
        if done >= total:
            self.stream.write((line if not self.tty else "") + "\n")
            self.stream.flush()


def _print_table(rows: list[dict], columns: Sequence[str], out=None) -> None:
    out = out or sys.stdout
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


# -- data ---------------------------------------------------------------------------------------------------
def _cmd_data_import(args: argparse.Namespace) -> int:
    from screener.data.snapshot import SnapshotProvider
    from screener.data.store import Store

    provider = SnapshotProvider(args.directory)
    tickers = args.tickers or provider.tickers()
    result = provider.fetch(tickers, progress=_ProgressBar("import"))
    store = Store()
    written = store.import_bars(result, source=f"snapshot:{Path(args.directory).resolve()}")
    print(f"imported {len(written)} tickers into {store.root}")
    for t in result.empty:
        print(f"warning: {t}: no price file in {provider.prices_dir}", file=sys.stderr)
    for t, why in result.errors.items():
        print(f"error: {t}: {why}", file=sys.stderr)
    return 1 if result.errors or result.empty else 0


def _fetch_targets(args: argparse.Namespace) -> list[str]:
    from screener.data.panel import default_currency
    from screener.markets import fx_route
    from screener.universe import load_universe

    if args.universe:
        uni = load_universe(args.universe)
        tickers = list(uni.tickers) + list(uni.benchmarks)
        currencies = {m.ticker: m.currency for m in uni.members}
        base = uni.base_currency
    else:
        tickers = list(args.tickers)
        currencies = {}
        base = "USD"
    fx = []
    for t in tickers:
        if not t.endswith("=X"):
            fx += [s for s, _ in fx_route(currencies.get(t) or default_currency(t), base)]
    return list(dict.fromkeys(tickers + fx))


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from screener.data.store import Store
    from screener.data.yahoo import YahooProvider, yfinance_version

    tickers = _fetch_targets(args)
    store = Store()
    report = store.refresh(tickers, YahooProvider(), start=args.start, end=args.end,
                           progress=_ProgressBar("fetch"), yfinance_version=yfinance_version())
    if report.offline:
        print(f"error: {report.offline}; the store is unchanged and still serves its data "
              "(see `screener data status` for staleness)", file=sys.stderr)
        return 1
    print(f"updated {len(report.updated)} tickers, unchanged {len(report.unchanged)}, "
          f"re-fetched {len(report.refetched)}, empty {len(report.empty)}, failed {len(report.errors)}")
    for t, why in report.refetched.items():
        print(f"note: {t}: {why}", file=sys.stderr)
    for t in report.empty:
        print(f"warning: {t}: Yahoo Finance returned no data (unknown or delisted symbol?)", file=sys.stderr)
    for t, why in report.errors.items():
        print(f"error: {t}: {why}", file=sys.stderr)
    return 1 if report.errors else 0


def _cmd_data_status(args: argparse.Namespace) -> int:
    from screener.data.store import Store

    store = Store()
    records = store.status()
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not records:
        print(f"the store at {store.root} is empty: run `screener data import DIR` or `screener data fetch`")
        return 0
    rows = [{**r, "problems": len(r["problems"]) or "", "warnings": len(r["warnings"]) or "",
             "stale": "stale" if r["stale"] else ""} for r in records]
    _print_table(rows, ["ticker", "first_date", "last_date", "rows", "source", "stale", "problems", "warnings"])
    for r in records:
        for p in r["problems"]:
            print(f"problem: {p}", file=sys.stderr)
    return 0


def _cmd_data_prices(args: argparse.Namespace) -> int:
    from screener.data.panel import load_prices

    data = load_prices(args.tickers, currency=args.currency, start=args.start, end=args.end)
    for t, why in data.missing.items():
        print(f"error: {t}: {why}", file=sys.stderr)
    for t in data.stale:
        print(f"warning: {t}: stale, last date {data.prices[t].last_valid_index().date()}", file=sys.stderr)
    if data.prices.empty:
        return 1
    frame = data.prices
    if args.csv:
        frame.to_csv(sys.stdout, date_format="%Y-%m-%d", float_format="%.10g")
    else:
        print(f"adjusted close in {data.currency} ({len(frame)} dates)")
        print(frame.tail(10).to_string(float_format=lambda v: f"{v:.4f}"))
    return 1 if data.missing else 0


# -- universe -----------------------------------------------------------------------------------------------
def _cmd_universe_list(args: argparse.Namespace) -> int:
    from screener.universe import list_universes, load_universe

    rows = []
    for name in list_universes():
        uni = load_universe(name)
        rows.append({"name": name, "members": len(uni.members), "base_currency": uni.base_currency,
                     "benchmarks": ",".join(uni.benchmarks), "title": uni.title})
    _print_table(rows, ["name", "members", "base_currency", "benchmarks", "title"])
    return 0


def _cmd_universe_show(args: argparse.Namespace) -> int:
    from screener.universe import load_universe

    uni = load_universe(args.name)
    if args.json:
        json.dump(uni.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{uni.name}: {uni.title} ({len(uni.members)} members, base {uni.base_currency}, "
          f"benchmarks {', '.join(uni.benchmarks)})")
    rows = [{"ticker": m.ticker, "name": m.name[:34], "exchange": m.exchange, "currency": m.currency,
             "stages": ",".join(m.stages), "elements": ",".join(m.elements), "status": m.status}
            for m in uni.members]
    _print_table(rows, ["ticker", "name", "exchange", "currency", "stages", "elements", "status"])
    return 0


# -- strategies ---------------------------------------------------------------------------------------------
def _cmd_screen(args: argparse.Namespace) -> int:
    from screener.pipeline import screen_as_of

    table = screen_as_of(args.config, args.as_of)
    cols = [c for c in table.columns if c.startswith("pass: ")] + ["passed", "score", "rank", "selected"]
    cols += [c for c in table.columns if c.startswith("contrib: ")]
    view = table[[c for c in cols if c in table.columns]]
    if args.csv:
        view.to_csv(sys.stdout, float_format="%.6g")
        return 0
    print(f"screen as of {table.attrs.get('as_of')} ({int(table['selected'].sum())} selected of {len(table)})")
    print(view.to_string(float_format=lambda v: f"{v:.4g}"))
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from screener.pipeline import STRATEGY, run_backtest
    from screener.report import write_run

    run = run_backtest(args.config)
    for note in run.data_notes:
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        try:
            out = write_run(run, args.out, tearsheet=not args.no_tearsheet)
        except (ValueError, TypeError) as exc:
            out = write_run(run, args.out, tearsheet=False)
            print(f"warning: no tearsheet: {exc}", file=sys.stderr)
        print(f"wrote {out}")
    rows = [{"series": k, **{m: (f"{v:.4f}" if isinstance(v, float) else v) for m, v in vals.items()}}
            for k, vals in run.metrics.items()]
    _print_table(rows, ["series", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "turnover"])
    eq = run.equity[STRATEGY]
    print(f"{run.config.name}: {eq.index[0].date()} to {eq.index[-1].date()}, final value {eq.iloc[-1]:.4f}")
    if args.split is not None:
        from screener.pipeline import luck_report

        split = float(args.split) if args.split.replace(".", "", 1).isdigit() else args.split
        luck = luck_report(run, split)
        for stat, ci in luck["bootstrap"].items():
            print(f"{stat}: {ci['point']:.4f}, 95% bootstrap interval [{ci['low']:.4f}, {ci['high']:.4f}] "
                  f"(stationary bootstrap, mean block {ci['block_length']:.1f} days, {ci['n_resamples']} resamples)")
        print(f"in-sample / out-of-sample split at {luck['split_date']}:")
        _print_table([{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()} for r in luck["split"]],
                     ["series", "metric", "in_sample", "out_of_sample", "change"])
        if args.out:
            (Path(args.out) / "luck.json").write_text(json.dumps(luck, indent=2, default=str) + "\n")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from screener.tearsheet import tearsheet_from_run_dir

    if not (args.run_dir / "equity.csv").exists():
        raise _UsageError(f"{args.run_dir}: not a run directory (no equity.csv); make one with "
                          "`screener backtest CONFIG --out DIR`")
    try:
        path = tearsheet_from_run_dir(args.run_dir)
    except (ValueError, TypeError) as exc:
        raise _UsageError(f"{args.run_dir}: cannot write a tearsheet: {exc}") from None
    print(f"wrote {path}")
    return 0


def _cmd_factors(args: argparse.Namespace) -> int:
    from screener.factors.table import explain, factors_as_of

    if args.explain:
        report = explain(args.universe, args.as_of, args.explain)
        json.dump(report, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    table = factors_as_of(args.universe, args.as_of)
    if args.json:
        records = []
        for ticker, row in table.iterrows():
            rec = {"ticker": ticker}
            for k, v in row.items():
                if isinstance(v, float) and v != v:
                    v = None
                elif isinstance(v, tuple):
                    v = list(v)
                elif hasattr(v, "item"):
                    v = v.item()
                rec[k] = v
            records.append(rec)
        json.dump(records, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif args.csv:
        table.to_csv(sys.stdout, float_format="%.8g")
    else:
        print(f"factors as of {table.attrs.get('as_of', args.as_of)}")
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    return 0


# -- analytics ----------------------------------------------------------------------------------------------
def _print_regression(result: dict) -> None:
    if "error" in result:
        print(f"{result['target']}: error: {result['error']}", file=sys.stderr)
        return
    print(f"{result['target']} on {', '.join(result['factors'])} ({result['freq']}, {result['start']} to "
          f"{result['end']}, n={result['n']}, HAC lags {result['hac_lags']})")
    rows = [{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in c.items()} for c in result["coefficients"]]
    _print_table(rows, ["term", "coef", "se", "t", "p", "ci_low", "ci_high"])
    print(f"R2 {result['r2']:.4f}  adj. R2 {result['adj_r2']:.4f}  Durbin-Watson {result['durbin_watson']:.3f}\n")


def _cmd_regress(args: argparse.Namespace) -> int:
    from screener.analytics.commands import regress_command

    if (args.config is None) == (args.tickers is None):
        raise _UsageError("give either a CONFIG or --tickers A,B")
    results = regress_command(str(args.config) if args.config else None, args.tickers, args.factors, args.freq,
                              args.start.isoformat() if args.start else None,
                              args.end.isoformat() if args.end else None, args.hac_lags)
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        for result in results:
            _print_regression(result)
    return 1 if any("error" in r for r in results) else 0


def _window(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a window like -5,20") from None
    if lo > hi:
        raise argparse.ArgumentTypeError(f"window {text!r} ends before it starts")
    return lo, hi


def _cmd_events(args: argparse.Namespace) -> int:
    from screener.analytics.commands import events_command

    results = events_command(args.target, args.event, args.date.isoformat() if args.date else None, args.window,
                             args.estimation, args.model, args.market)
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    for ev in results:
        if "error" in ev:
            print(f"{ev['event_id']} ({ev.get('announced')}): error: {ev['error']}", file=sys.stderr)
            continue
        p = ev["portfolio"]
        print(f"{ev['event_id']} {ev['announced']}: {ev['description'][:100]}")
        print(f"  portfolio CAR {p['car']:+.2%}  t {p['t_stat']:.2f}  p {p['p_value']:.3f}  "
              f"({len(ev['members'])} members, model {ev['model']}, window {ev['window']})")
        rows = [{"ticker": m["ticker"], "event_day": m["event_day"], "car": f"{m['car']:+.4f}",
                 "t_stat": f"{m['t_stat']:.2f}"} for m in ev["members"]]
        _print_table(rows, ["ticker", "event_day", "car", "t_stat"])
        print()
    return 0


# -- app ----------------------------------------------------------------------------------------------------
def _cmd_app(args: argparse.Namespace) -> int:
    import subprocess

    app = Path(__file__).resolve().parent / "ui" / "entry.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.address,
           "--server.port", str(args.port), "--browser.gatherUsageStats", "false"]
    if args.headless:
        cmd += ["--server.headless", "true"]
    return subprocess.call(cmd)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``screener`` command."""
    parser = argparse.ArgumentParser(prog="screener", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="market data: import, fetch, status, prices")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    p = dsub.add_parser("import", help="import a snapshot directory (format of shared/marketdata) into the store")
    p.add_argument("directory", type=Path)
    p.add_argument("--tickers", type=_tickers, help="only these tickers")
    p.set_defaults(func=_cmd_data_import)
    p = dsub.add_parser("fetch", help="fetch or refresh bars from Yahoo Finance")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--universe", help="a universe name or file: its members, benchmarks and FX")
    g.add_argument("--tickers", type=_tickers)
    p.add_argument("--start", type=_date, help="first date for tickers not yet stored (default 2010-01-01)")
    p.add_argument("--end", type=_date)
    p.set_defaults(func=_cmd_data_fetch)
    p = dsub.add_parser("status", help="what the store holds: dates, staleness, problems, quality flags")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_data_status)
    p = dsub.add_parser("prices", help="adjusted-close panel in one currency")
    p.add_argument("tickers", type=_tickers)
    p.add_argument("--currency", default="USD")
    p.add_argument("--start", type=_date)
    p.add_argument("--end", type=_date)
    p.add_argument("--csv", action="store_true", help="write CSV to stdout")
    p.set_defaults(func=_cmd_data_prices)

    uni = sub.add_parser("universe", help="curated universes")
    usub = uni.add_subparsers(dest="universe_command", required=True, metavar="SUBCOMMAND")
    p = usub.add_parser("list", help="the shipped universes")
    p.set_defaults(func=_cmd_universe_list)
    p = usub.add_parser("show", help="a universe's members (a name or a path to a universe file)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_universe_show)

    p = sub.add_parser("factors", help="supply-risk and market factors of a universe at a date")
    p.add_argument("universe", help="a universe name or file")
    p.add_argument("--as-of", type=_date, required=True)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--csv", action="store_true")
    g.add_argument("--json", action="store_true")
    g.add_argument("--explain", metavar="TICKER", help="how each composite of TICKER is made up, with sources")
    p.set_defaults(func=_cmd_factors)

    p = sub.add_parser("screen", help="a strategy config's screen at a date: ranked, pass/fail per filter")
    p.add_argument("config", type=Path)
    p.add_argument("--as-of", type=_date, required=True)
    p.add_argument("--csv", action="store_true")
    p.set_defaults(func=_cmd_screen)

    p = sub.add_parser("backtest", help="backtest a strategy config; --out writes CSVs, metrics and manifest")
    p.add_argument("config", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--no-tearsheet", action="store_true", help="skip tearsheet.html (saves ~3 s)")
    p.add_argument("--split", metavar="DATE|FRACTION",
                   help="is it luck? bootstrap intervals for Sharpe and CAGR and an in/out-of-sample split")
    p.set_defaults(func=_cmd_backtest)

    p = sub.add_parser("report", help="write tearsheet.html for a run directory made by `backtest --out`")
    p.add_argument("run_dir", type=Path)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("regress", help="factor regression with Newey-West (HAC) errors")
    p.add_argument("config", nargs="?", type=Path, help="a strategy config: regress the strategy's returns")
    p.add_argument("--tickers", type=_tickers, help="regress these tickers instead")
    p.add_argument("--factors", type=_tickers, required=True, help="e.g. SPY,REMX (or basket for the universe)")
    p.add_argument("--freq", choices=["D", "W", "M"], default="D")
    p.add_argument("--start", type=_date)
    p.add_argument("--end", type=_date)
    p.add_argument("--hac-lags", type=int, help="default: floor(4 (n/100)^(2/9)) (Newey-West 1994)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_regress)

    p = sub.add_parser("events", help="event study of supply shocks (market-model abnormal returns)")
    p.add_argument("target", help="a universe name or file, or a strategy config")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--event", help="an event id from reference/events.csv (default: every event)")
    g.add_argument("--date", type=_date, help="a custom event date")
    p.add_argument("--window", type=_window, default=(-5, 20), help="event window, e.g. -5,20")
    p.add_argument("--estimation", type=_window, default=(-250, -11), help="estimation window, e.g. -250,-11")
    p.add_argument("--model", choices=["market", "market_adjusted", "mean"], default="market")
    p.add_argument("--market", help="market series (default SPY; STW.AX for ASX members)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_events)

    p = sub.add_parser("app", help="start the Streamlit app (listens on localhost)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="localhost")
    p.add_argument("--headless", action="store_true")
    p.set_defaults(func=_cmd_app)
    return parser


def _join_windows(argv: list[str]) -> list[str]:
    """Let ``--window -5,20`` through: argparse would take ``-5,20`` for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in ("--window", "--estimation") and i + 1 < len(argv) and "," in argv[i + 1]:
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``screener`` console script."""
    parser = build_parser()
    args = parser.parse_args(_join_windows(list(sys.argv[1:] if argv is None else argv)))
    try:
        return int(args.func(args) or 0)
    except ScreenerError as exc:
        print(f"screener: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("screener: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
