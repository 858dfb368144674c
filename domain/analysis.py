"""The adaptive pipeline's snapshot of one symbol at one bar close (issue 6, "Surfaces": what
``GET /api/v1/analysis/{symbol}`` and ``lootcapital analyze`` show).

Every component runs its batch form over the bars closed by then (none after: the snapshot at
``at`` is the same whatever came later), and the signal is assembled from them
(:func:`domain.signal_assembly.assemble`). Pure: no I/O, no clock; times int ms UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from domain.allocation import AllocationConfig, allocate
from domain.candles import Candles
from domain.coordinator import CoordinatorConfig, coordinator_series
from domain.correlation import CorrelationMatrix
from domain.errors import DataError
from domain.model import Reason
from domain.regime import REGIMES, RegimeConfig, regime_series
from domain.risk import relative_volume
from domain.signal_assembly import Assembled, PipelineInputs, assemble
from domain.thresholds import NO_TIME, ThresholdConfig, Thresholds, threshold_series
from domain.timeframes import timeframe_ms
from domain.volume_profile import DEFAULT_PARAMS, ProfileParams, profile_at

RVOL_PERIOD = 20
"""Bars in the relative volume's mean (the entry bar's RVOL against the 20 before it)."""


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """The components' settings; ``volume_profile`` and ``timeframes`` say whether those two
    are on (the thresholds and the regime carry their own ``enabled``)."""

    thresholds: ThresholdConfig = field(default_factory=ThresholdConfig)
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    coordinator: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    profile: ProfileParams = DEFAULT_PARAMS
    allocation: AllocationConfig = field(default_factory=AllocationConfig)
    volume_profile: bool = True


def snapshot(
    candles: Candles,
    symbol: str,
    *,
    timeframe: str = "5m",
    at: int | None = None,
    config: PipelineConfig | None = None,
) -> dict[str, Any]:
    """The pipeline at the last bar of ``candles`` (bars of ``timeframe``) closed by ``at``
    (ms UTC; None: the last bar), as JSON: ``time`` (that bar's close), ``price`` (its close),
    ``thresholds``, ``regime``, ``timeframes``, ``volume_profile``, ``allocation`` and
    ``signal`` with its ``reasons`` (issue 6's keys; NaN shown as null).

    Raises
    ------
    DataError
        When no bar of ``candles`` has closed by ``at``.
    ConfigError
        When ``timeframe`` does not divide 1 h.
    """
    config = config or PipelineConfig()
    tf_ms = timeframe_ms(timeframe)
    if at is not None:
        candles = candles.between(None, at - tf_ms + 1)
    if not len(candles):
        when = "" if at is None else f" closed by {_iso(at)}"
        raise DataError(f"no {timeframe} bar of {symbol}{when}")
    t = int(candles.open_time[-1]) + tf_ms
    price = float(candles.close[-1])
    levels = threshold_series(candles, config.thresholds, source_ms=tf_ms).at(np.array([t]))
    thresholds = Thresholds(
        None if int(levels.time[0]) == NO_TIME else int(levels.time[0]),
        float(levels.volatility_pct[0]), float(levels.multiplier[0]), float(levels.atr[0]),
        float(levels.adx[0]), float(levels.rvol[0]),
    )  # fmt: skip
    regimes = regime_series(candles, config.regime, source_ms=tf_ms)
    state = regimes.at(np.array([t]))
    hour = int(np.searchsorted(regimes.inputs.time, t, "right")) - 1
    adx = float(regimes.inputs.adx[hour]) if hour >= 0 else math.nan
    analysis = coordinator_series(candles, config.coordinator, source_ms=tf_ms).analysis(-1)
    profile = profile_at(candles, t, config.profile) if config.volume_profile else None
    current = REGIMES[int(state.current[0])]
    assembled = assemble(
        PipelineInputs(
            symbol=symbol,
            time=t,
            price=price,
            timeframes=analysis,
            thresholds=thresholds if config.thresholds.enabled else None,
            regime=current if config.regime.enabled else None,
            adx=adx,
            rvol=float(relative_volume(candles.volume, RVOL_PERIOD)[-1]),
            profile=profile,
        ),
        timeframe=timeframe,
        thresholds=config.thresholds,
        regime=config.regime,
    )
    since = int(state.since[0])
    return {
        "symbol": symbol,
        "time": t,
        "price": price,
        "thresholds": {
            "volatility_percentile": thresholds.volatility_pct,
            "multiplier": thresholds.multiplier,
            "adx": _number(assembled.adx_threshold),
            "rvol": _number(assembled.rvol_threshold),
        },
        "regime": {
            "current": current.value,
            "candidate": REGIMES[int(state.candidate[0])].value,
            "since": None if since == NO_TIME else since,
            "enabled": config.regime.enabled,
        },
        "timeframes": analysis.to_json(),
        "volume_profile": _profile_json(profile, assembled),
        "allocation": _allocation_json(symbol, assembled, config.allocation),
        "signal": _signal_json(assembled),
    }


def _profile_json(profile: Any, assembled: Assembled) -> dict[str, Any] | None:
    if profile is None:
        return None
    return profile.to_json() | {"at_key_level": assembled.at_key_level}


def _allocation_json(symbol: str, assembled: Assembled, config: AllocationConfig) -> dict[str, Any]:
    """The fraction of equity the portfolio manager gives this signal alone (other symbols
    and their correlations are the strategy's, at its decisions)."""
    confidence = assembled.signal.confidence if assembled.enter else 0.0
    result = allocate({symbol: confidence}, CorrelationMatrix.unknown([symbol]), config)
    reason = result.reasons.get(symbol)
    return {
        "fraction": float(result.fractions.get(symbol, 0)),
        "size_factor": assembled.size_factor,
        "reason": None if reason is None else reason.message,
    }


def _signal_json(assembled: Assembled) -> dict[str, Any]:
    signal = assembled.signal
    return {
        "direction": signal.direction.value,
        "confidence": signal.confidence,
        "enter": assembled.enter,
        "stop_multiplier": assembled.stop_multiplier,
        "reasons": [_reason_json(r) for r in signal.reasons],
    }


def _reason_json(reason: Reason) -> dict[str, Any]:
    values = {k: _number(v) for k, v in reason.values.items()}
    return {"component": reason.component, "message": reason.message, "values": values}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value
