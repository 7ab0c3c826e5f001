from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screener.config import Filter, ScreenSpec
from screener.screen import apply_filter, screen_at


@pytest.fixture
def factors() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "adv_60d": [5e6, 2e5, 3e6, np.nan],
            "china_dependency": [0.2, 0.1, 0.9, 0.3],
            "momentum_12_1": [0.5, -0.2, 0.1, 0.3],
            "stage": [("mining", "separation"), ("mining",), ("magnet",), ("separation",)],
        },
        index=pd.Index(["MP", "ARU.AX", "JLM", "UCU.V"], name="ticker"),
    )


def test_filters_pass_fail_and_missing_values_fail(factors):
    spec = ScreenSpec(filters=(Filter("adv_60d", ">=", 1e6), Filter("china_dependency", "<=", 0.5)))
    out = screen_at(factors, spec)
    assert out["pass: adv_60d >= 1e+06"].tolist() == [True, False, True, False]
    assert out["pass: china_dependency <= 0.5"].tolist() == [True, True, False, True]
    assert out["selected"].tolist() == [True, False, False, False]


def test_category_filters_match_any_of_a_members_stages(factors):
    mask = apply_filter(factors, "stage", "in", ("separation",))
    assert mask.tolist() == [True, False, False, True]
    mask = apply_filter(factors, "stage", "not_in", ("mining",))
    assert mask.tolist() == [False, False, True, True]


def test_scores_are_zscores_among_passed_members_times_weights(factors):
    spec = ScreenSpec(filters=(Filter("china_dependency", "<=", 0.5),),
                      score=(("momentum_12_1", 1.0), ("china_dependency", -1.0)), top_n=2)
    out = screen_at(factors, spec)
    passed = ["MP", "ARU.AX", "UCU.V"]
    m = factors.loc[passed, "momentum_12_1"]
    c = factors.loc[passed, "china_dependency"]
    expected = (m - m.mean()) / m.std(ddof=0) - (c - c.mean()) / c.std(ddof=0)
    np.testing.assert_allclose(out.loc[passed, "score"], expected)
    assert np.isnan(out.loc["JLM", "score"])
    assert out.loc[expected.sort_values(ascending=False).index[:2], "selected"].all()
    assert out["selected"].sum() == 2
    assert out.loc[expected.idxmax(), "rank"] == 1


def test_ineligible_members_are_never_selected(factors):
    out = screen_at(factors, ScreenSpec(), eligible=pd.Index(["MP", "JLM"]))
    assert out["selected"].tolist() == [True, False, True, False]


def test_missing_score_factor_counts_as_the_mean(factors):
    spec = ScreenSpec(score=(("adv_60d", 1.0),))
    out = screen_at(factors, spec)
    assert out.loc["UCU.V", "missing_score_factors"] == 1
    assert out.loc["UCU.V", "score"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(4)), st.integers(1, 4))
def test_permuting_members_permutes_the_screen(perm, top_n):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"momentum_12_1": rng.normal(size=4), "adv_60d": rng.uniform(0, 2e6, 4)},
                         index=[f"T{i}" for i in range(4)])
    spec = ScreenSpec(filters=(Filter("adv_60d", ">=", 5e5),), score=(("momentum_12_1", 1.0),), top_n=top_n)
    a = screen_at(frame, spec)
    b = screen_at(frame.iloc[list(perm)], spec)
    pd.testing.assert_frame_equal(a.loc[b.index, ["passed", "score", "selected"]], b[["passed", "score", "selected"]])
    assert set(a.index[a["selected"]]) <= set(frame.index)
