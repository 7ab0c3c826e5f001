from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from screener.analytics.commands import events_command, load_events
from screener.analytics.events import event_study
from screener.data.calendar import listing_returns
from screener.data.panel import load_prices
from screener.exceptions import ConfigError, DataError

EVENT_ROW = 300


def synth(seed: int, n_members: int = 10, n_days: int = 400, shock: float = 0.0, common: float = 0.0,
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Market-model returns; `shock` added to every member on the event day; `common` = sd of a sector factor
    the market does not explain (cross-correlated abnormal returns)."""
    r = np.random.default_rng(seed)
    index = pd.bdate_range("2020-01-01", periods=n_days, name="date")
    market = r.normal(0.0003, 0.01, n_days)
    beta = r.uniform(0.5, 1.5, n_members)
    sector = r.normal(0, common, n_days) if common else np.zeros(n_days)
    returns = 0.0002 + market[:, None] * beta + sector[:, None] + r.normal(0, 0.02, (n_days, n_members))
    returns[EVENT_ROW] += shock
    members = pd.DataFrame(returns, index=index, columns=[f"M{i}" for i in range(n_members)])
    return members, pd.DataFrame({"MKT": market}, index=index), index[EVENT_ROW]


# -- known answers ----------------------------------------------------------------------------------------------


def test_injected_abnormal_return_is_recovered_within_its_standard_error():
    members, market, day = synth(7, shock=0.10)
    res = event_study(members, market, {"E": day})
    port = res.portfolio.set_index("method").loc["portfolio"]
    se = port["car"] / port["t_stat"]
    assert abs(port["car"] - 0.10) < 3 * se
    assert port["n_members"] == 10
    # Day 0 itself: the mean abnormal return is the shock plus noise of sd 0.02 / sqrt(10).
    day0 = res.abnormal[res.abnormal["rel_day"] == 0]
    assert (day0["date"] == day).all()
    assert day0["ar"].mean() == pytest.approx(0.10, abs=3 * 0.02 / np.sqrt(10))


def test_injected_abnormal_return_is_significant_in_a_short_window():
    members, market, day = synth(8, shock=0.10)
    res = event_study(members, market, {"E": day}, window=(0, 0))
    port = res.portfolio.set_index("method")
    assert port.loc["portfolio", "p_value"] < 1e-6 and port.loc["cross_sectional", "p_value"] < 1e-6
    assert (res.members["p_value"] < 0.05).mean() > 0.8
    path = res.car_path
    assert len(path) == 1 and path["lower"].iloc[0] < 0.10 < path["upper"].iloc[0]


@pytest.mark.parametrize("model", ["market", "market_adjusted", "mean"])
def test_no_abnormal_return_rejects_at_the_stated_rate(model):
    # 200 seeded null simulations: the 5% portfolio test should reject about 5% of the time.
    rejections = 0
    for seed in range(200):
        members, market, day = synth(1000 + seed)
        p = event_study(members, market, {"E": day}, model=model).portfolio.set_index("method")["p_value"]
        rejections += p["portfolio"] < 0.05
    assert 0.01 <= rejections / 200 <= 0.11


def test_portfolio_test_keeps_its_size_when_members_move_together_and_cross_sectional_does_not():
    # A sector shock the market does not explain correlates the members' CARs (one event date for all).
    port = cross = 0
    for seed in range(200):
        members, market, day = synth(5000 + seed, common=0.01)
        p = event_study(members, market, {"E": day}).portfolio.set_index("method")["p_value"]
        port += p["portfolio"] < 0.05
        cross += p["cross_sectional"] < 0.05
    assert 0.01 <= port / 200 <= 0.11
    assert cross / 200 > 0.15


def test_market_model_member_statistics_by_hand():
    members, market, day = synth(3, n_members=1)
    res = event_study(members, market, {"E": day}, estimation=(-100, -11), window=(-2, 3))
    row = res.members.iloc[0]
    y, x = members["M0"].to_numpy(), market["MKT"].to_numpy()
    est = slice(EVENT_ROW - 100, EVENT_ROW - 10)
    ev = slice(EVENT_ROW - 2, EVENT_ROW + 4)
    xe = np.column_stack([np.ones(90), x[est]])
    coef, *_ = np.linalg.lstsq(xe, y[est], rcond=None)
    resid = y[est] - xe @ coef
    s2 = resid @ resid / (90 - 2)
    xs = np.column_stack([np.ones(6), x[ev]])
    ar = y[ev] - xs @ coef
    ones = np.ones(6)
    # CAR variance with the prediction-error term: s2 * (L + 1' X* (X'X)^-1 X*' 1)   (MacKinlay 1997)
    var = s2 * (6 + ones @ xs @ np.linalg.inv(xe.T @ xe) @ xs.T @ ones)
    assert row["car"] == pytest.approx(ar.sum(), rel=1e-10)
    assert row["t_stat"] == pytest.approx(ar.sum() / np.sqrt(var), rel=1e-10)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(ar.sum() / np.sqrt(var)), 88), rel=1e-8)
    assert row["n_est"] == 90 and row["event_day"] == day


@pytest.mark.parametrize("model", ["market_adjusted", "mean"])
def test_simple_models_by_hand(model):
    members, market, day = synth(4, n_members=1)
    res = event_study(members, market, {"E": day}, estimation=(-60, -6), window=(-1, 1), model=model)
    y, x = members["M0"].to_numpy(), market["MKT"].to_numpy()
    est, ev = slice(EVENT_ROW - 60, EVENT_ROW - 5), slice(EVENT_ROW - 1, EVENT_ROW + 2)
    if model == "market_adjusted":
        ar, s2, var_factor = y[ev] - x[ev], np.var(y[est] - x[est], ddof=1), 3
    else:
        ar, s2, var_factor = y[ev] - y[est].mean(), np.var(y[est], ddof=1), 3 + 9 / 55
    row = res.members.iloc[0]
    assert row["car"] == pytest.approx(ar.sum(), rel=1e-10)
    assert row["t_stat"] == pytest.approx(ar.sum() / np.sqrt(s2 * var_factor), rel=1e-10)


def test_portfolio_test_equals_the_test_of_the_average_member_when_all_share_one_market():
    # With one market and one calendar, the mean of the members' abnormal returns is the abnormal return of the
    # equal-weight portfolio, so the portfolio test is the member test of that portfolio.
    members, market, day = synth(11, common=0.005)
    res = event_study(members, market, {"E": day})
    alone = event_study(members.mean(axis=1).to_frame("EW"), market, {"E": day})
    port = res.portfolio.set_index("method").loc["portfolio"]
    assert port["car"] == pytest.approx(alone.members["car"].iloc[0], rel=1e-10)
    assert port["t_stat"] == pytest.approx(alone.members["t_stat"].iloc[0], rel=1e-10)
    assert port["p_value"] == pytest.approx(alone.members["p_value"].iloc[0], rel=1e-8)
    cross = res.portfolio.set_index("method").loc["cross_sectional"]
    assert cross["car"] == pytest.approx(res.members["car"].mean())
    n = len(res.members)
    assert cross["t_stat"] == pytest.approx(res.members["car"].mean() / (res.members["car"].std(ddof=1) / np.sqrt(n)))


def test_car_path_ends_at_the_mean_car_and_its_band_widens():
    members, market, day = synth(12)
    res = event_study(members, market, {"E": day})
    path = res.car_path
    assert list(path["rel_day"]) == list(range(-5, 21))
    assert path["mean_car"].iloc[-1] == pytest.approx(res.members["car"].mean())
    width = (path["upper"] - path["lower"]).to_numpy()
    assert (np.diff(width) > 0).all()
    cs = event_study(members, market, {"E": day}, test="cross_sectional").car_path
    np.testing.assert_allclose(cs["mean_car"], path["mean_car"])


# -- event day and calendars ------------------------------------------------------------------------------------


def test_event_day_is_each_members_first_session_on_or_after_the_date():
    members, market, _ = synth(5, n_members=3)
    saturday = pd.Timestamp("2021-03-13")
    monday = pd.Timestamp("2021-03-15")
    members.loc[monday, "M1"] = np.nan  # M1 did not trade on Monday
    res = event_study(members, market, {"weekend": saturday, "as string": "2021-03-15"}, model="mean")
    days = res.members.set_index(["event_id", "ticker"])["event_day"]
    assert days["weekend", "M0"] == monday and days["weekend", "M1"] == monday + pd.Timedelta(days=1)
    assert days["as string", "M2"] == monday


def test_windows_past_the_data_are_reported_not_raised():
    members, market, _ = synth(6)
    late, early = members.index[-10], members.index[50]
    res = event_study(members, market, {"late": late, "early": early, "after": "2030-01-01"})
    assert res.members.empty
    reasons = res.excluded.groupby("event_id")["reason"].first()
    assert "runs past" in reasons["late"] and "15 of 26 sessions" in reasons["late"]  # days -5 to +9
    assert "only 40" in reasons["early"] and "need 120" in reasons["early"]
    assert "no session on or after 2030-01-01" in reasons["after"]
    assert res.portfolio["n_members"].eq(0).all() and res.portfolio["t_stat"].isna().all()
    d = res.to_dict()
    assert d["late"] == {"event_id": "late", "members": [], "portfolio": {"car": None, "t_stat": None,
                                                                          "p_value": None}}


def test_halts_inside_the_event_window_can_exclude_a_member():
    members, market, day = synth(9, n_members=2)
    members.iloc[EVENT_ROW - 40:EVENT_ROW - 2, 1] = np.nan  # M1 halted for 38 sessions before the event
    res = event_study(members, market, {"E": day}, max_gap_days=10)
    assert list(res.members["ticker"]) == ["M0"]
    assert "spans 5" in res.excluded["reason"].iloc[0] and "trading halt" in res.excluded["reason"].iloc[0]


def test_to_dict_per_event_and_json():
    members, market, day = synth(10, n_members=3)
    d = event_study(members, market, {"E1": day, "E2": members.index[350]}).to_dict()
    assert list(d) == ["E1", "E2"]
    assert set(d["E1"]) == {"event_id", "members", "portfolio"}
    assert set(d["E1"]["members"][0]) == {"ticker", "event_day", "car", "t_stat"}
    assert set(d["E1"]["portfolio"]) == {"car", "t_stat", "p_value"}
    assert d["E1"]["members"][0]["event_day"] == day.date().isoformat()
    json.dumps(d, allow_nan=False)


def test_forty_members_ten_events_with_gaps_and_late_listings():
    r = np.random.default_rng(0)
    index = pd.bdate_range("2015-01-01", periods=2000, name="date")
    members = pd.DataFrame(r.normal(0, 0.02, (2000, 40)), index=index, columns=[f"M{i}" for i in range(40)])
    members.iloc[:300, :10] = np.nan  # late listings
    members[members.abs() > 0.05] = np.nan  # scattered missing days
    markets = pd.DataFrame(r.normal(0, 0.01, (2000, 2)), index=index, columns=["SPY", "STW.AX"])
    market_for = {c: ("SPY" if i % 2 else "STW.AX") for i, c in enumerate(members.columns)}
    events = {f"E{i}": index[400 + 150 * i] for i in range(10)}
    res = event_study(members, markets, events, market_for=market_for)
    assert len(res.members) + len(res.excluded) == 400
    assert np.isfinite(res.members["car"]).all()


def test_inputs_are_not_mutated():
    members, market, day = synth(2)
    m0, k0 = members.copy(), market.copy()
    event_study(members, {"MKT": market["MKT"]}, {"E": day})
    pd.testing.assert_frame_equal(members, m0)
    pd.testing.assert_frame_equal(market, k0)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"estimation": (-250, -3)}, ValueError, "`estimation`"),
    ({"window": (5, 1)}, ValueError, "`window`"),
    ({"model": "fama_french"}, ValueError, "`model`"),
    ({"test": "bootstrap"}, ValueError, "`test`"),
    ({"min_estimation": 1000}, ValueError, "`min_estimation`"),
    ({"market_for": {"M0": "MKT"}}, KeyError, "M1"),
    ({"market_for": dict.fromkeys([f"M{i}" for i in range(10)], "SPY")}, KeyError, "SPY"),
])
def test_bad_options_name_the_argument(kwargs, error, match):
    members, market, day = synth(1)
    with pytest.raises(error, match=match):
        event_study(members, market, {"E": day}, **kwargs)


def test_month_only_dates_are_refused():
    members, market, _ = synth(1)
    with pytest.raises(ValueError, match=r"`event_dates\['E01'\]`.*YYYY-MM-DD"):
        event_study(members, market, {"E01": "2010-07"})


# -- real calendars (snapshot) ----------------------------------------------------------------------------------

ASX = ["LYC.AX", "ILU.AX", "ARU.AX", "ASM.AX", "NTU.AX"]
US = ["MP", "UUUU"]


@pytest.fixture(scope="module")
def real_returns(snapshot_dir):
    data = load_prices([*ASX, *US, "STW.AX", "SPY"], start="2022-01-01", end="2024-08-30", snapshot=snapshot_dir,
                       store=None)
    return listing_returns(data.local)  # each listing and its local market in the local currency


@pytest.mark.parametrize(("event", "day", "us_day"), [
    ("2023-07-03", "2023-07-03", "2023-07-03"),  # gallium/germanium controls, a Monday (US open on July 3)
    ("2023-12-21", "2023-12-21", "2023-12-21"),  # rare-earth technology export ban, a Thursday
    ("2023-07-04", "2023-07-04", "2023-07-05"),  # Independence Day: Sydney trades, New York does not
])
def test_event_day_per_market_on_real_calendars(real_returns, event, day, us_day):
    markets = real_returns[["STW.AX", "SPY"]]
    members = real_returns[ASX + US]
    market_for = {**dict.fromkeys(ASX, "STW.AX"), **dict.fromkeys(US, "SPY")}
    res = event_study(members, markets, {"E": event}, market_for=market_for)
    table = res.members.set_index("ticker")
    assert list(table.index) == ASX + US and res.excluded.empty
    assert (table.loc[ASX, "event_day"] == pd.Timestamp(day)).all()
    assert (table.loc[US, "event_day"] == pd.Timestamp(us_day)).all()
    assert np.isfinite(table[["car", "t_stat", "p_value"]].to_numpy()).all()
    assert (table["n_est"] == 240).all()
    assert np.isfinite(res.portfolio[["car", "t_stat", "p_value"]].to_numpy()).all()
    path = res.car_path
    assert len(path) == 26 and np.isfinite(path[["mean_car", "lower", "upper"]].to_numpy()).all()


def test_real_event_near_the_end_of_the_asx_data_keeps_us_members(real_returns):
    markets = real_returns[["STW.AX", "SPY"]]
    market_for = {**dict.fromkeys(ASX, "STW.AX"), **dict.fromkeys(US, "SPY")}
    res = event_study(real_returns[ASX + US], markets, {"E12": "2024-05-14"}, market_for=market_for)
    # The ASX data end on 2024-05-31: days -5 to +13 of the event window; the US data go on.
    assert list(res.members["ticker"]) == US
    assert list(res.excluded["ticker"]) == ASX
    assert res.excluded["reason"].str.contains(r"runs past .* to 2024-05-31\): 19 of 26 sessions").all()
    assert res.portfolio.set_index("method").loc["portfolio", "n_members"] == 2


# -- the command ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("event_id", "day"), [("E09", "2023-07-03"), ("E11", "2023-12-21")])
def test_events_command_on_the_2023_events(snapshot_dir, home, event_id, day):
    (out,) = events_command("rare_earths", event_id=event_id, snapshot=snapshot_dir)
    assert out["event_id"] == event_id and out["announced"] == day
    members = {m["ticker"]: m for m in out["members"]}
    assert {"MP", "UUUU", "LYC.AX", "ILU.AX", "ARU.AX", "ASM.AX"} <= set(members)
    assert members["LYC.AX"]["market"] == "STW.AX" and members["LYC.AX"]["currency"] == "AUD"
    assert members["MP"]["market"] == "SPY" and members["MP"]["currency"] == "USD"
    assert all(m["event_day"] == day for m in out["members"])
    assert all(np.isfinite([m["car"], m["t_stat"], m["p_value"]]).all() for m in out["members"])
    assert out["portfolio"]["method"] == "portfolio" and out["portfolio"]["n_members"] == len(out["members"])
    assert out["cross_sectional"]["car"] == pytest.approx(out["portfolio"]["car"])
    assert [p["rel_day"] for p in out["car_path"]] == list(range(-5, 21))
    excluded = {e["ticker"]: e["reason"] for e in out["excluded"]}
    assert "no prices" in excluded["NEO.TO"]  # members without data are reported, not fatal
    assert "2025-03-14" in excluded["USAR"]  # before its first day as USA Rare Earth
    json.dumps(out, allow_nan=False)


def test_events_command_with_one_market_for_all_uses_usd(snapshot_dir, home):
    (out,) = events_command("rare_earths", event_id="E11", market="SPY", model="market_adjusted",
                            snapshot=snapshot_dir)
    lyc = next(m for m in out["members"] if m["ticker"] == "LYC.AX")
    assert lyc["market"] == "SPY" and lyc["currency"] == "USD" and lyc["event_day"] == "2023-12-21"


def test_events_command_errors(snapshot_dir, home):
    with pytest.raises(DataError, match=r"unknown event id 'E99'; valid ids: E01, E02"):
        events_command("rare_earths", event_id="E99", snapshot=snapshot_dir)
    with pytest.raises(DataError, match=r"E01 has no day-precise announcement date \(source: '2010-07'\)"):
        events_command("rare_earths", event_id="E01", snapshot=snapshot_dir)
    with pytest.raises(DataError, match=r"event custom 2031-01-06 \(2031-01-06\): no member .* window \[-5, 20\]"):
        events_command("rare_earths", date="2031-01-06", snapshot=snapshot_dir)
    with pytest.raises(ConfigError, match="`date`"):
        events_command("rare_earths", date="2023-07", snapshot=snapshot_dir)
    with pytest.raises(ConfigError, match=r"`estimation`.*must end before `window`"):
        events_command("rare_earths", event_id="E11", estimation=(-250, -2), snapshot=snapshot_dir)
    with pytest.raises(ConfigError, match="`model`"):
        events_command("rare_earths", event_id="E11", model="capm", snapshot=snapshot_dir)


def test_events_command_on_every_event_reports_the_ones_it_cannot_study(snapshot_dir, home):
    out = events_command("rare_earths", snapshot=snapshot_dir)
    assert [d["event_id"] for d in out] == list(load_events()["event_id"])
    by_id = {d["event_id"]: d for d in out}
    assert "month" in by_id["E18"]["error"] or "day-precise" in by_id["E18"]["error"]
    assert "members" in by_id["E09"] and "members" in by_id["E11"]
    assert by_id["E02"]["members"]  # 2010: ASX members only, US data start in 2015
    # September 2025: the US data end on 2025-09-29, the ASX data in May 2024.
    assert "no member" in by_id["E30"]["error"] and "MP: event window [-5, 20] runs past" in by_id["E30"]["error"]
    json.dumps(out, allow_nan=False)


def test_events_command_accepts_a_strategy_config(snapshot_dir, home):
    (out,) = events_command("strategies/us_magnet_chain_fixed.toml", date="2023-12-21", event_id="tech ban",
                            snapshot=snapshot_dir)
    assert out["event_id"] == "tech ban" and {m["ticker"] for m in out["members"]} >= {"MP", "LYC.AX"}
