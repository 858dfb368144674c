"""Signal assembly (issue 6, component 8): the timeframe coordinator's direction and confidence,
gated by the market regime and the adaptive thresholds, sized by the regime and the volume
profile. Every verdict comes with its reasons: each component's inputs and what it decided.

The rules, in order (each component can be off; then it neither gates nor sizes):

1. **Timeframes** (:mod:`domain.coordinator`): the direction of the weighted vote with at least
   3 of 4 timeframes aligned, and its confidence (0 below: no signal).
2. **Regime** (:mod:`domain.regime`): its parameters; UNCERTAIN takes no new entries, VOLATILE
   halves the size and raises the thresholds by 1.3; the stop distance in ATRs.
3. **Thresholds** (:mod:`domain.thresholds`): the 1h ADX (points) and the 5m RVOL (ratio) must
   reach the adaptive thresholds (× the regime's factor, clamped to their bounds); an
   undefined ADX or RVOL (warm-up) does not.
4. **Volume profile** (:mod:`domain.volume_profile`): half the size in a low-volume area;
   whether the price is at a key level (POC, VAH, VAL within 0.5 %) is reported.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from domain.coordinator import TimeframeAnalysis
from domain.model import Direction, Reason, Signal
from domain.regime import NEUTRAL_PARAMETERS, Regime, RegimeConfig, RegimeParameters, parameters_for
from domain.thresholds import ThresholdConfig, Thresholds, initial_thresholds, thresholds_for
from domain.volume_profile import VolumeProfile, low_volume_size_factor

STRATEGY = "adaptive"


@dataclass(frozen=True, slots=True)
class PipelineInputs:
    """What the components said about ``symbol`` at the bar close ``time`` (ms UTC).

    ``price`` is that bar's close (quote currency); ``timeframes`` the coordinator's analysis;
    ``thresholds`` the adaptive thresholds in effect (None: the feature is off, the base ones
    apply); ``regime`` the confirmed regime (None: off); ``adx`` the 1h ADX (points) and
    ``rvol`` the 5m relative volume (ratio), NaN while undefined; ``profile`` the volume
    profile in effect (None: off or not available yet).
    """

    symbol: str
    time: int
    price: float
    timeframes: TimeframeAnalysis
    thresholds: Thresholds | None
    regime: Regime | None
    adx: float
    rvol: float
    profile: VolumeProfile | None


@dataclass(frozen=True, slots=True)
class Assembled:
    """The verdict: ``signal`` (its direction FLAT and confidence 0 when no entry is allowed,
    its reasons saying why either way), ``enter`` (an entry is allowed), ``size_factor`` (a
    fraction of the normal size: the regime's × the volume profile's) and ``stop_multiplier``
    (the stop distance in ATRs, the regime's), plus the thresholds applied (ADX points, RVOL
    ratio) and whether the price is at a key level."""

    signal: Signal
    enter: bool
    size_factor: float
    stop_multiplier: float
    adx_threshold: float
    rvol_threshold: float
    at_key_level: bool


def assemble(
    inputs: PipelineInputs,
    *,
    timeframe: str,
    thresholds: ThresholdConfig | None = None,
    regime: RegimeConfig | None = None,
) -> Assembled:
    """The signal on ``inputs`` (the bars of ``timeframe``), by the rules of the module
    docstring; ``thresholds`` and ``regime`` are the features' configs (their defaults when
    None)."""
    thresholds = thresholds or ThresholdConfig()
    regime_config = regime or RegimeConfig()
    tf = inputs.timeframes
    reasons = [_timeframes_reason(tf)]
    params = _regime_parameters(inputs.regime, regime_config)
    reasons.append(_regime_reason(inputs.regime, params))
    levels = inputs.thresholds or initial_thresholds(thresholds)
    adx_min, rvol_min = thresholds_for(
        levels.volatility_pct, thresholds, params.threshold_multiplier
    )
    cleared = inputs.adx >= adx_min and inputs.rvol >= rvol_min  # NaN never clears
    reasons.append(
        Reason(
            "thresholds",
            f"ADX {_shown(inputs.adx)} vs {adx_min:.1f}, RVOL {_shown(inputs.rvol)} vs "
            f"{rvol_min:.2f} (volatility percentile {levels.volatility_pct:.0f}, × "
            f"{levels.multiplier:g}): {'cleared' if cleared else 'not cleared'}",
            {
                "adx": inputs.adx,
                "adx_threshold": adx_min,
                "rvol": inputs.rvol,
                "rvol_threshold": rvol_min,
                "volatility_percentile": levels.volatility_pct,
            },
        )
    )
    profile = inputs.profile
    volume_factor = low_volume_size_factor(profile, inputs.price) if profile else 1.0
    key = profile is not None and profile.at_key_level(inputs.price)
    reasons.append(_profile_reason(profile, inputs.price, volume_factor, key))
    size = params.size_multiplier * volume_factor
    enter = (
        tf.direction is not Direction.FLAT
        and tf.confidence > 0
        and params.new_entries
        and cleared
        and size > 0
    )
    signal = Signal(
        symbol=inputs.symbol,
        timeframe=timeframe,
        time=inputs.time,
        direction=tf.direction if enter else Direction.FLAT,
        confidence=tf.confidence if enter else 0.0,
        reasons=tuple(reasons),
        strategy=STRATEGY,
    )
    return Assembled(signal, enter, size, params.stop_multiplier, adx_min, rvol_min, key)


def _regime_parameters(regime: Regime | None, config: RegimeConfig) -> RegimeParameters:
    return NEUTRAL_PARAMETERS if regime is None else parameters_for(regime, config)


def _timeframes_reason(tf: TimeframeAnalysis) -> Reason:
    trends = ", ".join(f"{s.timeframe} {s.trend.value.lower()}" for s in tf.timeframes)
    return Reason(
        "timeframes",
        f"{tf.aligned}/4 aligned on {tf.vote.value} ({trends}): direction {tf.direction.value}, "
        f"confidence {tf.confidence:.2f}",
        {"aligned": float(tf.aligned), "confidence": tf.confidence},
    )


def _regime_reason(regime: Regime | None, params: RegimeParameters) -> Reason:
    name = "off" if regime is None else regime.value
    entries = "entries allowed" if params.new_entries else "no new entries"
    return Reason(
        "regime",
        f"regime {name}: {entries}, size × {params.size_multiplier:g}, thresholds × "
        f"{params.threshold_multiplier:g}, stop {params.stop_multiplier:g} ATR",
        {"size_multiplier": params.size_multiplier,
         "threshold_multiplier": params.threshold_multiplier,
         "stop_multiplier": params.stop_multiplier},
    )  # fmt: skip


def _profile_reason(
    profile: VolumeProfile | None, price: float, factor: float, key: bool
) -> Reason:
    if profile is None:
        return Reason("volume_profile", "no volume profile (off or under a day of bars)", {})
    area = "low-volume area: size × 0.5" if factor < 1 else "normal volume"
    level = "at a key level" if key else "away from key levels"
    return Reason(
        "volume_profile",
        f"price {price:.6g}, POC {profile.poc:.6g}, VAL {profile.val:.6g}, VAH {profile.vah:.6g}:"
        f" {area}, {level}",
        {"poc": profile.poc, "val": profile.val, "vah": profile.vah, "size_factor": factor},
    )


def _shown(value: float) -> str:
    return "undefined" if math.isnan(value) else f"{value:.2f}"
