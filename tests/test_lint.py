from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    proc = subprocess.run([ruff, "check", str(REPO)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_computation_modules_do_not_import_edge_libraries():
    code = (
        "import sys; import screener.data.bars, screener.data.fx, screener.data.calendar, screener.data.quality, "
        "screener.universe, screener.markets, screener.config, screener.screen, screener.weights, screener.backtest, "
        "screener.factors.supply, screener.factors.market, screener.factors.transforms, screener.reference, "
        "screener.analytics.metrics, screener.analytics.bootstrap, screener.analytics.regression, "
        "screener.analytics.events, screener.pipeline; "
        "bad = [m for m in ('yfinance', 'streamlit', 'quantstats') if m in sys.modules]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
