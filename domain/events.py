"""Domain events: facts the engine publishes on the message bus after they are committed."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.candles import Candle
from domain.model import EquityPoint, Fill, Order, Position, Signal


@dataclass(frozen=True, slots=True)
class CandleClosed:
    """A bar of ``symbol``/``timeframe`` closed and was processed."""

    symbol: str
    timeframe: str
    candle: Candle


@dataclass(frozen=True, slots=True)
class SignalGenerated:
    """A strategy produced ``signal``."""

    signal: Signal


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    """``order`` was created or changed state."""

    order: Order


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """``fill`` executed (part of) an order."""

    fill: Fill


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """``position`` is the new net position after a fill (qty 0 when closed); ``mark`` the
    symbol's mark price then (quote currency; None before its first bar)."""

    position: Position
    mark: Decimal | None = None


@dataclass(frozen=True, slots=True)
class EquityUpdated:
    """Account value at a bar close."""

    point: EquityPoint


@dataclass(frozen=True, slots=True)
class EngineStarted:
    """The engine started (or resumed) at market ``time`` (ms UTC)."""

    time: int


@dataclass(frozen=True, slots=True)
class EngineStopped:
    """The engine stopped; ``reason`` says why (``"end of data"``, ``"stopped by user"``...)."""

    reason: str
    time: int


Event = (
    CandleClosed
    | SignalGenerated
    | OrderUpdated
    | OrderFilled
    | PositionChanged
    | EquityUpdated
    | EngineStarted
    | EngineStopped
)
