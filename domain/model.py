"""Trading model: instruments, orders, fills, positions, round-trip trades, equity, signals.

Money and quantities are ``Decimal`` (prices in quote currency, quantities in base asset, fees and
PnL in quote currency); times are int milliseconds UTC. Objects are frozen and validate themselves;
state changes produce new objects via :func:`dataclasses.replace`. On the backtest's hot path,
:func:`fast_constructor` builds them at a fraction of the cost, and :meth:`Order.with_state` and
:meth:`Fill.with_realized_pnl` copy an already validated value without validating it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, TypeVar

from domain.margin import LeverageBrackets

ZERO = Decimal(0)
_T = TypeVar("_T")


class Side(StrEnum):
    """Order side."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell."""
        return _SIGN[self]

    @property
    def opposite(self) -> Side:
        """The other side."""
        return _OPPOSITE[self]


# Dict lookups: these run on every fill, and Python 3.11 resolves each ``Side.BUY`` through
# EnumType's ``__getattr__`` hook, which costs more than the rest of the property.
_SIGN = {Side.BUY: 1, Side.SELL: -1}
_OPPOSITE = {Side.BUY: Side.SELL, Side.SELL: Side.BUY}


class OrderType(StrEnum):
    """Order type.

    ``market`` fills at the next open; ``limit`` when a bar trades through ``price``; ``stop``
    (stop market) and ``take_profit`` (take-profit market) fill at market once a bar touches
    ``stop_price`` (a stop on the losing side of the position, a take-profit on the winning
    side); ``trailing_stop`` is a stop market whose ``stop_price`` follows the best price since
    it was placed at ``trailing_offset`` (quote currency) behind it.
    """

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"

    @property
    def is_triggered(self) -> bool:
        """True for orders that wait for a trigger price (stop, take-profit, trailing)."""
        return self in _TRIGGERED


_TRIGGERED = frozenset((OrderType.STOP, OrderType.TAKE_PROFIT, OrderType.TRAILING_STOP))


class ExitReason(StrEnum):
    """What closed a trade: the strategy's ``signal``, a ``stop`` (stop loss or trailing
    stop), a ``take_profit``, the venue's ``liquidation``, a ``time`` or ``regime`` exit of
    the strategy, or the ``end`` of a backtest's data."""

    SIGNAL = "signal"
    STOP = "stop"
    TAKE_PROFIT = "take_profit"
    LIQUIDATION = "liquidation"
    TIME = "time"
    REGIME = "regime"
    END = "end"


class TimeInForce(StrEnum):
    """How long an order stays working.

    ``gtc`` until filled or canceled; ``ioc`` fills what it can on its first bar and expires the
    rest; ``fok`` fills whole on its first bar or expires; ``post_only`` (Binance ``GTX``) is a
    limit order that expires instead of taking liquidity.
    """

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"


class OrderStatus(StrEnum):
    """Order life cycle (see :mod:`domain.orders` for the allowed transitions).

    ``pending_new`` is stored before the venue hears of the order; ``filled``, ``canceled``,
    ``rejected`` and ``expired`` are final and never change again.
    """

    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        """True when the order can no longer fill or be canceled."""
        return self in _FINAL

    @property
    def is_working(self) -> bool:
        """True when the venue holds the order and it can fill."""
        return self in _WORKING


_FINAL = frozenset(
    (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED)
)
_WORKING = frozenset((OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL))


class Liquidity(StrEnum):
    """Whether a fill took (taker) or provided (maker) liquidity; decides the fee rate."""

    MAKER = "maker"
    TAKER = "taker"


class Direction(StrEnum):
    """Direction of a signal or a position."""

    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


def fast_constructor(cls: type[_T], *, validate: bool) -> Callable[..., _T]:
    """A faster ``cls(...)`` for the frozen, slotted dataclass ``cls``, for the kernel's hot
    path (every fill builds orders, positions, a trade and events).

    It takes the same arguments as ``cls(...)`` and builds the same value. With ``validate``
    it runs ``__post_init__`` (the same checks); without, none: for values known to be valid,
    such as an order's next state or a position after a fill. A frozen dataclass's
    ``__init__`` stores each field through ``object.__setattr__``, which costs several times
    more than the rest of the object: here the fields go into a mutable twin class with the
    same slots, and the instance then takes ``cls`` as its class (CPython allows that between
    classes of identical layout). The code is generated as a dataclass's ``__init__`` is.

    Raises
    ------
    TypeError
        When a field is keyword-only or not an ``__init__`` argument (not supported).
    """
    scope: dict[str, Any] = {
        "__twin": type(f"_{cls.__name__}Draft", (), {"__slots__": cls.__slots__}),
        "__cls": cls,
        "__missing": MISSING,
    }
    params, lines = [], ["    __obj = __twin()"]
    for f in fields(cls):
        if f.kw_only or not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: not a positional __init__ field")
        if f.default is not MISSING:
            scope[f"__default_{f.name}"] = f.default
            params.append(f"{f.name}=__default_{f.name}")
        elif f.default_factory is not MISSING:
            scope[f"__factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=__missing")
            lines.append(f"    if {f.name} is __missing: {f.name} = __factory_{f.name}()")
        else:
            params.append(f.name)
        lines.append(f"    __obj.{f.name} = {f.name}")
    lines.append("    __obj.__class__ = __cls")
    if validate and hasattr(cls, "__post_init__"):
        lines.append("    __obj.__post_init__()")
    source = "\n".join([f"def build({', '.join(params)}):", *lines, "    return __obj", ""])
    exec(source, scope)
    return scope["build"]


def _positive(name: str, value: Decimal) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, was {value}")


_MONEY_QUANTA = tuple(Decimal(1).scaleb(-places) for places in range(19))
"""The money quantum of each quote precision 0..18 (``_MONEY_QUANTA[8] == Decimal("1E-8")``)."""


class MarketType(StrEnum):
    """What kind of market an instrument trades on."""

    PERPETUAL = "perpetual"
    SPOT = "spot"
    STOCK = "stock"


@dataclass(frozen=True, slots=True)
class Instrument:
    """Trading rules of one symbol on one venue and market.

    ``tick_size`` is the price increment, ``step_size`` the quantity increment (base asset),
    ``min_notional`` the smallest order value in quote currency, ``max_qty`` the largest limit
    order qty (Binance ``LOT_SIZE``) and ``market_max_qty`` the largest market order qty
    (``MARKET_LOT_SIZE``; ``max_qty`` when None). ``quote_precision`` is the number of decimal
    places money in the quote asset is kept to (balances, fees, PnL). ``brackets`` are a
    futures symbol's leverage brackets (maximum leverage and maintenance margin by notional;
    None when unknown or not a futures market).
    """

    symbol: str
    tick_size: Decimal = Decimal("0.00000001")
    step_size: Decimal = Decimal("0.00000001")
    min_notional: Decimal = ZERO
    max_qty: Decimal | None = None
    market_max_qty: Decimal | None = None
    venue: str = "binance"
    market: MarketType = MarketType.PERPETUAL
    quote_asset: str = "USDT"
    quote_precision: int = 8
    brackets: LeverageBrackets | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("symbol must not be empty")
        _positive("tick_size", self.tick_size)
        _positive("step_size", self.step_size)
        if not 0 <= self.quote_precision <= 18:
            raise ValueError(f"quote_precision must be in [0, 18], was {self.quote_precision}")

    @property
    def max_leverage(self) -> int | None:
        """The highest leverage the symbol allows (its first bracket's), None without
        brackets."""
        return None if self.brackets is None else self.brackets.max_leverage(ZERO)

    def round_qty(self, qty: Decimal) -> Decimal:
        """``qty`` rounded down to the lot step (never buys more than asked)."""
        return (qty / self.step_size).to_integral_value(ROUND_FLOOR) * self.step_size

    def round_price(self, price: Decimal, *, up: bool) -> Decimal:
        """``price`` rounded to the tick, up (worse for a buyer) or down (worse for a seller)."""
        mode = ROUND_CEILING if up else ROUND_FLOOR
        return (price / self.tick_size).to_integral_value(mode) * self.tick_size

    def round_money(self, amount: Decimal) -> Decimal:
        """``amount`` (quote currency) rounded half-even to :attr:`quote_precision` places."""
        return amount.quantize(_MONEY_QUANTA[self.quote_precision], ROUND_HALF_EVEN)

    def on_tick(self, price: Decimal) -> bool:
        """True when ``price`` is a whole number of ticks."""
        return (price % self.tick_size) == 0

    def on_step(self, qty: Decimal) -> bool:
        """True when ``qty`` is a whole number of lot steps."""
        return (qty % self.step_size) == 0

    def max_order_qty(self, order_type: OrderType) -> Decimal | None:
        """The largest qty an order of ``order_type`` may have (None: no limit)."""
        if order_type is OrderType.MARKET and self.market_max_qty is not None:
            return self.market_max_qty
        return self.max_qty


@dataclass(frozen=True, slots=True)
class TakeProfit:
    """One take-profit level of an :class:`ExitPlan`: ``distance`` (quote currency) from the
    entry fill price in the position's favour, closing ``fraction`` (0 < f <= 1) of the entry
    quantity."""

    distance: Decimal
    fraction: Decimal

    def __post_init__(self) -> None:
        _positive("distance", self.distance)
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], was {self.fraction}")


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """Exits attached to an entry order, placed by the engine when the entry fills.

    Distances are in quote currency from the entry's fill price: a reduce-only ``stop`` at
    ``stop_distance`` against the position, ``take_profits`` in its favour, and a
    ``trailing_distance`` trailing stop. All exits of one entry are linked: when one fills
    completely the others are canceled, and all are canceled once the position is flat.
    """

    stop_distance: Decimal | None = None
    take_profits: tuple[TakeProfit, ...] = ()
    trailing_distance: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("stop_distance", "trailing_distance"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)
        total = sum((tp.fraction for tp in self.take_profits), ZERO)
        if total > 1:
            raise ValueError(f"take-profit fractions must sum to <= 1, were {total}")


@dataclass(frozen=True, slots=True)
class Order:
    """An order and its state.

    ``id`` is the client order id (deterministic for strategy orders, see
    :func:`domain.orders.client_order_id`); ``venue_order_id`` is the venue's id once it is
    known. ``price`` is the limit price, ``stop_price`` the trigger of stop, take-profit and
    trailing-stop orders (for a trailing stop the current level, which follows the best price
    at ``trailing_offset`` quote currency behind it). ``filled_qty`` and ``avg_fill_price`` (the
    VWAP of the fills) track execution; ``created_time``/``updated_time`` are ms UTC.
    ``reduce_only`` orders may only shrink a position and are clipped to it. ``link_id`` groups
    linked orders: a complete fill of one cancels the others. ``exits`` are placed when this
    order fills. ``tag`` says who placed it (strategy name or ``"api"``).

    Raises
    ------
    ValueError
        On a non-positive qty, a limit without price, a triggered order without stop_price, a
        trailing stop without offset, or ``filled_qty`` outside ``[0, qty]``.
    """

    id: str
    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    created_time: int
    price: Decimal | None = None
    stop_price: Decimal | None = None
    status: OrderStatus = OrderStatus.PENDING_NEW
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    updated_time: int | None = None
    reduce_only: bool = False
    tag: str = "api"
    reject_reason: str | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    venue_order_id: str | None = None
    link_id: str | None = None
    trailing_offset: Decimal | None = None
    exits: ExitPlan | None = None

    def __post_init__(self) -> None:
        _positive("qty", self.qty)
        if self.type is OrderType.LIMIT and (self.price is None or self.price <= 0):
            raise ValueError(f"a limit order needs price > 0, was {self.price}")
        if self.type.is_triggered and (self.stop_price is None or self.stop_price <= 0):
            raise ValueError(f"a {self.type} order needs stop_price > 0, was {self.stop_price}")
        if self.type is OrderType.TRAILING_STOP and (
            self.trailing_offset is None or self.trailing_offset <= 0
        ):
            raise ValueError(
                f"a trailing stop needs trailing_offset > 0, was {self.trailing_offset}"
            )
        if self.time_in_force is TimeInForce.POST_ONLY and self.type is not OrderType.LIMIT:
            raise ValueError(f"post_only applies to limit orders, not {self.type}")
        if not ZERO <= self.filled_qty <= self.qty:
            raise ValueError(f"filled_qty must be in [0, {self.qty}], was {self.filled_qty}")

    @property
    def client_order_id(self) -> str:
        """The client order id (the same as :attr:`id`)."""
        return self.id

    @property
    def remaining_qty(self) -> Decimal:
        """Quantity still to fill."""
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        """True while the order can still fill (or has not been acknowledged yet)."""
        return not self.status.is_final

    def with_state(
        self,
        status: OrderStatus,
        filled_qty: Decimal,
        avg_fill_price: Decimal | None,
        updated_time: int | None,
        reject_reason: str | None,
        venue_order_id: str | None,
    ) -> Order:
        """This order with the given execution state and the same terms.

        The fast path of the order state machine and the simulated venue: the terms were
        validated when this order was built, so they are copied without validating them again
        (:func:`fast_constructor`, a small fraction of the cost of :func:`dataclasses.replace`).
        The caller keeps ``0 <= filled_qty <= qty``.
        """
        return _order(
            self.id, self.symbol, self.side, self.type, self.qty, self.created_time, self.price,
            self.stop_price, status, filled_qty, avg_fill_price, updated_time, self.reduce_only,
            self.tag, reject_reason, self.time_in_force, venue_order_id, self.link_id,
            self.trailing_offset, self.exits,
        )  # fmt: skip


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

    def with_realized_pnl(self, realized_pnl: Decimal) -> Fill:
        """This fill with ``realized_pnl`` set, copied without validating it again."""
        return _fill(
            self.id, self.order_id, self.symbol, self.side, self.qty, self.price, self.fee,
            self.liquidity, self.time, realized_pnl,
        )  # fmt: skip


_order = fast_constructor(Order, validate=False)
_fill = fast_constructor(Fill, validate=False)


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
    (entry and exit fees of this round trip), in quote currency. ``exit_reason`` says what
    closed it (the order that did: see :func:`domain.orders.exit_reason`).
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
    exit_reason: ExitReason = ExitReason.SIGNAL

    @property
    def direction(self) -> Direction:
        """The position's side: ``long`` when the trade was opened by a buy, else ``short``."""
        return Direction.LONG if self.side is Side.BUY else Direction.SHORT

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
