"""Timeframe coordinator (domain/coordinator.py, issue 6 components 2 and 3): Hypothesis
properties 5-7 against the issue's rules written plainly, the per-timeframe indicators against
TA-Lib on pandas-resampled bars, the warm-up, a stale timeframe after a gap, the weights config,
and on the real 60-day samples the batch form equal to the incremental one at every bar,
causality and the distribution of aligned counts."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.candles import Candles
from domain.coordinator import (
    DIRECTIONS,
    NAMES,
    STATUSES,
    TIMEFRAMES,
    CoordinatorConfig,
    CoordinatorSeries,
    TimeframeAnalysis,
    TimeframeCoordinator,
    TimeframeStatus,
    Trend,
    VolumeTrend,
    coordinator_series,
    vote,
    vote_arrays,
)
from domain.errors import ConfigError
from domain.features import iter_bars
from domain.model import Direction
from domain.thresholds import H1, M5
from tests.fixtures.data import load_sample_candles

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
DEFAULT = CoordinatorConfig().weights
ARRAYS = (
    "direction",
    "vote",
    "aligned",
    "confidence",
    "status",
    "bar_time",
    "trend",
    "volume_trend",
    "momentum",
    "volatility",
    "volume_ratio",
)
STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
DIRECTION_CODE = {Direction.LONG: 1, Direction.SHORT: -1, Direction.FLAT: 0}
TREND_CODE = {Trend.BULLISH: 1, Trend.BEARISH: -1, Trend.NEUTRAL: 0}
VOLUME_CODE = {VolumeTrend.INCREASING: 1, VolumeTrend.DECREASING: -1, VolumeTrend.STABLE: 0}


def stepped(candles: Candles) -> list[TimeframeAnalysis]:
    coordinator = TimeframeCoordinator()
    return [coordinator.update(bar) for bar in iter_bars(candles)]


def as_series(results: list[TimeframeAnalysis]) -> dict[str, np.ndarray]:
    """The incremental results in the batch form's layout."""
    frames = [[r[name] for name in NAMES] for r in results]

    def per_frame(get) -> np.ndarray:
        return np.array([[get(s) for s in row] for row in frames])

    return {
        "direction": np.array([DIRECTION_CODE[r.direction] for r in results]),
        "vote": np.array([DIRECTION_CODE[r.vote] for r in results]),
        "aligned": np.array([r.aligned for r in results]),
        "confidence": np.array([r.confidence for r in results]),
        "status": per_frame(lambda s: STATUS_CODE[s.status]),
        "bar_time": per_frame(lambda s: -1 if s.bar_time is None else s.bar_time),
        "trend": per_frame(lambda s: TREND_CODE[s.trend]),
        "volume_trend": per_frame(lambda s: VOLUME_CODE[s.volume_trend]),
        "momentum": per_frame(lambda s: s.momentum),
        "volatility": per_frame(lambda s: s.volatility),
        "volume_ratio": per_frame(lambda s: s.volume_ratio),
    }


def without(candles: Candles, start: int, length: int) -> Candles:
    """``candles`` less the bars opening in [start, start + length) (ms UTC)."""
    keep = (candles.open_time < start) | (candles.open_time >= start + length)
    columns = ("open_time", "open", "high", "low", "close", "volume")
    return Candles(*(np.asarray(getattr(candles, c))[keep] for c in columns))


def assert_same(series: CoordinatorSeries, arrays: dict[str, np.ndarray], stop: int) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(series, name)[:stop], arrays[name][:stop], name)


# -- random data ------------------------------------------------------------------------------
def random_walk(open_time: np.ndarray, seed: int, zero_volume: float) -> Candles:
    """Positive OHLCV bars at ``open_time`` (ms UTC), a log-normal walk from ``seed``."""
    rng = np.random.default_rng(seed)
    n = len(open_time)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    open_ = np.r_[100.0, close[:-1]]
    span = rng.uniform(0.0, 0.003, n)
    volume = rng.exponential(10.0, n) * (rng.uniform(size=n) >= zero_volume)
    return Candles(
        open_time,
        open_,
        np.maximum(open_, close) * (1 + span),
        np.minimum(open_, close) * (1 - span),
        close,
        volume,
    )


@st.composite
def gappy_histories(draw: st.DrawFn) -> Candles:
    """5m bars in runs of 1-150 separated by gaps of 1-150 bars, starting anywhere in a 4h
    bucket, so that every timeframe is seen missing, stale and fresh."""
    start = (draw(st.integers(0, 10_000)) * 48 + draw(st.integers(0, 47))) * M5
    slots, at = [], 0
    for _ in range(draw(st.integers(1, 5))):
        run = draw(st.integers(1, 150))
        slots.extend(range(at, at + run))
        at += run + draw(st.integers(1, 150))
    open_time = start + M5 * np.array(slots, dtype=np.int64)
    return random_walk(open_time, draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from([0, 0.5])))


def expected_frames(open_time: np.ndarray) -> list[list[tuple[TimeframeStatus, int | None]]]:
    """Per bar, per timeframe (status, open of the last complete bucket) at the bar's close
    ``t``, from the rules: a bucket is complete when all its 5m bars exist, seen once its last
    one has closed by ``t``; stale when it closed more than 2 periods before ``t``."""
    present = set(open_time.tolist())
    complete = []
    for _, period in TIMEFRAMES:
        buckets = sorted({x - x % period for x in present})
        complete.append(
            [b for b in buckets if all(b + k * M5 in present for k in range(period // M5))]
        )
    rows = []
    for t in (open_time + M5).tolist():
        row = []
        for (_, period), starts in zip(TIMEFRAMES, complete, strict=True):
            j = bisect_right([b + period for b in starts], t)
            if j == 0:
                row.append((TimeframeStatus.MISSING, None))
            elif t - (starts[j - 1] + period) > 2 * period:
                row.append((TimeframeStatus.STALE, starts[j - 1]))
            else:
                row.append((TimeframeStatus.OK, starts[j - 1]))
        rows.append(row)
    return rows


@settings(max_examples=100, deadline=None)
@given(gappy_histories())
def test_every_result_has_all_four_timeframes_with_missing_and_stale_ones_flagged(candles):
    # Property 5: all four timeframes are analysed at every bar; a missing or stale one is
    # flagged and never counted as aligned.
    results = stepped(candles)
    series = coordinator_series(candles)

    for result, expected in zip(results, expected_frames(candles.open_time), strict=True):
        assert tuple(s.timeframe for s in result.timeframes) == NAMES
        assert [(s.status, s.bar_time) for s in result.timeframes] == expected
        assert result.aligned <= sum(s.counted for s in result.timeframes)
    assert_same(series, as_series(results), len(candles))


# -- the vote ---------------------------------------------------------------------------------
@st.composite
def weight_sets(draw: st.DrawFn) -> tuple[float, ...]:
    """The default weights, or four positive floats normalised to sum to 1."""
    if draw(st.booleans()):
        return DEFAULT
    raw = draw(st.lists(st.floats(0.01, 1.0), min_size=4, max_size=4))
    return tuple(w / math.fsum(raw) for w in raw)


frames = st.lists(
    st.tuples(st.sampled_from([1, -1, 0]), st.sampled_from(list(TimeframeStatus))),
    min_size=4,
    max_size=4,
)


def by_the_rules(frame: list[tuple[int, TimeframeStatus]], weights) -> tuple[Direction, int, float]:
    """Issue 6's rules, plainly: weighted vote of the OK timeframes (a tie within 1e-9 is no
    direction), aligned = OK timeframes on the vote's side, confidence 1.0 / 0.7 / 0 by
    aligned count times the weight share of the OK timeframes."""
    ok = [
        (trend, w)
        for (trend, status), w in zip(frame, weights, strict=True)
        if status is TimeframeStatus.OK
    ]
    bull = math.fsum(w for trend, w in ok if trend == 1)
    bear = math.fsum(w for trend, w in ok if trend == -1)
    side = 0 if math.isclose(bull, bear, rel_tol=0, abs_tol=1e-9) else (1 if bull > bear else -1)
    aligned = sum(1 for trend, _ in ok if side and trend == side)
    base = {4: 1.0, 3: 0.7}.get(aligned, 0.0)
    return DIRECTIONS[side], aligned, base * math.fsum(w for _, w in ok) / math.fsum(weights)


def both_forms(rows, weights) -> list[tuple[Direction, Direction, int, float]]:
    """(direction, vote, aligned, confidence) per row from :func:`vote`, after checking that
    :func:`vote_arrays` gives exactly the same."""
    trends = [[t for t, _ in row] for row in rows]
    counted = [[s is TimeframeStatus.OK for _, s in row] for row in rows]
    scalar = [vote(t, c, weights) for t, c in zip(trends, counted, strict=True)]
    arrays = vote_arrays(np.array(trends, np.int8), np.array(counted), weights)
    for name, column in zip(arrays._fields, arrays, strict=True):
        np.testing.assert_array_equal(column, [getattr(v, name) for v in scalar])
    return [(DIRECTIONS[v.direction], DIRECTIONS[v.vote], v.aligned, v.confidence) for v in scalar]


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, min_size=1, max_size=20), weight_sets())
def test_confidence_is_the_aligned_count_rule_times_the_weight_share(rows, weights):
    # Property 6
    results = both_forms(rows, weights)

    for row, (_, side, aligned, confidence) in zip(rows, results, strict=True):
        rule_side, rule_aligned, rule_confidence = by_the_rules(row, weights)
        assert (side, aligned) == (rule_side, rule_aligned)
        assert confidence == pytest.approx(rule_confidence, rel=1e-12, abs=1e-15)
        if all(s is TimeframeStatus.OK for _, s in row):  # the spec's literal values
            assert confidence == {4: 1.0, 3: 0.7}.get(aligned, 0.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, min_size=1, max_size=20), weight_sets())
def test_fewer_than_three_aligned_gives_no_signal(rows, weights):
    # Property 7
    results = both_forms(rows, weights)

    for direction, side, aligned, confidence in results:
        if aligned < 3:
            assert confidence == 0.0 and direction is Direction.FLAT
        else:
            assert confidence > 0.0 and direction is side is not Direction.FLAT


def test_a_missing_timeframe_is_not_aligned_and_scales_the_confidence_by_the_share() -> None:
    four_hours_stale = vote([1, 1, 1, 1], [True, True, True, False], DEFAULT)
    five_minutes_missing = vote([0, -1, -1, -1], [False, True, True, True], DEFAULT)

    assert four_hours_stale == (1, 1, 3, pytest.approx(0.7 * 0.6))
    assert five_minutes_missing == (-1, -1, 3, pytest.approx(0.7 * 0.9))


def test_a_tie_of_weights_is_no_direction() -> None:
    tie = vote([-1, 0, -1, 1], [True] * 4, DEFAULT)  # 0.1 + 0.3 against 0.4

    assert tie == (0, 0, 0, 0.0)


def test_all_four_aligned_is_full_confidence_and_three_is_07() -> None:
    assert vote([-1, -1, -1, -1], [True] * 4, DEFAULT) == (-1, -1, 4, 1.0)
    assert vote([0, 1, 1, 1], [True] * 4, DEFAULT) == (1, 1, 3, 0.7)
    assert vote([-1, 1, 1, 1], [True] * 4, DEFAULT) == (1, 1, 3, 0.7)


# -- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"weight_4h": 0.0, "weight_1h": 0.7}, "weight_4h"),
        ({"weight_1h": -0.3}, "weight_1h"),
        ({"weight_5m": math.nan}, "weight_5m"),
        ({"weight_15m": math.inf}, "weight_15m"),
        ({"weight_5m": "0.1"}, "weight_5m"),
        ({"weight_5m": True}, "weight_5m"),
        ({"weight_4h": 0.5}, "weights"),
        ({"weight_5m": 0.05}, "weights"),
    ],
)
def test_invalid_weights_are_refused_naming_the_field(kwargs, field) -> None:
    with pytest.raises(ConfigError) as error:
        CoordinatorConfig(**kwargs)

    assert error.value.field == field


def test_custom_weights_that_sum_to_one_are_used() -> None:
    config = CoordinatorConfig(weight_5m=0.25, weight_15m=0.25, weight_1h=0.25, weight_4h=0.25)

    assert config.weights == (0.25,) * 4
    assert vote([1, 1, 0, 0], [True] * 4, config.weights) == (0, 1, 2, 0.0)
    assert vote([1, 1, -1, -1], [True] * 4, config.weights) == (0, 0, 0, 0.0)  # a tie


def test_a_base_timeframe_that_does_not_divide_the_periods_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        TimeframeCoordinator(source_ms=7 * 60_000)

    assert error.value.field == "timeframe"


# -- per-timeframe indicators -----------------------------------------------------------------
@pytest.mark.parametrize(("index", "rule"), [(1, "15min"), (2, "1h"), (3, "4h")])
def test_each_timeframe_follows_the_issue_rules_on_its_own_completed_bars(index, rule) -> None:
    candles = load_sample_candles("ETHUSDT")  # gap-free: every bucket is complete
    columns = {c: getattr(candles, c) for c in ("open", "high", "low", "close", "volume")}
    frame = pd.DataFrame(columns, index=pd.to_datetime(candles.open_time, unit="ms"))
    bars = frame.resample(rule, origin="epoch").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    close, volume = bars["close"].to_numpy(), bars["volume"].to_numpy()
    fast, slow = talib.EMA(close, 20), talib.EMA(close, 50)
    ratio = talib.SMA(volume, 5) / talib.SMA(volume, 20)
    period = TIMEFRAMES[index][1]
    ends = np.flatnonzero((candles.open_time + M5) % period == 0)  # rows where a bucket closes

    series = coordinator_series(candles)

    trend = np.select([(fast > slow) & (close > fast), (fast < slow) & (close < fast)], [1, -1], 0)
    np.testing.assert_array_equal(series.trend[ends, index], trend)
    np.testing.assert_allclose(
        series.momentum[ends, index], talib.MACD(close, 12, 26, 9)[2], rtol=1e-9
    )
    np.testing.assert_allclose(
        series.volatility[ends, index],
        talib.ATR(bars["high"].to_numpy(), bars["low"].to_numpy(), close, 14) / close,
        rtol=1e-12,
    )
    np.testing.assert_allclose(series.volume_ratio[ends, index], ratio, rtol=1e-9)
    volume_trend = np.select([ratio > 1.1, ratio < 0.9], [1, -1], 0)
    np.testing.assert_array_equal(series.volume_trend[ends, index], volume_trend)
    # between two closes a timeframe shows the last completed bucket: no lookahead
    assert (series.bar_time[ends, index] == candles.open_time[ends] + M5 - period).all()


def test_during_the_warm_up_indicators_are_undefined_and_trends_neutral() -> None:
    candles = load_sample_candles("BTCUSDT").slice(0, 60)  # starts at 00:00 UTC
    results = stepped(candles)
    five = [r["5m"] for r in results]

    for name, first in (("15m", 2), ("1h", 11), ("4h", 47)):  # the bar completing a bucket
        statuses = [r[name].status for r in results]
        assert statuses == [TimeframeStatus.MISSING] * first + [TimeframeStatus.OK] * (60 - first)
    assert all(s.trend is Trend.NEUTRAL for s in five[:49])
    assert all(
        s.volume_trend is VolumeTrend.STABLE and math.isnan(s.volume_ratio) for s in five[:19]
    )
    assert all(math.isnan(s.momentum) for s in five[:33]) and not math.isnan(five[33].momentum)
    assert all(math.isnan(s.volatility) for s in five[:14])
    assert all(r.confidence == 0.0 and r.direction is Direction.FLAT for r in results[:49])
    assert results[0].to_json()["1h"] == {
        "trend": "NEUTRAL",
        "momentum": None,
        "volatility": None,
        "volume_trend": "STABLE",
        "volume_ratio": None,
        "status": "MISSING",
        "bar_time": None,
    }


# -- gaps -------------------------------------------------------------------------------------
def test_timeframes_go_stale_after_three_missing_hours_and_recover_with_a_new_bucket() -> None:
    full = load_sample_candles("BTCUSDT")
    gap_start = int(full.open_time[0]) + 10 * 24 * H1 + H1  # 01:00 on day 11
    candles = without(full, gap_start, 3 * H1)
    after = int(np.searchsorted(candles.open_time, gap_start + 3 * H1))

    series = coordinator_series(candles)
    results = stepped(candles)

    def statuses(i: int) -> list[str]:
        return [STATUSES[c].value for c in series.status[i]]

    assert statuses(after - 1) == ["OK"] * 4
    assert statuses(after) == ["OK", "STALE", "STALE", "OK"]  # 04:05: 15m, 1h 3h05 old
    assert statuses(after + 2) == ["OK", "OK", "STALE", "OK"]  # 04:15: a new 15m bucket
    assert statuses(after + 11) == ["OK", "OK", "OK", "OK"]  # 05:00: a new hour
    assert (series.aligned[after : after + 2] <= 2).all()
    assert (series.confidence[after : after + 2] == 0.0).all()
    assert set(np.round(series.confidence[after + 2 : after + 11], 12)) <= {0.0, 0.49}
    assert_same(series, as_series(results), len(candles))


def test_a_twelve_hour_gap_makes_the_4h_timeframe_stale_until_a_bucket_completes() -> None:
    full = load_sample_candles("SOLUSDT")
    gap_start = int(full.open_time[0]) + 20 * 24 * H1 + 2 * H1  # 02:00 on day 21
    candles = without(full, gap_start, 12 * H1)
    after = int(np.searchsorted(candles.open_time, gap_start + 12 * H1))  # 14:00

    series = coordinator_series(candles)

    four = series.status[after : after + 96, 3]
    # 00:00-04:00 and 12:00-16:00 lack bars: the last complete bucket closed at 00:00, more
    # than 8 h before, until the 16:00-20:00 one completes with the bar closing at 20:00
    assert (four[:71] == STATUS_CODE[TimeframeStatus.STALE]).all()
    assert (four[71:] == STATUS_CODE[TimeframeStatus.OK]).all()
    assert (series.aligned[after : after + 71] <= 3).all()
    assert (series.confidence[after : after + 71] <= 0.7 * 0.6 + 1e-12).all()


def test_a_replayed_bar_is_refused_and_changes_nothing() -> None:
    candles = load_sample_candles("ETHUSDT").slice(0, 300)
    coordinator, bars = TimeframeCoordinator(), list(iter_bars(candles))
    for bar in bars[:200]:
        coordinator.update(bar)

    with pytest.raises(ValueError, match="after"):
        coordinator.update(bars[150])
    rest = [coordinator.update(bar).to_json() for bar in bars[200:]]

    series = coordinator_series(candles)
    assert rest == [series.analysis(i).to_json() for i in range(200, 300)]


def test_the_state_is_empty_and_a_nonempty_one_is_refused() -> None:
    coordinator = TimeframeCoordinator()
    coordinator.restore(coordinator.state())

    assert coordinator.state() == {}
    with pytest.raises(ValueError, match="no state"):
        coordinator.restore({"version": 1})


def test_an_analysis_with_a_direction_below_three_aligned_is_refused() -> None:
    good = coordinator_series(load_sample_candles("BTCUSDT").slice(0, 10)).analysis(9)

    with pytest.raises(ValueError, match="flat"):
        TimeframeAnalysis(good.time, Direction.LONG, Direction.LONG, 2, 0.0, good.timeframes)
    with pytest.raises(ValueError, match="in order"):
        TimeframeAnalysis(good.time, Direction.FLAT, Direction.FLAT, 0, 0.0, good.timeframes[:3])


# -- real data --------------------------------------------------------------------------------
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_batch_equals_incremental_at_every_bar(symbol) -> None:
    candles = load_sample_candles(symbol)

    series = coordinator_series(candles)
    results = stepped(candles)

    assert_same(series, as_series(results), len(candles))
    assert [r.to_json() for r in results] == [
        series.analysis(i).to_json() for i in range(len(series))
    ]


@pytest.mark.parametrize("cut", [400, 9_005, 14_000])
def test_the_result_at_a_time_does_not_change_when_the_future_is_cut(cut) -> None:
    candles = load_sample_candles("ETHUSDT")

    full, prefix = coordinator_series(candles), coordinator_series(candles.slice(0, cut))

    assert len(prefix) == cut
    assert_same(full, {name: getattr(prefix, name) for name in ARRAYS}, cut)


def test_on_the_gap_free_samples_signals_follow_the_rules_and_all_counts_occur() -> None:
    counts, levels = Counter(), Counter()
    for symbol in SYMBOLS:
        candles = load_sample_candles(symbol)
        series = coordinator_series(candles)
        warm = 50 * 48  # EMA(50) on 4h bars
        low = series.aligned < 3
        assert (series.confidence[low] == 0.0).all() and (series.direction[low] == 0).all()
        assert (series.status[warm:] == 0).all()
        counts.update(series.aligned[warm:].tolist())
        levels.update(series.confidence[warm:].tolist())

    assert set(counts) == {0, 1, 2, 3, 4}
    assert set(levels) == {0.0, 0.7, 1.0}  # all four present: no share below 1
