"""Trading model: instruments, orders, fills, positions, round-trip trades, equity, signals.

Money and quantities are ``Decimal`` (prices in quote currency, quantities in base asset, fees and
PnL in quote currency); times are int milliseconds UTC. Objects are frozen and validate themselves;
state changes produce new objects via :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

ZERO = Decimal(0)


class Side(StrEnum):
    """Order side."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        """The other side."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    """Order type: market (next open), limit (trades through price), stop (touches stop)."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class OrderStatus(StrEnum):
    """Order life cycle; ``filled``, ``canceled`` and ``rejected`` are final."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        """True when the order can no longer fill or be canceled."""
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED)


class Liquidity(StrEnum):
    """Whether a fill took (taker) or provided (maker) liquidity; decides the fee rate."""

    MAKER = "maker"
    TAKER = "taker"


class Direction(StrEnum):
    """Direction of a signal or a position."""

    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


def _positive(name: str, value: Decimal) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, was {value}")


@dataclass(frozen=True, slots=True)
class Instrument:
    """Trading rules of one symbol on one venue.

    ``tick_size`` is the price increment, ``step_size`` the quantity increment (base asset),
    ``min_notional`` the smallest order value in quote currency, ``max_qty`` the largest order qty.
    """

    symbol: str
    tick_size: Decimal = Decimal("0.00000001")
    step_size: Decimal = Decimal("0.00000001")
    min_notional: Decimal = ZERO
    max_qty: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("symbol must not be empty")
        _positive("tick_size", self.tick_size)
        _positive("step_size", self.step_size)

    def round_qty(self, qty: Decimal) -> Decimal:
        """``qty`` rounded down to the lot step (never buys more than asked)."""
        return (qty / self.step_size).to_integral_value(ROUND_FLOOR) * self.step_size

    def round_price(self, price: Decimal, *, up: bool) -> Decimal:
        """``price`` rounded to the tick, up (worse for a buyer) or down (worse for a seller)."""
        mode = ROUND_CEILING if up else ROUND_FLOOR
        return (price / self.tick_size).to_integral_value(mode) * self.tick_size

    def on_tick(self, price: Decimal) -> bool:
        """True when ``price`` is a whole number of ticks."""
        return (price % self.tick_size) == 0

    def on_step(self, qty: Decimal) -> bool:
        """True when ``qty`` is a whole number of lot steps."""
        return (qty % self.step_size) == 0


@dataclass(frozen=True, slots=True)
class Order:
    """An order and its state.

    ``price`` is required for limit orders, ``stop_price`` for stop orders; ``filled_qty`` and
    ``avg_fill_price`` track execution. ``created_time``/``updated_time`` are ms UTC.
    ``reduce_only`` orders may only shrink a position. ``tag`` says who placed it
    (strategy name or ``"api"``). ``stop_distance`` (quote currency) asks for a reduce-only
    protective stop at ``fill_price ∓ stop_distance`` once this order fills.
    """

    id: str
    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    created_time: int
    price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    updated_time: int | None = None
    reduce_only: bool = False
    tag: str = "api"
    reject_reason: str | None = None
    stop_distance: Decimal | None = None

    def __post_init__(self) -> None:
        _positive("qty", self.qty)
        if self.type is OrderType.LIMIT and (self.price is None or self.price <= 0):
            raise ValueError(f"a limit order needs price > 0, was {self.price}")
        if self.type is OrderType.STOP and (self.stop_price is None or self.stop_price <= 0):
            raise ValueError(f"a stop order needs stop_price > 0, was {self.stop_price}")
        if self.stop_distance is not None and self.stop_distance <= 0:
            raise ValueError(f"stop_distance must be > 0, was {self.stop_distance}")
        if not ZERO <= self.filled_qty <= self.qty:
            raise ValueError(f"filled_qty must be in [0, {self.qty}], was {self.filled_qty}")

    @property
    def remaining_qty(self) -> Decimal:
        """Quantity still to fill."""
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        """True while the order can still fill."""
        return not self.status.is_final


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution: ``qty`` at ``price`` at ``time`` (ms UTC), paying ``fee`` (quote currency).

    ``realized_pnl`` is the PnL this fill realized on the position it reduced (before fees).
    """

    id: str
    order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity
    time: int
    realized_pnl: Decimal = ZERO

    def __post_init__(self) -> None:
        _positive("qty", self.qty)
        _positive("price", self.price)
        if self.fee < 0:
            raise ValueError(f"fee must be >= 0, was {self.fee}")

    @property
    def notional(self) -> Decimal:
        """``qty × price`` in quote currency."""
        return self.qty * self.price


@dataclass(frozen=True, slots=True)
class Position:
    """Net position in one symbol: ``qty`` signed (long > 0), ``entry_price`` its average cost.

    ``opened_time`` is when the position last went from flat to non-flat (ms UTC).
    """

    symbol: str
    qty: Decimal = ZERO
    entry_price: Decimal = ZERO
    opened_time: int | None = None
    entry_fees: Decimal = ZERO

    @property
    def direction(self) -> Direction:
        """Long, short or flat."""
        if self.qty > 0:
            return Direction.LONG
        return Direction.SHORT if self.qty < 0 else Direction.FLAT

    def unrealized_pnl(self, mark_price: Decimal) -> Decimal:
        """PnL of the open quantity at ``mark_price`` (quote currency, before fees)."""
        return self.qty * (mark_price - self.entry_price)


@dataclass(frozen=True, slots=True)
class Trade:
    """A round trip: a position opened at ``entry_time`` and closed at ``exit_time``.

    ``side`` is the side of the opening fill (buy = long trade). ``pnl`` is net of ``fees``
    (entry and exit fees of this round trip), in quote currency.
    """

    id: str
    symbol: str
    side: Side
    qty: Decimal
    entry_time: int
    entry_price: Decimal
    exit_time: int
    exit_price: Decimal
    pnl: Decimal
    fees: Decimal

    @property
    def gross_pnl(self) -> Decimal:
        """PnL before fees."""
        return self.pnl + self.fees


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """Account value at ``time`` (ms UTC): ``cash`` (wallet balance) plus unrealized PnL."""

    time: int
    equity: Decimal
    cash: Decimal


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a component said what it said: ``component`` (e.g. ``"sma_cross"``), a ``message``
    and the numbers behind it."""

    component: str
    message: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy decision on ``symbol``'s bar closing at ``time`` (ms UTC).

    ``confidence`` is a fraction in [0, 1]; ``reasons`` explain it.
    """

    symbol: str
    timeframe: str
    time: int
    direction: Direction
    confidence: float
    reasons: tuple[Reason, ...]
    strategy: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], was {self.confidence}")
