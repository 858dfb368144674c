"""Resampling real Binance bars to higher timeframes, and the no-lookahead bucket index."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.candles import Candles
from domain.errors import ConfigError
from domain.resample import completed_index, resample
from tests.fixtures.data import load_candles

M1, M5, H1 = 60_000, 300_000, 3_600_000


def _drop(candles: Candles, indices: list[int]) -> Candles:
    keep = np.setdiff1d(np.arange(len(candles)), indices)
    return Candles(
        candles.open_time[keep],
        candles.open[keep],
        candles.high[keep],
        candles.low[keep],
        candles.close[keep],
        candles.volume[keep],
        {k: v[keep] for k, v in candles.extra.items()},
    )


def test_1m_to_5m_reproduces_the_exchange_5m_bars_exactly() -> None:
    minutes = load_candles("binance_usdm_BTCUSDT_1m.csv.gz")
    exchange_5m = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")

    ours = resample(minutes, M1, M5)

    common, i, j = np.intersect1d(ours.open_time, exchange_5m.open_time, return_indices=True)
    assert len(common) == len(ours) == 14_627
    for column in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(ours, column)[i], getattr(exchange_5m, column)[j])
    # Volumes are decimals with 3 places (BTC lot 0.001); a binary float sum is off by ~1e-12.
    np.testing.assert_array_equal(np.round(ours.volume[i], 3), exchange_5m.volume[j])


@pytest.mark.parametrize(
    ("bucket_open", "expected"),
    [
        # 2025-01-01 00:00 UTC, an ordinary hour.
        (1_735_689_600_000, (93548.8, 94449.2, 93460.2, 94363.6, 5744.609)),
        # 2025-10-10 21:00 UTC, the liquidation cascade: low 101516.5 in the 21:20 bar.
        (1_760_130_000_000, (114200.4, 115075.6, 101516.5, 113253.6, 131850.219)),
    ],
)
def test_5m_to_1h_matches_hand_checked_buckets(
    bucket_open: int, expected: tuple[float, float, float, float, float]
) -> None:
    bars = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")

    hours = resample(bars, M5, H1)

    k = int(np.searchsorted(hours.open_time, bucket_open))
    assert hours.open_time[k] == bucket_open
    got = (hours.open[k], hours.high[k], hours.low[k], hours.close[k], hours.volume[k])
    assert got == pytest.approx(expected, rel=0, abs=1e-6)


def test_5m_to_1h_keeps_every_hour_of_a_gap_free_file() -> None:
    bars = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")

    hours = resample(bars, M5, H1)

    assert len(hours) == len(bars) // 12 == 7_320
    assert np.all(np.diff(hours.open_time) == H1)


def test_incomplete_first_and_last_buckets_are_dropped() -> None:
    minutes = load_candles("binance_usdm_BTCUSDT_1m.csv.gz")  # 2025-05-04 15:33 .. 06-24 10:31

    fives = resample(minutes, M1, M5)
    hours = resample(minutes, M1, H1)

    assert minutes.open_time[0] == 1_746_372_780_000  # 15:33, inside the 15:30 bucket
    assert fives.open_time[0] == 1_746_372_900_000  # 15:35
    assert fives.open_time[-1] == minutes.open_time[-1] - M1 - M5  # 10:25; 10:30 is partial
    assert hours.open_time[0] == 1_746_374_400_000  # 16:00
    assert hours.open_time[-1] == 1_750_755_600_000  # 2025-06-24 09:00; 10:00 is partial


def test_bucket_with_a_missing_bar_inside_is_dropped() -> None:
    bars = load_candles("binance_usdm_BTCUSDT_5m.csv.gz").slice(0, 288)  # 2024-12-31
    gappy = _drop(bars, [30])  # 02:30, inside the 02:00 bucket

    hours = resample(gappy, M5, H1)

    assert len(hours) == 23
    assert bars.open_time[24] not in set(hours.open_time.tolist())


def test_extra_columns_are_summed() -> None:
    spot = load_candles("binance_spot_BTCUSDT_5m.csv.gz").slice(0, 12)

    hour = resample(spot, M5, H1)

    assert set(hour.extra) == {"quote_volume", "trades", "taker_buy_base", "taker_buy_quote"}
    for name, column in spot.extra.items():
        assert hour.extra[name][0] == pytest.approx(column.sum(), rel=1e-12)


def test_target_not_a_multiple_of_source_is_a_config_error() -> None:
    bars = load_candles("binance_usdm_BTCUSDT_5m.csv.gz").slice(0, 10)

    with pytest.raises(ConfigError, match="420000"):
        resample(bars, M5, 7 * M1)


def test_empty_input_gives_empty_output() -> None:
    assert len(resample(Candles.empty(), M5, H1)) == 0


def test_resampling_88k_bars_takes_milliseconds() -> None:
    bars = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")
    resample(bars, M5, H1)  # warm-up

    start = time.perf_counter()
    resample(bars, M5, 4 * H1)
    elapsed = time.perf_counter() - start

    assert elapsed < 0.05


def test_completed_index_sees_an_hour_only_after_its_last_5m_bar_closes() -> None:
    bars = load_candles("binance_usdm_BTCUSDT_5m.csv.gz").slice(0, 36)  # 00:00 .. 02:55
    hours = resample(bars, M5, H1)

    idx = completed_index(hours.open_time, H1, bars.open_time, M5)

    assert idx[:11].tolist() == [-1] * 11  # 00:00..00:50 close before 01:00
    assert idx[11] == 0  # the 00:55 bar closes at 01:00, completing the 00:00 hour
    assert idx[23] == 1 and idx[22] == 0


@st.composite
def _real_windows(draw: st.DrawFn) -> tuple[Candles, int]:
    bars = load_candles("binance_usdm_ETHUSDT_5m.csv.gz")
    length = draw(st.integers(1, 1_500))
    start = draw(st.integers(0, len(bars) - length))
    window = bars.slice(start, start + length)
    holes = draw(st.lists(st.integers(0, length - 1), max_size=20, unique=True))
    per = draw(st.sampled_from([1, 2, 3, 6, 12, 48, 288]))
    return _drop(window, holes), per * M5


@settings(max_examples=80, deadline=None)
@given(_real_windows())
def test_resampled_bars_are_consistent_and_conserve_volume(case: tuple[Candles, int]) -> None:
    bars, target = case

    out = resample(bars, M5, target)

    assert np.all(out.high >= np.maximum(out.open, out.close))
    assert np.all(out.low <= np.minimum(out.open, out.close))
    assert np.all(out.open_time % target == 0)
    assert np.all(np.diff(out.open_time) > 0)
    in_complete = np.isin(bars.open_time // target * target, out.open_time)
    assert in_complete.sum() == len(out) * (target // M5)
    assert out.volume.sum() == pytest.approx(bars.volume[in_complete].sum(), rel=1e-9, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(_real_windows())
def test_completed_index_never_looks_ahead(case: tuple[Candles, int]) -> None:
    bars, target = case
    higher = resample(bars, M5, target).open_time

    idx = completed_index(higher, target, bars.open_time, M5)

    base_close = bars.open_time + M5
    seen = idx >= 0
    assert np.all(higher[idx[seen]] + target <= base_close[seen])
    following = idx + 1
    has_next = following < len(higher)
    assert np.all(higher[following[has_next]] + target > base_close[has_next])
    assert np.all(np.diff(idx) >= 0)
