"""Strategy parameters given as text are converted to their default's type, or refused."""

from __future__ import annotations

import pytest

from domain.errors import ConfigError
from domain.strategies import STRATEGIES, build_strategy
from domain.strategies.params import param, param_specs, parse_param


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("True", True),
        (" YES ", True),
        ("1", True),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        ("0", False),
        (True, True),
        (False, False),
        (1, True),  # TOML/JSON true arrives as 1 through the settings' str | int | float
        (0, False),
    ],
)
def test_bool_accepts_true_false_one_zero_yes_no(raw: object, expected: bool) -> None:
    assert parse_param("short_only", raw, False) is expected
    assert parse_param("short_only", raw, True) is expected


@pytest.mark.parametrize("raw", ["maybe", "", "on", "2", "-1", "1.0", 2, 1.0, None])
def test_bool_refuses_anything_else_naming_the_parameter(raw: object) -> None:
    with pytest.raises(ConfigError, match=r"parameter short_only must be true/false") as caught:
        parse_param("short_only", raw, False)
    assert caught.value.field == "short_only"
    assert repr(raw) in caught.value.message


@pytest.mark.parametrize(("raw", "expected"), [("20", 20), (" -3 ", -3), (7, 7), ("0", 0)])
def test_int_accepts_whole_numbers(raw: object, expected: int) -> None:
    assert parse_param("fast", raw, 50) == expected
    assert type(parse_param("fast", raw, 50)) is int


@pytest.mark.parametrize("raw", ["1.5", "2.0", "abc", "", 1.5, 2.0, True, None])
def test_int_refuses_fractions_text_and_bools(raw: object) -> None:
    with pytest.raises(ConfigError, match=r"^parameter fast must be int, was ") as caught:
        parse_param("fast", raw, 50)
    assert caught.value.field == "fast"


@pytest.mark.parametrize(
    ("raw", "expected"), [("0.5", 0.5), ("1e-3", 0.001), (" 2 ", 2.0), (3, 3.0), (0.25, 0.25)]
)
def test_float_accepts_numbers(raw: object, expected: float) -> None:
    value = parse_param("risk", raw, 0.01)
    assert value == expected
    assert type(value) is float


@pytest.mark.parametrize("raw", ["abc", "", "1,5", True, None])
def test_float_refuses_text_that_is_no_number(raw: object) -> None:
    with pytest.raises(ConfigError, match=r"^parameter risk must be float, was ") as caught:
        parse_param("risk", raw, 0.01)
    assert caught.value.field == "risk"


@pytest.mark.parametrize("raw", ["nan", "inf", "-Infinity", float("nan")])
def test_float_refuses_values_that_are_not_finite(raw: object) -> None:
    with pytest.raises(ConfigError, match=r"parameter risk must be a finite float"):
        parse_param("risk", raw, 0.01)


def test_other_types_convert_as_before() -> None:
    assert parse_param("trend_timeframe", "4h", "1h") == "4h"
    assert parse_param("trend_timeframe", 15, "1h") == "15"


def test_build_strategy_parses_through_parse_param() -> None:
    strategy = build_strategy("sma_cross", {"fast": "10", "slow": 30}, "5m")

    assert strategy.params() == {"fast": 10, "slow": 30}
    with pytest.raises(ConfigError, match=r"parameter fast must be int, was '1\.5'"):
        build_strategy("sma_cross", {"fast": "1.5"}, "5m")
    with pytest.raises(ConfigError, match=r"parameter risk must be float, was 'abc'"):
        build_strategy("trend_follow", {"risk": "abc"}, "5m")


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_parameter_declares_its_type_default_and_meaning(name: str) -> None:
    cls = STRATEGIES[name]

    specs = param_specs(cls.Params)

    defaults = cls.Params()
    assert [s.name for s in specs] == list(build_strategy(name, {}, "5m").params())
    for spec in specs:
        assert spec.default == getattr(defaults, spec.name)
        assert spec.type == type(getattr(defaults, spec.name)).__name__
        assert len(spec.meaning) > 15, f"{name}.{spec.name} says too little: {spec.meaning!r}"


def test_param_specs_of_sma_cross() -> None:
    fast, slow = param_specs(STRATEGIES["sma_cross"].Params)

    assert (fast.name, fast.type, fast.default) == ("fast", "int", 50)
    assert "bars" in fast.meaning
    assert (slow.name, slow.type, slow.default) == ("slow", "int", 200)
    assert "> fast" in slow.meaning


def test_a_parameter_needs_a_meaning() -> None:
    with pytest.raises(ValueError, match="meaning must not be empty"):
        param(3, " ")
