"""Tests for screener.factors.transforms: per-date z-score, rank, winsorise and group neutralisation."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from screener.factors.transforms import neutralize, rank, winsorize, zscore

NAN = np.nan
DATES = pd.DatetimeIndex(["2024-01-31", "2024-02-29"], name="date")
TICKERS = pd.Index(["MP", "LYC.AX", "ILU.AX", "UUUU"], name="ticker")
STAGE = pd.Series({"MP": "magnet", "LYC.AX": "separation", "ILU.AX": "mining", "UUUU": "separation"})


@pytest.fixture
def wide() -> pd.DataFrame:
    return pd.DataFrame([[1.0, 2.0, 3.0, 6.0], [4.0, NAN, 4.0, 1.0]], index=DATES, columns=TICKERS)


def long_of(frame: pd.DataFrame) -> pd.Series:
    return frame.stack(future_stack=True).rename("value")


# ---------------------------------------------------------------- hand-sized cases


def test_zscore_hand_sized(wide):
    z = zscore(wide)
    # Row 1: mean 3, sample std sqrt(((-2)^2 + 1 + 0 + 9) / 3) = sqrt(14 / 3).
    s = np.sqrt(14 / 3)
    np.testing.assert_allclose(z.iloc[0].to_numpy(), [-2 / s, -1 / s, 0.0, 3 / s])
    # Row 2: values 4, 4, 1 (one missing): mean 3, std sqrt((1 + 1 + 4) / 2) = sqrt(3).
    np.testing.assert_allclose(z.iloc[1].to_numpy(), [1 / np.sqrt(3), NAN, 1 / np.sqrt(3), -2 / np.sqrt(3)])
    # Population standard deviation on request.
    z0 = zscore(wide, ddof=0)
    np.testing.assert_allclose(z0.iloc[0].to_numpy(), (wide.iloc[0] - 3).to_numpy() / np.sqrt(14 / 4))


def test_rank_hand_sized_ties_share_the_average(wide):
    r = rank(wide)
    np.testing.assert_allclose(r.iloc[0].to_numpy(), [0.0, 1 / 3, 2 / 3, 1.0])
    # 1 < 4 = 4: ranks 1, 2.5, 2.5 of 3 -> 0, 0.75, 0.75.
    np.testing.assert_allclose(r.iloc[1].to_numpy(), [0.75, NAN, 0.75, 0.0])


def test_winsorize_hand_sized(wide):
    w = winsorize(wide, lower=0.25, upper=0.75)
    # Row 1 quantiles of 1, 2, 3, 6 (linear): 0.25 -> 1.75, 0.75 -> 3.75.
    np.testing.assert_allclose(w.iloc[0].to_numpy(), [1.75, 2.0, 3.0, 3.75])
    # Row 2 quantiles of 1, 4, 4: 0.25 -> 2.5, 0.75 -> 4.
    np.testing.assert_allclose(w.iloc[1].to_numpy(), [4.0, NAN, 4.0, 2.5])
    pd.testing.assert_frame_equal(winsorize(wide, 0.0, 1.0), wide)


def test_neutralize_hand_sized(wide):
    n = neutralize(wide, STAGE)
    # Row 1: separation = LYC (2), UUUU (6), mean 4; magnet and mining are alone.
    np.testing.assert_allclose(n.iloc[0].to_numpy(), [0.0, -2.0, 0.0, 2.0])
    # Row 2: LYC missing, so UUUU is alone in separation.
    np.testing.assert_allclose(n.iloc[1].to_numpy(), [0.0, NAN, 0.0, 0.0])
    z = neutralize(wide, STAGE, method="zscore")
    np.testing.assert_allclose(z.iloc[0].to_numpy(), [0.0, -1 / np.sqrt(2), 0.0, 1 / np.sqrt(2)])


def test_neutralize_ticker_without_group_is_nan(wide):
    n = neutralize(wide, STAGE.drop("MP"))
    assert n["MP"].isna().all()
    n = neutralize(wide, STAGE.replace("magnet", NAN))
    assert n["MP"].isna().all()


def test_constant_and_single_value_cross_sections():
    frame = pd.DataFrame(
        [[0.1, 0.1, 0.1], [NAN, 7.0, NAN], [NAN, NAN, NAN]],
        index=DATES.append(pd.DatetimeIndex(["2024-03-31"])),
        columns=["A", "B", "C"],
    )
    # All equal (even with a mean that rounds away from 0.1) or a lone value: 0, the cross-sectional mean.
    np.testing.assert_array_equal(zscore(frame).to_numpy(), [[0, 0, 0], [NAN, 0, NAN], [NAN, NAN, NAN]])
    np.testing.assert_array_equal(rank(frame).to_numpy(), [[0.5, 0.5, 0.5], [NAN, 0.5, NAN], [NAN, NAN, NAN]])
    np.testing.assert_array_equal(winsorize(frame).to_numpy(), frame.to_numpy())


# ---------------------------------------------------------------- shapes


def test_long_wide_and_single_cross_section_agree(wide):
    long = long_of(wide)
    for fn in (zscore, rank, winsorize, lambda v: neutralize(v, STAGE)):
        got_wide = fn(wide)
        got_long = fn(long)
        assert isinstance(got_long, pd.Series) and got_long.name == "value"
        assert got_long.index.equals(long.index)
        pd.testing.assert_series_equal(got_long, long_of(got_wide))
        one = fn(wide.iloc[0])  # a Series indexed by ticker: one cross-section
        pd.testing.assert_series_equal(one, got_wide.iloc[0])


def test_long_dataframe_is_transformed_column_by_column(wide):
    long = pd.DataFrame({"a": long_of(wide), "b": long_of(-wide * 3)})
    got = zscore(long)
    assert list(got.columns) == ["a", "b"] and got.index.equals(long.index)
    pd.testing.assert_series_equal(got["a"], zscore(long["a"]))
    pd.testing.assert_series_equal(got["b"], -got["a"].rename("b"))


def test_long_form_keeps_a_ragged_unsorted_index(wide):
    long = long_of(wide).dropna().iloc[::-1]  # no NaN rows, dates descending
    got = rank(long)
    assert got.index.equals(long.index)
    pd.testing.assert_series_equal(got.sort_index(), long_of(rank(wide)).dropna().sort_index())


def test_neutralize_groups_as_static_long_or_wide_agree(wide):
    static = neutralize(wide, STAGE)
    groups_wide = pd.DataFrame([STAGE.reindex(TICKERS).to_numpy()] * 2, index=DATES, columns=TICKERS)
    pd.testing.assert_frame_equal(neutralize(wide, groups_wide), static)
    pd.testing.assert_frame_equal(neutralize(wide, long_of(groups_wide)), static)
    long = long_of(wide)
    pd.testing.assert_series_equal(neutralize(long, groups_wide), long_of(static))
    pd.testing.assert_series_equal(neutralize(long, long_of(groups_wide)), long_of(static))


def test_neutralize_with_time_varying_groups(wide):
    groups = pd.DataFrame([["x", "x", "y", "y"], ["x", "y", "y", "y"]], index=DATES, columns=TICKERS)
    got = neutralize(wide, groups)
    np.testing.assert_allclose(got.iloc[0].to_numpy(), [-0.5, 0.5, -1.5, 1.5])
    np.testing.assert_allclose(got.iloc[1].to_numpy(), [0.0, NAN, 1.5, -1.5])


def test_market_factor_table_transforms_after_dropping_the_flag():
    index = pd.MultiIndex.from_product([DATES, TICKERS], names=["date", "ticker"])
    table = pd.DataFrame({"momentum_12_1": np.arange(8.0), "market_cap_pit": False}, index=index)
    with pytest.raises(TypeError, match="`values\\['market_cap_pit'\\]` must hold numbers"):
        zscore(table)
    got = zscore(table.drop(columns="market_cap_pit"))
    assert got["momentum_12_1"].groupby(level="date").mean().abs().max() < 1e-12


# ---------------------------------------------------------------- errors and warnings


def test_errors_name_the_argument(wide):
    with pytest.raises(TypeError, match="`values` must be a Series or DataFrame"):
        zscore(wide.to_numpy())
    with pytest.raises(TypeError, match="must hold numbers"):
        rank(wide.astype(str))
    with pytest.raises(ValueError, match="`ddof` must be a non-negative integer"):
        zscore(wide, ddof=-1)
    with pytest.raises(ValueError, match="`lower` must be a quantile in \\[0, 1\\]"):
        winsorize(wide, lower=-0.1)
    with pytest.raises(ValueError, match="`upper` must be a quantile in \\[0, 1\\]"):
        winsorize(wide, upper=1.5)
    with pytest.raises(ValueError, match="`lower` must not exceed `upper`"):
        winsorize(wide, lower=0.9, upper=0.1)
    with pytest.raises(ValueError, match="`method` must be 'demean' or 'zscore'"):
        neutralize(wide, STAGE, method="rank")
    with pytest.raises(TypeError, match="`groups` must be a Series"):
        neutralize(wide, {"MP": "magnet"})
    with pytest.raises(ValueError, match="`groups` has duplicate tickers"):
        neutralize(wide, pd.concat([STAGE, STAGE]))


def test_infinite_values_are_missing_with_a_warning(wide):
    bad = wide.copy()
    bad.iloc[0, 0] = np.inf
    with pytest.warns(UserWarning, match="1 infinite values treated as missing"):
        got = zscore(bad)
    assert np.isnan(got.iloc[0, 0])
    expected = wide.copy()
    expected.iloc[0, 0] = NAN
    pd.testing.assert_frame_equal(got, zscore(expected))


# ---------------------------------------------------------------- properties

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
cells = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(NAN), st.sampled_from([0.0, 1.0, 2.5]))
frames = st.integers(1, 6).flatmap(
    lambda n: arrays(float, st.tuples(st.integers(1, 5), st.just(n)), elements=cells).map(
        lambda a: pd.DataFrame(
            a,
            index=pd.date_range("2024-01-31", periods=a.shape[0], freq="ME", name="date"),
            columns=[f"T{i}" for i in range(a.shape[1])],
        )
    )
)


def informative_rows(frame: pd.DataFrame) -> pd.Series:
    """Rows with at least two distinct values (z-scores then have std 1)."""
    return frame.nunique(axis=1) >= 2


@PROPERTY
@given(frame=frames)
def test_zscore_has_mean_zero_and_std_one_per_date(frame):
    before = frame.copy()
    z = zscore(frame)
    pd.testing.assert_frame_equal(frame, before)  # input unchanged
    assert z.isna().equals(frame.isna())
    rows = informative_rows(frame)
    if rows.any():
        np.testing.assert_allclose(z[rows].mean(axis=1), 0.0, atol=1e-9)
        np.testing.assert_allclose(z[rows].std(axis=1, ddof=1), 1.0, rtol=1e-9)
    assert (z[~rows].fillna(0.0) == 0.0).all().all()


@PROPERTY
@given(frame=frames)
def test_rank_is_in_unit_interval_and_monotone(frame):
    before = frame.copy()
    r = rank(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert r.isna().equals(frame.isna())
    values = r.to_numpy()[~np.isnan(r.to_numpy())]
    assert ((values >= 0) & (values <= 1)).all()
    for date in frame.index[informative_rows(frame)]:
        x, y = frame.loc[date].dropna(), r.loc[date].dropna()
        assert y.mean() == pytest.approx(0.5)  # average ranks of ties keep the mean
        if x.is_unique:
            assert y.min() == 0.0 and y.max() == 1.0
        order = np.argsort(x.to_numpy(), kind="stable")
        assert np.all(np.diff(y.to_numpy()[order]) >= 0)


@PROPERTY
@given(frame=frames, lower=st.floats(0.0, 0.5), width=st.floats(0.0, 0.5))
def test_winsorize_clips_to_the_date_quantiles(frame, lower, width):
    upper = lower + width
    before = frame.copy()
    w = winsorize(frame, lower, upper)
    pd.testing.assert_frame_equal(frame, before)
    assert w.isna().equals(frame.isna())
    lo = frame.quantile(lower, axis=1)
    hi = frame.quantile(upper, axis=1)
    assert (w.ge(lo - 1e-9, axis=0) | w.isna()).all().all()
    assert (w.le(hi + 1e-9, axis=0) | w.isna()).all().all()
    inside = frame.ge(lo, axis=0) & frame.le(hi, axis=0)
    pd.testing.assert_frame_equal(w[inside], frame[inside])


@PROPERTY
@given(
    frame=frames,
    labels=st.lists(st.sampled_from(["mining", "separation", "magnet"]), min_size=6, max_size=6),
    method=st.sampled_from(["demean", "zscore"]),
)
def test_neutralize_leaves_zero_group_means(frame, labels, method):
    groups = pd.Series(labels[: frame.shape[1]], index=frame.columns)
    before, groups_before = frame.copy(), groups.copy()
    n = neutralize(frame, groups, method=method)
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_series_equal(groups, groups_before)
    assert n.isna().equals(frame.isna())
    long = n.rename_axis(columns="ticker").stack().to_frame("v")
    long["g"] = groups.reindex(long.index.get_level_values("ticker")).to_numpy()
    long = long.dropna()
    means = long.groupby([long.index.get_level_values("date"), "g"])["v"].mean()
    scale = max(float(np.nan_to_num(frame.abs().max().max())), 1.0) if method == "demean" else 1.0
    np.testing.assert_allclose(means.to_numpy(), 0.0, atol=1e-9 * scale)


@PROPERTY
@given(frame=frames, seed=st.integers(0, 2**32 - 1))
def test_permuting_tickers_permutes_every_transform(frame, seed):
    order = list(np.random.default_rng(seed).permutation(frame.columns))
    groups = pd.Series(["a", "b"] * 3, index=[f"T{i}" for i in range(6)])
    for fn in (zscore, rank, winsorize, lambda v: neutralize(v, groups, method="zscore")):
        pd.testing.assert_frame_equal(fn(frame[order]), fn(frame)[order])


def test_inputs_are_not_mutated(wide):
    long = pd.DataFrame({"a": long_of(wide), "b": long_of(wide) * 2})
    groups = STAGE.copy()
    snapshot = copy.deepcopy((wide, long, groups))
    for values in (wide, long, long["a"], wide.iloc[0]):
        zscore(values)
        rank(values)
        winsorize(values)
        neutralize(values, groups, method="zscore")
    pd.testing.assert_frame_equal(wide, snapshot[0])
    pd.testing.assert_frame_equal(long, snapshot[1])
    pd.testing.assert_series_equal(groups, snapshot[2])
