"""Signal assembly and the pipeline snapshot on real BTCUSDT 5m bars: an entry needs every gate
(3+ timeframes aligned, a regime that takes entries, ADX and RVOL over the adaptive thresholds,
some size left), the regime and the volume profile size it, every verdict says why, and the
snapshot at a time depends on no later bar."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.analysis import PipelineConfig, snapshot
from domain.coordinator import TimeframeAnalysis, coordinator_series
from domain.errors import DataError
from domain.model import Direction
from domain.regime import Regime, RegimeConfig
from domain.signal_assembly import PipelineInputs, assemble
from domain.thresholds import ThresholdConfig, Thresholds, thresholds_for
from domain.volume_profile import VolumeProfile, profile_at
from tests.fixtures.data import load_sample_candles

BTC = load_sample_candles("BTCUSDT")
M5 = 300_000
LEVELS = Thresholds(None, 50.0, 1.0, 100.0, 25.0, 1.5)


@lru_cache(maxsize=1)
def analyses() -> dict[str, TimeframeAnalysis]:
    """A real long, short and flat coordinator verdict (4, 3 and < 3 aligned)."""
    series = coordinator_series(BTC)
    pick = {
        "long4": (series.direction == 1) & (series.aligned == 4),
        "short3": (series.direction == -1) & (series.aligned == 3),
        "flat": series.aligned < 3,
    }
    return {k: series.analysis(int(np.flatnonzero(m)[-1])) for k, m in pick.items()}


@lru_cache(maxsize=1)
def profile() -> VolumeProfile:
    found = profile_at(BTC, int(BTC.open_time[-1]) + M5)
    assert found is not None
    return found


def inputs(**changes: object) -> PipelineInputs:
    base = PipelineInputs(
        symbol="BTCUSDT",
        time=analyses()["long4"].time,
        price=profile().poc,
        timeframes=analyses()["long4"],
        thresholds=LEVELS,
        regime=Regime.TRENDING_BULLISH,
        adx=35.0,
        rvol=2.0,
        profile=profile(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_an_entry_takes_the_coordinators_direction_and_confidence_when_every_gate_passes() -> None:
    result = assemble(inputs(), timeframe="5m")

    assert result.enter
    assert result.signal.direction is Direction.LONG and result.signal.confidence == 1.0
    assert result.stop_multiplier == 2.5  # trending
    assert [r.component for r in result.signal.reasons] == [
        "timeframes", "regime", "thresholds", "volume_profile",
    ]  # fmt: skip


def test_fewer_than_three_aligned_timeframes_give_no_signal() -> None:  # Property 7
    result = assemble(inputs(timeframes=analyses()["flat"]), timeframe="5m")

    assert not result.enter
    assert result.signal.direction is Direction.FLAT and result.signal.confidence == 0.0
    assert "aligned" in result.signal.reasons[0].message


def test_an_uncertain_regime_takes_no_entry_and_a_volatile_one_halves_the_size() -> None:
    uncertain = assemble(inputs(regime=Regime.UNCERTAIN), timeframe="5m")
    volatile = assemble(inputs(regime=Regime.VOLATILE, adx=60.0, rvol=3.0), timeframe="5m")

    assert not uncertain.enter and "no new entries" in uncertain.signal.reasons[1].message
    assert volatile.enter and volatile.size_factor == pytest.approx(0.5)  # Property 25
    assert volatile.adx_threshold == pytest.approx(25.0 * 1.3)


def test_adx_or_rvol_below_the_adaptive_thresholds_or_undefined_filters_the_entry() -> None:
    for changes in ({"adx": 24.9}, {"rvol": 1.49}, {"adx": math.nan}, {"rvol": math.nan}):
        result = assemble(inputs(**changes), timeframe="5m")

        assert not result.enter, changes
        assert "not cleared" in result.signal.reasons[2].message


def test_a_price_in_a_low_volume_area_halves_the_size() -> None:  # Property 10
    p = profile()
    low = next(
        p.anchor + (k + 0.5) * p.bin_width for k, v in enumerate(p.volumes) if v < p.median_volume
    )

    result = assemble(inputs(price=low), timeframe="5m")

    assert result.size_factor == pytest.approx(0.5)
    assert "low-volume area" in result.signal.reasons[3].message


@settings(max_examples=200, deadline=None)
@given(
    which=st.sampled_from(["long4", "short3", "flat"]),
    regime=st.sampled_from([*Regime, None]),
    adx=st.one_of(st.floats(0, 100), st.just(math.nan)),
    rvol=st.one_of(st.floats(0, 10), st.just(math.nan)),
    pct=st.floats(0, 100),
    with_profile=st.booleans(),
)
def test_an_entry_is_allowed_exactly_when_every_gate_passes(  # Properties 7, 25
    which: str, regime: Regime | None, adx: float, rvol: float, pct: float, with_profile: bool
) -> None:
    levels = replace(LEVELS, volatility_pct=pct)
    tf = analyses()[which]

    result = assemble(
        inputs(timeframes=tf, regime=regime, adx=adx, rvol=rvol, thresholds=levels,
               profile=profile() if with_profile else None),
        timeframe="5m",
    )  # fmt: skip

    factor = 1.3 if regime is Regime.VOLATILE else 1.0
    adx_min, rvol_min = thresholds_for(pct, ThresholdConfig(), factor)
    size = {Regime.VOLATILE: 0.5, Regime.UNCERTAIN: 0.0}.get(regime, 1.0)  # type: ignore[arg-type]
    expected = (
        tf.aligned >= 3 and regime is not Regime.UNCERTAIN and adx >= adx_min and rvol >= rvol_min
    )
    assert result.enter is expected
    assert result.size_factor == pytest.approx(size)  # the POC bin is never low volume
    assert (result.signal.direction is Direction.FLAT) is not expected
    assert 0.0 <= result.signal.confidence <= 1.0


def test_the_snapshot_has_every_key_the_issue_names() -> None:
    shot = snapshot(BTC, "BTCUSDT")

    assert set(shot["thresholds"]) == {"volatility_percentile", "multiplier", "adx", "rvol"}
    assert {"current", "candidate", "since"} <= set(shot["regime"])
    assert {"5m", "15m", "1h", "4h", "aligned", "confidence", "direction"} <= set(
        shot["timeframes"]
    )
    assert {"poc", "vah", "val", "bin_width", "total_volume", "at_key_level"} <= set(
        shot["volume_profile"]
    )
    assert "fraction" in shot["allocation"]
    assert shot["signal"]["reasons"] and shot["time"] == int(BTC.open_time[-1]) + M5


def test_the_snapshot_at_a_time_depends_on_no_later_bar() -> None:
    at = int(BTC.open_time[12_000]) + M5

    whole = snapshot(BTC, "BTCUSDT", at=at)
    known_then = snapshot(BTC.slice(0, 12_001), "BTCUSDT", at=at)

    assert whole == known_then and whole["time"] == at


def test_switched_off_features_neither_gate_nor_size() -> None:
    config = PipelineConfig(
        thresholds=ThresholdConfig(enabled=False),
        regime=RegimeConfig(enabled=False),
        volume_profile=False,
    )

    shot = snapshot(BTC, "BTCUSDT", config=config)

    assert shot["volume_profile"] is None and shot["regime"]["enabled"] is False
    assert shot["thresholds"]["adx"] == 25.0 and shot["thresholds"]["rvol"] == 1.5
    assert "regime off" in shot["signal"]["reasons"][1]["message"]


def test_a_snapshot_before_the_first_bar_is_refused_with_the_reason() -> None:
    with pytest.raises(DataError, match="no 5m bar of BTCUSDT closed by"):
        snapshot(BTC, "BTCUSDT", at=int(BTC.open_time[0]))
