"""Reference files: the shipped data loads and validates; every malformed cell is reported by file, row and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screener.exceptions import DataError
from screener.paths import reference_dir
from screener.reference import CONFIDENCE, DIRECTIONS, FILES, Reference, load_reference
from screener.universe import COUNTRIES, ELEMENTS, STAGES, load_universe

DEMAND_SIDE = {"NVDA", "TSM", "AVGO", "MU"}


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load_reference()


@pytest.fixture(scope="module")
def members() -> dict[str, object]:
    out = {}
    for name in ("rare_earths", "critical_minerals_ai"):
        for m in load_universe(name).members:
            out[m.ticker] = m
    return out


def copy_reference(tmp_path: Path) -> Path:
    target = tmp_path / "reference"
    target.mkdir()
    for file in FILES:
        shutil.copy(reference_dir() / file, target / file)
    return target


def set_cell(directory: Path, file: str, row: int, column: str, value: str) -> None:
    """Set one cell (row = 1-based data row) of a copied file, leaving every other byte of meaning unchanged."""
    path = directory / file
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row - 1, column] = value
    frame.to_csv(path, index=False)


def data_row(file: str, **match: str) -> int:
    """1-based data row of the first row of a shipped file whose columns equal `match`."""
    frame = pd.read_csv(reference_dir() / file, dtype=str, keep_default_na=False)
    mask = np.ones(len(frame), dtype=bool)
    for column, value in match.items():
        mask &= frame[column].to_numpy() == value
    return int(np.flatnonzero(mask)[0]) + 1


# --- the shipped files ---------------------------------------------------------------------------------------


def test_shipped_reference_loads_with_typed_columns(ref):
    assert Path(ref.directory) == reference_dir()
    assert len(ref.elements) > 700 and len(ref.events) == 36
    assert ref.elements["published"].dtype.kind == "M" and ref.events["announced"].dtype.kind == "M"
    assert ref.exposures["weight"].dtype == float and ref.chain["china_linked"].dtype == bool
    assert all(isinstance(e, tuple) for e in ref.events["elements"])
    # Every value is sourced and flagged, with the source's vocabulary.
    for frame in (ref.elements, ref.countries, ref.exposures, ref.chain):
        assert frame["source"].str.len().gt(0).all()
        assert frame["confidence"].isin(CONFIDENCE).all()
    assert ref.events["direction"].isin(DIRECTIONS).all()
    assert set(ref.elements["element"]) <= set(ELEMENTS) | set(ref.groups)
    assert set(ref.chain["country"]) <= set(COUNTRIES) and set(ref.chain["stage"]) <= set(STAGES)


def test_every_member_of_both_universes_has_exposures_and_chain_or_is_demand_side(ref, members):
    covered = set(ref.exposures["ticker"])
    assert covered == set(ref.chain["ticker"])
    assert covered <= set(members), "exposures for a ticker outside the shipped universes"
    assert set(members) - covered == DEMAND_SIDE


def test_exposure_weights_sum_to_one_and_elements_are_the_universe_elements(ref, members):
    sums = ref.exposures.groupby("ticker")["weight"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-6)
    for ticker, rows in ref.exposures.groupby("ticker"):
        assert tuple(rows["element"]) == members[ticker].elements


def test_chain_weights_sum_to_one_on_every_date_a_member_has_rows(ref):
    for ticker, rows in ref.chain.groupby("ticker"):
        end = rows["valid_to"].fillna(pd.Timestamp("2262-01-01"))
        for day in rows["valid_from"].unique():
            valid = (rows["valid_from"] <= day) & (day < end)
            assert rows.loc[valid, "weight"].sum() == pytest.approx(1.0, abs=1e-4), (ticker, day)


def test_month_only_dates_are_stored_as_month_ends_and_e22_expands_to_clean_symbols(ref):
    events = ref.events.set_index("event_id")
    assert events.at["E01", "announced"] == pd.Timestamp("2010-07-31")
    assert events.at["E18", "announced"] == pd.Timestamp("2024-10-31")
    assert events.at["E22", "elements"] == ("Sm", "Gd", "Tb", "Dy", "Lu", "Sc", "Y")
    assert events.at["E20", "ended"] == pd.Timestamp("2025-11-09")
    assert events.at["E20", "suspended_until"] == pd.Timestamp("2026-11-27")
    assert len(events.at["E31", "elements"]) == 14  # 12 controlled REEs + graphite + Li
    assert events.at["E07", "elements"] == ()


def test_publication_dates_follow_the_documented_releases(ref):
    facts = ref.elements
    hhi = facts.loc[(facts["element"] == "REE_total") & (facts["metric"] == "hhi_mine_production")]
    assert set(hhi["published"]) == {pd.Timestamp("2025-01-31")}
    lists = facts.loc[facts["metric"] == "us_critical"].groupby("year")["published"].unique()
    assert list(lists.loc[2022]) == [pd.Timestamp("2022-02-24")]
    assert list(lists.loc[2025]) == [pd.Timestamp("2025-11-07")]
    assert set(ref.countries["published"]) == {pd.Timestamp("2024-12-31")}


def test_loader_does_not_upgrade_source_confidence(ref):
    source = pd.read_csv(Path(__file__).resolve().parents[2] / "shared" / "reference" / "elements.csv")
    rank = {"low": 0, "medium": 1, "high": 2, "computed": 2}
    shipped = ref.elements
    # Facts copied one to one (same element, metric, country, year, value) never gain confidence.
    keys = ["element", "metric", "country", "year"]
    src = source.loc[source["confidence"].isin(rank)].assign(src_rank=lambda f: f["confidence"].map(rank))
    merged = shipped.assign(rank=shipped["confidence"].map(rank)).merge(src[[*keys, "src_rank"]], on=keys)
    assert len(merged) > 400
    assert (merged["rank"] <= merged["src_rank"]).all()


# --- malformed files: one bad cell each ----------------------------------------------------------------------

E22 = data_row("events.csv", event_id="E22")
E20 = data_row("events.csv", event_id="E20")
HHI = data_row("elements.csv", element="REE_total", metric="hhi_mine_production")
LIST = data_row("elements.csv", element="Dy", metric="us_critical")
CHINA = data_row("countries.csv", country="China")
MP_LA = data_row("exposures.csv", ticker="MP", element="La")
MP_CHAIN = data_row("chain.csv", ticker="MP")
GROUP = data_row("element_groups.csv", group="NdPr")

MALFORMED = [
    ("events.csv", E22, "elements", "Sm;Dyy",
     f"events.csv: row {E22} (E22), "
     "field 'elements': unknown element 'Dyy'; did you mean 'Dy'?"),
    ("events.csv", E22, "direction", "restrictve",
     f"row {E22} (E22), field 'direction': unknown direction 'restrictve'"),
    ("events.csv", E20, "ended", "2024-01-01",
     f"row {E20} (E20), field 'ended': ended 2024-01-01 before announced 2024-12-03"),
    ("events.csv", E22, "announced", "2025-02-30",
     f"row {E22} (E22), field 'announced': impossible date '2025-02-30'"),
    ("events.csv", E22, "announced", "04/04/2025",
     f"row {E22} (E22), field 'announced': malformed date '04/04/2025'"),
    ("events.csv", E22, "announced", "",
     f"row {E22} (E22), field 'announced': missing date"),
    ("events.csv", E22, "event_id", "E20",
     f"row {E22} (E20), field 'event_id': duplicate of row {E20}"),
    ("elements.csv", HHI, "country", "Narnia",
     f"elements.csv: row {HHI} (REE_total hhi_mine_production), "
     "field 'country': unknown country 'Narnia'"),
    ("elements.csv", HHI, "element", "REE_totl",
     f"row {HHI} (REE_totl hhi_mine_production), "
     "field 'element': unknown element 'REE_totl'; did you mean 'REE_total'?"),
    ("elements.csv", HHI, "value", "12000",
     f"row {HHI} (REE_total hhi_mine_production), "
     "field 'value': HHI must be in [0, 10000]"),
    ("elements.csv", HHI, "value", "lots",
     f"row {HHI} (REE_total hhi_mine_production), field 'value': not a number: 'lots'"),
    ("elements.csv", HHI, "published", "2025-13-01",
     f"row {HHI} (REE_total hhi_mine_production), "
     "field 'published': impossible date '2025-13-01'"),
    ("elements.csv", HHI, "published", "1066-10-14",
     "field 'published': implausible date '1066-10-14'"),
    ("elements.csv", HHI, "confidence", "certain",
     f"row {HHI} (REE_total hhi_mine_production), "
     "field 'confidence': unknown confidence 'certain'"),
    ("elements.csv", LIST, "value", "0.5",
     f"row {LIST} (Dy us_critical), field 'value': list membership must be 0 or 1"),
    ("countries.csv", CHINA, "country", "Chnia",
     f"countries.csv: row {CHINA} (Chnia), "
     "field 'country': unknown country 'Chnia'; did you mean 'China'?"),
    ("countries.csv", CHINA, "rule_of_law", "7",
     f"row {CHINA} (China), field 'rule_of_law': WGI estimate outside [-3.5, 3.5]"),
    ("countries.csv", CHINA, "iso3", "cn",
     f"row {CHINA} (China), field 'iso3': expected three capital letters"),
    ("exposures.csv", MP_LA, "weight", "0.5",
     f"exposures.csv: row {MP_LA} (MP), field 'weight': weights of MP (rows"),
    ("exposures.csv", MP_LA, "element", "Lanthanum",
     f"row {MP_LA} (MP), field 'element': unknown element 'Lanthanum'"),
    ("exposures.csv", MP_LA, "weight", "-0.25",
     f"row {MP_LA} (MP), field 'weight': must be in (0, 1]"),
    ("chain.csv", MP_CHAIN, "weight", "0.9",
     f"chain.csv: row {MP_CHAIN} (MP), "
     "field 'weight': weights of MP valid on 2020-11-17"),
    ("chain.csv", MP_CHAIN, "stage", "smelting",
     f"row {MP_CHAIN} (MP), field 'stage': unknown stage 'smelting'"),
    ("chain.csv", MP_CHAIN, "country", "USA",
     f"row {MP_CHAIN} (MP), field 'country': unknown country 'USA'"),
    ("chain.csv", MP_CHAIN, "valid_to", "2019-01-01",
     f"row {MP_CHAIN} (MP), "
     "field 'valid_to': valid_to 2019-01-01 not after valid_from 2020-11-17"),
    ("chain.csv", MP_CHAIN, "china_linked", "maybe",
     f"row {MP_CHAIN} (MP), field 'china_linked': expected 0 or 1"),
    ("element_groups.csv", GROUP, "element", "Ndd",
     f"element_groups.csv: row {GROUP} (NdPr:Ndd), "
     "field 'element': unknown element 'Ndd'"),
]


@pytest.mark.parametrize(("file", "row", "column", "value", "expected"), MALFORMED,
                         ids=[f"{f}-{c}-{v or 'empty'}" for f, _, c, v, _ in MALFORMED])
def test_a_bad_cell_is_reported_with_file_row_and_field(tmp_path, file, row, column, value, expected):
    directory = copy_reference(tmp_path)
    set_cell(directory, file, row, column, value)
    with pytest.raises(DataError) as info:
        load_reference(directory)
    message = str(info.value)
    assert str(directory / file) in message
    assert expected in message


def test_every_problem_of_a_file_is_listed_one_per_line(tmp_path):
    directory = copy_reference(tmp_path)
    set_cell(directory, "events.csv", E22, "elements", "Dyy")
    set_cell(directory, "events.csv", E20, "direction", "up")
    with pytest.raises(DataError) as info:
        load_reference(directory)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert f"row {E20} (E20)" in lines[0] and f"row {E22} (E22)" in lines[1]


def test_header_missing_file_and_missing_directory(tmp_path):
    directory = copy_reference(tmp_path)
    frame = pd.read_csv(directory / "events.csv", dtype=str, keep_default_na=False)
    frame.rename(columns={"direction": "dir"}).to_csv(directory / "events.csv", index=False)
    expected = r"events\.csv: header: missing column\(s\) 'direction'; unknown column\(s\) 'dir'"
    with pytest.raises(DataError, match=expected):
        load_reference(directory)
    (directory / "chain.csv").unlink()
    (directory / "events.csv").write_text((reference_dir() / "events.csv").read_text())
    with pytest.raises(DataError, match=r"chain\.csv: file not found"):
        load_reference(directory)
    with pytest.raises(DataError, match="reference directory not found"):
        load_reference(tmp_path / "nowhere")


# Junk in any text cell of the events file is either accepted or reported as a DataError naming the file.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(["announced", "effective", "ended", "direction", "elements", "event_id"]),
       value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12))
def test_junk_cells_never_crash_the_loader(tmp_path_factory, column, value):
    directory = copy_reference(tmp_path_factory.mktemp("junk"))
    set_cell(directory, "events.csv", E22, column, value)
    try:
        load_reference(directory)
    except DataError as exc:
        assert str(directory / "events.csv") in str(exc)
