"""Shared fixtures: the real snapshot (read in place, never copied) and an isolated store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def snapshot_path() -> Path:
    """The real price snapshot: ``$SCREENER_SNAPSHOT`` or ``../shared/marketdata`` beside the checkout."""
    env = os.environ.get("SCREENER_SNAPSHOT")
    path = Path(env) if env else REPO.parent / "shared" / "marketdata"
    if not (path / "prices").is_dir():
        pytest.fail(f"the market-data snapshot is missing at {path}; set SCREENER_SNAPSHOT to its directory")
    return path


@pytest.fixture(scope="session")
def snapshot_dir() -> Path:
    return snapshot_path()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty SCREENER_HOME; the snapshot fallback is off unless a test turns it on."""
    root = tmp_path / "home"
    monkeypatch.setenv("SCREENER_HOME", str(root))
    monkeypatch.delenv("SCREENER_SNAPSHOT", raising=False)
    return root


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def make_bars(n: int = 30, start: str = "2024-01-02", seed: int = 0, price: float = 10.0) -> pd.DataFrame:
    """Synthetic business-day bars with a random walk close."""
    r = np.random.default_rng(seed)
    index = pd.bdate_range(start, periods=n, name="date")
    close = price * np.exp(np.cumsum(r.normal(0, 0.02, n)))
    return pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                         "adj_close": close, "volume": r.integers(1_000, 10_000, n).astype(float)}, index=index)
