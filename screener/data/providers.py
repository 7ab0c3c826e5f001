"""The provider interface: anything that turns tickers and dates into bars."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import pandas as pd

Progress = Callable[[int, int, str], None]
"""Progress callback: ``(done, total, ticker)``, called after each ticker is handled."""


@dataclass
class FetchResult:
    """What a provider delivered.

    Attributes
    ----------
    bars : dict of str to DataFrame
        Canonical bars (see `screener.data.bars`) per ticker that returned rows.
    empty : list of str
        Tickers that came back with no rows (unknown symbol, delisted, or no data in the range).
    errors : dict of str to str
        Tickers that failed, with the reason (after retries).
    """

    bars: dict[str, pd.DataFrame] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class Provider(Protocol):
    """A source of daily bars."""

    name: str

    def fetch(
        self,
        tickers: Sequence[str],
        start: date | None = None,
        end: date | None = None,
        progress: Progress | None = None,
    ) -> FetchResult:
        """Return bars for ``tickers`` between ``start`` and ``end`` (both inclusive)."""
        ...
