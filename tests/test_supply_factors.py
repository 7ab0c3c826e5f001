"""Supply-risk factors: point in time, hand-checked values, explanations and invariants."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screener.factors import (
    COMPONENT_WEIGHTS,
    FACTOR_COLUMNS,
    china_dependency,
    criticality_components,
    element_criticality,
    explain_supply,
    integration,
    jurisdiction_risk,
    supply_factors,
    supply_risk_exposure,
)
from screener.paths import reference_dir
from screener.reference import Reference, load_reference
from screener.universe import load_universe

NUMERIC = list(FACTOR_COLUMNS[:4])


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load_reference()


@pytest.fixture(scope="module")
def cm():
    return load_universe("critical_minerals_ai")


@pytest.fixture(scope="module")
def rare():
    return load_universe("rare_earths")


def without_events(reference: Reference, *ids: str) -> Reference:
    return dataclasses.replace(reference, events=reference.events.loc[~reference.events["event_id"].isin(ids)])


def truncated(reference: Reference, day: pd.Timestamp) -> Reference:
    """The reference as it could have been compiled at `day`: nothing published or announced later."""
    return dataclasses.replace(
        reference,
        elements=reference.elements.loc[reference.elements["published"] <= day],
        countries=reference.countries.loc[reference.countries["published"] <= day],
        events=reference.events.loc[reference.events["announced"] <= day],
        exposures=reference.exposures.loc[reference.exposures["published"] <= day],
        chain=reference.chain.loc[reference.chain["published"] <= day],
    )


def snapshot(reference: Reference) -> dict[str, pd.DataFrame]:
    return {f.name: getattr(reference, f.name).copy(deep=True) for f in dataclasses.fields(reference)
            if isinstance(getattr(reference, f.name), pd.DataFrame)}


# --- shape and contract ----------------------------------------------------------------------------------------


def test_supply_factors_is_long_with_the_documented_columns(ref, cm):
    dates = pd.to_datetime(["2025-03-31", "2025-06-30"])
    table = supply_factors(cm, ref, dates)
    assert list(table.columns) == [*FACTOR_COLUMNS, "reason"]
    assert table.index.names == ["date", "ticker"]
    assert list(table.index.get_level_values("ticker")[: len(cm.tickers)]) == list(cm.tickers)
    assert list(table.index.get_level_values("date").unique()) == list(dates)
    assert isinstance(table["stage"].dtype, pd.CategoricalDtype)
    assert isinstance(table["status"].dtype, pd.CategoricalDtype)
    values = table[NUMERIC].to_numpy()
    assert np.nanmin(values) >= 0 and np.nanmax(values) <= 1
    # A NaN factor always comes with a reason, and a complete row has none.
    assert (table[NUMERIC].isna().any(axis=1) == table["reason"].ne("")).all()


def test_wide_functions_agree_with_the_long_table(ref, cm):
    dates = pd.date_range("2024-12-31", periods=4, freq="QE")
    table = supply_factors(cm, ref, dates)
    for name, wide in [("supply_risk_exposure", supply_risk_exposure(cm, ref, dates)),
                       ("china_dependency", china_dependency(cm, ref, dates)),
                       ("jurisdiction_risk", jurisdiction_risk(cm, ref, dates)),
                       ("integration", integration(cm, ref, dates))]:
        long = table[name].unstack("ticker")[list(cm.tickers)]
        pd.testing.assert_frame_equal(wide, long, check_names=False, check_freq=False)


def test_criticality_components_and_element_criticality_agree(ref):
    dates = pd.date_range("2020-12-31", periods=6, freq="YE")
    long = criticality_components(ref, dates)["criticality"].unstack("element")
    pd.testing.assert_frame_equal(element_criticality(ref, dates), long[element_criticality(ref, dates).columns],
                                  check_names=False, check_freq=False)


def test_universe_frame_and_universe_give_the_same_factors(ref, cm):
    dates = ["2025-06-30"]
    pd.testing.assert_frame_equal(supply_factors(cm, ref, dates), supply_factors(cm.to_frame(), ref, dates))


def test_bad_arguments_are_rejected_with_the_argument_name(ref, cm):
    with pytest.raises(ValueError, match="`event_date` must be 'announced' or 'effective'"):
        supply_factors(cm, ref, ["2025-06-30"], event_date="effectiv")
    with pytest.raises(ValueError, match="`dates` must be unique"):
        supply_factors(cm, ref, ["2025-06-30", "2025-06-30"])
    with pytest.raises(ValueError, match="`dates` must be tz-naive"):
        supply_factors(cm, ref, pd.DatetimeIndex(["2025-06-30"], tz="UTC"))
    with pytest.raises(ValueError, match="`min_coverage` must be in"):
        supply_factors(cm, ref, ["2025-06-30"], min_coverage=1.5)
    with pytest.raises(TypeError, match="`dates` must be a list-like"):
        element_criticality(ref, "2025-06-30")
    with pytest.raises(TypeError, match="`universe` must be a Universe"):
        supply_factors(["MP"], ref, ["2025-06-30"])
    with pytest.raises(KeyError, match="not a member"):
        explain_supply("XYZ", "2025-06-30", ref, cm)


# --- point in time: the April 2025 seven-REE controls (E22) ------------------------------------------------------


def test_no_trace_of_e22_in_2023(ref, cm):
    day = ["2023-06-30"]
    components = criticality_components(ref, day).xs(pd.Timestamp(day[0]))
    assert components.loc[["Dy", "Tb"], "events"].tolist() == [0.0, 0.0]
    no_e22 = without_events(ref, "E22")
    pd.testing.assert_frame_equal(element_criticality(ref, day), element_criticality(no_e22, day))
    pd.testing.assert_frame_equal(supply_factors(cm, ref, day), supply_factors(cm, no_e22, day))
    for ticker in ("LYC.AX", "MP", "000831.SZ"):
        assert "E22" not in json.dumps(explain_supply(ticker, day[0], ref, cm))


def test_e22_is_active_in_june_2025_and_raises_dy_tb_criticality_all_else_equal(ref, cm):
    dates = ["2025-03-31", "2025-06-30"]
    crit = element_criticality(ref, dates)
    assert (crit.loc["2025-06-30", ["Dy", "Tb"]] > crit.loc["2025-03-31", ["Dy", "Tb"]]).all()
    # All else equal: without E22 nothing changes between the two dates for Dy and Tb.
    base = element_criticality(without_events(ref, "E22"), dates)
    assert base.loc["2025-06-30", ["Dy", "Tb"]].tolist() == base.loc["2025-03-31", ["Dy", "Tb"]].tolist()
    assert base.loc["2025-06-30", ["Dy", "Tb"]].tolist() == crit.loc["2025-03-31", ["Dy", "Tb"]].tolist()
    # Light REE are not covered by E22.
    assert crit.loc["2025-06-30", "Nd"] == crit.loc["2025-03-31", "Nd"]
    explained = explain_supply("LYC.AX", "2025-06-30", ref, cm)
    assert "E22" in [e["event_id"] for e in explained["events"]]
    dy = next(e for e in explained["exposure"]["elements"] if e["element"] == "Dy")
    assert "E22" in dy["components"]["events"]["event_ids"]


def test_event_date_effective_delays_events_and_skips_e31_which_was_suspended_before_taking_effect(ref):
    day = ["2025-10-31"]
    announced = criticality_components(ref, day).xs(pd.Timestamp(day[0]))
    effective = criticality_components(ref, day, event_date="effective").xs(pd.Timestamp(day[0]))
    no_e31 = criticality_components(without_events(ref, "E31"), day).xs(pd.Timestamp(day[0]))
    assert announced.at["Ho", "events"] > effective.at["Ho", "events"] == no_e31.at["Ho", "events"]
    # E09 (Ga, Ge) was announced 2023-07-03 and effective 2023-08-01.
    july = ["2023-07-15"]
    assert criticality_components(ref, july).xs(pd.Timestamp(july[0])).at["Ga", "events"] == 0.5
    assert criticality_components(ref, july, event_date="effective").xs(pd.Timestamp(july[0])).at["Ga", "events"] == 0


def test_ended_events_stop_counting_on_their_end_date(ref):
    # E20 (US-specific Ga/Ge/Sb ban) ended 2025-11-09, exclusive.
    comp = criticality_components(ref, ["2025-11-08", "2025-11-09"])
    assert comp.loc[("2025-11-08", "Sb"), "events"] > comp.loc[("2025-11-09", "Sb"), "events"]


# --- point in time: company facts ----------------------------------------------------------------------------


def test_mp_china_dependency_drops_when_china_shipments_stop(ref, cm):
    dates = ["2023-06-30", "2025-04-16", "2025-04-17", "2025-06-30"]
    dep = china_dependency(cm, ref, dates)["MP"].tolist()
    assert dep == [1.0, 0.7, 0.0, 0.0]
    integ = integration(cm, ref, dates)["MP"].tolist()
    assert integ == [0.0, 0.25, 1.0, 1.0]


def test_a_fact_is_invisible_before_its_publication(ref, cm):
    # Lynas's Dy exposure is published 2025-05-16 (E25); before it Lynas's elements are renormalised without Dy.
    before = explain_supply("LYC.AX", "2025-05-15", ref, cm)["exposure"]["elements"]
    after = explain_supply("LYC.AX", "2025-05-16", ref, cm)["exposure"]["elements"]
    assert not next(e for e in before if e["element"] == "Dy")["visible"]
    assert next(e for e in after if e["element"] == "Dy")["visible"]
    # WGI (dated 2024-12-31) is invisible on 2024-12-30 unless backfill is on (look-ahead).
    assert np.isnan(jurisdiction_risk(cm, ref, ["2024-12-30"]).at["2024-12-30", "MP"])
    assert jurisdiction_risk(cm, ref, ["2024-12-30"], backfill=True).at["2024-12-30", "MP"] > 0


def test_backfill_uses_earliest_vintage_of_slow_data_but_never_lists_or_events(ref):
    comp = criticality_components(ref, ["2019-06-30", "2021-06-30"], backfill=True)
    # REE HHI: MCS 2025 is the only vintage; its earliest year is 2023 (4877).
    assert comp.loc[("2019-06-30", "Dy"), "concentration"] == pytest.approx(0.4877)
    # China share: the MCS 2024 vintage (68.6%) is earlier than MCS 2025.
    assert comp.loc[("2019-06-30", "Dy"), "china_mining"] == pytest.approx(0.686)
    assert np.isnan(comp.loc[("2019-06-30", "Dy"), "lists"])  # EU 2020 list published 2020-09-03
    assert comp.loc[("2021-06-30", "Dy"), "lists"] == 1.0
    plain = criticality_components(ref, ["2019-06-30"])
    assert plain[["concentration", "china_mining", "lists", "events"]].isna().all().all()


# --- hand-checked values -----------------------------------------------------------------------------------------


def test_mp_on_2025_06_30_by_hand_from_the_csv_numbers():
    folder = reference_dir()
    facts = pd.read_csv(folder / "elements.csv")
    countries = pd.read_csv(folder / "countries.csv").set_index("country")

    def fact(element, metric, year, country):
        row = facts.loc[(facts["element"] == element) & (facts["metric"] == metric) & (facts["year"] == year)
                        & (facts["country"] == country)]
        assert len(row) == 1, (element, metric, year)
        return float(row["value"].iloc[0])

    hhi = fact("REE_total", "hhi_mine_production", 2024, "World") / 10_000           # 0.5024 (MCS 2025)
    china = fact("REE_total", "china_share_mine_production_pct", 2024, "China") / 100  # 0.692 (MCS 2025)
    # Refining share (IEA, published 2025-10-23) is not yet public; lists: EU critical, EU strategic, US 2022.
    lists = {e: np.mean([fact(e, "eu_critical", 2024, "EU"), fact(e, "eu_strategic", 2024, "EU"),
                         fact(e, "us_critical", 2022, "United States")]) for e in ("La", "Ce", "Nd", "Pr")}
    # Active restrictive events covering La/Ce/Nd/Pr: E11 (technology ban) and E14 (regulation), 0.2 each.
    events = 1 - (1 - 0.2) * (1 - 0.2)
    w = COMPONENT_WEIGHTS
    known = w["concentration"] + w["china_mining"] + w["lists"] + w["events"]
    crit = {e: (w["concentration"] * hhi + w["china_mining"] * china + w["lists"] * lists[e] + w["events"] * events)
            / known for e in lists}
    assert crit["La"] == pytest.approx(0.42888 / 0.8)  # La is not EU-strategic: lists = 2/3
    exposure = np.mean(list(crit.values()))  # equal weights 0.25
    us = countries.loc["United States", ["political_stability", "regulatory_quality", "rule_of_law",
                                         "government_effectiveness", "control_of_corruption",
                                         "voice_accountability"]].astype(float).mean()
    jurisdiction = (2.5 - us) / 5

    ref = load_reference()
    universe = load_universe("critical_minerals_ai")
    row = supply_factors(universe, ref, ["2025-06-30"]).loc[("2025-06-30", "MP")]
    assert row["supply_risk_exposure"] == pytest.approx(exposure, abs=1e-12)
    assert row["supply_risk_exposure"] == pytest.approx(0.582975, abs=1e-6)
    assert row["jurisdiction_risk"] == pytest.approx(jurisdiction, abs=1e-12)
    assert row["china_dependency"] == 0.0 and row["integration"] == 1.0
    assert row["stage"] == "magnet" and row["status"] == "producing" and row["reason"] == ""


def test_explain_matches_the_factors_and_is_json_ready(ref, cm):
    dates = ["2024-06-30", "2025-06-30", "2025-11-30"]
    table = supply_factors(cm, ref, dates)
    for day in dates:
        for ticker in ("MP", "LYC.AX", "NEO.TO", "4063.T", "SQM", "NVDA", "UMI.BR"):
            explained = explain_supply(ticker, day, ref, cm)
            json.dumps(explained)
            row = table.loc[(pd.Timestamp(day), ticker)]
            for name in NUMERIC:
                got = explained["factors"][name]
                assert (got is None and np.isnan(row[name])) or got == pytest.approx(row[name]), (day, ticker, name)
            assert explained["reason"] == row["reason"]
            elements = explained["exposure"]["elements"]
            if row["supply_risk_exposure"] == row["supply_risk_exposure"]:  # not NaN: recompute from parts
                used = [(e["weight"], e["criticality"]) for e in elements
                        if e["visible"] and e["criticality"] is not None]
                total = sum(w for w, _ in used)
                assert sum(w * c for w, c in used) / total == pytest.approx(row["supply_risk_exposure"])
            chain = explained["chain"]
            if chain:
                share = sum(c["weight"] for c in chain if c["in_china"]) / sum(c["weight"] for c in chain)
                assert share == pytest.approx(row["china_dependency"])


def test_explain_names_proxies_sources_and_publication_dates(ref, cm):
    explained = explain_supply("MP", "2025-06-30", ref, cm)
    nd = next(e for e in explained["exposure"]["elements"] if e["element"] == "Nd")
    fact = nd["components"]["concentration"]["fact"]
    assert fact["subject"] == "REE_total" and fact["proxy"] is True
    assert fact["published"] == "2025-01-31" and fact["confidence"] == "computed" and fact["value"] == 5024
    assert nd["components"]["china_refining"]["value"] is None  # IEA 91% published 2025-10-23
    assert {e["event_id"] for e in explained["events"]} == {"E11", "E14"}
    assert explained["countries"][0]["country"] == "United States"
    assert explained["countries"][0]["published"] == "2024-12-31"
    assert explained["stages_outside_china"] == ["mining", "separation", "metal", "magnet"]


# --- members without data ------------------------------------------------------------------------------------------


def test_members_without_exposure_data_get_nan_and_a_reason(ref, cm):
    table = supply_factors(cm, ref, ["2025-06-30"])
    nvda = table.loc[("2025-06-30", "NVDA")]
    assert nvda[NUMERIC].isna().all()
    assert "no exposure data for NVDA in reference/exposures.csv" in nvda["reason"]
    assert nvda["stage"] == "end_use"
    # A member the reference has never heard of, in a hand-made universe frame.
    frame = pd.DataFrame({"stages": [("mining",), ("mining", "separation")], "status": ["development", "producing"]},
                         index=pd.Index(["XYZ", "MP"], name="ticker"))
    out = supply_factors(frame, ref, ["2025-06-30"])
    assert out.loc[("2025-06-30", "XYZ"), NUMERIC].isna().all()
    assert "no exposure data for XYZ in reference/exposures.csv" in out.loc[("2025-06-30", "XYZ"), "reason"]
    assert out.loc[("2025-06-30", "MP"), "reason"] == ""


def test_reasons_say_when_data_is_not_yet_published_or_missing(ref, cm):
    table = supply_factors(cm, ref, ["2024-06-30"])
    assert "no WGI data published by this date" in table.loc[("2024-06-30", "MP"), "reason"]
    assert "first published 2025-03-14" in table.loc[("2024-06-30", "USAR"), "reason"]
    assert "no reference facts at all for Au" in table.loc[("2024-06-30", "IDR"), "reason"]
    assert "no WGI data in reference/countries.csv for Nauru, Tonga" in table.loc[("2024-06-30", "TMC"), "reason"]


# --- properties ------------------------------------------------------------------------------------------------------

DAYS = st.dates(min_value=pd.Timestamp("2019-01-01").date(), max_value=pd.Timestamp("2026-12-31").date())


# No look-ahead: dropping every fact published (and event announced) after t leaves the factors at t unchanged.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=DAYS, event_date=st.sampled_from(["announced", "effective"]))
def test_truncating_inputs_after_t_leaves_factors_at_t_unchanged(ref, cm, day, event_date):
    t = pd.Timestamp(day)
    full = supply_factors(cm, ref, [t], event_date=event_date)
    cut = supply_factors(cm, truncated(ref, t), [t], event_date=event_date)
    pd.testing.assert_frame_equal(full.drop(columns="reason"), cut.drop(columns="reason"))
    crit_full = element_criticality(ref, [t], event_date=event_date)
    crit_cut = element_criticality(truncated(ref, t), [t], event_date=event_date)
    pd.testing.assert_frame_equal(crit_full[crit_cut.columns], crit_cut)
    assert crit_full.drop(columns=crit_cut.columns).isna().all().all()


# Permuting the members permutes the output rows and nothing else.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_permuting_members_permutes_the_output(ref, cm, seed):
    frame = cm.to_frame()
    order = np.random.default_rng(seed).permutation(len(frame))
    dates = ["2024-06-30", "2025-06-30"]
    base = supply_factors(frame, ref, dates)
    permuted = supply_factors(frame.iloc[order], ref, dates)
    assert list(permuted.index.get_level_values("ticker")[: len(frame)]) == list(frame.index[order])
    pd.testing.assert_frame_equal(permuted.sort_index(), base.sort_index())


EVENT_TYPES = st.sampled_from(["export_licensing", "export_ban", "regulation", "supply_shock", "new_kind"])


# Monotonicity: adding a restrictive event never lowers any element's criticality or any member's exposure.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(elements=st.lists(st.sampled_from(["Dy", "Tb", "Nd", "La", "Ga", "Ge", "Sb", "Li", "W", "U", "Au", "Zr"]),
                         min_size=1, max_size=5, unique=True),
       start=DAYS, length=st.integers(1, 2000), kind=EVENT_TYPES, easing=st.booleans())
def test_adding_a_restrictive_event_never_lowers_criticality(ref, cm, elements, start, length, kind, easing):
    announced = pd.Timestamp(start)
    extra = ref.events.iloc[[0]].copy()
    extra["event_id"] = "E99"
    extra["announced"] = announced
    extra["effective"] = pd.NaT
    extra["ended"] = announced + pd.Timedelta(days=length)
    extra["direction"] = "restrictive"
    extra["event_type"] = kind
    extra["elements"] = pd.Series([tuple(elements)], index=extra.index, dtype=object)
    more = dataclasses.replace(ref, events=pd.concat([ref.events, extra], ignore_index=True))
    dates = pd.date_range("2019-01-31", "2026-12-31", freq="QE")
    before = element_criticality(ref, dates, easing=easing)
    after = element_criticality(more, dates, easing=easing)
    assert ((after >= before - 1e-12) | before.isna()).all().all()
    assert (after.isna() == before.isna()).all().all()
    exp_before = supply_risk_exposure(cm, ref, dates, easing=easing)
    exp_after = supply_risk_exposure(cm, more, dates, easing=easing)
    assert ((exp_after >= exp_before - 1e-12) | exp_before.isna()).all().all()


def test_easing_events_only_ever_lower_criticality(ref):
    dates = pd.date_range("2010-01-31", "2026-12-31", freq="QE")
    plain = element_criticality(ref, dates)
    eased = element_criticality(ref, dates, easing=True)
    assert ((eased <= plain + 1e-12) | plain.isna()).all().all()
    assert (eased < plain - 1e-9).any().any()


def test_inputs_are_not_mutated(ref, cm):
    before = snapshot(ref)
    frame = cm.to_frame()
    frame_before = frame.copy(deep=True)
    supply_factors(frame, ref, pd.date_range("2020-01-31", periods=12, freq="QE"), backfill=True, easing=True)
    explain_supply("MP", "2025-06-30", ref, cm)
    criticality_components(ref, ["2025-06-30"])
    for name, frame_ in before.items():
        pd.testing.assert_frame_equal(getattr(ref, name), frame_)
    pd.testing.assert_frame_equal(frame, frame_before)


def test_rare_earths_universe_is_a_slice_of_the_critical_minerals_universe(ref, cm, rare):
    dates = ["2025-06-30"]
    wide = supply_factors(cm, ref, dates)
    narrow = supply_factors(rare, ref, dates)
    pd.testing.assert_frame_equal(narrow, wide.loc[narrow.index])


