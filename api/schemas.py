"""Request and response bodies of the HTTP API and the WebSocket, and domain → JSON conversion.

Money, prices and quantities are decimal strings at the precision of what they measure
(:mod:`api.numbers`: the tick for prices, the lot step for quantities, the quote asset's
precision for money); times are int ms UTC. Orders and fills say ``buy``/``sell``; positions and
trades ``long``/``short``. Order statuses are the kernel's state machine's names; ccxt's
unified status of each is in :data:`CCXT_STATUS`.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from api.numbers import Numbers
from domain.candles import Candle, Candles
from domain.funding import FundingPayment
from domain.futures import MarginReport, PositionMargin
from domain.model import (
    Direction,
    EquityPoint,
    ExitReason,
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
from service_layer.order_desk import Bracket
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


OrderTypeName = Literal["market", "limit", "stop", "take_profit", "trailing_stop"]
TimeInForceName = Literal["gtc", "ioc", "fok", "post_only"]
SymbolIn = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9/:._-]*$",
        examples=["BTCUSDT", "BTC/USDT:USDT"],
    ),
    AfterValidator(venue_symbol),
]
"""A symbol as the venue writes it (``BTCUSDT``) or ccxt's unified form (``BTC/USDT:USDT``),
read in the venue's spelling."""

_TRIGGERED = frozenset({"stop", "take_profit", "trailing_stop"})
_TIME_IN_FORCE_TYPES: dict[str, frozenset[str]] = {
    "gtc": frozenset(get_args(OrderTypeName)),
    "ioc": frozenset({"market", "limit"}),
    "fok": frozenset({"market", "limit"}),
    "post_only": frozenset({"limit"}),
}
"""The order types each time in force applies to."""


class OrderIn(BaseModel):
    """``POST /api/v1/orders`` body; quantities in base asset, prices and offsets in quote
    currency. ``symbol`` as the venue writes it (``BTCUSDT``) or ccxt's unified form
    (``BTC/USDT:USDT``).

    * ``market`` fills at the next bar's open (± slippage);
    * ``limit`` at ``price`` (required, only there) or better, when a bar trades through it;
    * ``stop`` (stop market) and ``take_profit`` (take-profit market) at market once a bar
      reaches ``stop_price`` (required): a stop on the losing side of the position, a
      take-profit on the winning side;
    * ``trailing_stop``: a stop market whose level follows the best price since it was placed
      at ``trailing_offset`` (required, only there) behind it; ``stop_price`` is its first
      level (default: the last close ∓ the offset).

    ``time_in_force``: ``gtc`` (default), ``ioc`` and ``fok`` (market and limit orders: what
    does not fill on the first bar expires), ``post_only`` (limit orders: expires rather than
    take liquidity). A ``reduce_only`` order only shrinks the position (refused when it would
    not). Orders with the same ``link_id`` are linked: one other than a take-profit filling
    completely cancels the others.
    """

    model_config = ConfigDict(extra="forbid")

    symbol: SymbolIn
    side: Literal["buy", "sell"]
    type: OrderTypeName
    qty: PositiveDecimal
    price: PositiveDecimal | None = Field(default=None, validate_default=True)
    stop_price: PositiveDecimal | None = Field(default=None, validate_default=True)
    trailing_offset: PositiveDecimal | None = Field(default=None, validate_default=True)
    time_in_force: TimeInForceName = Field(default="gtc", validate_default=True)
    reduce_only: bool = False
    link_id: str | None = Field(default=None, min_length=1, max_length=64)
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("price")
    @classmethod
    def _price_matches_type(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        return _term_for(value, info, "price", required={"limit"}, allowed={"limit"})

    @field_validator("stop_price")
    @classmethod
    def _stop_matches_type(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        return _term_for(
            value, info, "stop_price", required={"stop", "take_profit"}, allowed=_TRIGGERED
        )

    @field_validator("trailing_offset")
    @classmethod
    def _offset_matches_type(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        trailing = {"trailing_stop"}
        return _term_for(value, info, "trailing_offset", required=trailing, allowed=trailing)

    @field_validator("time_in_force")
    @classmethod
    def _tif_matches_type(cls, value: str, info: ValidationInfo) -> str:
        given = info.data.get("type")
        allowed = _TIME_IN_FORCE_TYPES[value]
        if given is not None and given not in allowed:
            raise ValueError(
                f"time_in_force {value} is only allowed on {_either(allowed)} orders, not {given}"
            )
        return value


def _term_for(
    value: Decimal | None,
    info: ValidationInfo,
    name: str,
    *,
    required: Collection[str],
    allowed: Collection[str],
) -> Decimal | None:
    """``value`` of the term ``name`` when the order's type asks for it (``required``) or takes
    it (``allowed``); a ``ValueError`` naming the type otherwise."""
    given = info.data.get("type")
    if given is None:  # the type itself is invalid: that error is reported
        return value
    if given in required and value is None:
        raise ValueError(f"{name} is required for a {given} order")
    if given not in allowed and value is not None:
        raise ValueError(f"{name} is only allowed on {_either(allowed)} orders, not {given}")
    return value


def _either(types: Collection[str]) -> str:
    """``limit``, ``market or limit``, ``stop, take_profit or trailing_stop``."""
    names = [t for t in get_args(OrderTypeName) if t in types]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


class OrderModifyIn(BaseModel):
    """``PATCH /api/v1/orders/{order_id}`` body: the new ``qty`` (base asset, more than what
    has filled), limit ``price`` or ``stop_price`` (quote currency) of a working order; at least
    one, each left out kept."""

    model_config = ConfigDict(extra="forbid")

    qty: PositiveDecimal | None = None
    price: PositiveDecimal | None = None
    stop_price: PositiveDecimal | None = None

    @model_validator(mode="after")
    def _something_changes(self) -> OrderModifyIn:
        if self.qty is None and self.price is None and self.stop_price is None:
            raise ValueError("give at least one of qty, price, stop_price")
        return self


class BracketLegIn(BaseModel):
    """One exit of a bracket: the trigger ``stop_price`` (quote currency) of its market
    order."""

    model_config = ConfigDict(extra="forbid")

    stop_price: PositiveDecimal


class BracketIn(BaseModel):
    """``POST /api/v1/orders/bracket`` body: an entry of ``qty`` (base asset), ``market`` or
    ``limit`` at ``price`` (quote currency, required for a limit entry and only there), with a
    reduce-only ``stop_loss`` (stop market) and ``take_profit`` (take-profit market) whose
    trigger prices (quote currency) lie on either side of the entry's price: the limit price,
    or for a market entry the last close (below it the stop of a buy, above it its
    take-profit; the other way round for a sell)."""

    model_config = ConfigDict(extra="forbid")

    symbol: SymbolIn
    side: Literal["buy", "sell"]
    type: Literal["market", "limit"]
    qty: PositiveDecimal
    price: PositiveDecimal | None = Field(default=None, validate_default=True)
    stop_loss: BracketLegIn
    take_profit: BracketLegIn
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("price")
    @classmethod
    def _price_matches_type(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        return _term_for(value, info, "price", required={"limit"}, allowed={"limit"})


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


class StaleFeedOut(BaseModel):
    """A symbol whose live feed has had no closed bar for ``silent_ms`` (ms), more than 2 bar
    periods, at ``time`` (ms UTC); ``last_bar_time`` is the open time of its last bar (null:
    none yet)."""

    symbol: str
    silent_ms: int
    time: int
    last_bar_time: int | None


class StatusOut(BaseModel):
    """What the engine is doing. ``clock_time`` is market time (ms UTC); ``equity`` and
    ``cash`` are in ``currency``; ``candles_processed`` counts the whole run (across restarts);
    ``stopped_reason`` says why it is not running (None while running: ``"end of data"``,
    ``"stopped by user"``, ``"error: …"``, ``"not started"``); ``error`` the last error;
    ``feed_venue`` the venue whose live bars are traded (null: a replay of stored bars) and
    ``stale_feeds`` its symbols gone stale (the strategy trades on without them)."""

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
    feed_venue: str | None
    stale_feeds: list[StaleFeedOut]


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


class BracketOut(BaseModel):
    """A bracket: its ``entry`` order and its two exits, placed when the entry has filled
    completely (null before): ``stop_loss``, a reduce-only stop market, and ``take_profit``, a
    reduce-only take-profit market, each linked to the entry (``link_id`` = the entry's
    ``id``). The stop filling cancels the take-profit; the take-profit closing the position
    cancels the stop. Each exit is priced at the distance from the entry's price that the
    request gave, from the entry's average fill price (the same levels when a limit entry
    fills at its limit price)."""

    entry: OrderOut
    stop_loss: OrderOut | None
    take_profit: OrderOut | None


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
    exit_reason: ExitReason = Field(
        description="What closed it: signal, stop, take_profit, liquidation, time, regime or end."
    )


class PositionOut(BaseModel):
    """A net position: ``qty`` signed (long > 0), ``side`` long/short (flat when closed),
    ``mark_price`` the last close it is valued at and ``unrealized_pnl`` (in ``currency``).
    Perpetuals also show their ``leverage``, ``notional`` at the mark, the ``initial_margin``
    (isolated: the margin assigned to it), ``maintenance_margin`` and ``liquidation_price``
    (null when it has none, e.g. a long whose margin covers a fall to 0); all null on other
    markets."""

    symbol: str
    qty: DecimalString
    side: Direction
    entry_price: DecimalString
    opened_time: int | None
    mark_price: DecimalString | None
    unrealized_pnl: DecimalString | None
    currency: str
    leverage: int | None = None
    notional: DecimalString | None = None
    initial_margin: DecimalString | None = None
    maintenance_margin: DecimalString | None = None
    liquidation_price: DecimalString | None = None


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


def bracket_out(b: Bracket, n: Numbers) -> BracketOut:
    """A bracket's entry and exits as its response body."""
    return BracketOut(
        entry=order_out(b.entry, n),
        stop_loss=None if b.stop_loss is None else order_out(b.stop_loss, n),
        take_profit=None if b.take_profit is None else order_out(b.take_profit, n),
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
        exit_reason=t.exit_reason,
    )


def position_out(
    p: Position, mark: Decimal | None, n: Numbers, margin: PositionMargin | None = None
) -> PositionOut:
    """A position valued at ``mark`` (None: not valued yet), with its ``margin`` figures when
    it is a perpetual's, as its response body."""
    s = p.symbol
    out = PositionOut(
        symbol=s,
        qty=n.qty(s, p.qty),
        side=p.direction,
        entry_price=n.price(s, p.entry_price),
        opened_time=p.opened_time,
        mark_price=n.price(s, mark),
        unrealized_pnl=None if mark is None else n.money(p.unrealized_pnl(mark)),
        currency=n.currency(s),
    )
    if margin is None:
        return out
    return out.model_copy(
        update={
            "leverage": margin.leverage,
            "notional": n.money(margin.notional),
            "initial_margin": n.money(margin.initial_margin),
            "maintenance_margin": n.money(margin.maintenance_margin),
            "liquidation_price": n.price(s, margin.liquidation_price),
        }
    )


def position_view_out(v: PositionView, n: Numbers) -> PositionOut:
    """A position with its mark, unrealized PnL and margin as its response body."""
    return position_out(v.position, v.mark_price, n, v.margin)


class BalanceOut(BaseModel):
    """The account's balance breakdown (``currency``): ``wallet`` (cash: deposits + realized
    PnL − fees − funding), ``unrealized_pnl``, ``margin_balance`` (wallet + unrealized),
    ``margin_in_use`` (initial margin of the positions), ``maintenance_margin``, ``available``
    (margin balance − margin in use), ``fees_paid`` and ``funding_paid`` (received counts
    negative) over the run, and ``margin_ratio`` (maintenance margin / margin balance, a
    fraction; liquidation at 1; null without a positive margin balance)."""

    wallet: DecimalString
    unrealized_pnl: DecimalString
    margin_balance: DecimalString
    margin_in_use: DecimalString
    maintenance_margin: DecimalString
    available: DecimalString
    fees_paid: DecimalString
    funding_paid: DecimalString
    margin_ratio: float | None
    currency: str


def balance_out(report: MarginReport, n: Numbers) -> BalanceOut:
    """The balance breakdown as its response body (money at the quote asset's precision)."""
    return BalanceOut(
        wallet=n.money(report.wallet),
        unrealized_pnl=n.money(report.unrealized_pnl),
        margin_balance=n.money(report.margin_balance),
        margin_in_use=n.money(report.margin_in_use),
        maintenance_margin=n.money(report.maintenance_margin),
        available=n.money(report.available),
        fees_paid=n.money(report.fees_paid),
        funding_paid=n.money(report.funding_paid),
        margin_ratio=None if report.margin_ratio is None else float(report.margin_ratio),
        currency=n.money_currency,
    )


class LeverageIn(BaseModel):
    """``PUT /api/v1/positions/{symbol}/leverage`` body: the new leverage (a whole number
    from 1 to the ``max_leverage`` setting and the symbol's bracket maximum for its
    position)."""

    model_config = ConfigDict(extra="forbid")

    leverage: int = Field(ge=1, le=125)


class LeverageOut(BaseModel):
    """A symbol's leverage."""

    symbol: str
    leverage: int


class FundingOut(BaseModel):
    """One funding settlement: at ``time`` (ms UTC) the position of ``qty`` (signed, base
    asset) paid ``amount`` (``currency``; negative: received) = qty × ``mark`` × ``rate``."""

    symbol: str
    time: int
    qty: DecimalString
    mark: DecimalString
    rate: DecimalString
    amount: DecimalString
    currency: str


def funding_out(p: FundingPayment, n: Numbers) -> FundingOut:
    """A funding payment as its response body."""
    s = p.symbol
    return FundingOut(
        symbol=s,
        time=p.time_ms,
        qty=n.qty(s, p.qty),
        mark=str(p.mark),
        rate=str(p.rate),
        amount=n.money(p.amount),
        currency=n.currency(s),
    )


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
        feed_venue=s.feed_venue,
        stale_feeds=[
            StaleFeedOut(
                symbol=f.symbol, silent_ms=f.silent_ms, time=f.time, last_bar_time=f.last_bar_time
            )
            for f in s.stale_feeds
        ],
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
