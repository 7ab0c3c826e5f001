from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from screener.data.snapshot import SnapshotProvider
from screener.data.store import Store
from screener.universe import load_universe

from conftest import REPO


@pytest.fixture
def filled_home(home, snapshot_dir):
    provider = SnapshotProvider(snapshot_dir)
    Store().import_bars(provider.fetch(["MP", "LYC.AX", "UUUU"]), source="snapshot")
    return home


def test_first_page_lists_universe_members_and_store_status(filled_home):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not at.exception
    members = at.dataframe[0].value
    uni = load_universe(at.selectbox[0].value)
    assert list(members.index) == list(uni.tickers)
    status = at.dataframe[1].value
    assert set(status.index) == {"MP", "LYC.AX", "UUUU"}
    assert at.metric[0].value == str(len(uni.members))


def test_switching_universe_updates_the_members_and_the_url(filled_home):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.selectbox[0].set_value("critical_minerals_ai").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == len(load_universe("critical_minerals_ai").members)
    assert at.query_params["universe"] == "critical_minerals_ai"


def test_empty_store_shows_how_to_fill_it(home):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("store is empty" in i.value for i in at.info)
