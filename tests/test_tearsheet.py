"""screener.tearsheet: quantstats' metric table (golden), the returns-not-prices guard, offline HTML, threads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from screener.analytics import metrics
from screener.data.panel import load_prices
from screener.data.store import Store

from conftest import REPO

qs = pytest.importorskip("quantstats")
plt = pytest.importorskip("matplotlib.pyplot")

from screener.tearsheet import (  # noqa: E402
    TEARSHEET_FILE,
    check_returns,
    quantstats_metrics,
    remote_resources,
    tearsheet_from_run_dir,
    write_tearsheet,
)

GOLDEN = REPO / "tests" / "data" / "golden" / "quantstats_metrics.csv"
UPDATE_GOLDEN = os.environ.get("SCREENER_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def real(snapshot_dir, tmp_path_factory) -> dict[str, pd.Series]:
    """Daily returns of MP, REMX, SPY 2021-2025, each from its own trading days."""
    data = load_prices(["MP", "REMX", "SPY"], currency="USD", start="2021-01-01", end="2025-12-31",
                       store=Store(tmp_path_factory.mktemp("store")), snapshot=snapshot_dir)
    return {t: data.prices[t].dropna().pct_change().dropna().rename(t) for t in data.prices.columns}


def golden_inputs() -> tuple[pd.Series, pd.Series]:
    """Three years of seeded synthetic daily returns: a strategy and a correlated benchmark."""
    rng = np.random.default_rng(20_241_123)
    index = pd.bdate_range("2021-01-04", periods=756, name="date")
    bench = rng.normal(0.0004, 0.011, len(index))
    strat = 0.0004 + 1.2 * bench + rng.standard_t(4, len(index)) * 0.006
    return pd.Series(strat, index, name="strategy"), pd.Series(bench, index, name="SPY")


def cell(table: pd.DataFrame, series: str, metric: str, column: str = "value"):
    row = table[(table.series == series) & (table.metric == metric)]
    assert len(row) == 1, (series, metric)
    return row[column].iloc[0]


# ------------------------------------------------------------------ metric table


def test_table_has_strategy_then_each_benchmark_and_agrees_with_the_fast_core(real):
    r = real["MP"].rename("strategy")
    benches = pd.DataFrame({"REMX": real["REMX"], "SPY": real["SPY"]}).reindex(r.index)
    table = quantstats_metrics(r, benches)
    assert list(table.columns) == ["series", "metric", "value", "text"]
    assert list(table.series.unique()) == ["strategy", "REMX", "SPY"]
    per_series = table.groupby("series", sort=False).metric.apply(list)
    assert per_series["strategy"] == per_series["REMX"] == per_series["SPY"]
    for name, s in (("strategy", r), ("REMX", benches["REMX"]), ("SPY", benches["SPY"])):
        # quantstats rounds to 2 decimals (of a percent for percentages)
        assert cell(table, name, "CAGR﹪") == pytest.approx(metrics.cagr(s), abs=5e-5)
        assert cell(table, name, "Volatility (ann.)") == pytest.approx(metrics.volatility(s), abs=5e-5)
        assert cell(table, name, "Max Drawdown") == pytest.approx(metrics.max_drawdown(s), abs=5e-5)
        assert cell(table, name, "Sharpe") == pytest.approx(metrics.sharpe(s), abs=5e-3)
        assert cell(table, name, "Sortino") == pytest.approx(metrics.sortino(s), abs=5e-3)
        assert cell(table, name, "Start Period", "text") == f"{r.index[0]:%Y-%m-%d}"
    # relative rows are the strategy's, against the first benchmark
    assert cell(table, "strategy", "Correlation") == pytest.approx(r.corr(benches["REMX"]), abs=5e-5)
    assert cell(table, "REMX", "Beta", "text") == "-" and np.isnan(cell(table, "REMX", "Beta"))


def test_risk_free_as_number_and_series(real):
    r = real["SPY"]
    rf = pd.Series(np.linspace(0.0, 0.05, 60), index=pd.date_range("2021-01-01", periods=60, freq="MS"))
    for rate in (0.03, rf):
        table = quantstats_metrics(r, None, risk_free=rate, mode="basic")
        assert list(table.series.unique()) == ["SPY"]
        assert cell(table, "SPY", "Sharpe") == pytest.approx(metrics.sharpe(r, rate), abs=5e-3)


def test_golden_quantstats_full_metric_set():
    strat, bench = golden_inputs()
    table = quantstats_metrics(strat, bench, periods_per_year=252, risk_free=0.02, mode="full")
    if UPDATE_GOLDEN:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(GOLDEN, index=False, float_format="%.10g")
        pytest.skip(f"golden file rewritten: {GOLDEN}")
    golden = pd.read_csv(GOLDEN, dtype={"series": str, "metric": str, "text": str}, keep_default_na=False)
    golden["value"] = pd.to_numeric(golden["value"].replace("", np.nan))
    assert table[["series", "metric", "text"]].equals(golden[["series", "metric", "text"]])
    np.testing.assert_allclose(table["value"].to_numpy(), golden["value"].to_numpy(), rtol=1e-9, equal_nan=True)
    # invariants beside the numbers
    assert len(table) == 2 * table.metric.nunique() and table.metric.nunique() > 70
    assert cell(table, "strategy", "Risk-Free Rate") == pytest.approx(0.02)


# ------------------------------------------------------------------ returns, never prices


def bdays(n: int) -> pd.DatetimeIndex:
    return pd.bdate_range("2024-01-01", periods=n, name="date")


@pytest.mark.parametrize("values", [
    [0.0, 0.02, 1.5, 0.0, 0.01, 0.03, 0.0, 0.05],  # a thin miner that never closed down and once rose 150%
    [1.2, 1.5, 2.0, 1.1, 1.3],  # every return above +100%
], ids=["nonnegative_with_one_above_1", "all_above_1"])
def test_quantstats_reads_nonnegative_returns_as_prices_so_we_refuse_them(values, tmp_path):
    r = pd.Series(values, index=bdays(len(values)))
    # The pitfall: quantstats sees values >= 0 with a max above 1, assumes prices and takes pct_change().
    assert qs.utils._prepare_returns(r).iloc[3] == pytest.approx(values[3] / values[2] - 1)
    assert float(qs.stats.volatility(r, 252)) != pytest.approx(metrics.volatility(r, 252))
    with pytest.raises(ValueError, match="`returns` looks like prices"):
        quantstats_metrics(r)
    with pytest.raises(ValueError, match="`returns` looks like prices"):
        write_tearsheet(r, None, tmp_path / "t.html", title="x")
    assert not (tmp_path / "t.html").exists()


def test_sub_dollar_prices_passed_as_returns_are_refused():
    prices = pd.Series(0.4 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.02, 300))), index=bdays(300))
    assert prices.max() < 1
    # The pitfall: prices below 1 look like returns to quantstats, which compounds them into nonsense.
    assert float(qs.stats.cagr(prices, periods=252)) > 1e10
    with pytest.raises(ValueError, match="`returns` looks like prices below 1"):
        quantstats_metrics(prices)


def test_equity_curves_and_bad_benchmarks_are_refused():
    index = bdays(100)
    r = pd.Series(np.random.default_rng(1).normal(0, 0.01, 100), index=index)
    with pytest.raises(ValueError, match="`returns` looks like prices"):
        quantstats_metrics((1 + r).cumprod())
    with pytest.raises(ValueError, match="`benchmark` looks like prices"):
        quantstats_metrics(r, 100 * (1 + r).cumprod())
    with pytest.raises(TypeError, match="`benchmark` must be a pandas Series"):
        quantstats_metrics(r, "SPY")  # a ticker string would make quantstats download it
    with pytest.raises(TypeError, match="`returns` must have a DatetimeIndex"):
        quantstats_metrics(r.reset_index(drop=True))
    with pytest.raises(ValueError, match="below -100%"):
        check_returns(pd.Series([0.1, -1.5], index=bdays(2)))


def test_benchmark_gaps_count_as_flat_with_a_warning():
    index = bdays(60)
    rng = np.random.default_rng(2)
    r = pd.Series(rng.normal(0, 0.01, 60), index=index)
    b = pd.Series(rng.normal(0, 0.01, 60), index=index).drop(index[10:13])
    with pytest.warns(UserWarning, match="no return on 3 of 60 dates"):
        table = quantstats_metrics(r, b, mode="basic")
    assert cell(table, "Benchmark", "Start Period", "text") == "2024-01-01"


@pytest.mark.filterwarnings("ignore:No non-zero returns:UserWarning")
def test_a_constant_strategy_is_reported_alone_not_against_a_benchmark(tmp_path):
    index = bdays(60)
    cash = pd.Series(0.0, index=index)  # a strategy that never left cash
    b = pd.Series(np.random.default_rng(3).normal(0, 0.01, 60), index=index)
    with pytest.raises(ValueError, match="`returns` is constant"):
        quantstats_metrics(cash, b)
    assert cell(quantstats_metrics(cash, None, mode="basic"), "Strategy", "CAGR﹪") == 0.0


def test_check_returns_cleans_without_mutating():
    r = pd.Series([0.01, np.nan, -0.02, np.inf, 0.03], index=bdays(5)[::-1], name="x")
    before = r.copy()
    out = check_returns(r)
    assert r.equals(before)
    assert out.index.is_monotonic_increasing and len(out) == 3 and out.name == "x"


# ------------------------------------------------------------------ HTML tearsheet


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class TagBalance(HTMLParser):
    """Every non-void element closed in order."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            self.errors.append((tag, self.getpos()))


def strategy_cagr_text(r: pd.Series, b: pd.Series | None) -> str:
    return cell(quantstats_metrics(r, b), str(r.name), "CAGR﹪", "text")


@pytest.fixture(scope="module")
def sheet_a(real, tmp_path_factory) -> tuple[Path, pd.Series, pd.Series]:
    r, b = real["MP"].rename("Strategy"), real["REMX"].reindex(real["MP"].index)
    before = plt.get_fignums()
    path = write_tearsheet(r, b, tmp_path_factory.mktemp("a") / "sheet.html", title="Ex-China & <magnets>")
    assert plt.get_fignums() == before  # every figure quantstats opened is closed
    return path, r, b


def test_tearsheet_is_one_valid_offline_html_file_with_title_and_cagr(sheet_a):
    path, r, b = sheet_a
    text = path.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<!--") and "<!DOCTYPE html>" in text and text.rstrip().endswith("</html>")
    parser = TagBalance()
    parser.feed(text)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert "<title>Ex-China &amp; &lt;magnets&gt;</title>" in text
    assert "<h1>Ex-China &amp; &lt;magnets&gt; (Compounded)" in text
    assert f"<td>{strategy_cagr_text(r, b)}</td>" in text
    # charts are inline SVG, nothing is fetched
    assert text.count("<svg") >= 12 and "<img" not in text
    assert remote_resources(text) == []
    assert not re.search(r"""<(?:script|img)[^>]*\bsrc\s*=\s*["']?https?:""", text, re.I)
    assert not re.search(r"""<link[^>]*\bhref\s*=\s*["']?https?:""", text, re.I)
    assert "<?xml" not in text and "<!DOCTYPE svg" not in text and 'onload="save()"' not in text
    assert not list(path.parent.glob(".*.tmp"))


def test_remote_resources_finds_what_a_browser_would_fetch():
    page = ('<link rel="stylesheet" href="https://cdn.example/x.css"><script src="//cdn.example/x.js"></script>'
            '<style>@import url("https://fonts.example/f.css"); body{background:url(http://x/y.png)}</style>'
            '<a href="https://quantstats.io">ok</a><svg xmlns="http://www.w3.org/2000/svg"></svg>')
    found = remote_resources(page)
    assert len(found) == 4 and not any("quantstats.io" in f or "w3.org" in f for f in found)


def test_two_threads_write_two_correct_tearsheets(real, sheet_a, tmp_path):
    path_a, r_a, b_a = sheet_a
    r_b, b_b = real["REMX"].rename("Strategy"), real["SPY"].reindex(real["REMX"].index)
    jobs = {"a": (r_a, b_a, "Ex-China & <magnets>"), "b": (r_b, b_b, "Second sheet")}
    errors: list[BaseException] = []

    def work(key: str) -> None:
        try:
            r, b, title = jobs[key]
            write_tearsheet(r, b, tmp_path / f"{key}.html", title=title)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    text_a = (tmp_path / "a.html").read_text(encoding="utf-8")
    text_b = (tmp_path / "b.html").read_text(encoding="utf-8")
    assert "<title>Second sheet</title>" in text_b and "Second sheet" not in text_a
    assert f"<td>{strategy_cagr_text(r_b, b_b)}</td>" in text_b
    # the output is a function of the inputs alone: concurrent files equal sequential ones byte for byte
    assert text_a == path_a.read_text(encoding="utf-8")
    sequential_b = write_tearsheet(r_b, b_b, tmp_path / "b_seq.html", title="Second sheet")
    assert text_b == sequential_b.read_text(encoding="utf-8")


def test_user_figures_survive(real, tmp_path):
    fig = plt.figure()
    try:
        r = real["SPY"].iloc[-300:]
        write_tearsheet(r, None, tmp_path / "spy.html", title="SPY")
        assert plt.fignum_exists(fig.number)
    finally:
        plt.close(fig)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"title": " "}, ValueError, "`title` must be a non-empty string"),
    ({"risk_free": pd.Series([0.01])}, TypeError, "`risk_free` must be a number"),
    ({"periods_per_year": 0}, ValueError, "`periods_per_year` must be a positive integer"),
])
def test_write_tearsheet_errors_name_the_argument(tmp_path, kwargs, error, message):
    r = pd.Series(np.random.default_rng(0).normal(0, 0.01, 50), index=bdays(50))
    with pytest.raises(error, match=message):
        write_tearsheet(r, None, tmp_path / "t.html", **{"title": "t", **kwargs})


# ------------------------------------------------------------------ run directory


def test_tearsheet_from_run_dir(real, tmp_path):
    # a run directory as screener.report.write_run lays it out: a 1.0 base row, then the curves
    mp = real["MP"]
    remx, spy = real["REMX"].reindex(mp.index).fillna(0.0), real["SPY"].reindex(mp.index).fillna(0.0)
    equity = pd.DataFrame({"strategy": (1 + mp).cumprod(), "REMX": (1 + remx).cumprod(), "SPY": (1 + spy).cumprod()})
    base = pd.DataFrame(1.0, index=[mp.index[0] - pd.Timedelta(days=1)], columns=equity.columns)
    equity = pd.concat([base, equity]).rename_axis("date")
    equity.to_csv(tmp_path / "equity.csv", date_format="%Y-%m-%d", float_format="%.12g")
    (tmp_path / "config.toml").write_text('name = "US magnets"\nuniverse = "rare_earths"\nstart = 2021-01-01\n',
                                          encoding="utf-8")
    (tmp_path / "manifest.json").write_text(json.dumps({"config_hash": "0123456789abcdef"}), encoding="utf-8")
    path = tearsheet_from_run_dir(tmp_path)
    assert path == tmp_path / TEARSHEET_FILE
    text = path.read_text(encoding="utf-8")
    assert "<title>US magnets</title>" in text and "Benchmark: REMX" in text and "Config: 0123456789ab" in text
    # the tearsheet sees exactly the returns the curves were built from
    assert f"<td>{strategy_cagr_text(mp.rename('Strategy'), remx.rename('REMX'))}</td>" in text
    assert remote_resources(text) == []


def test_tearsheet_of_a_pipeline_run_agrees_with_its_metrics_json(snapshot_dir, home, tmp_path):
    from screener.pipeline import run_backtest
    from screener.report import write_run

    run = run_backtest(REPO / "strategies" / "us_magnet_chain_fixed.toml", snapshot=snapshot_dir)
    out = write_run(run, tmp_path / "run")
    text = tearsheet_from_run_dir(out).read_text(encoding="utf-8")
    bench, strat = re.search(r"<tr><td>CAGR﹪</td><td>(-?[\d.,]+)%</td><td>(-?[\d.,]+)%</td></tr>", text).groups()
    assert float(strat) / 100 == pytest.approx(run.metrics["strategy"]["cagr"], abs=5e-5)
    first = run.config.benchmarks[0]
    assert f"Benchmark: {first}" in text
    assert float(bench) / 100 == pytest.approx(metrics.cagr(run.returns[first]), abs=5e-5)


def test_tearsheet_from_run_dir_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no equity\.csv"):
        tearsheet_from_run_dir(tmp_path)
    pd.DataFrame({"date": ["2024-01-01", "2024-01-02", "2024-01-03"], "x": [1.0, 1.1, 1.0]}).to_csv(
        tmp_path / "equity.csv", index=False)
    with pytest.raises(ValueError, match="no `strategy` column"):
        tearsheet_from_run_dir(tmp_path)


def test_only_the_edge_imports_quantstats_and_pyplot():
    code = ("import sys; import screener.analytics.metrics, screener.analytics.bootstrap; "
            "bad = [m for m in ('quantstats', 'matplotlib.pyplot', 'screener.tearsheet') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
