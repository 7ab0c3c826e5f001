from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from screener.cli import main
from screener.data.snapshot import SnapshotProvider

from conftest import REPO


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_then_status_json_lists_every_snapshot_ticker(home, snapshot_dir, capsys):
    code, out, err = run(capsys, "data", "import", str(snapshot_dir))
    assert code == 0, err
    assert "imported 39 tickers" in out
    code, out, _ = run(capsys, "data", "status", "--json")
    assert code == 0
    records = json.loads(out)
    manifest = SnapshotProvider(snapshot_dir).manifest()
    assert {r["ticker"] for r in records} == set(manifest.index)
    for r in records:
        assert set(r) >= {"ticker", "first_date", "last_date", "rows", "source", "fetched_at", "stale", "problems",
                          "warnings"}
        assert r["first_date"] == manifest.loc[r["ticker"], "first_date"]
        assert r["last_date"] == manifest.loc[r["ticker"], "last_date"]
        assert r["problems"] == [] and r["source"].startswith("snapshot:")


def test_corrupt_store_file_is_reported_and_the_rest_loads(home, snapshot_dir, capsys):
    run(capsys, "data", "import", str(snapshot_dir), "--tickers", "MP,UUUU,SPY")
    (home / "store" / "bars" / "MP.parquet").write_bytes(b"\x00" * 100)
    code, out, err = run(capsys, "data", "prices", "MP,UUUU,SPY", "--csv")
    assert code == 1
    assert "MP:" in err and "set aside" in err
    frame = pd.read_csv(pd.io.common.StringIO(out), index_col="date")
    assert list(frame.columns) == ["UUUU", "SPY"]
    code, out, _ = run(capsys, "data", "status", "--json")
    status = {r["ticker"]: r for r in json.loads(out)}
    assert status["MP"]["problems"] and status["UUUU"]["problems"] == []


def test_prices_in_usd_from_the_snapshot_fallback(home, snapshot_dir, monkeypatch, capsys):
    monkeypatch.setenv("SCREENER_SNAPSHOT", str(snapshot_dir))
    code, out, err = run(capsys, "data", "prices", "LYC.AX,MP", "--start", "2024-05-01", "--end", "2024-05-31",
                         "--csv")
    assert code == 0, err
    frame = pd.read_csv(pd.io.common.StringIO(out), index_col="date", parse_dates=True)
    assert list(frame.columns) == ["LYC.AX", "MP"]
    aud = pd.read_csv(snapshot_dir / "prices" / "AUDUSD=X.csv", index_col="date", parse_dates=True)["close"]
    lyc = pd.read_csv(snapshot_dir / "prices" / "LYC.AX.csv", index_col="date", parse_dates=True)["adj_close"]
    day = pd.Timestamp("2024-05-31")
    assert frame.loc[day, "LYC.AX"] == pytest.approx(lyc[day] * aud[day], rel=1e-9)


def test_universe_show_json_shape(capsys):
    code, out, _ = run(capsys, "universe", "show", "rare_earths", "--json")
    assert code == 0
    uni = json.loads(out)
    assert {"name", "base_currency", "benchmarks", "members"} <= set(uni)
    assert len(uni["members"]) >= 25
    for m in uni["members"]:
        for key in ("ticker", "name", "exchange", "currency", "country", "asset_countries", "stages", "elements",
                    "status", "sources"):
            assert key in m
        assert m["stages"] and m["elements"] and m["asset_countries"] and m["sources"]


def test_universe_list(capsys):
    code, out, _ = run(capsys, "universe", "list")
    assert code == 0 and "rare_earths" in out and "critical_minerals_ai" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["universe", "show", "nope"], "unknown universe"),
        (["data", "import", "/nonexistent/dir"], "no prices/ folder"),
        (["data", "prices", "NOPE"], "NOPE"),
    ],
)
def test_user_errors_are_one_line_and_non_zero(home, capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert message.lower() in err.lower()
    assert "Traceback" not in err


def test_console_script_prints_no_traceback(home, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[[members]]\nticker = 3\n')
    proc = subprocess.run([sys.executable, "-m", "screener.cli", "universe", "show", str(bad)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "bad.toml" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) >= 1


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "prices", "MP", "--start", "not-a-date"])
    assert exc.value.code == 2


class _FakeYahoo:
    """Stands in for YahooProvider at the CLI boundary: serves snapshot bars, or is offline."""

    name = "yahoo"
    offline = False
    source = None

    def fetch(self, tickers, start=None, end=None, progress=None):
        from screener.data.providers import FetchResult
        from screener.exceptions import OfflineError

        if self.offline:
            raise OfflineError("Yahoo Finance is unreachable: network error: could not resolve host")
        result = SnapshotProvider(self.source).fetch(tickers, start, end)
        for i, t in enumerate(tickers, 1):
            if progress:
                progress(i, len(tickers), t)
        return FetchResult(result.bars, result.empty, result.errors)


def test_fetch_shows_progress_and_reports_empty_symbols(home, snapshot_dir, monkeypatch, capsys):
    _FakeYahoo.source, _FakeYahoo.offline = snapshot_dir, False
    monkeypatch.setattr("screener.data.yahoo.YahooProvider", _FakeYahoo)
    code, out, err = run(capsys, "data", "fetch", "--tickers", "MP,LYC.AX,NOPE", "--start", "2024-01-01")
    assert code == 0
    assert "updated 3 tickers" in out  # MP, LYC.AX and the AUDUSD=X series it needs
    assert "NOPE: Yahoo Finance returned no data" in err
    assert "fetch [" in err and "4/4" in err
    status = {r["ticker"]: r for r in json.loads(run(capsys, "data", "status", "--json")[1])}
    assert status["MP"]["first_date"] == "2024-01-02" and status["MP"]["source"] == "yahoo"


def test_fetch_offline_keeps_the_store_and_says_so(home, snapshot_dir, monkeypatch, capsys):
    run(capsys, "data", "import", str(snapshot_dir), "--tickers", "MP")
    before = (home / "store" / "bars" / "MP.parquet").read_bytes()
    _FakeYahoo.source, _FakeYahoo.offline = snapshot_dir, True
    monkeypatch.setattr("screener.data.yahoo.YahooProvider", _FakeYahoo)
    code, _, err = run(capsys, "data", "fetch", "--tickers", "MP")
    assert code == 1
    assert "unreachable" in err and "store is unchanged" in err and "Traceback" not in err
    assert (home / "store" / "bars" / "MP.parquet").read_bytes() == before


def test_screener_app_serves_on_localhost(home, snapshot_dir):
    """The README's app command: `screener app` starts Streamlit on localhost and the page answers."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "screener.cli", "app", "--headless", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as r:
                    assert r.read() == b"ok"
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "screener app did not answer within 60 s"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=5) as r:
            assert b"<div id=\"root\">" in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
