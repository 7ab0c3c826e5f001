from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest

from screener.data import store as store_mod
from screener.data.providers import FetchResult
from screener.data.snapshot import SnapshotProvider, read_snapshot_csv
from screener.data.store import Store
from screener.exceptions import CorruptFileError, OfflineError, StoreError

from conftest import REPO, make_bars


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


def test_write_read_round_trip_keeps_values_and_metadata(store):
    bars = make_bars(50)
    meta = store.write("MP", bars, source="test", yfinance_version="1.7.0")
    back, stored = store.read("MP", with_meta=True)
    pd.testing.assert_frame_equal(back, bars, check_freq=False)
    assert stored == meta
    assert stored["first_date"] == "2024-01-02" and stored["rows"] == 50
    assert stored["source"] == "test" and stored["yfinance_version"] == "1.7.0"
    assert stored["fetched_at"].endswith("Z")


def test_read_returns_a_copy_so_callers_cannot_damage_the_cache(store):
    store.write("MP", make_bars(10), source="test")
    first = store.read("MP")
    first.iloc[0, 0] = -1.0
    assert store.read("MP").iloc[0, 0] > 0


def test_invalid_symbols_are_rejected_before_touching_the_disk(store):
    with pytest.raises(StoreError, match="not a valid symbol"):
        store.path("../etc/passwd")


def test_interrupted_write_leaves_the_previous_version_and_no_temp_file(store, monkeypatch):
    old = make_bars(20, seed=1)
    store.write("MP", old, source="test")

    def crash(table, fh, **kwargs):
        fh.write(b"PAR1 half a file")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(store_mod.pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write("MP", make_bars(25, seed=2), source="test")
    monkeypatch.undo()
    pd.testing.assert_frame_equal(Store(store.root).read("MP"), old, check_freq=False)
    assert [p.name for p in store.bars_dir.iterdir()] == ["MP.parquet"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_file_is_reported_set_aside_and_the_rest_loads(store, damage):
    store.write("MP", make_bars(400, seed=1), source="test")
    store.write("LYC.AX", make_bars(400, seed=2), source="test")
    path = store.path("MP")
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a parquet file at all")
    else:
        # Flip bytes inside a data page: Parquet may still decode it, the checksum must not pass.
        mid = len(raw) // 3
        path.write_bytes(raw[:mid] + bytes(b ^ 0xFF for b in raw[mid : mid + 16]) + raw[mid + 16 :])
    fresh = Store(store.root)
    bars, problems = fresh.read_many(["MP", "LYC.AX"])
    assert list(bars) == ["LYC.AX"]
    assert "MP" in problems and "set aside" in problems["MP"]
    assert not path.exists()
    assert len(list(fresh.quarantine_dir.glob("MP.*.parquet"))) == 1
    status = {r["ticker"]: r for r in fresh.status()}
    assert status["MP"]["problems"] and status["MP"]["rows"] == 0
    assert status["LYC.AX"]["problems"] == [] and status["LYC.AX"]["rows"] == 400


def test_status_reports_staleness_against_the_check_date(store):
    store.write("MP", make_bars(10, start="2025-09-01"), source="test")
    [rec] = store.status(as_of=date(2025, 9, 16))
    assert rec["last_date"] == "2025-09-12" and rec["stale"] is False
    [rec] = store.status(as_of=date(2025, 9, 30))
    assert rec["stale"] is True


def test_two_processes_writing_at_once_never_expose_a_partial_file(store, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'tests')!r})
        from conftest import make_bars
        from screener.data.store import Store
        s = Store({str(store.root)!r})
        seed = int(sys.argv[1])
        for i in range(25):
            s.write("MP", make_bars(300 + i, seed=seed * 100 + i), source=f"writer{{seed}}")
    """))
    store.write("MP", make_bars(300), source="initial")
    procs = [subprocess.Popen([sys.executable, str(script), str(k)]) for k in (1, 2)]
    reads = 0
    while any(p.poll() is None for p in procs):
        bars, meta = Store(store.root).read("MP", with_meta=True)  # raises if it ever sees a partial file
        assert len(bars) == meta["rows"]
        reads += 1
    assert [p.wait() for p in procs] == [0, 0]
    bars, meta = Store(store.root).read("MP", with_meta=True)
    assert meta["source"] in {"writer1", "writer2"} and len(bars) == 324
    assert reads > 0
    assert not list(store.bars_dir.glob("*.tmp")) and not list(store.quarantine_dir.glob("*"))


class FakeProvider:
    """Serves fixed bars, records each call, and can be set offline."""

    name = "fake"

    def __init__(self, bars: dict[str, pd.DataFrame], offline: bool = False):
        self.bars = bars
        self.offline = offline
        self.calls: list[tuple[tuple[str, ...], date | None, date | None]] = []

    def fetch(self, tickers, start=None, end=None, progress=None):
        self.calls.append((tuple(tickers), start, end))
        if self.offline:
            raise OfflineError("Yahoo Finance is unreachable: connection refused")
        result = FetchResult()
        for i, t in enumerate(tickers, 1):
            b = self.bars.get(t)
            if b is not None:
                b = b.loc[pd.Timestamp(start) if start else None : pd.Timestamp(end) if end else None]
            if b is None or b.empty:
                result.empty.append(t)
            else:
                result.bars[t] = b
            if progress:
                progress(i, len(tickers), t)
        return result


def test_refresh_fetches_only_missing_dates_plus_overlap(store):
    full = make_bars(60, start="2025-01-02")
    store.write("MP", full.iloc[:40], source="test")
    provider = FakeProvider({"MP": full, "NEW": make_bars(5, start="2025-03-20", seed=3)})
    ticks = []
    report = store.refresh(["MP", "NEW"], provider, start=date(2024, 1, 1),
                           progress=lambda d, t, k: ticks.append((d, t)))
    last_stored = full.index[39].date()
    starts = {c[0]: c[1] for c in provider.calls}
    assert starts[("MP",)] == date.fromordinal(last_stored.toordinal() - 10)
    assert starts[("NEW",)] == date(2024, 1, 1)
    assert report.updated == {"MP": 20, "NEW": 5}
    pd.testing.assert_frame_equal(store.read("MP"), full, check_freq=False)
    assert ticks[-1] == (2, 2)


def test_refresh_refetches_whole_history_when_past_adjusted_prices_changed(store):
    old = make_bars(60, start="2025-01-02")
    store.write("MP", old.iloc[:40], source="test")
    new = old.copy()
    new.loc[: old.index[45], "adj_close"] *= 0.98  # a dividend: Yahoo rescales every earlier adjusted close
    provider = FakeProvider({"MP": new})
    report = store.refresh(["MP"], provider, start=date(2024, 1, 1))
    assert "MP" in report.refetched and "changed" in report.refetched["MP"]
    assert provider.calls[-1][1] <= old.index[0].date()
    pd.testing.assert_frame_equal(store.read("MP"), new, check_freq=False)


def test_refresh_offline_keeps_store_untouched(store):
    store.write("MP", make_bars(40), source="test")
    before = store.path("MP").read_bytes()
    report = store.refresh(["MP"], FakeProvider({}, offline=True))
    assert report.offline and "unreachable" in report.offline
    assert store.path("MP").read_bytes() == before


def test_refresh_refills_a_ticker_whose_file_was_corrupt(store):
    full = make_bars(40)
    store.write("MP", full, source="test")
    store.path("MP").write_bytes(b"junk")
    provider = FakeProvider({"MP": full})
    report = store.refresh(["MP"], provider, start=date(2020, 1, 1))
    assert report.updated == {"MP": 40} and provider.calls[0][1] == date(2020, 1, 1)
    pd.testing.assert_frame_equal(store.read("MP"), full, check_freq=False)


def test_snapshot_import_round_trip(store, snapshot_dir):
    provider = SnapshotProvider(snapshot_dir)
    result = provider.fetch(provider.tickers())
    assert not result.errors and not result.empty
    store.import_bars(result, source=f"snapshot:{snapshot_dir}")
    manifest = provider.manifest()
    status = {r["ticker"]: r for r in store.status()}
    assert set(status) == set(manifest.index) == set(provider.tickers())
    for ticker, row in manifest.iterrows():
        assert status[ticker]["first_date"] == row["first_date"]
        assert status[ticker]["last_date"] == row["last_date"]
        assert status[ticker]["rows"] == int(row["rows"])
        assert status[ticker]["problems"] == []
    expected = read_snapshot_csv(snapshot_dir / "prices" / "LYC.AX.csv")
    pd.testing.assert_frame_equal(store.read("LYC.AX"), expected)
    # The real CNY=X bad tick is flagged at import, not fixed.
    cny = status["CNY=X"]["warnings"]
    assert any(w["kind"] == "spike_reversal" and w["date"] == "2011-07-18" for w in cny)
    assert store.read("CNY=X").loc["2011-07-18", "close"] == pytest.approx(5.863, abs=1e-3)


def test_parquet_file_is_self_describing(store):
    store.write("MP", make_bars(5), source="test")
    schema = pq.read_schema(store.path("MP"))
    assert b"screener" in schema.metadata
    assert store.meta("MP")["rows"] == 5
    with pytest.raises(KeyError):
        store.meta("NOPE")
    with pytest.raises(KeyError):
        store.read("NOPE")
    store.path("MP").write_bytes(b"x")
    with pytest.raises(CorruptFileError):
        store.meta("MP")
