"""Adaptive thresholds (domain/thresholds.py, issue 6 component 1): the band multiplier and the
clamp by hand, Hypothesis properties 1-4, the warm-up and config edge cases, and on the real
60-day samples the batch form equal to the incremental one at every bar, causality, and a
restart from state() that continues exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.candles import Candles
from domain.errors import ConfigError
from domain.features import ATR, Bar, iter_bars
from domain.resample import resample
from domain.risk import atr_percentile
from domain.rolling import PercentileWindow, volatility_percentile
from domain.thresholds import (
    H1,
    M5,
    NO_TIME,
    AdaptiveThresholds,
    ThresholdChange,
    ThresholdConfig,
    multiplier_for,
    threshold_series,
    thresholds_for,
)
from tests.fixtures.data import load_sample_candles

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
PCT = st.floats(0.0, 100.0)


@st.composite
def configs(draw: st.DrawFn, small: bool = False) -> ThresholdConfig:
    """A valid config: per threshold three sorted values (min <= base <= max)."""
    adx = sorted(draw(st.lists(st.floats(0.0, 100.0), min_size=3, max_size=3)))
    rvol = sorted(draw(st.lists(st.floats(0.0, 50.0), min_size=3, max_size=3)))
    return ThresholdConfig(
        base_adx=adx[1], adx_min=adx[0], adx_max=adx[2],
        base_rvol=rvol[1], rvol_min=rvol[0], rvol_max=rvol[2],
        atr_period=draw(st.integers(1, 4)) if small else 24,
        window=draw(st.integers(1, 30)) if small else 720,
    )  # fmt: skip


@st.composite
def hourly_bars(draw: st.DrawFn) -> Candles:
    """A random walk of complete 1h bars with volatility that changes from bar to bar."""
    n = draw(st.integers(1, 80))
    moves = draw(st.lists(st.floats(-0.08, 0.08), min_size=n, max_size=n))
    spans = draw(st.lists(st.floats(0.0, 0.08), min_size=n, max_size=n))
    start = draw(st.integers(0, 10_000)) * H1
    opens, closes = [], []
    price = 100.0
    for move in moves:
        opens.append(price)
        price *= math.exp(move)
        closes.append(price)
    o, c, s = np.array(opens), np.array(closes), np.array(spans)
    return Candles(
        start + H1 * np.arange(n, dtype=np.int64), o, np.maximum(o, c) * (1 + s),
        np.minimum(o, c) * (1 - s / 2), c, np.ones(n),
    )  # fmt: skip


def stepped(candles: Candles, tracker: AdaptiveThresholds) -> tuple[np.ndarray, list]:
    """The tracker fed every bar: per bar (adx, rvol, pct, multiplier, time), and its events."""
    rows, events = [], []
    for bar in iter_bars(candles):
        event = tracker.update(bar)
        if event is not None:
            events.append(event)
        c = tracker.current
        rows.append((c.adx, c.rvol, c.volatility_pct, c.multiplier, NO_TIME if c.time is None
                     else c.time))  # fmt: skip
    return np.array(rows), events


# -- the rules by hand ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pct", "expected"),
    [(0.0, 0.7), (19.99, 0.7), (20.0, 0.85), (39.99, 0.85), (40.0, 1.0), (59.99, 1.0),
     (60.0, 1.15), (79.99, 1.15), (80.0, 1.3), (100.0, 1.3)],
)  # fmt: skip
def test_multiplier_follows_the_issue_bands_with_closed_lower_edges(pct, expected) -> None:
    assert multiplier_for(pct) == expected


def test_thresholds_are_base_times_multiplier_clamped_to_bounds() -> None:
    config = ThresholdConfig(base_adx=25, adx_min=20, adx_max=30, base_rvol=1.5, rvol_min=1.2,
                             rvol_max=3)  # fmt: skip

    assert thresholds_for(50.0, config) == (25.0, 1.5)
    assert thresholds_for(70.0, config) == (25 * 1.15, 1.5 * 1.15)
    assert thresholds_for(90.0, config) == (30.0, 1.5 * 1.3)  # ADX clamped to its max
    assert thresholds_for(5.0, config) == (20.0, 1.2)  # both clamped to their min


def test_percentile_counts_the_current_value_among_the_last_window() -> None:
    # 2.5 among (1, 3, 2.5): two of three at or below it.
    pct = volatility_percentile(np.array([np.nan, 2.0, 1.0, 3.0, 2.5]), window=3)

    assert np.isnan(pct[0])
    assert pct[1:].tolist() == [100.0, 50.0, 100.0, 200 / 3]


def test_percentile_agrees_with_the_risk_modules_rank_once_the_window_is_full() -> None:
    # domain.risk ranks among the w values before; here the current one is counted too.
    hours = resample(load_sample_candles("BTCUSDT"), M5, H1)
    values = ATR(24).batch(hours)["atr"]
    ours, theirs = volatility_percentile(values, 720), atr_percentile(values, 719)

    full = slice(24 + 719, None)
    np.testing.assert_array_equal(
        np.rint(ours[full] * 720 / 100) - 1, np.rint(theirs[full] * 719 / 100)
    )


# -- properties -------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(PCT, PCT, configs(), st.floats(0.1, 3.0))
def test_higher_volatility_never_lowers_the_multiplier_or_thresholds(a, b, config, factor):
    # Property 1
    low, high = min(a, b), max(a, b)

    assert multiplier_for(low) <= multiplier_for(high)
    for lo, hi in zip(thresholds_for(low, config, factor), thresholds_for(high, config, factor),
                      strict=True):  # fmt: skip
        assert lo <= hi


@settings(max_examples=150, deadline=None)
@given(PCT, configs(), st.floats(0.0, 10.0))
def test_thresholds_stay_within_their_configured_bounds(pct, config, factor):
    # Property 2
    adx, rvol = thresholds_for(pct, config, factor)

    assert config.adx_min <= adx <= config.adx_max
    assert config.rvol_min <= rvol <= config.rvol_max


@settings(max_examples=100, deadline=None)
@given(hourly_bars(), configs(small=True))
def test_batch_thresholds_stay_within_bounds_on_any_history(hours, config):
    # Property 2
    series = threshold_series(hours, config, source_ms=H1)

    assert ((config.adx_min <= series.adx) & (series.adx <= config.adx_max)).all()
    assert ((config.rvol_min <= series.rvol) & (series.rvol <= config.rvol_max)).all()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.floats(0.0, 1e6), st.just(math.nan)), max_size=60),
    st.integers(1, 25),
)
def test_percentile_lies_in_0_100_and_both_forms_agree(values, window):
    # Property 3
    batch = volatility_percentile(np.array(values, dtype=np.float64), window, chunk=7)
    ring = PercentileWindow(window)
    stepped_values = [ring.push(v) for v in values]

    defined = ~np.isnan(batch)
    assert ((batch[defined] >= 0) & (batch[defined] <= 100)).all()
    assert (defined == ~np.isnan(np.array(values, dtype=np.float64))).all()
    np.testing.assert_array_equal(batch, np.array(stepped_values, dtype=np.float64))


@settings(max_examples=150, deadline=None)
@given(hourly_bars(), configs(small=True))
def test_every_threshold_change_emits_an_event_with_old_new_and_percentile(hours, config):
    # Property 4
    tracker = AdaptiveThresholds(config, source_ms=H1)
    events = []

    for hour in iter_bars(hours):
        before = tracker.current
        event = tracker.update_hour(hour)
        after = tracker.current
        if (after.adx, after.rvol) != (before.adx, before.rvol):
            assert event == ThresholdChange(
                hour.open_time + H1, before.adx, before.rvol, after.adx, after.rvol,
                after.volatility_pct, after.multiplier,
            )  # fmt: skip
            events.append(event)
        else:
            assert event is None

    assert events == threshold_series(hours, config, source_ms=H1).changes()


# -- edge cases -------------------------------------------------------------------------------
@pytest.mark.parametrize("hours", [1, 23, 24])
def test_fewer_than_25_hourly_candles_give_base_thresholds_and_percentile_50(hours) -> None:
    # ATR(24) needs a previous close: the 24th candle still has no ATR.
    candles = load_sample_candles("BTCUSDT").slice(0, hours * 12)
    config = ThresholdConfig()

    series = threshold_series(candles, config)
    _, events = stepped(candles, tracker := AdaptiveThresholds(config))

    assert len(series) == hours
    assert (series.volatility_pct == 50.0).all()
    assert (series.adx == config.base_adx).all() and (series.rvol == config.base_rvol).all()
    assert series.changes() == [] and events == []
    assert (tracker.current.adx, tracker.current.volatility_pct) == (config.base_adx, 50.0)


def test_the_first_atr_ends_the_warm_up_at_the_25th_hour() -> None:
    series = threshold_series(load_sample_candles("BTCUSDT").slice(0, 25 * 12 + 5))

    assert np.isnan(series.atr[:24]).all() and (series.volatility_pct[:24] == 50.0).all()
    assert series.volatility_pct[24] == 100.0  # the only ATR value is at or below itself
    assert series.time[24] == series.time[0] + 24 * H1


def test_an_unfinished_hour_is_not_recomputed() -> None:
    candles = load_sample_candles("BTCUSDT").slice(0, 30 * 12 + 11)  # 30 hours and 11 bars

    series = threshold_series(candles)

    assert len(series) == 30
    assert series.time[-1] == candles.open_time[0] + 30 * H1


def test_before_the_first_recompute_the_base_values_are_in_effect() -> None:
    candles = load_sample_candles("ETHUSDT").slice(0, 40)
    config = ThresholdConfig()

    at = threshold_series(candles, config).at(candles.open_time + M5)

    assert (at.time[:11] == NO_TIME).all() and at.time[11] == candles.open_time[0] + H1
    assert (at.adx == config.base_adx).all() and (at.volatility_pct == 50.0).all()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"adx_min": 30, "adx_max": 20, "base_adx": 25}, "adx_min"),
     ({"rvol_min": 2.0, "rvol_max": 1.0, "base_rvol": 1.5}, "rvol_min"),
     ({"base_adx": 50}, "base_adx"),
     ({"base_rvol": 0.5}, "base_rvol"),
     ({"adx_max": 120}, "adx_max"),
     ({"rvol_min": math.nan}, "rvol_min"),
     ({"atr_period": 0}, "atr_period"),
     ({"window": 0}, "window")],
)  # fmt: skip
def test_an_invalid_config_is_refused_naming_the_field(kwargs, field) -> None:
    with pytest.raises(ConfigError) as error:
        ThresholdConfig(**kwargs)

    assert error.value.field == field


def test_disabled_thresholds_stay_at_base_but_report_the_percentile() -> None:
    candles = load_sample_candles("SOLUSDT")
    config = ThresholdConfig(enabled=False)

    series = threshold_series(candles, config)

    assert (series.adx == config.base_adx).all() and series.changes() == []
    assert len(np.unique(series.volatility_pct)) > 100


# -- real data --------------------------------------------------------------------------------
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_batch_equals_incremental_at_every_bar(symbol) -> None:
    candles = load_sample_candles(symbol)
    series = threshold_series(candles)

    rows, events = stepped(candles, AdaptiveThresholds())

    at = series.at(candles.open_time + M5)
    for j, column in enumerate((at.adx, at.rvol, at.volatility_pct, at.multiplier, at.time)):
        np.testing.assert_array_equal(rows[:, j], column)
    assert events == series.changes()
    assert len(events) > 50  # the sample moves through the bands


def test_hourly_buckets_fed_directly_give_the_same_thresholds() -> None:
    candles = load_sample_candles("BTCUSDT")
    tracker = AdaptiveThresholds()

    events = [tracker.update_hour(h) for h in iter_bars(resample(candles, M5, H1))]

    assert [e for e in events if e is not None] == threshold_series(candles).changes()


@pytest.mark.parametrize("cut", [300, 9_001, 12_000, 17_279])
def test_values_at_a_time_do_not_change_when_the_future_is_cut(cut) -> None:
    candles = load_sample_candles("BTCUSDT")
    full, prefix = threshold_series(candles), threshold_series(candles.slice(0, cut))

    for name in ("time", "atr", "volatility_pct", "adx", "rvol"):
        np.testing.assert_array_equal(getattr(prefix, name), getattr(full, name)[: len(prefix)])
    assert prefix.changes() == full.changes()[: len(prefix.changes())]


@pytest.mark.parametrize("replay_first", [False, True])
def test_a_restart_from_state_continues_exactly(replay_first) -> None:
    candles = load_sample_candles("ETHUSDT")
    cut = 11_003
    _, before = stepped(candles.slice(0, cut), first := AdaptiveThresholds())
    state = json.loads(json.dumps(first.state()))
    restarted = AdaptiveThresholds()

    if replay_first:  # warm up on the bars already processed, then restore
        stepped(candles.slice(0, cut), restarted)
        restarted.restore(state)
    else:  # restore, then warm up: the replayed bars emit nothing
        restarted.restore(state)
        assert stepped(candles.slice(0, cut), restarted)[1] == []
    after = stepped(candles.slice(cut, len(candles)), restarted)[1]

    assert before + after == threshold_series(candles).changes()


def test_a_malformed_state_is_refused() -> None:
    tracker = AdaptiveThresholds()

    with pytest.raises(ValueError, match="version"):
        tracker.restore({"version": 99})
    with pytest.raises(ValueError, match="malformed"):
        tracker.restore({"version": 1, "current": [0, 50.0]})


def test_bars_out_of_order_are_refused() -> None:
    tracker = AdaptiveThresholds()
    tracker.update(Bar(M5, 1.0, 1.0, 1.0, 1.0, 1.0))

    with pytest.raises(ValueError):
        tracker.update(Bar(M5, 1.0, 1.0, 1.0, 1.0, 1.0))
