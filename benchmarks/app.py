"""Benchmark of the Streamlit app: cold start to the first rendered page, and re-runs on the Backtest page.

Not a timed test: it prints figures, with the machine's load average (the aims are a cold start under 4 s and a
re-run after a slider change under 500 ms, median, for ``rare_earths``).

1. **Cold start**: a fresh ``streamlit run app.py`` process, from ``Popen`` to the Universe page drawn in headless
   Chromium (members table and charts on screen, script finished); split into "server up" (health endpoint
   answers) and the rest (first script run, imports and loads included, plus drawing). Falls back to
   ``AppTest.from_file(...).run()`` in a fresh interpreter (the script run alone) without Playwright/chromium.
2. **Re-run after a slider change** on the Backtest page (``AppTest``, in process, the server-side script run;
   then the same in the browser, click to drawn):
   - *new config*: the costs slider moves to a value not run before, then "Run backtest": a fresh
     `run_backtest` (the library's time dominates);
   - *cached config*: the slider moves back to a value already run: the run comes from ``st.cache_data``;
   - *display only*: the log-scale toggle.

Usage: ``python benchmarks/app.py [--rounds 7] [--cold 3] [--no-browser]``; the store is a temporary
``SCREENER_HOME`` filled from the snapshot (``$SCREENER_SNAPSHOT`` or ``../shared/marketdata``).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHROMIUM = Path(os.environ.get("SCREENER_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def fill_store(home: Path) -> None:
    from screener.data.snapshot import SnapshotProvider
    from screener.data.store import Store

    snap = Path(os.environ.get("SCREENER_SNAPSHOT") or REPO.parent / "shared" / "marketdata")
    provider = SnapshotProvider(snap)
    Store(home / "store").import_bars(provider.fetch(provider.tickers()), source=f"snapshot:{snap}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    while True:
        try:
            with urllib.request.urlopen(base + "_stcore/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.02)
        if proc.poll() is not None:
            raise RuntimeError("streamlit exited during start-up")
    return proc, base, t0


_STATE = "document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"


def settle(page, started: bool = True) -> None:
    """Wait (polling every animation frame) for the run an action started, if any, to finish."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if started:
        try:
            page.wait_for_function(f"() => {_STATE} === 'running'", polling="raf", timeout=1_500)
        except PlaywrightTimeout:
            pass  # over before we looked
    page.wait_for_function(f"() => {_STATE} === 'notRunning'", polling="raf", timeout=300_000)


def drawn(page) -> None:
    page.wait_for_function("""() => {
        const shown = (sel) => [...document.querySelectorAll(sel)].filter((e) => e.checkVisibility());
        return shown('[data-testid="stPlotlyChart"]').length > 0
            && shown('[data-testid="stPlotlyChart"]').every((e) => e.querySelector('.main-svg'))
            && shown('[data-testid="stDataFrame"]').every((e) => e.querySelector('canvas'));
    }""", polling="raf", timeout=300_000)


def kill(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def cold_start_browser(env: dict[str, str], rounds: int, browser) -> None:
    totals, ups = [], []
    for _ in range(rounds):
        proc, base, t0 = start_server(env)
        up = time.perf_counter() - t0
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(base)
            page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=300_000)
            settle(page, started=False)
            drawn(page)
            totals.append(time.perf_counter() - t0)
            ups.append(up)
            page.close()
        finally:
            kill(proc)
    print(f"cold start to the first page drawn in Chromium (s): median {statistics.median(totals):.2f}, "
          f"all {', '.join(f'{t:.2f}' for t in totals)}; of which server up {statistics.median(ups):.2f}")


def cold_start_apptest(env: dict[str, str], rounds: int) -> None:
    code = ("import time; t = time.perf_counter(); from streamlit.testing.v1 import AppTest; "
            f"at = AppTest.from_file({str(REPO / 'app.py')!r}, default_timeout=300).run(); "
            "assert not at.exception; print(time.perf_counter() - t)")
    times = []
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                             check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    print(f"cold start, first script run in a fresh interpreter (AppTest, no browser) (s): median "
          f"{statistics.median(times):.2f}, all {', '.join(f'{t:.2f}' for t in times)}")


def reruns_apptest(rounds: int) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.query_params.update({"page": "backtest", "universe": "rare_earths"})
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    def change(costs: float) -> float:
        at.slider(key="w_bt_costs").set_value(costs)
        at.button(key="w_run_backtest").click()
        start = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - start
        assert not at.exception and not at.error, [e.value for e in at.error]
        return elapsed

    fresh = [change(11.0 + k) for k in range(rounds)]
    cached = [change(11.0 + (k % 2)) for k in range(rounds)]
    toggles = []
    for k in range(rounds):
        at.toggle(key="w_bt_log").set_value(k % 2 == 0)
        start = time.perf_counter()
        at.run()
        toggles.append(time.perf_counter() - start)
    for label, times in (("new config (a fresh run_backtest)", fresh), ("cached config", cached),
                         ("display only (log-scale toggle)", toggles)):
        print(f"re-run after a slider change, {label} (ms, AppTest): median {statistics.median(times) * 1e3:.0f}, "
              f"min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f}")


def library_backtest(rounds: int) -> None:
    from screener.config import Filter, PortfolioSpec, ScreenSpec, StrategyConfig
    from screener.pipeline import run_backtest

    screen = ScreenSpec(filters=(Filter("adv_60d", ">=", 1e6), Filter("china_dependency", "<=", 0.5)),
                        score=(("supply_risk_exposure", -1.0), ("momentum_12_1", 0.5)), top_n=8)
    times = []
    for k in range(rounds):
        cfg = StrategyConfig(name="bench", universe="rare_earths", start=__import__("datetime").date(2019, 1, 1),
                             screen=screen, portfolio=PortfolioSpec(max_weight=0.25, costs_bps=30.0 + k))
        start = time.perf_counter()
        run_backtest(cfg)
        times.append(time.perf_counter() - start)
    print(f"  for reference, run_backtest alone on the same strategy (ms): median "
          f"{statistics.median(times) * 1e3:.0f}")


def reruns_browser(env: dict[str, str], rounds: int, browser) -> None:
    proc, base, _ = start_server(env)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(base + "?page=backtest&universe=rare_earths")
        page.get_by_text("Growth of 1").wait_for(timeout=300_000)
        settle(page, started=False)
        slider = page.get_by_role("slider", name="Costs (bps of traded value)")
        run = page.get_by_role("button", name="Run backtest")

        def change(key: str) -> float:
            slider.focus()
            slider.press(key)
            start = time.perf_counter()
            run.click()
            settle(page)
            drawn(page)
            return time.perf_counter() - start

        fresh = [change("ArrowRight") for _ in range(rounds)]
        cached = [change("ArrowLeft" if k % 2 == 0 else "ArrowRight") for k in range(rounds)]
        for label, times in (("new config", fresh), ("cached config", cached)):
            print(f"re-run after a slider change, {label} (ms, Chromium, click to drawn): median "
                  f"{statistics.median(times) * 1e3:.0f}, min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f}")
    finally:
        kill(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="re-runs per kind (default 7)")
    parser.add_argument("--cold", type=int, default=3, help="cold starts (default 3)")
    parser.add_argument("--no-browser", action="store_true", help="AppTest only")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="screener-bench-app-"))
    fill_store(home)
    env = {k: v for k, v in os.environ.items() if k != "SCREENER_SNAPSHOT"}
    env.update({"SCREENER_HOME": str(home), "SCREENER_OFFLINE": "1", "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"})
    os.environ.update({"SCREENER_HOME": str(home), "SCREENER_OFFLINE": "1"})
    os.environ.pop("SCREENER_SNAPSHOT", None)
    print(f"load average before: {load()} (cpus: {os.cpu_count()})")

    use_browser = not args.no_browser and CHROMIUM.exists()
    if use_browser:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            use_browser = False
    if use_browser:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            cold_start_browser(env, args.cold, browser)
            reruns_apptest(args.rounds)
            library_backtest(3)
            reruns_browser(env, args.rounds, browser)
            browser.close()
    else:
        cold_start_apptest(env, args.cold)
        reruns_apptest(args.rounds)
        library_backtest(3)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
