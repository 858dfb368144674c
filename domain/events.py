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


@dataclass(frozen=True, slots=True)
class VenueDisconnected:
    """The connection to ``venue`` was lost at ``time`` (ms UTC); ``reason`` says how. Raised by
    a live venue adapter; the alert rules tell the user."""

    venue: str
    reason: str
    time: int


@dataclass(frozen=True, slots=True)
class FeedStale:
    """No bar of ``symbol`` has closed for ``silent_ms`` (ms) at ``time`` (ms UTC), more than a
    live feed allows; ``last_bar_time`` is the open time of the last bar received (None:
    none yet)."""

    symbol: str
    silent_ms: int
    time: int
    last_bar_time: int | None = None


Event = (
    CandleClosed
    | SignalGenerated
    | OrderUpdated
    | OrderFilled
    | PositionChanged
    | EquityUpdated
    | EngineStarted
    | EngineStopped
    | VenueDisconnected
    | FeedStale
)
