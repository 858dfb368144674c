"""Request and response bodies of the HTTP API and the WebSocket, and domain → JSON conversion.

Money, prices and quantities are decimal strings at the precision of what they measure
(:mod:`api.numbers`: the tick for prices, the lot step for quantities, the quote asset's
precision for money); times are int ms UTC. Orders and fills say ``buy``/``sell``; positions and
trades ``long``/``short``. Order statuses are the kernel's state machine's names; ccxt's
unified status of each is in :data:`CCXT_STATUS`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from api.numbers import Numbers
from domain.candles import Candle, Candles
from domain.model import (
    Direction,
    EquityPoint,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Reason,
    Side,
    Signal,
    TimeInForce,
    Trade,
)
from domain.orders import order_origin
from domain.symbols import venue_symbol
from service_layer.trading import PositionView, Status

PositiveDecimal = Annotated[Decimal, Field(gt=0, max_digits=38, decimal_places=18)]
DecimalString = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["101234.50"])]

CCXT_STATUS: dict[OrderStatus, str] = {
    OrderStatus.PENDING_NEW: "open",
    OrderStatus.NEW: "open",
    OrderStatus.PARTIALLY_FILLED: "open",
    OrderStatus.PENDING_CANCEL: "open",
    OrderStatus.FILLED: "closed",
    OrderStatus.CANCELED: "canceled",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.EXPIRED: "expired",
}
"""ccxt's unified order status of each of our statuses (``open`` covers every live state)."""

_STATUS_DOC = "; ".join(f"{s.value} = ccxt {c}" for s, c in CCXT_STATUS.items())


class OrderIn(BaseModel):
    """``POST /api/v1/orders`` body. ``price`` is required for limit orders and only allowed
    there, ``stop_price`` likewise for stop orders; quantities in base asset, prices in quote
    currency. ``symbol`` as the venue writes it (``BTCUSDT``) or ccxt's unified form
    (``BTC/USDT:USDT``)."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9/:._-]*$",
        examples=["BTCUSDT", "BTC/USDT:USDT"],
    )
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop"]
    qty: PositiveDecimal
    price: PositiveDecimal | None = Field(default=None, validate_default=True)
    stop_price: PositiveDecimal | None = Field(default=None, validate_default=True)
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("symbol")
    @classmethod
    def _venue_symbol(cls, value: str) -> str:
        return venue_symbol(value)

    @field_validator("price")
    @classmethod
    def _price_matches_type(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        return _required_for(value, info, "limit", "price")

    @field_validator("stop_price")
    @classmethod
    def _stop_matches_type(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        return _required_for(value, info, "stop", "stop_price")


def _required_for(
    value: Decimal | None, info: ValidationInfo, order_type: str, name: str
) -> Decimal | None:
    given = info.data.get("type")
    if given is None:  # the type itself is invalid: that error is reported
        return value
    if given == order_type and value is None:
        raise ValueError(f"{name} is required for a {order_type} order")
    if given != order_type and value is not None:
        raise ValueError(f"{name} is only allowed on {order_type} orders, not {given}")
    return value


class FieldError(BaseModel):
    """One invalid input: ``field`` (dotted path) and what is wrong with it."""

    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error response: a stable ``error`` code, a ``detail`` for people, the offending
    input ``field`` when there is one; ``errors`` lists every invalid field of a 422;
    ``order_id`` and ``reason`` describe an order the venue rejected (409 ``order_rejected``)."""

    error: str = Field(examples=["validation_error"])
    detail: str
    field: str | None = None
    errors: list[FieldError] | None = None
    order_id: str | None = None
    reason: str | None = None


class HealthOut(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class StatusOut(BaseModel):
    """What the engine is doing. ``clock_time`` is market time (ms UTC); ``equity`` and
    ``cash`` are in ``currency``; ``candles_processed`` counts the whole run (across restarts);
    ``stopped_reason`` says why it is not running (None while running: ``"end of data"``,
    ``"stopped by user"``, ``"error: …"``, ``"not started"``); ``error`` the last error."""

    mode: str
    running: bool
    clock_time: int
    symbols: list[str]
    timeframe: str
    strategy: str
    candles_processed: int
    equity: DecimalString
    cash: DecimalString
    currency: str
    stopped_reason: str | None
    error: str | None


class CandleOut(BaseModel):
    """One closed bar: ``open_time`` and ``close_time`` (ms UTC, close exclusive), prices in
    quote currency and volume in base asset as decimal strings."""

    symbol: str
    timeframe: str
    open_time: int
    close_time: int
    open: DecimalString
    high: DecimalString
    low: DecimalString
    close: DecimalString
    volume: DecimalString


class OrderOut(BaseModel):
    """An order in its latest state. ``id`` is the client order id (``client_order_id`` says
    the same); ``origin`` is ``api`` for orders placed over the API, ``strategy`` for the
    strategy's (``tag`` names it; an exit keeps its entry's origin), ``run`` for a backtest's
    closing orders; ``reject_reason`` says why the venue refused it."""

    id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    qty: DecimalString
    price: DecimalString | None
    stop_price: DecimalString | None
    status: OrderStatus = Field(description=f"State machine status; {_STATUS_DOC}.")
    filled_qty: DecimalString
    avg_fill_price: DecimalString | None
    reduce_only: bool
    time_in_force: TimeInForce
    venue_order_id: str | None
    link_id: str | None
    trailing_offset: DecimalString | None
    origin: Literal["api", "strategy", "run"]
    tag: str
    reject_reason: str | None
    created_time: int
    updated_time: int | None


class FillOut(BaseModel):
    """One execution of an order: ``fee`` in ``fee_currency``; ``realized_pnl`` (quote
    currency, gross of fees) what the fill closed."""

    id: str
    order_id: str
    symbol: str
    side: Side
    qty: DecimalString
    price: DecimalString
    fee: DecimalString
    fee_currency: str
    liquidity: Liquidity
    realized_pnl: DecimalString
    time: int


class TradeOut(BaseModel):
    """A closed round trip: ``side`` is the position's (``long``/``short``); ``pnl`` is net of
    ``fees`` (both in ``fee_currency``)."""

    id: str
    symbol: str
    side: Literal["long", "short"]
    qty: DecimalString
    entry_time: int
    entry_price: DecimalString
    exit_time: int
    exit_price: DecimalString
    pnl: DecimalString
    fees: DecimalString
    fee_currency: str


class PositionOut(BaseModel):
    """A net position: ``qty`` signed (long > 0), ``side`` long/short (flat when closed),
    ``mark_price`` the last close it is valued at and ``unrealized_pnl`` (in ``currency``)."""

    symbol: str
    qty: DecimalString
    side: Direction
    entry_price: DecimalString
    opened_time: int | None
    mark_price: DecimalString | None
    unrealized_pnl: DecimalString | None
    currency: str


class EquityOut(BaseModel):
    """Account value at a bar close (quote currency)."""

    time: int
    equity: DecimalString
    cash: DecimalString


class ReasonOut(BaseModel):
    """One component's reason for a signal, with the values it looked at."""

    component: str
    message: str
    values: dict[str, float]


class SignalOut(BaseModel):
    """A strategy's decision on one bar with its reasons."""

    symbol: str
    timeframe: str
    time: int
    direction: Direction
    confidence: float
    strategy: str
    reasons: list[ReasonOut]


def _reason_out(r: Reason) -> ReasonOut:
    return ReasonOut(component=r.component, message=r.message, values=r.values)


def order_out(o: Order, n: Numbers) -> OrderOut:
    """An order as its response body."""
    s = o.symbol
    return OrderOut(
        id=o.id,
        client_order_id=o.client_order_id,
        symbol=s,
        side=o.side,
        type=o.type,
        qty=n.qty(s, o.qty),
        price=n.price(s, o.price),
        stop_price=n.price(s, o.stop_price),
        status=o.status,
        filled_qty=n.qty(s, o.filled_qty),
        avg_fill_price=n.price(s, o.avg_fill_price),
        reduce_only=o.reduce_only,
        time_in_force=o.time_in_force,
        venue_order_id=o.venue_order_id,
        link_id=o.link_id,
        trailing_offset=n.price(s, o.trailing_offset),
        origin=order_origin(o.tag).kind,  # type: ignore[arg-type]
        tag=o.tag,
        reject_reason=o.reject_reason,
        created_time=o.created_time,
        updated_time=o.updated_time,
    )


def fill_out(f: Fill, n: Numbers) -> FillOut:
    """A fill as its response body."""
    s = f.symbol
    return FillOut(
        id=f.id,
        order_id=f.order_id,
        symbol=s,
        side=f.side,
        qty=n.qty(s, f.qty),
        price=n.price(s, f.price),
        fee=n.money(f.fee),
        fee_currency=n.currency(s),
        liquidity=f.liquidity,
        realized_pnl=n.money(f.realized_pnl),
        time=f.time,
    )


def trade_out(t: Trade, n: Numbers) -> TradeOut:
    """A closed round trip as its response body."""
    s = t.symbol
    return TradeOut(
        id=t.id,
        symbol=s,
        side=t.direction.value,  # type: ignore[arg-type]  # long or short, never flat
        qty=n.qty(s, t.qty),
        entry_time=t.entry_time,
        entry_price=n.price(s, t.entry_price),
        exit_time=t.exit_time,
        exit_price=n.price(s, t.exit_price),
        pnl=n.money(t.pnl),
        fees=n.money(t.fees),
        fee_currency=n.currency(s),
    )


def position_out(p: Position, mark: Decimal | None, n: Numbers) -> PositionOut:
    """A position valued at ``mark`` (None: not valued yet) as its response body."""
    s = p.symbol
    return PositionOut(
        symbol=s,
        qty=n.qty(s, p.qty),
        side=p.direction,
        entry_price=n.price(s, p.entry_price),
        opened_time=p.opened_time,
        mark_price=n.price(s, mark),
        unrealized_pnl=None if mark is None else n.money(p.unrealized_pnl(mark)),
        currency=n.currency(s),
    )


def position_view_out(v: PositionView, n: Numbers) -> PositionOut:
    """A position with its mark and unrealized PnL as its response body."""
    return position_out(v.position, v.mark_price, n)


def equity_out(p: EquityPoint, n: Numbers) -> EquityOut:
    """An equity snapshot as its response body."""
    return EquityOut(time=p.time, equity=n.money(p.equity), cash=n.money(p.cash))


def signal_out(s: Signal) -> SignalOut:
    """A signal with its reasons as its response body."""
    return SignalOut(
        symbol=s.symbol,
        timeframe=s.timeframe,
        time=s.time,
        direction=s.direction,
        confidence=s.confidence,
        strategy=s.strategy,
        reasons=[_reason_out(r) for r in s.reasons],
    )


def status_out(s: Status, n: Numbers) -> StatusOut:
    """Engine status as its response body."""
    return StatusOut(
        mode=s.mode,
        running=s.running,
        clock_time=s.clock_time,
        symbols=list(s.symbols),
        timeframe=s.timeframe,
        strategy=s.strategy,
        candles_processed=s.candles_processed,
        equity=n.money(s.equity),
        cash=n.money(s.cash),
        currency=n.money_currency,
        stopped_reason=s.stopped_reason,
        error=s.error,
    )


def candle_out(symbol: str, timeframe: str, tf_ms: int, c: Candle, n: Numbers) -> CandleOut:
    """One bar as its response body."""
    return CandleOut(
        symbol=symbol,
        timeframe=timeframe,
        open_time=c.open_time,
        close_time=c.open_time + tf_ms,
        open=n.bar_price(symbol, c.open),
        high=n.bar_price(symbol, c.high),
        low=n.bar_price(symbol, c.low),
        close=n.bar_price(symbol, c.close),
        volume=n.bar_qty(symbol, c.volume),
    )


def candles_out(
    symbol: str, timeframe: str, tf_ms: int, bars: Candles, n: Numbers
) -> list[CandleOut]:
    """Bars as response bodies, oldest first."""
    return [candle_out(symbol, timeframe, tf_ms, bars.candle(i), n) for i in range(len(bars))]
