"""The circuit breakers' settings (one frozen dataclass per breaker, each with its ``enabled``
flag, checked on construction: :class:`~domain.errors.ConfigError` names the bad field) and the
events they emit besides state changes (:class:`RiskAlert`). The rules themselves are applied by
:class:`domain.risk.breakers.CircuitBreakers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from domain.errors import ConfigError
from domain.risk.states import (
    StateChange,
    TradingState,
)


class Breaker(StrEnum):
    """What placed a hold or refused an order (``manual``: :meth:`CircuitBreakers.halt`)."""

    DAILY_LOSS = "daily_loss"
    CONSECUTIVE_LOSSES = "consecutive_losses"
    VOLATILITY_SPIKE = "volatility_spike"
    UNUSUAL_VOLUME = "unusual_volume"
    MAX_OPEN_POSITIONS = "max_open_positions"
    MAX_LEVERAGE = "max_leverage"
    MANUAL = "manual"


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=name)


@dataclass(frozen=True, slots=True)
class DailyLossLimit:
    """Trip when equity falls ``limit`` (a fraction, 0.05 = 5 %) below the day's starting
    equity; ``state`` until the next 00:00 UTC; ``close_all`` also asks to close everything.

    Raises
    ------
    ConfigError
        When ``limit`` is not a Decimal in (0, 1) or ``state`` is active.
    """

    enabled: bool = True
    limit: Decimal = Decimal("0.05")
    close_all: bool = False
    state: TradingState = TradingState.REDUCING

    def __post_init__(self) -> None:
        ok = isinstance(self.limit, Decimal) and 0 < self.limit < 1
        _check(ok, "limit", f"daily loss limit must be a Decimal in (0, 1), was {self.limit!r}")
        _check(self.state is not TradingState.ACTIVE, "state", "a breaker state cannot be active")


@dataclass(frozen=True, slots=True)
class ConsecutiveLosses:
    """Trip after ``count`` closed trades in a row with ``pnl < 0``; ``state`` until
    :meth:`CircuitBreakers.resume`, or for ``cooldown_ms`` (None: only by hand).

    Raises
    ------
    ConfigError
        When ``count < 1``, ``cooldown_ms`` is not > 0 or ``state`` is active.
    """

    enabled: bool = True
    count: int = 2
    cooldown_ms: int | None = None
    state: TradingState = TradingState.HALTED

    def __post_init__(self) -> None:
        _check(self.count >= 1, "count", f"count must be >= 1, was {self.count}")
        ok = self.cooldown_ms is None or self.cooldown_ms > 0
        _check(ok, "cooldown_ms", f"cooldown_ms must be > 0 or None, was {self.cooldown_ms}")
        _check(self.state is not TradingState.ACTIVE, "state", "a breaker state cannot be active")


@dataclass(frozen=True, slots=True)
class VolatilitySpike:
    """Per symbol: trip when the ATR percentile (percent, 0–100) is above ``percentile_pct``;
    ``state`` until it is below ``release_pct`` (None: ``percentile_pct``).

    Raises
    ------
    ConfigError
        When a level is outside [0, 100], ``release_pct > percentile_pct`` or ``state`` is
        active.
    """

    enabled: bool = True
    percentile_pct: float = 95.0
    release_pct: float | None = None
    state: TradingState = TradingState.REDUCING

    def __post_init__(self) -> None:
        p, r = self.percentile_pct, self.release_pct
        _check(0 <= p <= 100, "percentile_pct", f"percentile_pct must be in [0, 100], was {p}")
        ok = r is None or 0 <= r <= p
        _check(ok, "release_pct", f"release_pct must be in [0, percentile_pct {p}], was {r}")
        _check(self.state is not TradingState.ACTIVE, "state", "a breaker state cannot be active")

    @property
    def release(self) -> float:
        """The level the percentile must fall below to lift the hold."""
        return self.percentile_pct if self.release_pct is None else self.release_pct


@dataclass(frozen=True, slots=True)
class UnusualVolume:
    """Per symbol: a :class:`RiskAlert` when RVOL rises above ``rvol`` (once per episode: it
    alerts again only after RVOL has been back at or below ``rvol``).

    Raises
    ------
    ConfigError
        When ``rvol`` is not > 0.
    """

    enabled: bool = True
    rvol: float = 5.0

    def __post_init__(self) -> None:
        _check(self.rvol > 0, "rvol", f"rvol must be > 0, was {self.rvol}")


@dataclass(frozen=True, slots=True)
class EntryLimit:
    """A cap checked on every order that adds exposure: at most ``limit`` open positions, or a
    gross notional of at most ``limit`` × equity (leverage).

    Raises
    ------
    ConfigError
        When ``limit`` is not > 0.
    """

    enabled: bool = True
    limit: Decimal = Decimal(5)

    def __post_init__(self) -> None:
        ok = isinstance(self.limit, Decimal) and self.limit > 0
        _check(ok, "limit", f"limit must be a Decimal > 0, was {self.limit!r}")


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Every breaker's settings (each has its own ``enabled`` toggle)."""

    daily_loss: DailyLossLimit = field(default_factory=DailyLossLimit)
    consecutive_losses: ConsecutiveLosses = field(default_factory=ConsecutiveLosses)
    volatility_spike: VolatilitySpike = field(default_factory=VolatilitySpike)
    unusual_volume: UnusualVolume = field(default_factory=UnusualVolume)
    max_open_positions: EntryLimit = field(default_factory=lambda: EntryLimit(limit=Decimal(5)))
    max_leverage: EntryLimit = field(default_factory=lambda: EntryLimit(limit=Decimal(3)))

    def enabled(self, breaker: Breaker) -> bool:
        """Whether ``breaker`` is on (``manual`` always is)."""
        toggles = {
            Breaker.DAILY_LOSS: self.daily_loss.enabled,
            Breaker.CONSECUTIVE_LOSSES: self.consecutive_losses.enabled,
            Breaker.VOLATILITY_SPIKE: self.volatility_spike.enabled,
            Breaker.UNUSUAL_VOLUME: self.unusual_volume.enabled,
            Breaker.MAX_OPEN_POSITIONS: self.max_open_positions.enabled,
            Breaker.MAX_LEVERAGE: self.max_leverage.enabled,
        }
        return toggles.get(breaker, True)


class AlertKind(StrEnum):
    """What a :class:`RiskAlert` says: ``unusual_volume``, or ``close_all`` (close every
    position now: a daily-loss trip with ``close_all`` set)."""

    UNUSUAL_VOLUME = "unusual_volume"
    CLOSE_ALL = "close_all"


@dataclass(frozen=True, slots=True)
class RiskAlert:
    """A risk fact to tell the user without a state change: ``kind`` on ``scope`` (the account
    or a symbol) at ``time`` (ms UTC), with ``message`` and the number behind it (``value``:
    the RVOL, or the day's loss as a fraction)."""

    scope: str
    kind: AlertKind
    message: str
    time: int
    value: float


RiskEvent = StateChange | RiskAlert
