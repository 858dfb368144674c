"""Feature isolation (domain/isolation.py, issue 6 "Robustness"): a failing feature returns its
fallback and queues an event, disables itself after N failures in a row until reset, features off
by configuration are never called, process-stopping errors propagate, Property 26 (feature
independence) and Property 27 (configuration validation) as Hypothesis tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ConfigError, DataError
from domain.isolation import (
    PIPELINE_FEATURES,
    FeatureFailure,
    FeatureGuard,
    FeatureState,
    FeatureStatus,
)

T0 = 1_700_000_000_000
M5 = 300_000


def _raise(exc: BaseException) -> Callable[[], object]:
    def fn() -> object:
        raise exc

    return fn


class Counter:
    """A feature that counts its calls and fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False

    def __call__(self, x: float = 1.0) -> float:
        self.calls += 1
        if self.failing:
            raise ZeroDivisionError("float division by zero")
        return x * 2


def _guard(max_failures: int = 3, **enabled: bool) -> FeatureGuard:
    features = {name: True for name in PIPELINE_FEATURES} | enabled
    return FeatureGuard(features, max_consecutive_failures=max_failures)


def test_success_returns_the_feature_result_and_queues_nothing() -> None:
    guard = _guard()

    result = guard.call("regime", lambda a, b: a + b, 2, 3, fallback=-1, time_ms=T0)

    assert result == 5
    assert guard.drain_events() == []
    assert guard.status()["regime"] == FeatureStatus(FeatureState.ON, 0, 0, None, None, None)


def test_failure_returns_fallback_and_queues_event_with_market_time_and_error() -> None:
    guard = _guard()

    result = guard.call(
        "thresholds", _raise(ValueError("bad atr -1")), fallback=(25.0, 1.5), time_ms=T0
    )

    assert result == (25.0, 1.5)
    [event] = guard.drain_events()
    assert (event.feature, event.time, event.error) == ("thresholds", T0, "ValueError: bad atr -1")
    assert (event.consecutive, event.disabled) == (1, False)
    assert "test_isolation.py" in event.where and "in fn" in event.where
    status = guard.status()["thresholds"]
    assert status.state is FeatureState.ON
    assert (status.last_error, status.last_error_time) == ("ValueError: bad atr -1", T0)


def test_error_without_message_is_recorded_as_its_type_name() -> None:
    guard = _guard()

    guard.call("ml", _raise(StopIteration()), fallback=0.5, time_ms=T0)

    assert guard.status()["ml"].last_error == "StopIteration"


def test_drain_events_empties_the_queue() -> None:
    guard = _guard()
    guard.call("ml", _raise(KeyError("rsi")), fallback=0.5, time_ms=T0)

    first = guard.drain_events()
    second = guard.drain_events()

    assert [e.error for e in first] == ["KeyError: 'rsi'"]
    assert second == []


def test_feature_disables_itself_after_three_consecutive_failures() -> None:
    guard = _guard()
    feature = Counter()
    feature.failing = True

    for i in range(3):
        guard.call("volume_profile", feature, fallback=None, time_ms=T0 + i * M5)

    events = guard.drain_events()
    assert [(e.consecutive, e.disabled) for e in events] == [(1, False), (2, False), (3, True)]
    status = guard.status()["volume_profile"]
    assert status.state is FeatureState.FAILED
    assert status.disabled_since == T0 + 2 * M5
    assert not guard.is_active("volume_profile")


def test_disabled_feature_is_not_called_and_returns_fallback_without_events() -> None:
    guard = _guard(max_failures=1)
    feature = Counter()
    feature.failing = True
    guard.call("exits", feature, fallback="default stop", time_ms=T0)
    guard.drain_events()
    feature.failing = False

    result = guard.call("exits", feature, fallback="default stop", time_ms=T0 + M5)

    assert result == "default stop"
    assert feature.calls == 1
    assert guard.drain_events() == []


def test_success_resets_the_consecutive_failure_count() -> None:
    guard = _guard()
    feature = Counter()
    feature.failing = True
    guard.call("portfolio", feature, fallback=0.0, time_ms=T0)
    guard.call("portfolio", feature, fallback=0.0, time_ms=T0 + M5)
    feature.failing = False
    guard.call("portfolio", feature, fallback=0.0, time_ms=T0 + 2 * M5)
    feature.failing = True

    guard.call("portfolio", feature, fallback=0.0, time_ms=T0 + 3 * M5)
    guard.call("portfolio", feature, fallback=0.0, time_ms=T0 + 4 * M5)

    status = guard.status()["portfolio"]
    assert status.state is FeatureState.ON
    assert (status.consecutive_failures, status.total_failures) == (2, 4)


def test_feature_off_by_configuration_is_never_called_and_reports_off() -> None:
    guard = _guard(ml=False)
    feature = Counter()

    result = guard.call("ml", feature, 4.0, fallback=0.5, time_ms=T0)

    assert result == 0.5
    assert feature.calls == 0
    assert guard.status()["ml"].state is FeatureState.OFF
    assert not guard.is_active("ml")


def test_reset_of_one_feature_re_enables_only_that_feature() -> None:
    guard = _guard(max_failures=1, ml=False)
    for name in ("regime", "exits"):
        guard.call(name, _raise(IndexError("empty")), fallback=None, time_ms=T0)

    guard.reset("regime")

    states = {name: s.state for name, s in guard.status().items()}
    assert (states["regime"], states["exits"], states["ml"]) == (
        FeatureState.ON, FeatureState.FAILED, FeatureState.OFF,
    )  # fmt: skip
    regime = guard.status()["regime"]
    assert (regime.consecutive_failures, regime.total_failures) == (0, 1)
    assert regime.disabled_since is None
    assert guard.call("regime", lambda: "TRENDING_BULLISH", fallback="UNCERTAIN", time_ms=T0) == (
        "TRENDING_BULLISH"
    )


def test_reset_without_name_re_enables_every_failed_feature_but_not_configured_off() -> None:
    guard = _guard(max_failures=1, portfolio=False)
    for name in ("regime", "exits"):
        guard.call(name, _raise(IndexError("empty")), fallback=None, time_ms=T0)

    guard.reset()

    states = {name: s.state for name, s in guard.status().items()}
    assert states["portfolio"] is FeatureState.OFF
    assert all(state is FeatureState.ON for name, state in states.items() if name != "portfolio")


def test_a_new_guard_starts_with_every_enabled_feature_on() -> None:
    old = _guard(max_failures=1)
    old.call("regime", _raise(ValueError("nan")), fallback=None, time_ms=T0)

    new = _guard(max_failures=1)

    assert old.status()["regime"].state is FeatureState.FAILED
    assert all(
        s == FeatureStatus(FeatureState.ON, 0, 0, None, None, None) for s in new.status().values()
    )


@pytest.mark.parametrize(
    "exc",
    [
        ZeroDivisionError("division by zero"),
        FloatingPointError("overflow"),
        OverflowError("math range error"),
        ValueError("nan"),
        KeyError("close"),
        IndexError("index 0 is out of bounds"),
        TypeError("unsupported operand"),
        RecursionError("maximum recursion depth exceeded"),
        DataError("high < low"),
        ConfigError("bad parameter", field="x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_ordinary_exceptions_are_isolated(exc: Exception) -> None:
    guard = _guard()

    result = guard.call("timeframes", _raise(exc), fallback="fallback", time_ms=T0)

    assert result == "fallback"
    [event] = guard.drain_events()
    assert event.error.startswith(type(exc).__name__ + ": ")


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt(), SystemExit(1), MemoryError(), GeneratorExit()], ids=repr
)
def test_process_stopping_and_out_of_memory_errors_propagate(exc: BaseException) -> None:
    guard = _guard()

    with pytest.raises(type(exc)):
        guard.call("regime", _raise(exc), fallback=None, time_ms=T0)

    assert guard.drain_events() == []
    assert guard.status()["regime"].total_failures == 0


def test_unknown_feature_name_is_a_config_error_naming_it() -> None:
    guard = _guard()

    with pytest.raises(ConfigError, match="'sentiment'") as info:
        guard.call("sentiment", lambda: 1, fallback=0, time_ms=T0)

    assert info.value.field == "feature"


def test_status_lists_features_in_configuration_order() -> None:
    guard = _guard()

    assert list(guard.status()) == list(PIPELINE_FEATURES)


# Property 27: an invalid max_consecutive_failures is refused, naming the field and the value.
@settings(max_examples=100)
@given(
    st.one_of(
        st.integers(max_value=0),
        st.floats(allow_nan=True),
        st.booleans(),
        st.text(max_size=3),
        st.none(),
    )
)
def test_invalid_max_consecutive_failures_is_rejected_naming_the_field(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        FeatureGuard({"regime": True}, max_consecutive_failures=bad)  # type: ignore[arg-type]

    assert info.value.field == "max_consecutive_failures"
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("features", "field"),
    [({"": True}, "features"), ({"regime": "yes"}, "regime.enabled"), ({"ml": 1}, "ml.enabled")],
)
def test_invalid_feature_toggle_is_rejected_naming_the_field(
    features: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        FeatureGuard(features)  # type: ignore[arg-type]

    assert info.value.field == field


NAMES = ("thresholds", "regime", "volume_profile", "ml")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, bool], int, list[tuple[str, bool]]]:
    """Toggles, a failure limit and a sequence of (feature, succeeds) calls."""
    enabled = {name: draw(st.booleans() | st.just(True)) for name in NAMES}
    limit = draw(st.integers(1, 4))
    calls = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.booleans()), max_size=60))
    return enabled, limit, calls


def _run(guard: FeatureGuard, name: str, ok: bool, i: int) -> object:
    def feature(x: int) -> tuple[str, int]:
        if not ok:
            raise ArithmeticError(f"{name} failed at {x}")
        return (name, x)

    return guard.call(name, feature, i, fallback=("fallback", name), time_ms=T0 + i * M5)


# Property 26: feature independence.
@settings(max_examples=200)
@given(scenarios())
def test_a_failing_feature_never_affects_another_and_disables_exactly_after_n_failures(
    scenario: tuple[dict[str, bool], int, list[tuple[str, bool]]],
) -> None:
    enabled, limit, calls = scenario
    shared = FeatureGuard(enabled, max_consecutive_failures=limit)
    alone = {n: FeatureGuard({n: on}, max_consecutive_failures=limit) for n, on in enabled.items()}
    streak = dict.fromkeys(NAMES, 0)
    disabled = dict.fromkeys(NAMES, False)

    for i, (name, ok) in enumerate(calls):
        result = _run(shared, name, ok, i)
        events = shared.drain_events()

        # The same call on a guard holding only this feature gives the same result and events.
        assert result == _run(alone[name], name, ok, i)
        assert events == alone[name].drain_events()
        runs = enabled[name] and not disabled[name]
        if runs and ok:
            streak[name] = 0
            assert result == (name, i)
            assert events == []
        elif runs:
            streak[name] += 1
            disabled[name] = streak[name] == limit
            assert result == ("fallback", name)
            assert events == [
                FeatureFailure(
                    name, T0 + i * M5, f"ArithmeticError: {name} failed at {i}",
                    events[0].where, streak[name], disabled[name],
                )
            ]  # fmt: skip
        else:
            assert result == ("fallback", name)
            assert events == []

    for name, status in shared.status().items():
        expected = (
            FeatureState.OFF
            if not enabled[name]
            else FeatureState.FAILED
            if disabled[name]
            else FeatureState.ON
        )
        assert status.state is expected
        assert status.consecutive_failures == streak[name]
        assert status == alone[name].status()[name]
