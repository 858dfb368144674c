"""Volume profile (issue 6, component 4): binning, POC, value area, low-volume sizing, schedule.

Hand examples use a last close of 1000, so bins are 1.0 wide: bin k = [1000 + k, 1001 + k).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.candles import Candles
from domain.errors import ConfigError, DataError
from domain.volume_profile import (
    DAY_MS,
    HOUR_MS,
    ProfileParams,
    low_volume_size_factor,
    profile_at,
    profiles,
    volume_profile,
)
from tests.fixtures.data import load_sample_candles

M5 = 300_000
H4 = 4 * HOUR_MS
REL = 1e-9  # float tolerance on volume sums, relative to the total


def _arrays(*rows: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low, high, volume = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    return low, high, volume


def _points(*volumes: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candles with high == low at the centres of bins 0, 1, 2… (last close 1000)."""
    return _arrays(*((1000.5 + k, 1000.5 + k, v) for k, v in enumerate(volumes)))


@st.composite
def windows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Random candles: point candles at bin centres with small integer volumes (ties in the
    POC and the value area), and candles over ranges of up to 10 bins with any volume."""
    last_close = draw(st.sampled_from([1000.0, 123.456, 0.7, 54_321.0]))
    width = 0.001 * last_close
    rows = []
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.booleans()):
            low = high = last_close + (draw(st.integers(0, 40)) + 0.5) * width
        else:
            low = last_close + draw(st.floats(0, 40)) * width
            high = low + draw(st.floats(0, 10)) * width
        volume = draw(st.one_of(st.integers(0, 5).map(float), st.floats(0, 1e6)))
        rows.append((low, high, volume))
    low, high, volume = _arrays(*rows)
    assume(volume.sum() > 0)
    return low, high, volume, last_close


# --- Hand-computed examples ------------------------------------------------------------------


def test_three_candles_spread_their_volume_over_the_bins_they_overlap() -> None:
    low, high, volume = _arrays(
        (1000.0, 1002.0, 4.0),  # 2 bins wide: 2 in bin 0, 2 in bin 1 (0 in bin 2, at its edge)
        (1001.5, 1001.5, 3.0),  # high == low: all 3 in bin 1
        (1000.5, 1003.0, 5.0),  # 2.5 bins, 2 per bin: 1 in bin 0 (half), 2 in bins 1 and 2
    )

    profile = volume_profile(low, high, volume, 1000.0)

    # Bins [3, 7, 2, 0] (bin 3 starts at the highest high); total 12, target 0.7 × 12 = 8.4.
    assert profile.volumes == pytest.approx((3.0, 7.0, 2.0, 0.0))
    assert (profile.anchor, profile.bin_width, profile.total_volume) == (1000.0, 1.0, 12.0)
    assert profile.poc == 1001.5  # bin 1 holds 7
    # From bin 1 (7): bin 0 (3) beats bin 2 (2), 7 + 3 = 10 >= 8.4.
    assert (profile.val, profile.vah) == (1000.5, 1001.5)
    assert profile.median_volume == 2.5  # (2 + 3) / 2


def test_a_heavy_candle_barely_crossing_a_bin_edge_loses_no_other_volume() -> None:
    edge = 1005.0
    low, high, volume = _arrays(
        (np.nextafter(edge, 0.0), np.nextafter(edge, 2 * edge), 1e6),  # 1 ulp each side: half each
        (1004.2, 1007.7, 3.5),  # 3.5 bins, 1 per bin: 0.8 in bin 0, 1 in bins 1 and 2, 0.7 in 3
    )

    profile = volume_profile(low, high, volume, 1000.0)

    # The first candle's density is ~4e18 per bin; added to the second's 1 it would swamp it.
    assert profile.anchor == 1004.0
    assert profile.volumes == pytest.approx((500_000.8, 500_001.0, 1.0, 0.7))


def test_poc_tie_goes_to_the_lowest_price() -> None:
    low, high, volume = _points(4.0, 1.0, 4.0)

    profile = volume_profile(low, high, volume, 1000.0)

    assert profile.poc == 1000.5
    # From bin 0 (4), only upwards: + 1 = 5, + 4 = 9 >= 0.7 × 9 = 6.3.
    assert (profile.val, profile.vah) == (1000.5, 1002.5)


def test_value_area_takes_the_lower_neighbour_when_both_hold_the_same_volume() -> None:
    low, high, volume = _points(2.0, 5.0, 2.0)

    profile = volume_profile(low, high, volume, 1000.0)

    # 5 < 6.3; bins 0 and 2 tie at 2: bin 0 is taken, 7 >= 6.3.
    assert (profile.val, profile.poc, profile.vah) == (1000.5, 1001.5, 1001.5)


def test_value_area_at_the_lowest_bin_grows_upwards() -> None:
    low, high, volume = _points(5.0, 3.0, 2.0)

    profile = volume_profile(low, high, volume, 1000.0)

    # 5 < 7; nothing below bin 0, so bin 1: 8 >= 7.
    assert (profile.val, profile.poc, profile.vah) == (1000.5, 1000.5, 1001.5)


def test_value_area_drops_an_edge_bin_that_greedy_growth_left_unneeded() -> None:
    low, high, volume = _points(0.5, 1.0, 10.0, 0.9, 8.0)

    profile = volume_profile(low, high, volume, 1000.0)

    # Target 0.7 × 20.4 = 14.28. From bin 2 (10): bin 1 (1 > 0.9) → 11, bin 3 (0.9 > 0.5) →
    # 11.9, bin 4 (8) → 19.9. Without bin 1 the area still holds 18.9 >= 14.28: dropped.
    assert (profile.val, profile.poc, profile.vah) == (1002.5, 1002.5, 1004.5)


def test_a_full_value_area_covers_every_bin_with_volume() -> None:
    low, high, volume = _points(1.0, 0.0, 3.0, 2.0)

    profile = volume_profile(low, high, volume, 1000.0, value_area=1.0)

    assert (profile.val, profile.vah) == (1000.5, 1003.5)


def test_key_levels_are_within_half_a_percent_of_poc_vah_or_val() -> None:
    profile = volume_profile(*_points(3.0, 7.0, 2.0), 1000.0)
    assert (profile.val, profile.poc, profile.vah) == (1000.5, 1001.5, 1001.5)  # 7 + 3 >= 8.4

    # 0.5% of 1001.5 is 5.0075 and of 1000.5 is 5.0025.
    assert profile.at_key_level(1006.5) and profile.at_key_level(995.5)
    assert not profile.at_key_level(1006.6) and not profile.at_key_level(995.4)
    assert profile.at_key_level(1003.0) and not profile.at_key_level(1003.0, tolerance=0.001)


def test_a_price_outside_the_profile_is_a_low_volume_area() -> None:
    profile = volume_profile(*_points(3.0, 7.0, 2.0), 1000.0)

    assert profile.is_low_volume(999.9) and profile.is_low_volume(1003.1)
    assert low_volume_size_factor(profile, 1003.1) == 0.5
    assert low_volume_size_factor(profile, 1000.5) == 1.0  # 3 >= median 3
    assert low_volume_size_factor(None, 1003.1) == 1.0  # unavailable: no change


def test_to_json_gives_the_levels_width_and_total_as_floats() -> None:
    profile = volume_profile(*_points(3.0, 7.0, 2.0), 1000.0)

    payload = profile.to_json()

    assert payload == {
        "poc": 1001.5,
        "vah": 1001.5,
        "val": 1000.5,
        "bin_width": 1.0,
        "total_volume": 12.0,
    }
    assert all(type(v) is float for v in payload.values())


@pytest.mark.parametrize(
    ("low", "high", "volume", "last_close", "message"),
    [
        ([1.0, 2.0], [2.0], [1.0, 1.0], 2.0, "one length"),
        ([], [], [], 2.0, "one length > 0"),
        ([1.0, np.nan], [2.0, 2.0], [1.0, 1.0], 2.0, "low must be > 0, was low=nan"),
        ([1.0, 2.0], [2.0, np.inf], [1.0, 1.0], 2.0, "high=inf"),
        ([1.0, 2.0], [2.0, 1.5], [1.0, 1.0], 2.0, "candle 1: high must be finite and >= low"),
        ([1.0, 2.0], [2.0, 3.0], [1.0, -0.5], 2.0, "volume=-0.5"),
        ([0.0, 2.0], [2.0, 3.0], [1.0, 1.0], 2.0, "candle 0: low must be > 0, was low=0.0"),
        ([1.0, 2.0], [2.0, 3.0], [1.0, 1.0], 0.0, "last_close must be > 0, was 0.0"),
        ([1.0, 2.0], [2.0, 3.0], [0.0, 0.0], 2.0, "total volume must be > 0, was 0.0"),
    ],
)
def test_bad_candles_raise_a_data_error_naming_the_value(
    low: list[float], high: list[float], volume: list[float], last_close: float, message: str
) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(".", r"\.")):
        volume_profile(np.array(low), np.array(high), np.array(volume), last_close)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bin_fraction": 0.0}, "bin_fraction must be > 0, was 0.0"),
        ({"value_area": 1.5}, "value_area must be in \\(0, 1\\], was 1.5"),
        ({"value_area": 0.0}, "value_area must be in \\(0, 1\\], was 0.0"),
    ],
)
def test_bad_parameters_raise_a_config_error(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        volume_profile(*_points(1.0), 1000.0, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"every_ms": 0}, "every_ms"),
        ({"window_ms": -1}, "window_ms"),
        ({"timeframe_ms": 0}, "timeframe_ms"),
        ({"min_ms": -1}, "min_ms"),
        ({"value_area": 2.0}, "value_area"),
    ],
)
def test_schedule_parameters_are_validated(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ProfileParams(**kwargs)

    assert caught.value.field == field


# --- Properties (spec "Volume Profile Properties", as restated by issue 6) --------------------


# Property 8
@settings(max_examples=200)
@given(windows())
def test_poc_is_the_lowest_priced_bin_with_the_most_volume(
    window: tuple[np.ndarray, np.ndarray, np.ndarray, float],
) -> None:
    profile = volume_profile(*window)

    volumes = np.array(profile.volumes)
    k = profile.bin_index(profile.poc)
    assert volumes[k] == volumes.max()
    assert (volumes[:k] < volumes.max()).all()


# Property 9
@settings(max_examples=200)
@given(windows())
def test_value_area_is_contiguous_holds_70_percent_and_has_no_spare_edge_bin(
    window: tuple[np.ndarray, np.ndarray, np.ndarray, float],
) -> None:
    profile = volume_profile(*window)

    volumes = np.array(profile.volumes)
    lo, k, hi = (profile.bin_index(p) for p in (profile.val, profile.poc, profile.vah))
    tolerance = REL * volumes.sum()
    target = 0.7 * volumes.sum()
    area = volumes[lo : hi + 1].sum()
    assert 0 <= lo <= k <= hi < len(volumes)  # one run of bins around the POC
    assert profile.val <= profile.poc <= profile.vah
    assert area >= target - tolerance
    assert area - volumes[lo] < target + tolerance
    assert area - volumes[hi] < target + tolerance


# Property 9 (the value area's share is of the total, so binning must conserve it)
@settings(max_examples=200)
@given(windows())
def test_binning_conserves_the_candles_volume(
    window: tuple[np.ndarray, np.ndarray, np.ndarray, float],
) -> None:
    low, high, volume, last_close = window

    profile = volume_profile(low, high, volume, last_close)

    assert sum(profile.volumes) == pytest.approx(volume.sum(), rel=REL)
    assert profile.total_volume == volume.sum()
    assert min(profile.volumes) >= 0


# Property 10
@settings(max_examples=200)
@given(windows(), st.data())
def test_position_size_is_halved_in_a_bin_below_the_median_volume(
    window: tuple[np.ndarray, np.ndarray, np.ndarray, float], data: st.DataObject
) -> None:
    profile = volume_profile(*window)
    k = data.draw(st.integers(0, len(profile.volumes) - 1))
    price = profile.anchor + (k + 0.5) * profile.bin_width

    factor = low_volume_size_factor(profile, price)

    below_median = profile.volumes[k] < np.median(profile.volumes)
    assert profile.is_low_volume(price) is bool(below_median)
    assert factor == (0.5 if below_median else 1.0)


# --- Schedule: every 4 h at epoch-aligned instants, over the last 7 days of closed bars -------


def _bars(n: int, *, start: int = 0, spikes: dict[int, float] | None = None) -> Candles:
    """n 5m bars from ``start`` at price 100..101 with volume 1; ``spikes`` maps a bar index to
    a price where that bar trades 1000 at a single price."""
    low, high = np.full(n, 100.0), np.full(n, 101.0)
    volume = np.ones(n)
    for i, price in (spikes or {}).items():
        low[i] = high[i] = price
        volume[i] = 1000.0
    open_time = start + M5 * np.arange(n, dtype=np.int64)
    return Candles(open_time, low.copy(), high, low, high.copy(), volume)


def test_profile_is_unavailable_with_less_than_one_day_of_closed_bars() -> None:
    day = _bars(288)  # 00:00 .. 23:55, the last one closing at 24:00

    assert profile_at(day, DAY_MS - 1) is None  # at 20:00: 240 bars closed
    assert profile_at(day.slice(1, 288), DAY_MS) is None  # 287 bars
    assert profile_at(day, DAY_MS) is not None  # 288 bars = 1 day


def test_a_window_without_volume_is_unavailable() -> None:
    day = _bars(288)
    silent = Candles(day.open_time, day.open, day.high, day.low, day.close, np.zeros(288))

    assert profile_at(silent, DAY_MS) is None


def test_profile_uses_the_bar_closing_at_the_instant_and_none_closing_after() -> None:
    instant = 7 * H4  # 28:00
    last_closed = instant // M5 - 1  # opened at 27:55, closes at 28:00
    bars = _bars(400, spikes={last_closed: 150.0, last_closed + 1: 50.0})

    profile = profile_at(bars, instant + H4 - 1)

    assert profile is not None
    assert profile.end_ms == instant
    assert profile.poc == pytest.approx(150.0, abs=profile.bin_width)  # the spike at 27:55
    assert profile.anchor > 99.0  # not the 28:00 bar at 50, closed only at 28:05
    assert profile.total_volume == last_closed + 1000.0


def test_profile_holds_between_recompute_instants() -> None:
    bars = _bars(600, spikes={400: 120.0, 450: 130.0})  # 33:20 and 37:30
    instant = 9 * H4  # 36:00

    at_instant = profile_at(bars, instant)

    assert profile_at(bars, instant + H4 - 1) == at_instant
    assert profile_at(bars, instant - 1) != at_instant
    assert profile_at(bars, instant + H4) != at_instant


def test_bars_older_than_seven_days_leave_the_window() -> None:
    bars = _bars(9 * 288, spikes={0: 50.0})  # nine days, a spike in the very first bar
    instant = 7 * DAY_MS + H4

    profile = profile_at(bars, instant)

    assert profile is not None
    assert profile.start_ms == instant - 7 * DAY_MS
    assert profile.anchor > 99.0  # the spike at 00:00 of day 1 is out
    assert profile.total_volume == 7 * 288


def test_batch_schedule_equals_profile_at_each_instant_on_real_data() -> None:
    candles = load_sample_candles("BTCUSDT")

    schedule = profiles(candles)

    assert schedule.times[0] == candles.open_time[0] + H4  # the first bar opens at 00:00
    assert np.all(schedule.times % H4 == 0)
    assert np.all(np.diff(schedule.times) == H4)
    assert schedule.times[-1] == candles.open_time[-1] + M5  # the last one closes at 24:00
    assert schedule.profiles[:5] == (None,) * 5  # 4 h .. 20 h of bars
    assert schedule.profiles[5] is not None  # a day
    for instant, profile in zip(schedule.times.tolist(), schedule.profiles, strict=True):
        assert profile == profile_at(candles, instant)
        assert profile == profile_at(candles, instant + H4 - 1) == schedule.at(instant + H4 - 1)


def test_real_profiles_lie_within_their_window_and_order_val_poc_vah() -> None:
    candles = load_sample_candles("BTCUSDT")

    schedule = profiles(candles)

    for profile in schedule.profiles[5:]:
        assert profile is not None and profile.start_ms is not None
        window = candles.between(profile.start_ms, profile.end_ms)
        low, high = window.low.min(), window.high.max()
        assert low <= profile.val <= profile.poc <= profile.vah <= high
        assert sum(profile.volumes) == pytest.approx(window.volume.sum(), rel=REL)


_BTC = load_sample_candles("BTCUSDT")


@settings(max_examples=100, deadline=None)
@given(st.integers(int(_BTC.open_time[0]), int(_BTC.open_time[-1]) + M5))
def test_profile_at_a_time_needs_no_bar_closing_after_it(time_ms: int) -> None:
    known_then = _BTC.between(None, time_ms - M5 + 1)  # bars closed by time_ms

    assert profile_at(_BTC, time_ms) == profile_at(known_then, time_ms)
