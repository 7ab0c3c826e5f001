from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from screener.config import StrategyConfig, load_config, parse_config
from screener.exceptions import ConfigError

BASE = """
name = "Ex-China magnet chain"
universe = "rare_earths"
start = "2018-01-01"
end = "2025-09-29"
base_currency = "USD"
benchmarks = ["REMX", "SPY"]

[screen]
filters = [ { factor = "adv_60d", op = ">=", value = 1000000 },
            { factor = "china_dependency", op = "<=", value = 0.5 } ]
score = { supply_risk_exposure = -1.0, momentum_12_1 = 0.5 }
top_n = 8

[portfolio]
weighting = "equal"
fixed_weights = {}
max_weight = 0.25
group_caps = { stage = { mining = 0.6 } }
rebalance = "monthly"
lag = 0
costs_bps = 10
initial_capital = 1000000
"""


def test_the_issue_example_parses():
    cfg = parse_config(BASE)
    assert cfg.start == date(2018, 1, 1) and cfg.end == date(2025, 9, 29)
    assert [f.label() for f in cfg.screen.filters] == ["adv_60d >= 1e+06", "china_dependency <= 0.5"]
    assert dict(cfg.screen.score) == {"supply_risk_exposure": -1.0, "momentum_12_1": 0.5}
    assert cfg.portfolio.costs_bps == 10 and cfg.portfolio.group_caps == (("stage", (("mining", 0.6),)),)


def test_round_trip_through_toml_and_hash_is_stable():
    cfg = parse_config(BASE)
    again = parse_config(cfg.to_toml())
    assert again == cfg and hash(again) == hash(cfg)
    assert again.config_hash() == cfg.config_hash()
    assert dataclasses.replace(cfg, name="other").config_hash() != cfg.config_hash()


def test_overrides_are_validated():
    cfg = parse_config(BASE)
    assert cfg.with_overrides(start=date(2020, 1, 1)).start == date(2020, 1, 1)
    with pytest.raises(ConfigError, match="`end` must be a date after `start`"):
        cfg.with_overrides(start=date(2026, 1, 1))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('weighting = "equal"', 'weighting = "eqaul"', "`portfolio.weighting` must be one of: equal, fixed"),
        ('rebalance = "monthly"', 'rebalance = "hourly"', "`portfolio.rebalance` must be one of: daily, weekly"),
        ('op = ">="', 'op = "=>"', "`screen.filters.op` '=>' is not an operator"),
        ('factor = "adv_60d"', 'factor = "adv60"', "'adv60' is not a factor (did you mean 'adv_60d'?)"),
        ("max_weight = 0.25", "max_weight = 0.1", "`portfolio.max_weight` = 0.1 cannot be met with top_n = 8"),
        ("max_weight = 0.25", "max_weight = 1.5", "`portfolio.max_weight` must be in (0, 1]"),
        ("lag = 0", "lag = -1", "`portfolio.lag` must be >= 0"),
        ("lag = 0", "lag = 1.5", "`portfolio.lag` must be a whole number"),
        ("costs_bps = 10", 'costs_bps = "ten"', "`portfolio.costs_bps` must be a number"),
        ("top_n = 8", "top_n = 0", "`screen.top_n` must be at least 1"),
        ('start = "2018-01-01"', 'start = "2018-13-01"', "`start` must be a date"),
        ('base_currency = "USD"', 'base_currency = "XYZ"', "`base_currency` 'XYZ' cannot be converted"),
        ("group_caps = { stage = { mining = 0.6 } }", "group_caps = { sector = { mining = 0.6 } }",
         "`portfolio.group_caps.sector` is not a group dimension"),
        ("costs_bps = 10", "costs_bps = 10\nslippage = 3", "`portfolio.slippage` is not a known key"),
        ("top_n = 8", "top_k = 8", "`screen.top_k` is not a known key (did you mean 'top_n'?)"),
        ("momentum_12_1 = 0.5", "stage = 0.5", "`screen.score.stage` is not a numeric factor"),
        ("fixed_weights = {}", "fixed_weights = { MP = 0.5 }", "`portfolio.fixed_weights` only applies"),
    ],
)
def test_bad_configs_name_the_key_and_the_accepted_values(tmp_path, old, new, message):
    assert old in BASE
    path = tmp_path / "bad.toml"
    path.write_text(BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_fixed_weighting_requires_weights_summing_to_at_most_one():
    text = BASE.replace('weighting = "equal"', 'weighting = "fixed"')
    with pytest.raises(ConfigError, match=r"`portfolio\.fixed_weights` is required"):
        parse_config(text)
    ok = parse_config(text.replace("fixed_weights = {}", "fixed_weights = { MP = 0.5, UUUU = 0.5 }"))
    assert dict(ok.portfolio.fixed_weights) == {"MP": 0.5, "UUUU": 0.5}
    with pytest.raises(ConfigError, match="sum to at most 1"):
        parse_config(text.replace("fixed_weights = {}", "fixed_weights = { MP = 0.7, UUUU = 0.5 }"))


def test_missing_required_keys_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="`universe` is required"):
        parse_config('name = "x"\nstart = 2020-01-01')
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("name = ")
    with pytest.raises(ConfigError, match="no such strategy file"):
        load_config(tmp_path / "nope.toml")


def test_filters_are_data_not_code():
    # An expression in a value is just a wrong type, never evaluated.
    text = BASE.replace("value = 1000000", 'value = "__import__(\'os\').system(\'true\')"')
    with pytest.raises(ConfigError, match="must be a number"):
        parse_config(text)


def test_keyword_construction_matches_parsing():
    cfg = StrategyConfig(name="x", universe="rare_earths", start=date(2020, 1, 1))
    assert cfg.portfolio.weighting == "equal" and cfg.benchmarks == ("REMX", "SPY")
    assert parse_config(cfg.to_toml()) == cfg
