from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screener.data.snapshot import SNAPSHOT_HEADER, SnapshotProvider, read_snapshot_csv
from screener.exceptions import SnapshotError

HEADER = ",".join(SNAPSHOT_HEADER)
_COUNTER = itertools.count()  # a new file per example: the reader memoises by file version


def test_reads_every_snapshot_file_with_its_manifest_dates(snapshot_dir):
    provider = SnapshotProvider(snapshot_dir)
    manifest = provider.manifest()
    result = provider.fetch(provider.tickers())
    assert not result.errors and not result.empty
    for ticker, bars in result.bars.items():
        assert bars.index.is_monotonic_increasing and bars.index.is_unique
        assert bars.index[0].date().isoformat() == manifest.loc[ticker, "first_date"]
        assert bars.index[-1].date().isoformat() == manifest.loc[ticker, "last_date"]
        assert len(bars) == int(manifest.loc[ticker, "rows"])


def test_raw_values_are_kept_as_in_the_file(snapshot_dir):
    bars = read_snapshot_csv(snapshot_dir / "prices" / "ILU.AX.csv")
    raw = pd.read_csv(snapshot_dir / "prices" / "ILU.AX.csv", index_col="date", parse_dates=True)
    np.testing.assert_allclose(bars["close"].to_numpy(), raw["close"].to_numpy())
    # The Deterra demerger: close keeps the real fall, adj_close is scaled before it.
    assert bars.loc["2020-10-22", "adj_close"] < bars.loc["2020-10-22", "close"]


def test_fetch_filters_dates_and_reports_missing_symbols(snapshot_dir):
    provider = SnapshotProvider(snapshot_dir)
    seen = []
    result = provider.fetch(["MP", "NOPE.AX"], start=date(2025, 9, 1), end=date(2025, 9, 5),
                            progress=lambda d, t, k: seen.append((d, t, k)))
    assert result.empty == ["NOPE.AX"]
    assert result.bars["MP"].index.min() >= pd.Timestamp("2025-09-01")
    assert result.bars["MP"].index.max() <= pd.Timestamp("2025-09-05")
    assert seen == [(1, 2, "MP"), (2, 2, "NOPE.AX")]


def test_not_a_snapshot_directory(tmp_path):
    with pytest.raises(SnapshotError, match="no prices/ folder"):
        SnapshotProvider(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("date,close\n2020-01-01,1\n", "header"),
        (f"{HEADER}\n", "no rows"),
        (f"{HEADER}\n2020-13-01,1,1,1,1,1,0\n", "row 2: date"),
        (f"{HEADER}\n2020-01-02,1,1,1,1,1,0\n2020-01-01,1,1,1,1,1,0\n", "row 3: date 2020-01-01 is not after"),
        (f"{HEADER}\n2020-01-02,1,1,1,abc,1,0\n", "row 2: close 'abc'"),
    ],
)
def test_malformed_files_name_the_file_and_row(tmp_path, content, message):
    path = tmp_path / "BAD.csv"
    path.write_text(content)
    with pytest.raises(SnapshotError, match=message) as err:
        read_snapshot_csv(path)
    assert str(path) in str(err.value)


def _check(path):
    try:
        bars = read_snapshot_csv(path)
    except SnapshotError:
        return
    assert list(bars.columns) == list(SNAPSHOT_HEADER[1:])
    assert bars.index.is_monotonic_increasing


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_junk_text_only_raises_snapshot_errors(tmp_path, text):
    path = tmp_path / f"JUNK{next(_COUNTER)}.csv"
    path.write_text(text, encoding="utf-8")
    _check(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_junk_bytes_only_raise_snapshot_errors(tmp_path, data):
    path = tmp_path / f"JUNK{next(_COUNTER)}.csv"
    path.write_bytes(data)
    _check(path)


cell = st.one_of(st.text(max_size=8), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.dates().map(str), st.integers().map(str))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(cell, min_size=0, max_size=9), max_size=8))
def test_junk_rows_under_a_valid_header_only_raise_snapshot_errors(tmp_path, rows):
    path = tmp_path / f"JUNK{next(_COUNTER)}.csv"
    path.write_text(HEADER + "\n" + "\n".join(",".join(r) for r in rows), encoding="utf-8")
    _check(path)
