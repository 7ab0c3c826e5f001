"""AppTest tests of every page: set widgets, run, and check the rendered numbers against the library's.

The app runs headless in this process over a store filled from the snapshot; Yahoo Finance is never contacted
(``SCREENER_OFFLINE=1``, and the refresh tests patch the provider).
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from datetime import date

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from screener.analytics.commands import events_command, regress_command
from screener.config import Filter, PortfolioSpec, ScreenSpec, StrategyConfig, parse_config
from screener.data.panel import load_prices
from screener.data.providers import FetchResult
from screener.data.snapshot import SnapshotProvider
from screener.data.store import Store
from screener.exceptions import OfflineError
from screener.factors.market import momentum
from screener.factors.table import factors_as_of
from screener.pipeline import run_backtest, screen_as_of
from screener.reference import load_reference
from screener.universe import load_universe

from conftest import REPO, make_bars

TIMEOUT = 180
DEFAULT_SCREEN = ScreenSpec(filters=(Filter("adv_60d", ">=", 1_000_000.0), Filter("china_dependency", "<=", 0.5)),
                            score=(("supply_risk_exposure", -1.0), ("momentum_12_1", 0.5)), top_n=8)


# -- fixtures and helpers --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def filled_store(tmp_path_factory, snapshot_dir):
    """A SCREENER_HOME whose store holds the whole snapshot (filled once per session)."""
    root = tmp_path_factory.mktemp("app_home")
    provider = SnapshotProvider(snapshot_dir)
    Store(root / "store").import_bars(provider.fetch(provider.tickers()), source=f"snapshot:{snapshot_dir}")
    return root


@pytest.fixture
def filled_home(filled_store, monkeypatch):
    monkeypatch.setenv("SCREENER_HOME", str(filled_store))
    monkeypatch.delenv("SCREENER_SNAPSHOT", raising=False)
    monkeypatch.setenv("SCREENER_OFFLINE", "1")
    return filled_store


@pytest.fixture
def empty_home(home, monkeypatch):
    monkeypatch.setenv("SCREENER_OFFLINE", "1")
    return home


@pytest.fixture
def downloads(monkeypatch):
    """Record what each download button would hand the browser, by label."""
    captured: dict[str, object] = {}
    original = DeltaGenerator.download_button

    def spy(self, label, data, *args, **kwargs):
        captured[label] = data
        return original(self, label, data, *args, **kwargs)

    def top(label, data, *args, **kwargs):
        return spy(st._main, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    monkeypatch.setattr(st, "download_button", top)
    return captured


def app(**params: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(params)
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def frames(at: AppTest, *columns: str) -> list[pd.DataFrame]:
    """The tables (st.dataframe) on the page that have all of ``columns``, in page order."""
    return [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]


def frame(at: AppTest, *columns: str) -> pd.DataFrame:
    found = frames(at, *columns)
    assert found, f"no table with columns {columns}"
    return found[0]


def values(v) -> np.ndarray:
    """A Plotly JSON array: a plain list, or a typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(v, dict) and "bdata" in v:
        out = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return out.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else out
    return np.asarray(v, dtype=object)


def plotly_specs(at: AppTest) -> dict[str, dict]:
    return {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def default_config(**portfolio) -> StrategyConfig:
    """The Backtest page's default strategy, built here independently of the app."""
    base = {"max_weight": 0.25, "rebalance": "monthly", "lag": 0, "costs_bps": 10.0, "lookback": 63}
    base.update(portfolio)
    return StrategyConfig(name="rare_earths strategy", universe="rare_earths", start=date(2019, 1, 1),
                          base_currency="USD", benchmarks=("REMX", "SPY"), screen=DEFAULT_SCREEN,
                          portfolio=PortfolioSpec(**base))


def expected_metrics(run) -> pd.DataFrame:
    cols = ["cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "turnover"]
    return pd.DataFrame({s: {m: f"{v[m]:.4f}" for m in cols} for s, v in run.metrics.items()}).T[cols]


# -- navigation and URL state ----------------------------------------------------------------------------------
def test_every_page_renders_without_errors(filled_home):
    at = app()
    assert_clean(at)
    assert at.query_params["page"] == "universe"
    for page in ("factors", "events", "data"):
        at.radio(key="w_page").set_value(page).run()
        assert_clean(at)
        assert at.query_params["page"] == page
    assert at.query_params["universe"] == "rare_earths"


def test_bad_url_parameters_fall_back_with_a_note(filled_home):
    at = app(page="nowhere", universe="atlantis")
    assert not at.exception
    assert at.radio(key="w_page").value == "universe"
    assert at.selectbox(key="w_universe").value == "rare_earths"
    notes = " ".join(w.value for w in at.warning)
    assert "page" in notes and "universe" in notes


def test_results_are_cached_but_failures_and_empty_results_are_not(filled_store, home, monkeypatch):
    import screener.data.panel
    from screener.exceptions import UniverseError
    from screener.ui import cache

    calls = []
    real = screener.data.panel.load_prices

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(screener.data.panel, "load_prices", counting)
    for _ in range(2):  # the empty store: an empty result, computed each time
        assert cache.uncached_if_empty(cache.member_prices, "rare_earths", "t", "empty-store")["prices"].sum() == 0
    assert len(calls) == 2
    for _ in range(2):  # a failure, raised each time
        with pytest.raises(UniverseError):
            cache.member_prices("no_such_universe", "t", "empty-store")
    empty = cache.data_fingerprint()
    monkeypatch.setenv("SCREENER_HOME", str(filled_store))
    fingerprint = cache.data_fingerprint()
    assert fingerprint != empty  # other data, other keys
    for _ in range(2):  # data: computed once
        assert cache.uncached_if_empty(cache.member_prices, "rare_earths", "t", fingerprint)["prices"].sum() > 0
    assert len(calls) == 3


# -- 1. universe -----------------------------------------------------------------------------------------------
def test_universe_members_prices_and_matrices_equal_the_library(filled_home):
    at = app(page="universe", universe="rare_earths")
    assert_clean(at)
    uni = load_universe("rare_earths")
    members = frame(at, "last_price", "coverage")
    assert list(members.index) == list(uni.tickers)
    assert at.metric[0].value == str(len(uni.members))

    data = load_prices(uni.tickers, currency="USD", currencies=uni.currencies)
    one_year = momentum(data.prices, [data.prices.index[-1]], lookback=252, skip=0, max_stale_days=None).iloc[0]
    for t in ("MP", "LYC.AX", "UUUU"):
        local = data.local[t].dropna()
        assert members.at[t, "last_price"] == pytest.approx(local.iloc[-1], rel=1e-12)
        assert str(members.at[t, "last_date"])[:10] == local.index[-1].date().isoformat()
        assert members.at[t, "return_1y_USD"] == pytest.approx(one_year[t], rel=1e-12)
        assert members.at[t, "coverage"] == "store"
        assert members.at[t, "stages"] == ", ".join(uni.member(t).stages)
    assert members.at["REEMF", "coverage"].startswith("missing: ")
    assert np.isnan(members.at["REEMF", "last_price"])

    charts = plotly_specs(at)
    stage = charts["stage_matrix"]["data"][0]
    col = stage["x"].index("MP")
    z = values(stage["z"])
    assert {s for s, row in zip(stage["y"], z, strict=True) if row[col]} == set(uni.member("MP").stages)
    heat = charts["element_matrix"]["data"][0]
    exposures = load_reference().exposures
    mp = exposures[exposures["ticker"] == "MP"].set_index("element")["weight"]
    col = heat["x"].index("MP")
    z = values(heat["z"]).astype(float)
    shown = {e: row[col] for e, row in zip(heat["y"], z, strict=True) if np.isfinite(row[col])}
    assert shown == pytest.approx(mp.to_dict())
    sources = frame(at, "confidence", "sources")
    assert sources.at["MP", "sources"] == " · ".join(uni.member("MP").sources)


def test_switching_universe_updates_the_members_and_the_url(filled_home):
    at = app(page="universe")
    at.selectbox(key="w_universe").set_value("critical_minerals_ai").run()
    assert_clean(at)
    assert list(frame(at, "last_price", "coverage").index) == list(load_universe("critical_minerals_ai").tickers)
    assert at.query_params["universe"] == "critical_minerals_ai"


def _small_universe(n: int = 3) -> str:
    """The rare_earths file cut to its first ``n`` members (still valid)."""
    text = (REPO / "universes" / "rare_earths.toml").read_text(encoding="utf-8")
    head, *blocks = text.split("[[members]]")
    return head.replace('name = "rare_earths"', 'name = "my_magnets"') + "".join(
        "[[members]]" + b for b in blocks[:n])


def test_upload_a_valid_universe_selects_it(filled_home):
    at = app(page="universe")
    at.file_uploader(key="w_upload").set_value(("mine.toml", _small_universe().encode(), "application/toml")).run()
    assert_clean(at)
    value = at.selectbox(key="w_universe").value
    assert value.startswith("upload:")
    assert at.query_params["universe"] == value
    assert list(frame(at, "last_price", "coverage").index) == ["MP", "UUUU", "USAR"]
    assert any("mine.toml is valid" in s.value for s in at.success)


def test_upload_an_invalid_universe_names_file_member_and_field(filled_home):
    bad = _small_universe().replace('stages = ["mining", "separation", "metal", "magnet"]',
                                    'stages = ["minning", "separation", "metal", "magnet"]', 1)
    assert bad != _small_universe()
    at = app(page="universe")
    at.file_uploader(key="w_upload").set_value(("bad.toml", bad.encode(), "application/toml")).run()
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert "bad.toml" in message and "member 1 (MP)" in message and "stage" in message and "minning" in message
    assert at.selectbox(key="w_universe").value == "rare_earths"


def test_upload_over_the_size_limit_is_refused(filled_home):
    at = app(page="universe")
    big = _small_universe() + "#" * (300 * 1024)
    at.file_uploader(key="w_upload").set_value(("big.toml", big.encode(), "application/toml")).run()
    assert not at.exception
    assert any("limit" in e.value and "big.toml" in e.value for e in at.error)


def test_empty_store_says_how_to_fill_it(empty_home):
    at = app(page="universe")
    assert_clean(at)
    assert any("No member has prices" in i.value for i in at.info)
    at.radio(key="w_page").set_value("data").run()
    assert_clean(at)
    assert any("store is empty" in i.value for i in at.info)


# -- 2. factors and screen -------------------------------------------------------------------------------------
def test_factor_table_and_screen_equal_the_library(filled_home, downloads):
    at = app(page="factors", as_of="2024-05-31")
    assert_clean(at)
    expected = factors_as_of("rare_earths", "2024-05-31")
    shown = frame(at, "supply_risk_exposure", "reason")
    assert list(shown.index) == list(expected.index)
    numeric = [c for c in expected.columns if expected[c].dtype.kind == "f"]
    pd.testing.assert_frame_equal(shown[numeric], expected[numeric], check_dtype=False, rtol=1e-12)

    cfg = StrategyConfig(name="screen", universe="rare_earths", start=date(2024, 5, 31), screen=DEFAULT_SCREEN)
    table = screen_as_of(cfg, "2024-05-31")
    result = frame(at, "passed", "selected")
    assert list(result.index) == list(table.index)
    for col in ("pass: adv_60d >= 1e+06", "pass: china_dependency <= 0.5", "passed", "selected"):
        assert result[col].astype(bool).tolist() == table[col].astype(bool).tolist()
    for col in ("score", "rank", "contrib: supply_risk_exposure", "contrib: momentum_12_1"):
        np.testing.assert_allclose(result[col].astype(float), table[col].astype(float), rtol=1e-12)
    csv = downloads["Download the screen (CSV)"]
    assert csv == table.to_csv(float_format="%.10g")


def test_filter_builder_and_score_sliders_drive_the_screen(filled_home):
    at = app(page="factors", as_of="2025-09-29", filters="", score="", top_n="0")
    assert_clean(at)
    at.selectbox(key="w_new_factor").set_value("stage").run()
    at.selectbox(key="w_new_op").set_value("in")
    at.multiselect(key="w_new_categories").set_value(["mining"])
    at.button(key="w_add_filter").click().run()
    assert_clean(at)
    assert at.query_params["filters"] == "stage|in|mining"
    at.multiselect(key="w_score_factors").set_value(["momentum_6_1"]).run()
    at.slider(key="w_score_momentum_6_1").set_value(1.5).run()
    at.number_input(key="w_top_n").set_value(3).run()
    assert_clean(at)
    assert at.query_params["score"] == "momentum_6_1:1.5"
    spec = ScreenSpec(filters=(Filter("stage", "in", ("mining",)),), score=(("momentum_6_1", 1.5),), top_n=3)
    table = screen_as_of(StrategyConfig(name="s", universe="rare_earths", start=date(2025, 9, 29), screen=spec),
                         "2025-09-29")
    result = frame(at, "passed", "selected")
    assert list(result.index) == list(table.index)
    assert result["pass: stage in mining"].tolist() == table["pass: stage in mining"].tolist()
    np.testing.assert_allclose(result["score"].astype(float), table["score"].astype(float), rtol=1e-12)
    assert int(result["selected"].sum()) == 3

    at.button(key="w_remove_filter_0").click().run()
    assert_clean(at)
    assert at.query_params["filters"] == ""


def test_a_bad_filter_value_is_a_message(filled_home):
    at = app(page="factors", as_of="2025-09-29")
    at.selectbox(key="w_new_factor").set_value("adv_60d").run()
    at.button(key="w_add_filter").click().run()
    assert not at.exception
    assert any("Enter a number" in e.value for e in at.error)


# -- 3. backtest -----------------------------------------------------------------------------------------------
def test_backtest_metrics_and_downloads_equal_run_backtest(filled_home, downloads):
    at = app(page="backtest", bt_rebalance="quarterly", bt_costs="5")
    assert_clean(at)
    cfg = default_config(rebalance="quarterly", costs_bps=5.0)
    run = run_backtest(cfg)
    shown = at.table[0].value
    pd.testing.assert_frame_equal(shown.set_axis(list(shown.index)), expected_metrics(run), check_names=False)
    toml = downloads["Strategy config (TOML)"]
    assert toml == cfg.to_toml()
    assert parse_config(toml).config_hash() == cfg.config_hash()
    assert at.code[0].value == cfg.to_toml().strip()
    archive = zipfile.ZipFile(io.BytesIO(downloads["All outputs (zip: CSVs, metrics, manifest, config)"]))
    metrics = json.loads(archive.read("rare_earths_strategy/metrics.json"))
    assert metrics["strategy"]["sharpe"] == pytest.approx(run.metrics["strategy"]["sharpe"], rel=1e-12)
    equity = plotly_specs(at)["equity_chart"]["data"]
    assert [t["name"] for t in equity] == list(run.equity.columns)
    last = run.equity["strategy"].dropna().to_numpy()[-5:]
    np.testing.assert_allclose(values(equity[0]["y"])[-5:].astype(float), last, rtol=1e-12)


def test_changing_the_form_and_clicking_run_reruns_the_backtest(filled_home):
    at = app(page="backtest")
    at.selectbox(key="w_bt_weighting").set_value("inverse_vol")
    at.slider(key="w_bt_costs").set_value(20.0)
    at.slider(key="w_bt_max_weight").set_value(0.3)
    at.button(key="w_run_backtest").click()
    at.run()
    assert_clean(at)
    assert at.query_params["bt_weighting"] == "inverse_vol" and at.query_params["bt_costs"] == "20.0"
    cfg = default_config(weighting="inverse_vol", costs_bps=20.0, max_weight=0.3)
    shown = at.table[0].value
    pd.testing.assert_frame_equal(shown.set_axis(list(shown.index)), expected_metrics(run_backtest(cfg)),
                                  check_names=False)
    at.toggle(key="w_bt_log").set_value(True).run()
    assert plotly_specs(at)["equity_chart"]["layout"]["yaxis"]["type"] == "log"


def test_only_the_open_tab_is_drawn_and_the_tab_is_in_the_url(filled_home):
    at = app(page="backtest", bt_tab="Weights")
    assert_clean(at)
    charts = plotly_specs(at)
    assert "weights_chart" in charts and "equity_chart" not in charts
    run = run_backtest(default_config())
    held = [c for c in run.drifted_weights.columns if run.drifted_weights[c].fillna(0).abs().sum() > 0]
    assert [t["name"] for t in charts["weights_chart"]["data"]] == held
    assert at.query_params["bt_tab"] == "Weights"


def test_an_invalid_strategy_is_a_message_naming_the_key(filled_home):
    at = app(page="backtest", bt_max_weight="0.05")
    assert not at.exception
    assert any("max_weight" in e.value and "top_n" in e.value for e in at.error)
    at = app(page="backtest", bt_weighting="fixed", bt_fixed="MP=0.7, UUUU=0.6")
    assert not at.exception
    assert any("fixed_weights" in e.value for e in at.error)


# -- 4. risk ---------------------------------------------------------------------------------------------------
def test_regression_tables_equal_regress_command(filled_home):
    at = app(page="risk", rk_target="tickers", rk_tickers="MP,UUUU", rk_factors="SPY,REMX", rk_freq="W")
    assert_clean(at)
    expected = regress_command(None, ["MP", "UUUU"], ["SPY", "REMX"], freq="W")
    tables = frames(at, "coef", "se", "t")
    assert len(tables) == len(expected)
    for result, shown in zip(expected, tables, strict=True):
        coefs = pd.DataFrame(result["coefficients"]).set_index("term")
        pd.testing.assert_frame_equal(shown, coefs, check_dtype=False, rtol=1e-12)
    assert at.metric[0].value == str(expected[0]["n"])
    assert at.metric[4].value == str(expected[0]["hac_lags"])
    assert {"rolling_MP", "rolling_UUUU"} <= set(plotly_specs(at))


def test_regression_of_the_strategy_uses_the_backtest_config(filled_home):
    at = app(page="risk", rk_factors="SPY,REMX", rk_lags="5", bt_rebalance="quarterly", bt_costs="5")
    assert_clean(at)
    cfg = default_config(rebalance="quarterly", costs_bps=5.0)
    path = filled_home / "strategy.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    expected = regress_command(str(path), None, ["SPY", "REMX"], hac_lags=5)[0]
    shown = frame(at, "coef", "se", "t")
    pd.testing.assert_frame_equal(shown, pd.DataFrame(expected["coefficients"]).set_index("term"),
                                  check_dtype=False, rtol=1e-12)


# -- 5. events -------------------------------------------------------------------------------------------------
def test_events_table_filters_by_element_and_type(filled_home):
    at = app(page="events", ev_elements="Dy", ev_types="export_licensing,export_ban")
    assert_clean(at)
    events = load_reference().events
    keep = events["elements"].map(lambda els: "Dy" in els) & events["event_type"].isin(["export_licensing",
                                                                                         "export_ban"])
    assert list(frame(at, "description", "event_type").index) == list(events.loc[keep, "event_id"])


def test_event_study_equals_events_command(filled_home):
    at = app(page="events", ev_event="E22", ev_window="-5,20")
    assert_clean(at)
    expected = events_command("rare_earths", event_id="E22", window=(-5, 20))[0]
    assert at.metric[0].value == f"{expected['portfolio']['car']:.2%}"
    assert at.metric[1].value == f"{expected['portfolio']['t_stat']:.3f}"
    assert at.metric[3].value == str(expected["portfolio"]["n_members"])
    members = frame(at, "car", "n_est")
    assert list(members.index) == [m["ticker"] for m in expected["members"]]
    np.testing.assert_allclose(members["car"], [m["car"] for m in expected["members"]], rtol=1e-12)
    traces = {t["name"]: t for t in plotly_specs(at)["car_chart"]["data"]}
    path = pd.DataFrame(expected["car_path"])
    np.testing.assert_allclose(values(traces["mean CAR"]["y"]).astype(float), path["mean_car"], rtol=1e-12)
    np.testing.assert_allclose(values(traces["95% band"]["y"]).astype(float), path["lower"], rtol=1e-12)
    at.slider(key="w_ev_window").set_value((-2, 10)).run()
    assert_clean(at)
    shorter = events_command("rare_earths", event_id="E22", window=(-2, 10))[0]
    assert at.metric[0].value == f"{shorter['portfolio']['car']:.2%}"
    assert at.query_params["ev_window"] == "-2,10"


def test_an_event_without_a_day_is_a_message(filled_home):
    at = app(page="events", ev_event="E01")
    assert not at.exception
    assert any("day-precise" in e.value for e in at.error)


# -- 6. data ---------------------------------------------------------------------------------------------------
def test_store_status_equals_the_store(filled_home):
    at = app(page="data")
    assert_clean(at)
    records = Store().status()
    shown = frame(at, "fetched_at", "stale")
    assert list(shown.index) == [r["ticker"] for r in records]
    for r in records[:5]:
        assert shown.at[r["ticker"], "last_date"] == r["last_date"]
        assert shown.at[r["ticker"], "rows"] == r["rows"]
        assert bool(shown.at[r["ticker"], "stale"]) == r["stale"]
    assert any("Offline" in w.value for w in at.warning)


class _OfflineProvider:
    name = "yahoo"

    def fetch(self, tickers, start=None, end=None, progress=None):
        raise OfflineError("Yahoo Finance is unreachable: test")


class _FakeProvider:
    name = "yahoo"

    def __init__(self):
        self.calls = []

    def fetch(self, tickers, start=None, end=None, progress=None):
        self.calls.append(list(tickers))
        bars = {}
        for i, t in enumerate(tickers):
            bars[t] = make_bars(n=20, start="2024-01-02", seed=i)
            if progress:
                progress(i + 1, len(tickers), t)
        return FetchResult(bars=bars)


def test_refresh_offline_shows_the_offline_indicator_and_keeps_the_store(home, snapshot_dir, monkeypatch):
    from screener.ui.views import data

    provider = SnapshotProvider(snapshot_dir)
    Store().import_bars(provider.fetch(["MP", "SPY"]), source="snapshot")
    before = Store().status()
    monkeypatch.setattr(data, "yahoo_status", lambda: (True, ""))
    monkeypatch.setattr(data, "make_provider", _OfflineProvider)
    at = app(page="data")
    assert_clean(at)
    assert any("reachable" in s.value for s in at.success)
    at.button(key="w_refresh").click().run()
    assert not at.exception
    assert any(e.value.startswith("Offline: Yahoo Finance is unreachable") for e in at.error)
    assert Store().status() == before


def test_refresh_with_a_reachable_provider_updates_the_store(home, monkeypatch):
    from screener.ui import common
    from screener.ui.views import data

    fake = _FakeProvider()
    monkeypatch.setattr(data, "yahoo_status", lambda: (True, ""))
    monkeypatch.setattr(data, "make_provider", lambda: fake)
    at = app(page="data", universe="rare_earths")
    at.button(key="w_refresh").click().run()
    assert_clean(at)
    targets = data.refresh_targets(common.resolve("rare_earths"))
    assert sorted(t for call in fake.calls for t in call) == sorted(targets)
    assert any(f"Updated {len(targets)} tickers" in s.value for s in at.success)
    assert set(Store().tickers()) == set(targets)


def test_import_a_snapshot_from_the_data_page(empty_home, snapshot_dir):
    at = app(page="data")
    at.text_input(key="w_snapshot_dir").set_value(str(snapshot_dir))
    at.button(key="w_import").click().run()
    assert_clean(at)
    n = len(SnapshotProvider(snapshot_dir).tickers())
    assert any(f"Imported {n} tickers" in s.value for s in at.success)
    assert len(Store().tickers()) == n
    assert len(frame(at, "fetched_at", "stale")) == n  # the page ran again: the status shows the new data
