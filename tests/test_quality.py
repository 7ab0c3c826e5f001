"""Tests for screener.data.quality: flags on the real snapshot and hand-sized synthetic cases."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from screener.data.bars import normalize_bars
from screener.data.quality import (
    EQUITY_THRESHOLDS,
    FLAG_KINDS,
    QualityFlag,
    QualityThresholds,
    check_bars,
    check_panel,
)

LIQUID = ["SPY", "REMX", "MP", "ALB", "AUDUSD=X"]


@pytest.fixture(scope="module")
def snapshot_bars(snapshot_dir) -> dict[str, pd.DataFrame]:
    files = sorted((snapshot_dir / "prices").glob("*.csv"))
    assert len(files) >= 30, f"expected ~40 snapshot files in {snapshot_dir / 'prices'}, found {len(files)}"
    return {f.stem: normalize_bars(pd.read_csv(f, index_col="date"), f.stem) for f in files}


@pytest.fixture(scope="module")
def snapshot_flags(snapshot_bars) -> dict[str, list[QualityFlag]]:
    return check_panel(snapshot_bars)


def _on(flags: list[QualityFlag], kind: str, day: str) -> list[QualityFlag]:
    return [f for f in flags if f.kind == kind and pd.Timestamp(f.date) == pd.Timestamp(day)]


# -- the real snapshot ----------------------------------------------------------------------------------

def test_flags_per_snapshot_file_and_time(snapshot_bars, snapshot_flags):
    check_bars(snapshot_bars["SPY"], "SPY")  # warm-up (first-call imports), not timed
    start = time.perf_counter()
    again = check_panel(snapshot_bars)
    elapsed = time.perf_counter() - start
    assert again == snapshot_flags  # deterministic
    rows = sum(len(b) for b in snapshot_bars.values())
    print(f"\nquality flags per snapshot file ({len(snapshot_bars)} files, {rows} rows, checked in "
          f"{elapsed * 1000:.0f} ms)")
    print(f"{'ticker':<10}{'rows':>6}" + "".join(f"{k:>17}" for k in FLAG_KINDS) + f"{'total':>7}")
    for ticker, flags in snapshot_flags.items():
        counts = [sum(f.kind == k for f in flags) for k in FLAG_KINDS]
        print(f"{ticker:<10}{len(snapshot_bars[ticker]):>6}" + "".join(f"{c:>17}" for c in counts)
              + f"{len(flags):>7}")
    print(f"{'all':<10}{rows:>6}" + "".join(
        f"{sum(f.kind == k for fl in snapshot_flags.values() for f in fl):>17}" for k in FLAG_KINDS)
        + f"{sum(map(len, snapshot_flags.values())):>7}")
    assert elapsed < 1.0, f"checking the snapshot took {elapsed:.2f}s"


def test_cny_bad_tick_of_2011_07_18_is_flagged(snapshot_flags):
    hits = _on(snapshot_flags["CNY=X"], "spike_reversal", "2011-07-18")
    assert len(hits) == 1
    assert "5.863" in hits[0].detail and "6.4338" in hits[0].detail


def test_mp_real_moves_are_not_flagged(snapshot_flags):
    # +50.6% on 2025-07-10 (DoD agreement) and +20.0% on 2025-07-15 (Apple agreement) are real
    for day in ["2025-07-10", "2025-07-15"]:
        assert not [f for f in snapshot_flags["MP"] if pd.Timestamp(f.date) == pd.Timestamp(day)]


def test_idr_stale_quotes_are_flagged(snapshot_flags, snapshot_bars):
    stale = [f for f in snapshot_flags["IDR"] if f.kind == "stale_quotes"]
    assert stale, "IDR has runs of zero-volume identical closes"
    first = _on(stale, "stale_quotes", "2015-07-10")
    assert len(first) == 1 and "5 consecutive days" in first[0].detail and "2015-07-16" in first[0].detail
    run = snapshot_bars["IDR"].loc["2015-07-10":"2015-07-16"]
    assert (run["volume"] == 0).all() and run["close"].nunique() == 1


def test_liquid_names_have_few_flags(snapshot_flags):
    for ticker in LIQUID:
        assert len(snapshot_flags[ticker]) <= 2, [f.to_dict() for f in snapshot_flags[ticker]]


def test_real_news_jump_and_demerger_are_not_split_like(snapshot_flags):
    # LAC +96% on 2025-09-24 (a ratio near 2, then held) came with 40x the usual volume: news, not a split
    assert not _on(snapshot_flags["LAC"], "split_like_jump", "2025-09-24")
    # ILU's demerger (close 9.90 -> 5.12, near 1/2) is adjusted in adj_close
    assert not _on(snapshot_flags["ILU.AX"], "split_like_jump", "2020-10-23")
    assert not [f for fl in snapshot_flags.values() for f in fl if f.kind == "split_like_jump"]


@pytest.mark.parametrize(("ticker", "day", "ratio"), [
    ("LYC.AX", "2017-12-11", 10),  # 10:1 consolidation across a trading halt
    ("HAS.AX", "2022-07-04", 20),  # 20:1 consolidation across a trading halt
    ("IDR", "2021-12-06", 14),  # 1:14 reverse split
])
def test_undoing_the_readme_consolidations_is_flagged(snapshot_bars, ticker, day, ratio):
    # the snapshot applied these consolidations to earlier prices; undo them as a provider might forget to
    raw = snapshot_bars[ticker].copy()
    before = raw.index < pd.Timestamp(day)
    for col in ["open", "high", "low", "close", "adj_close"]:
        raw.loc[before, col] = raw.loc[before, col] / ratio
    raw.loc[before, "volume"] = raw.loc[before, "volume"] * ratio
    hits = _on(check_bars(raw, ticker), "split_like_jump", day)
    assert len(hits) == 1 and "consolidation" in hits[0].detail


def test_flags_are_json_ready(snapshot_flags):
    flags = [f for fl in snapshot_flags.values() for f in fl]
    assert flags
    payload = json.loads(json.dumps([f.to_dict() for f in flags]))
    assert payload[0].keys() == {"ticker", "kind", "date", "detail"}
    assert all(len(d["date"]) == 10 and d["kind"] in FLAG_KINDS for d in payload)


# -- synthetic cases ------------------------------------------------------------------------------------

def _bars(close: np.ndarray, volume: float | np.ndarray = 1e6, start: str = "2024-01-01") -> pd.DataFrame:
    close = np.asarray(close, dtype=float)
    index = pd.bdate_range(start, periods=len(close), name="date")
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "adj_close": close,
                         "volume": np.broadcast_to(np.asarray(volume, dtype=float), close.shape).copy()},
                        index=index)


def _walk(n: int = 120, sd: float = 0.01, price: float = 20.0, seed: int = 42, decimals: int = 2):
    rng = np.random.default_rng(seed)
    return np.round(price * np.exp(np.cumsum(rng.normal(0, sd, n))), decimals)


def test_spike_that_reverses_is_flagged_once():
    close = _walk()
    clean = check_bars(_bars(close), "ABC")
    assert clean == []
    close[80] *= 0.7  # one bad print, back the next day
    flags = check_bars(_bars(close), "ABC")
    assert [(f.kind, f.date) for f in flags] == [("spike_reversal", _bars(close).index[80])]
    assert flags[0].ticker == "ABC"


def test_level_shift_is_not_a_spike():
    close = _walk()
    close[80:] *= 1.3  # a real re-rating that holds
    assert check_bars(_bars(close), "ABC") == []


def test_fx_thresholds_are_tighter():
    close = _walk(sd=0.001, price=7.0, seed=1, decimals=4)
    close[60] *= 1.025  # a 2.5% bad tick: nothing for a stock, a lot for a managed currency
    bars = _bars(close, volume=0.0)
    assert [(f.kind, f.date) for f in check_bars(bars, "CNH=X")] == [("spike_reversal", bars.index[60])]
    assert check_bars(bars, "CNH", is_fx=False) == []
    assert check_bars(bars, "CNH", is_fx=True) == [
        QualityFlag("CNH", f.kind, f.date, f.detail) for f in check_bars(bars, "CNH=X")
    ]


def test_penny_stock_tick_bounce_is_not_a_spike():
    # 0.007 -> 0.005 -> 0.007 is two ticks of A$0.001: a bid-ask bounce, not a bad print
    close = np.full(60, 0.007)
    close[::10] = 0.006  # mostly unchanged: the robust sd is 0, only the tick rule stops the flag
    close[41] = 0.005
    assert not [f for f in check_bars(_bars(close), "PNY.AX") if f.kind == "spike_reversal"]
    close[41] = 0.003  # four ticks down and back: flagged
    assert [f.kind for f in check_bars(_bars(close), "PNY.AX")] == ["spike_reversal"]


def test_stale_runs():
    close = _walk(60)
    volume = np.full(60, 1e5)
    close[20:27] = close[19]  # 7 repeats after the real quote of day 19...
    volume[20:27] = 0.0  # ...without volume
    close[40:44] = close[39]  # only 4 repeats: too short
    volume[40:44] = 0.0
    close[50:56] = close[49]  # 6 repeats but traded: real
    flags = check_bars(_bars(close, volume), "ABC")
    assert [f.kind for f in flags] == ["stale_quotes"]
    index = _bars(close).index
    assert flags[0].date == index[20]
    assert "7 consecutive days" in flags[0].detail and index[26].date().isoformat() in flags[0].detail
    # missing volume counts as no volume
    no_volume = _bars(close, volume).drop(columns="volume")
    stale = [f.date for f in check_bars(no_volume, "ABC") if f.kind == "stale_quotes"]
    assert stale == [index[20], index[50]]


def test_fx_stale_ignores_volume():
    close = 1.0 + np.arange(40) * 1e-3
    close[10:16] = close[9]
    flags = check_bars(_bars(close, volume=0.0), "EURUSD=X")
    assert [(f.kind, f.date) for f in flags] == [("stale_quotes", _bars(close).index[10])]
    assert check_bars(_bars(close[:10], volume=0.0), "EURUSD=X") == []


def test_unadjusted_split_is_flagged():
    close = _walk(100)
    volume = np.full(100, 2e5)
    close[60:] = np.round(close[60:] / 4, 2)  # 4:1 split nobody adjusted
    volume[60:] *= 4
    flags = check_bars(_bars(close, volume), "ABC")
    assert [(f.kind, f.date) for f in flags] == [("split_like_jump", _bars(close).index[60])]
    assert "4:1 split" in flags[0].detail


def test_split_like_ratio_with_a_turnover_surge_or_reversal_is_not_a_split():
    close = _walk(100)
    volume = np.full(100, 2e5)
    close[60:] *= 2.0  # doubled on news...
    volume[60] *= 30  # ...with heavy trading
    assert check_bars(_bars(close, volume), "ABC") == []
    close = _walk(100)
    close[60] /= 2  # halved for one day only: a spike, not a split
    assert [f.kind for f in check_bars(_bars(close), "ABC")] == ["spike_reversal"]
    close = _walk(100)
    close[60:] *= 1.5  # persistent but no split ratio
    assert check_bars(_bars(close), "ABC") == []


def test_check_bars_does_not_mutate_and_validates():
    close = _walk()
    close[80] *= 0.7
    bars = _bars(close)
    before = bars.copy()
    check_bars(bars, "ABC")
    pd.testing.assert_frame_equal(bars, before)
    with pytest.raises(TypeError, match="bars"):
        check_bars(bars["close"], "ABC")
    with pytest.raises(ValueError, match="close"):
        check_bars(bars.drop(columns="close"), "ABC")
    with pytest.raises(ValueError, match="sorted"):
        check_bars(bars.iloc[::-1], "ABC")
    assert check_bars(bars.iloc[:0], "ABC") == [] and check_bars(bars.iloc[:2], "ABC") == []


def test_adj_close_is_checked_and_close_used_when_missing():
    close = _walk()
    bad = close.copy()
    bad[80] *= 0.7
    bars = _bars(close)
    bars["adj_close"] = bad  # the spike is in adj_close only
    assert [f.kind for f in check_bars(bars, "ABC")] == ["spike_reversal"]
    bars = _bars(bad)
    bars["adj_close"] = np.nan
    flags = check_bars(bars, "ABC")
    assert [f.kind for f in flags] == ["spike_reversal"] and flags[0].detail.startswith("close ")


def test_flag_and_thresholds_validation():
    flag = QualityFlag("MP", "stale_quotes", pd.Timestamp("2024-01-02"), "x")
    assert flag.to_dict() == {"ticker": "MP", "kind": "stale_quotes", "date": "2024-01-02", "detail": "x"}
    from datetime import date

    assert QualityFlag("MP", "spike_reversal", date(2024, 1, 2), "x").to_dict()["date"] == "2024-01-02"
    with pytest.raises(ValueError, match="kind"):
        QualityFlag("MP", "bad_tick", pd.Timestamp("2024-01-02"), "x")
    with pytest.raises(ValueError, match="spike_max_net"):
        QualityThresholds(spike_min_move=0.1, spike_min_sigmas=8, spike_max_net=1.5)
    with pytest.raises(ValueError, match="vol_window"):
        QualityThresholds(spike_min_move=0.1, spike_min_sigmas=8, vol_window=0)
    with pytest.raises(TypeError, match="thresholds"):
        check_bars(_bars(_walk()), "ABC", thresholds={"spike_min_move": 0.1})
    loose = QualityThresholds(spike_min_move=0.0, spike_min_sigmas=0.0, spike_max_net=0.99, min_ticks=0)
    assert len(check_bars(_bars(_walk()), "ABC", thresholds=loose)) > len(
        check_bars(_bars(_walk()), "ABC", thresholds=EQUITY_THRESHOLDS))


def test_check_panel_keeps_every_ticker_in_order():
    close = _walk()
    close[80] *= 0.7
    out = check_panel({"Z": _bars(_walk()), "A": _bars(close), "EURUSD=X": _bars(1 + _walk() / 100, 0.0)})
    assert list(out) == ["Z", "A", "EURUSD=X"]
    assert out["Z"] == [] and [f.kind for f in out["A"]] == ["spike_reversal"]
    with pytest.raises(TypeError, match="bars_by_ticker"):
        check_panel([_bars(close)])
