from __future__ import annotations

import dataclasses
import json
import os
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import screener.universe as universe_module
from screener.exceptions import UniverseError
from screener.markets import exchange_of, load_markets
from screener.paths import universes_dir
from screener.universe import (
    CONFIDENCE,
    COUNTRIES,
    ELEMENTS,
    STAGES,
    STATUSES,
    Listing,
    Member,
    Universe,
    list_universes,
    load_universe,
    parse_universe,
)

try:
    import tomli_w
except ImportError:  # pragma: no cover - the hand-written writer below covers what the tests need
    tomli_w = None

RARE_EARTH_REQUIRED = {
    "MP", "LYC.AX", "UUUU", "ILU.AX", "ARU.AX", "NEO.TO", "600111.SS", "USAR", "NB", "REEMF", "UCU.V", "ARA.TO",
    "CRML", "ASM.AX", "NTU.AX", "HAS.AX", "MEI.AX", "PRE.L", "MKA.L", "RBW.L", "000831.SZ", "0769.HK", "600392.SS",
    "300748.SZ", "600366.SS", "4063.T", "SOLB.BR", "VML.AX", "ARR.AX",
}
CRITICAL_EXTRA_REQUIRED = {
    "AXTI", "VNP.TO", "600497.SS", "UMI.BR", "UAMY", "PPTA", "ALB", "SQM", "PLS.AX", "LAC", "MIN.AX", "IGO.AX",
    "LTR.AX", "TMC", "NVDA", "TSM", "AVGO", "MU",
}
MEMBER_KEYS = [
    "ticker", "name", "exchange", "currency", "country", "asset_countries", "stages", "elements", "status",
    "sources", "confidence", "first_trade_date", "alt_listings", "planned_stages", "planned_elements", "notes",
]


@pytest.fixture(scope="module")
def rare_earths() -> Universe:
    return load_universe("rare_earths")


@pytest.fixture(scope="module")
def critical() -> Universe:
    return load_universe("critical_minerals_ai")


# -- shipped universes ------------------------------------------------------------------------------------


def test_list_universes_names_the_shipped_files_and_skips_underscore_files():
    names = list_universes()
    assert names == sorted(names)
    assert {"rare_earths", "critical_minerals_ai"} <= set(names)
    assert not any(n.startswith("_") for n in names)


@pytest.mark.parametrize("name", list_universes())
def test_every_shipped_universe_loads_and_is_named_after_its_file(name):
    uni = load_universe(name)
    assert uni.name == name
    assert Path(uni.path) == (universes_dir() / f"{name}.toml").resolve()
    assert uni.base_currency == "USD"
    assert uni.benchmarks and uni.members
    # Frozen all the way down: a universe can key a cache.
    hash(uni)
    with pytest.raises(dataclasses.FrozenInstanceError):
        uni.name = "other"  # type: ignore[misc]


def test_rare_earths_is_broad_and_has_the_required_members(rare_earths):
    assert len(rare_earths.members) >= 25
    assert len({m.exchange for m in rare_earths.members}) >= 5
    assert RARE_EARTH_REQUIRED <= set(rare_earths.tickers)
    assert list(rare_earths.benchmarks) == ["REMX", "SETM", "SPY"]
    rare_earth_symbols = set(ELEMENTS[56:71]) | {"Sc", "Y"}
    for m in rare_earths.members:
        assert rare_earth_symbols & set(m.elements + m.planned_elements), m.ticker


def test_critical_minerals_ai_extends_rare_earths_member_for_member(rare_earths, critical):
    assert len(critical.members) >= 40
    assert (RARE_EARTH_REQUIRED | CRITICAL_EXTRA_REQUIRED) <= set(critical.tickers)
    assert list(critical.benchmarks) == ["REMX", "SETM", "SPY", "ACWI"]
    # The two files repeat the rare-earth members: they must not drift apart.
    for m in rare_earths.members:
        assert critical.member(m.ticker) == m


@pytest.mark.parametrize("name", list_universes())
def test_every_member_is_fully_described(name):
    uni = load_universe(name)
    for m in uni.members:
        assert m.name and m.country and m.asset_countries and m.stages and m.elements and m.sources, m.ticker
        assert m.status in STATUSES and m.confidence in CONFIDENCE
        assert m.country in COUNTRIES and set(m.asset_countries) <= set(COUNTRIES)
        assert set(m.stages + m.planned_stages) <= set(STAGES)
        assert set(m.elements + m.planned_elements) <= set(ELEMENTS)
        assert not set(m.stages) & set(m.planned_stages)
        # Shipped members trade in their exchange's own currency and carry its suffix.
        exchange = load_markets().exchanges[m.exchange]
        assert m.currency == exchange.currency, m.ticker
        assert exchange_of(m.ticker).suffix == exchange.suffix, m.ticker
        for listing in m.alt_listings:
            assert exchange_of(listing.ticker).suffix == load_markets().exchanges[listing.exchange].suffix
        # Every member cites a URL or a named reference file.
        assert any("http" in s or "../shared/" in s for s in m.sources), m.ticker


@pytest.mark.parametrize("name", list_universes())
def test_members_not_in_the_reference_are_low_confidence_and_say_so(name):
    reference = Path(__file__).resolve().parents[2] / "shared" / "reference" / "companies.csv"
    companies = pd.read_csv(reference) if reference.is_file() else None
    uni = load_universe(name)
    for m in uni.members:
        curated = any("project curation" in s for s in m.sources)
        if curated:
            assert m.confidence == "low", m.ticker
            assert "verify" in m.notes, m.ticker
        if companies is not None:
            assert curated != (m.ticker in set(companies["yahoo_ticker"])), m.ticker


def test_member_facts_from_the_brief(critical):
    assert critical.member("UUUU").exchange == "NYSE_AMERICAN"
    assert critical.member("UAMY").exchange == "NYSE_AMERICAN"
    assert critical.member("USAR").first_trade_date == date(2025, 3, 14)
    assert critical.member("CRML").first_trade_date == date(2024, 2, 28)
    assert critical.member("LAC").first_trade_date == date(2023, 10, 2)
    assert {x.ticker for x in critical.member("LYC.AX").alt_listings} == {"LYSDY", "LYSCF"}
    assert [x.ticker for x in critical.member("UUUU").alt_listings] == ["EFR.TO"]
    assert "recycling" in critical.member("MP").planned_stages
    for ticker in ("NVDA", "TSM", "AVGO", "MU"):
        m = critical.member(ticker)
        assert m.stages == ("end_use",) and m.confidence == "low"
    assert critical.member("PRE.L").currency == "GBp"
    assert "LAAC" not in critical.tickers and "LAR" not in critical.tickers


# -- API: member lookup, frame and dict -------------------------------------------------------------------


def test_member_finds_primary_and_alternative_listings(rare_earths):
    assert rare_earths.member("LYC.AX").name.startswith("Lynas")
    assert rare_earths.member("LYSDY").ticker == "LYC.AX"
    with pytest.raises(UniverseError, match=r"no member 'LYC\.AXX'.*did you mean 'LYC\.AX'"):
        rare_earths.member("LYC.AXX")


def test_to_dict_has_the_json_shape_scripts_rely_on(critical):
    d = critical.to_dict()
    assert list(d) == ["name", "title", "description", "base_currency", "benchmarks", "as_of", "members"]
    assert d["as_of"] == critical.as_of.isoformat() and isinstance(d["benchmarks"], list)
    assert len(d["members"]) == len(critical.members)
    for m in d["members"]:
        assert list(m) == MEMBER_KEYS
        for key in ("asset_countries", "stages", "elements", "sources", "planned_stages", "planned_elements"):
            assert isinstance(m[key], list) and all(isinstance(v, str) for v in m[key])
        assert m["first_trade_date"] is None or date.fromisoformat(m["first_trade_date"])
        for listing in m["alt_listings"]:
            assert list(listing) == ["ticker", "exchange", "currency", "note"]
    assert json.loads(json.dumps(d)) == d
    usar = next(m for m in d["members"] if m["ticker"] == "USAR")
    assert usar["first_trade_date"] == "2025-03-14"


def test_to_frame_has_one_row_per_member_in_file_order(rare_earths):
    frame = rare_earths.to_frame()
    assert frame.index.name == "ticker"
    assert list(frame.index) == list(rare_earths.tickers)
    assert list(frame.columns) == MEMBER_KEYS[1:]
    assert frame.loc["MP", "stages"] == ("mining", "separation", "metal", "magnet")
    assert frame.loc["LYC.AX", "alt_listings"][0] == {"ticker": "LYSDY", "exchange": "OTC", "currency": "USD",
                                                      "note": "sponsored ADR, 1:1"}
    assert frame.loc["USAR", "first_trade_date"] == pd.Timestamp("2025-03-14")
    assert pd.isna(frame.loc["MP", "first_trade_date"])


# -- malformed files --------------------------------------------------------------------------------------

VALID = """\
name = "mini"
title = "Mini universe"
description = "Three members for tests."
base_currency = "USD"
benchmarks = ["REMX", "SPY"]
as_of = 2025-11-01

[[members]]
ticker = "MP"
name = "MP Materials Corp."
exchange = "NYSE"
currency = "USD"
country = "United States"
asset_countries = ["United States"]
stages = ["mining", "separation"]
planned_stages = ["recycling"]
elements = ["Nd", "Pr"]
status = "producing"
sources = ["test"]
confidence = "high"

[[members]]
ticker = "LYC.AX"
name = "Lynas Rare Earths Ltd."
exchange = "ASX"
currency = "AUD"
country = "Australia"
asset_countries = ["Australia", "Malaysia"]
stages = ["mining", "separation"]
elements = ["Nd", "Pr", "Dy"]
status = "producing"
sources = ["test"]
confidence = "high"
alt_listings = [{ ticker = "LYSDY", exchange = "OTC", currency = "USD", note = "ADR" }]

[[members]]
ticker = "NEO.TO"
name = "Neo Performance Materials Inc."
exchange = "TSX"
currency = "CAD"
country = "Canada"
asset_countries = ["Estonia"]
stages = ["separation", "magnet"]
elements = ["Nd", "Pr"]
status = "producing"
first_trade_date = 2017-06-01
sources = ["test"]
confidence = "medium"
notes = "third member"
"""

NEO_STAGES = 'stages = ["separation", "magnet"]'


def _third(old: str, new: str) -> str:
    """VALID with `old` replaced in the third member only."""
    head, third = VALID.rsplit("[[members]]", 1)
    assert old in third
    return head + "[[members]]" + third.replace(old, new, 1)


MALFORMED = [
    ("unknown_stage", _third(NEO_STAGES, 'stages = ["smelting"]'),
     ["member 3 (NEO.TO): unknown stage 'smelting'; expected one of: mining, separation, metal, magnet, "
      "recycling, end_use", "did you mean 'separation'"]),
    ("unknown_exchange", _third('exchange = "TSX"', 'exchange = "TSX Ventures"'),
     ["member 3 (NEO.TO)", "unknown exchange 'TSX Ventures'", "NYSE_AMERICAN"]),
    ("exchange_alias", _third('exchange = "TSX"', 'exchange = "NYSE American"'),
     ["member 3 (NEO.TO)", "unknown exchange", "did you mean 'NYSE_AMERICAN'"]),
    ("date_as_string", _third("first_trade_date = 2017-06-01", 'first_trade_date = "2017-06-01"'),
     ["member 3 (NEO.TO)", "`first_trade_date` must be a TOML date", "unquoted"]),
    ("date_as_datetime", _third("first_trade_date = 2017-06-01", "first_trade_date = 2017-06-01T09:30:00"),
     ["member 3 (NEO.TO)", "`first_trade_date` must be a TOML date"]),
    ("date_after_as_of", _third("first_trade_date = 2017-06-01", "first_trade_date = 2030-01-01"),
     ["member 3 (NEO.TO)", "`first_trade_date` 2030-01-01 is after the universe's `as_of` 2025-11-01"]),
    ("missing_ticker", _third('ticker = "NEO.TO"\n', ""),
     ["member 3 (no ticker)", "missing required key `ticker`"]),
    ("duplicate_ticker", _third('ticker = "NEO.TO"', 'ticker = "MP"').replace(
        'exchange = "TSX"\ncurrency = "CAD"', 'exchange = "NYSE"\ncurrency = "USD"'),
     ["member 3 (MP)", "duplicate ticker 'MP' (already member 1)"]),
    ("duplicate_of_alt_listing", _third('ticker = "NEO.TO"', 'ticker = "LYSDY"').replace(
        'exchange = "TSX"\ncurrency = "CAD"', 'exchange = "OTC"\ncurrency = "USD"'),
     ["member 3 (LYSDY)", "duplicate ticker 'LYSDY' (already an alternative listing of member 2 (LYC.AX))"]),
    ("unknown_key", _third(NEO_STAGES, 'stage = ["magnet"]\n' + NEO_STAGES),
     ["member 3 (NEO.TO)", "unknown key `stage`", "expected one of: ticker, name", "did you mean 'stages'"]),
    ("stages_not_a_list", _third(NEO_STAGES, 'stages = "mining"'),
     ["member 3 (NEO.TO)", "`stages` must be a list of strings", 'stages = ["mining"]', "got string 'mining'"]),
    ("stages_empty", _third(NEO_STAGES, "stages = []"), ["member 3 (NEO.TO)", "`stages` must not be empty"]),
    ("stages_not_strings", _third(NEO_STAGES, "stages = [1, 2]"),
     ["member 3 (NEO.TO)", "`stages` must contain only non-empty strings, got integer 1"]),
    ("stage_twice", _third(NEO_STAGES, 'stages = ["magnet", "magnet"]'),
     ["member 3 (NEO.TO)", "`stages` lists 'magnet' twice"]),
    ("planned_repeats_stage", _third(NEO_STAGES, NEO_STAGES + '\nplanned_stages = ["magnet"]'),
     ["member 3 (NEO.TO)", "`planned_stages` repeats 'magnet' from `stages`"]),
    ("suffix_mismatch", _third('ticker = "NEO.TO"', 'ticker = "NEO.AX"'),
     ["member 3 (NEO.AX)", "ticker 'NEO.AX' does not match exchange 'TSX'", "'.TO'"]),
    ("us_exchange_with_suffix", _third('ticker = "NEO.TO"', 'ticker = "NEO.XX"').replace(
        'exchange = "TSX"\ncurrency = "CAD"', 'exchange = "NASDAQ"\ncurrency = "USD"'),
     ["member 3 (NEO.XX)", "has a suffix that matches no exchange"]),
    ("lower_case_ticker", _third('ticker = "NEO.TO"', 'ticker = "neo.to"'),
     ["member 3 (neo.to)", "not a Yahoo equity symbol", "did you mean 'NEO.TO'"]),
    ("unknown_country", _third('country = "Canada"', 'country = "Burma"'),
     ["member 3 (NEO.TO)", "unknown country 'Burma'", "did you mean 'Myanmar'"]),
    ("unknown_asset_country", _third('asset_countries = ["Estonia"]', 'asset_countries = ["Estonai"]'),
     ["member 3 (NEO.TO)", "unknown asset country 'Estonai'", "did you mean 'Estonia'"]),
    ("asset_countries_wrong_type", _third('asset_countries = ["Estonia"]', "asset_countries = 3"),
     ["member 3 (NEO.TO)", "`asset_countries` must be a list of strings", "got integer 3"]),
    ("unknown_element", _third('elements = ["Nd", "Pr"]', 'elements = ["nd", "REE"]'),
     ["member 3 (NEO.TO)", "unknown element 'nd'", "did you mean 'Nd'", "unknown element 'REE'"]),
    ("unknown_status", _third('status = "producing"', 'status = "commissioning"'),
     ["member 3 (NEO.TO)", "unknown status 'commissioning'", "producing, construction, development, exploration",
      "did you mean 'construction'"]),
    ("unknown_confidence", _third('confidence = "medium"', 'confidence = "certain"'),
     ["member 3 (NEO.TO)", "unknown confidence 'certain'; expected one of: high, medium, low"]),
    ("unknown_currency", _third('currency = "CAD"', 'currency = "XYZ"'),
     ["member 3 (NEO.TO)", "unknown currency 'XYZ'", "GBp"]),
    ("pence_as_pounds", _third('ticker = "NEO.TO"', 'ticker = "PRE.L"').replace(
        'exchange = "TSX"\ncurrency = "CAD"', 'exchange = "LSE"\ncurrency = "GBP"'),
     ["member 3 (PRE.L)", "currency 'GBP' but LSE quotes in 'GBp'"]),
    ("sources_empty", _third('sources = ["test"]', "sources = []"),
     ["member 3 (NEO.TO)", "`sources` must not be empty"]),
    ("name_wrong_type", _third('name = "Neo Performance Materials Inc."', "name = 42"),
     ["member 3 (NEO.TO)", "`name` must be a string, got integer 42"]),
    ("notes_wrong_type", _third('notes = "third member"', "notes = [1]"),
     ["member 3 (NEO.TO)", "`notes` must be a string"]),
    ("alt_listing_bad", _third('notes = "third member"', 'alt_listings = [{ ticker = "NOPMF", exchange = "OTCQB", '
                                                         'currency = "USD", note = "x", extra = 1 }]'),
     ["member 3 (NEO.TO): alt_listings[1] (NOPMF): unknown exchange 'OTCQB'", "did you mean 'OTC'",
      "unknown key `extra`"]),
    ("alt_listings_not_a_list", _third('notes = "third member"', 'alt_listings = "NOPMF"'),
     ["member 3 (NEO.TO)", "`alt_listings` must be a list of inline tables"]),
    ("member_not_a_table", VALID.replace('benchmarks = ["REMX", "SPY"]', 'benchmarks = ["REMX", "SPY"]\nmembers = [1]')
     .split("[[members]]")[0], ["member 1: must be a table"]),
]


@pytest.mark.parametrize(("case", "text", "fragments"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_member_is_a_precise_universe_error(tmp_path, case, text, fragments):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UniverseError) as info:
        load_universe(path)
    message = str(info.value)
    first = message.splitlines()[0]
    assert first.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


TOP_LEVEL = [
    ("toml_syntax", VALID.replace('status = "producing"', "status = producing", 1),
     ["TOML syntax error", "line 18, column 10"]),
    ("invalid_toml_date", VALID.replace("as_of = 2025-11-01", "as_of = 2025-02-30"),
     ["TOML syntax error", "line 6"]),
    ("missing_members", VALID.split("[[members]]")[0], ["missing required key `members`"]),
    ("empty_members", VALID.split("[[members]]")[0] + "members = []\n", ["`members` is empty"]),
    ("members_not_tables", VALID.split("[[members]]")[0] + 'members = "MP"\n', ["`members` must be an array"]),
    ("missing_keys", VALID.replace('title = "Mini universe"\n', "").replace("as_of = 2025-11-01\n", ""),
     ["missing required keys `title`, `as_of`"]),
    ("unknown_top_key", "benchmark = 1\n" + VALID, ["unknown key `benchmark`", "did you mean 'benchmarks'"]),
    ("bad_base_currency", VALID.replace('base_currency = "USD"', 'base_currency = "XAU"'),
     ["unknown `base_currency` 'XAU'", "expected one of: AUD"]),
    ("pence_base_currency", VALID.replace('base_currency = "USD"', 'base_currency = "GBp"'),
     ["unknown `base_currency` 'GBp'"]),
    ("benchmarks_string", VALID.replace('benchmarks = ["REMX", "SPY"]', 'benchmarks = "REMX"'),
     ["`benchmarks` must be a list of strings"]),
    ("bad_benchmark", VALID.replace('benchmarks = ["REMX", "SPY"]', 'benchmarks = ["REMX", "S P Y"]'),
     ["benchmark 'S P Y' is not a Yahoo symbol"]),
    ("as_of_string", VALID.replace("as_of = 2025-11-01", 'as_of = "2025-11-01"'), ["`as_of` must be a TOML date"]),
]


@pytest.mark.parametrize(("case", "text", "fragments"), TOP_LEVEL, ids=[c[0] for c in TOP_LEVEL])
def test_malformed_file_is_a_precise_universe_error(tmp_path, case, text, fragments):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UniverseError) as info:
        load_universe(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_every_problem_is_reported_one_per_line_in_file_order():
    text = _third(NEO_STAGES, 'stages = ["smelting"]').replace('country = "United States"', 'country = "USA"', 1)
    with pytest.raises(UniverseError) as info:
        parse_universe(text, "universes/x.toml")
    lines = str(info.value).splitlines()
    assert lines == [
        "universes/x.toml: member 1 (MP): unknown country 'USA'; expected one of the "
        f"{len(COUNTRIES)} names in screener.universe.COUNTRIES; did you mean 'United States'?",
        "universes/x.toml: member 3 (NEO.TO): unknown stage 'smelting'; expected one of: mining, separation, "
        "metal, magnet, recycling, end_use; did you mean 'separation'?",
    ]


# -- loading by name and by path --------------------------------------------------------------------------


def test_parse_universe_is_pure_and_keeps_the_given_path():
    uni = parse_universe(VALID, "upload.toml")
    assert uni.path == "upload.toml" and uni.name == "mini"
    assert uni.tickers == ("MP", "LYC.AX", "NEO.TO")
    assert uni.member("NEO.TO").first_trade_date == date(2017, 6, 1)
    assert uni.member("LYC.AX").alt_listings == (Listing("LYSDY", "OTC", "USD", "ADR"),)
    assert uni.member("MP").planned_stages == ("recycling",)
    assert parse_universe(VALID.encode("utf-8")) == dataclasses.replace(uni, path="<string>")
    # A byte-order mark (Windows editors) is accepted.
    assert parse_universe("\ufeff" + VALID).tickers == uni.tickers


def test_member_defaults():
    m = Member("X", "X Corp", "NYSE", "USD", "United States", ("United States",), ("mining",), ("Li",),
               "producing", ("s",), "low")
    assert m.first_trade_date is None and m.alt_listings == () and m.notes == ""


def test_user_file_by_path_need_not_match_its_stem(tmp_path, monkeypatch):
    path = tmp_path / "my universe (1).toml"
    path.write_text(VALID, encoding="utf-8")
    assert load_universe(path).name == "mini"
    assert load_universe(str(path)).path == str(path.resolve())
    monkeypatch.chdir(tmp_path)
    assert load_universe("my universe (1).toml").name == "mini"


def test_shipped_file_name_must_match_its_stem(tmp_path, monkeypatch):
    (tmp_path / "wrong.toml").write_text(VALID, encoding="utf-8")
    (tmp_path / "mini.toml").write_text(VALID, encoding="utf-8")
    (tmp_path / "_markets.toml").write_text("", encoding="utf-8")
    monkeypatch.setattr(universe_module, "universes_dir", lambda: tmp_path)
    assert list_universes() == ["mini", "wrong"]
    assert load_universe("mini").name == "mini"
    with pytest.raises(UniverseError, match=r"wrong\.toml: `name` is 'mini' but .* file stem 'wrong'"):
        load_universe("wrong")


def test_shipped_universe_by_path(rare_earths):
    assert load_universe(universes_dir() / "rare_earths.toml") == rare_earths


def test_unknown_name_lists_the_available_universes():
    with pytest.raises(UniverseError) as info:
        load_universe("rare_earth")
    message = str(info.value)
    assert "unknown universe 'rare_earth'" in message
    assert "critical_minerals_ai, rare_earths" in message and "did you mean 'rare_earths'" in message


@pytest.mark.parametrize("name", ["_markets", "", "nope"])
def test_non_universe_names_are_unknown(name):
    with pytest.raises(UniverseError, match="unknown universe"):
        load_universe(name)


def test_missing_file_directory_and_bad_argument(tmp_path):
    with pytest.raises(UniverseError, match=r"nope\.toml: file not found"):
        load_universe(tmp_path / "nope.toml")
    with pytest.raises(UniverseError, match="not a file"):
        load_universe(tmp_path)
    with pytest.raises(UniverseError, match="must be a universe name or a path"):
        load_universe(3)  # type: ignore[arg-type]


def test_non_utf8_file_is_a_universe_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(VALID.replace("Mini universe", "Minï").encode("latin-1"))
    with pytest.raises(UniverseError, match=r"latin1\.toml: not UTF-8 text"):
        load_universe(path)


def test_edited_file_is_reloaded(tmp_path):
    path = tmp_path / "u.toml"
    path.write_text(VALID, encoding="utf-8")
    assert load_universe(path).title == "Mini universe"
    path.write_text(VALID.replace("Mini universe", "Edited"), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_universe(path).title == "Edited"


# -- junk in, UniverseError out ---------------------------------------------------------------------------

SAFE_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
SCALARS = (
    SAFE_TEXT
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.dates()
    | st.datetimes()
    | st.sampled_from(["", "mining", "Nd", "NYSE", "USD", "GBp", "Myanmar", "LYC.AX", "high", "producing"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(SAFE_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _toml_key(key: str) -> str:
    return json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def dumps(document: dict) -> str:
    """Serialize with tomli_w when installed, else as one line per key with inline tables."""
    if tomli_w is not None:
        return tomli_w.dumps(document)
    return "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in document.items())


def _valid_member() -> dict:
    return {
        "ticker": "NEO.TO", "name": "Neo", "exchange": "TSX", "currency": "CAD", "country": "Canada",
        "asset_countries": ["Estonia"], "stages": ["separation"], "elements": ["Nd"], "status": "producing",
        "sources": ["s"], "confidence": "medium", "first_trade_date": date(2017, 6, 1),
        "alt_listings": [{"ticker": "NOPMF", "exchange": "OTC", "currency": "USD", "note": ""}],
        "planned_stages": ["magnet"], "planned_elements": ["Dy"], "notes": "",
    }


def _valid_document() -> dict:
    return {"name": "fuzz", "title": "Fuzz", "description": "", "base_currency": "USD", "benchmarks": ["SPY"],
            "as_of": date(2025, 11, 1), "members": [_valid_member()]}


def _parses_or_universe_error(text) -> Universe | None:
    try:
        return parse_universe(text, "fuzz.toml")
    except UniverseError as exc:
        assert str(exc).startswith("fuzz.toml: ")
        return None


JUNK = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@JUNK
@given(st.text(max_size=300))
def test_random_text_only_raises_universe_error(text):
    _parses_or_universe_error(text)


@JUNK
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_universe_error(data):
    _parses_or_universe_error(data)
    _parses_or_universe_error(data.decode("utf-8", errors="replace"))


@JUNK
@given(st.dictionaries(st.sampled_from([*Universe.__dataclass_fields__, "members", "junk"]) | SAFE_TEXT, VALUES,
                       max_size=8))
def test_random_documents_only_raise_universe_error(document):
    _parses_or_universe_error(dumps(document))


@JUNK
@given(st.sampled_from(MEMBER_KEYS), VALUES, st.sampled_from(["replace", "delete"]))
def test_one_corrupted_member_field_only_raises_universe_error(key, value, how):
    document = _valid_document()
    assert _parses_or_universe_error(dumps(document)) is not None
    member = document["members"][0]
    if how == "delete":
        del member[key]
    else:
        member[key] = value
    uni = _parses_or_universe_error(dumps(document))
    if uni is None:
        return
    # Whatever got through is well-formed.
    json.dumps(uni.to_dict())
    m = uni.members[0]
    assert all(isinstance(v, str) for v in m.stages + m.elements + m.asset_countries + m.sources)


@JUNK
@given(st.sampled_from(["name", "title", "description", "base_currency", "benchmarks", "as_of", "members"]),
       VALUES)
def test_one_corrupted_top_level_field_only_raises_universe_error(key, value):
    document = _valid_document()
    document[key] = value
    _parses_or_universe_error(dumps(document))


# -- the documentation stays true -------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "universes.md"


def test_the_documented_example_is_a_valid_universe():
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    uni = parse_universe(example, "docs/universes.md")
    assert uni.tickers == ("LYC.AX", "MP")


def test_the_documented_member_table_matches_the_shipped_files(rare_earths, critical):
    rows = [line.split("|")[1:-1] for line in DOCS.read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and line.count("|") == 9]
    table = {cells[0].strip(): [c.strip() for c in cells] for cells in rows if cells[0].strip() != "ticker"}
    assert list(table) == list(critical.tickers)
    manifest = Path(__file__).resolve().parents[2] / "shared" / "marketdata" / "MANIFEST.csv"
    in_snapshot = set(pd.read_csv(manifest)["ticker"]) if manifest.is_file() else None
    for ticker, cells in table.items():
        if in_snapshot is not None:
            assert cells[7] == ("yes" if ticker in in_snapshot else "no"), ticker
        m = critical.member(ticker)
        assert (cells[2], cells[4], cells[5]) == (m.exchange, m.status, m.confidence), ticker
        assert cells[6] == ("both" if ticker in rare_earths.tickers else "critical_minerals_ai"), ticker


def test_spelling_suggestions_point_to_accepted_values():
    # Aliases are only suggestions; each must lead to a value the validator accepts.
    assert set(universe_module._COUNTRY_ALIASES.values()) <= set(COUNTRIES)
    assert set(universe_module._STAGE_ALIASES.values()) <= set(STAGES)
    assert set(universe_module._STATUS_ALIASES.values()) <= set(STATUSES)
    assert set(universe_module._EXCHANGE_ALIASES.values()) <= set(load_markets().exchanges)
    assert not set(universe_module._COUNTRY_ALIASES) & {c.casefold() for c in COUNTRIES}
    with pytest.raises(UniverseError, match=r"unknown country 'Ivory Coast'.*did you mean 'Côte d'Ivoire'\?"):
        parse_universe(_third('country = "Canada"', 'country = "Ivory Coast"'))
    with pytest.raises(UniverseError, match=r"unknown element 'NdPr'.*did you mean 'Nd' and 'Pr'\?"):
        parse_universe(_third('elements = ["Nd", "Pr"]', 'elements = ["NdPr"]'))
