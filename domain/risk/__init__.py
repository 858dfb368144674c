"""Risk control, pure: position sizing with caps (:mod:`.sizing`), trading states and the order
check they imply (:mod:`.states`), and circuit breakers that move those states
(:mod:`.breakers`; their settings in :mod:`.breaker_rules`, their per-bar inputs in
:mod:`.inputs`).

The engine's risk gate sits between a strategy's order intents and the execution client: these
modules decide, the service layer wires them in.
"""

from __future__ import annotations

from domain.risk.breaker_rules import (
    AlertKind,
    Breaker,
    BreakerConfig,
    ConsecutiveLosses,
    DailyLossLimit,
    EntryLimit,
    RiskAlert,
    RiskEvent,
    UnusualVolume,
    VolatilitySpike,
)
from domain.risk.breakers import CircuitBreakers, Hold
from domain.risk.inputs import atr_percentile, relative_volume
from domain.risk.sizing import RiskLimits, Sizing, SizingCap, drawdown_from_peak, size_position
from domain.risk.states import (
    ACCOUNT,
    StateChange,
    TradingState,
    admits,
    most_restrictive,
    position_after,
    reduces,
)

__all__ = [
    "ACCOUNT", "AlertKind", "Breaker", "BreakerConfig", "CircuitBreakers", "ConsecutiveLosses",
    "DailyLossLimit", "EntryLimit", "Hold", "RiskAlert", "RiskEvent", "RiskLimits", "Sizing",
    "SizingCap", "StateChange", "TradingState", "UnusualVolume", "VolatilitySpike", "admits",
    "atr_percentile", "drawdown_from_peak", "most_restrictive", "position_after", "reduces",
    "relative_volume", "size_position",
]  # fmt: skip
