"""End to end in a real headless Chromium: ``streamlit run app.py`` over a store filled from the snapshot.

Playwright for Python drives Debian's chromium (``/usr/bin/chromium``; ``.ci/run`` installs it with apt). The
test visits every page, runs a backtest by clicking, downloads its config and checks that ``screener backtest``
on that file prints the same metrics, follows the page's link in a fresh session, downloads the tearsheet, and
saves a screenshot of each page under ``test-artifacts/browser/`` (gitignored). Yahoo Finance is never
contacted: the app runs with ``SCREENER_OFFLINE=1`` and the Data page must show its offline indicator.

Skipped when chromium or Playwright is missing, unless ``SCREENER_REQUIRE_BROWSER=1`` (set by ``.ci/run``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from screener.config import parse_config
from screener.data.snapshot import SnapshotProvider
from screener.data.store import Store

from conftest import REPO

CHROMIUM = Path(os.environ.get("SCREENER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts" / "browser"
METRICS = ("cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "turnover")
PAGES = {"universe": "Universe", "factors": "Factors and screen", "backtest": "Backtest", "risk": "Risk",
         "events": "Events", "data": "Data"}
SLOW = 180_000  # ms: a cold backtest or tearsheet on two shared cores


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


_why = _missing()
if _why:
    if os.environ.get("SCREENER_REQUIRE_BROWSER", "") not in ("", "0"):
        raise RuntimeError(f"the browser test is required here but cannot run: {_why}")
    pytest.skip(_why, allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory, snapshot_dir):
    """Environment of the app and of the CLI: a store filled from the snapshot, offline, no snapshot fallback."""
    home = tmp_path_factory.mktemp("browser_home")
    provider = SnapshotProvider(snapshot_dir)
    Store(home / "store").import_bars(provider.fetch(provider.tickers()), source=f"snapshot:{snapshot_dir}")
    out = {k: v for k, v in os.environ.items() if k not in ("SCREENER_SNAPSHOT",)}
    out.update({"SCREENER_HOME": str(home), "SCREENER_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)})
    return out


@pytest.fixture(scope="module")
def server(env):
    """``streamlit run app.py`` on a free localhost port; yields its base URL."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = (ARTIFACTS / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(base + "_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail("streamlit did not start: " + (ARTIFACTS / "streamlit.log").read_text()[-2000:])
        time.sleep(0.3)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 2200}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(SLOW)
    yield pg
    context.close()


def settle(pg: Page) -> None:
    """Wait for the script run that the last action started to finish."""
    app = pg.locator('[data-testid="stApp"]')
    try:
        expect(app).to_have_attribute("data-test-script-state", "running", timeout=2_000)
    except AssertionError:
        pass  # the run was already over (or never needed)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=SLOW)


def open_app(pg: Page, base: str, query: str = "") -> None:
    pg.goto(base + query)
    expect(pg.locator('[data-testid="stSidebar"]')).to_be_visible(timeout=60_000)
    settle(pg)


def check_no_traceback(pg: Page) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in pg.locator('[data-testid="stMain"]').inner_text()


def go(pg: Page, page_id: str) -> None:
    pg.locator('[data-testid="stSidebar"]').get_by_text(PAGES[page_id], exact=True).click()
    settle(pg)
    expect(pg).to_have_url(re.compile(rf"[?&]page={page_id}(&|$)"))


def shot(pg: Page, name: str) -> None:
    """Screenshot once the charts and tables have drawn (they render after the script run)."""
    pg.wait_for_function("""() => {
        const shown = (sel) => [...document.querySelectorAll(sel)].filter((e) => e.checkVisibility());
        return shown('[data-testid="stPlotlyChart"]').every((e) => e.querySelector('.main-svg'))
            && shown('[data-testid="stDataFrame"]').every((e) => e.querySelector('canvas'));
    }""", timeout=60_000)
    pg.wait_for_timeout(800)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def metrics_on_page(pg: Page) -> dict[str, dict[str, str]]:
    table = pg.locator('[data-testid="stTable"] table').first
    expect(table.locator("tr").nth(2)).to_be_visible()
    rows = [[c.strip() for c in r.locator("th, td").all_inner_texts()] for r in table.locator("tr").all()]
    header, body = rows[0], rows[1:]
    assert header[1:] == list(METRICS)
    return {r[0]: dict(zip(METRICS, r[1:], strict=True)) for r in body}


def choose(pg: Page, label: str, option: str) -> None:
    pg.get_by_role("combobox", name=label, exact=True).click()
    pg.get_by_role("option", name=option, exact=True).click()
    expect(pg.get_by_role("combobox", name=label, exact=True)).to_have_value(option)


def test_every_page_renders_offline_and_is_screenshotted(page, server):
    open_app(page, server)
    expect(page.get_by_text("Universe: Rare-earth equities")).to_be_visible()
    expect(page.get_by_text("With prices")).to_be_visible()
    check_no_traceback(page)
    shot(page, "1_universe")
    go(page, "factors")
    expect(page.get_by_text("Ranked result as of")).to_be_visible()
    check_no_traceback(page)
    shot(page, "2_factors")
    go(page, "risk")
    expect(page.get_by_text("Durbin-Watson").first).to_be_visible()
    check_no_traceback(page)
    shot(page, "4_risk")
    go(page, "events")
    expect(page.get_by_text("Portfolio CAR")).to_be_visible()
    check_no_traceback(page)
    shot(page, "5_events")
    go(page, "data")
    expect(page.get_by_text("Offline: offline mode")).to_be_visible()
    expect(page.get_by_text("Tickers stored")).to_be_visible()
    check_no_traceback(page)
    shot(page, "6_data")


def test_backtest_by_clicking_matches_screener_backtest(page, server, env, tmp_path):
    open_app(page, server, "?page=backtest")
    expect(page.get_by_text("Growth of 1")).to_be_visible()
    choose(page, "Rebalance", "quarterly")
    choose(page, "Weighting", "inverse_vol")
    page.get_by_role("button", name="Run backtest").click()
    settle(page)
    check_no_traceback(page)
    expect(page).to_have_url(re.compile(r"bt_rebalance=quarterly"))
    expect(page).to_have_url(re.compile(r"bt_weighting=inverse_vol"))
    shown = metrics_on_page(page)

    with page.expect_download() as download:
        page.get_by_role("button", name="Strategy config (TOML)").click()
    toml = tmp_path / download.value.suggested_filename
    download.value.save_as(toml)
    cfg = parse_config(toml.read_text(encoding="utf-8"))
    assert (cfg.portfolio.rebalance, cfg.portfolio.weighting) == ("quarterly", "inverse_vol")
    expect(page.get_by_text(f"Config {cfg.config_hash()[:12]}")).to_be_visible()

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "screener.cli", "backtest", str(toml), "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    cli = json.loads((out / "metrics.json").read_text())
    assert set(shown) == set(cli)
    for series, values in cli.items():
        assert shown[series] == {m: f"{values[m]:.4f}" for m in METRICS}, series
    printed = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[1:] if line.split()
               and line.split()[0] in cli}
    for series, values in printed.items():
        assert values == [shown[series][m] for m in METRICS]
    shot(page, "3_backtest")

    # The page's link reproduces the view in a fresh session.
    fresh = page.context.browser.new_context(viewport={"width": 1400, "height": 2200}).new_page()
    fresh.set_default_timeout(SLOW)
    open_app(fresh, page.url)
    assert metrics_on_page(fresh) == shown
    fresh.context.close()


def test_tearsheet_downloads_as_one_html_file(page, server, tmp_path):
    open_app(page, server, "?page=backtest")
    expect(page.get_by_text("Growth of 1")).to_be_visible()
    page.get_by_role("button", name="Build the tearsheet (HTML)").click()
    settle(page)
    check_no_traceback(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the tearsheet").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    html = path.read_text(encoding="utf-8")
    assert path.suffix == ".html" and "<html" in html.lower() and "rare_earths strategy" in html
