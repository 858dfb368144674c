"""Our orders and Binance USDⓈ-M's order JSON, both ways; the JSON never leaves this package.

Requests: plain and limit orders go to ``POST /fapi/v1/order`` with our client id as
``newClientOrderId``; stop-market, take-profit-market and trailing stops go to the Algo Order
API (``POST /fapi/v1/algoOrder``, ``algoType=CONDITIONAL``, our id as ``clientAlgoId``), where
Binance has kept conditional orders since 2025-12. Answers (REST and the user-data stream's
``ORDER_TRADE_UPDATE`` / ``ALGO_UPDATE``) become :class:`VenueOrder` and :class:`VenueTrade`
values with ``Decimal`` numbers. A triggered algo order's market order carries the algo order's
client id (Binance's behaviour; NautilusTrader's adapter relies on it too).

Trailing stops: our ``trailing_offset`` is in quote currency, Binance's ``callbackRate`` a
percentage (0.1 to 10, one decimal) of the best price since activation; the rate sent is the
offset as a share of the best price the order implies (``stop_price`` ± offset), rounded to
0.1 %. The venue does not report its trailing level, so the order's ``stop_price`` stays the
one it was placed with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from adapters.venues.binance_usdm.wire_fields import (
    Json,
    event_object,
    field_decimal,
    field_text,
)
from domain.errors import DataError, InvalidOrder
from domain.model import (
    ZERO,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from domain.orders import LIQUIDATION_TAG

ALGO_TYPES = {
    OrderType.STOP: "STOP_MARKET",
    OrderType.TAKE_PROFIT: "TAKE_PROFIT_MARKET",
    OrderType.TRAILING_STOP: "TRAILING_STOP_MARKET",
}
"""Our triggered order types and the Algo Order API's ``type``."""
_TYPES = {"MARKET": OrderType.MARKET, "LIMIT": OrderType.LIMIT, "LIQUIDATION": OrderType.MARKET}
_TYPES |= {venue: ours for ours, venue in ALGO_TYPES.items()}
TIME_IN_FORCE = {
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
    TimeInForce.POST_ONLY: "GTX",
}
"""Our time in force and Binance's (``GTX``: good till crossing, Binance's post-only)."""
_TIF = {venue: ours for ours, venue in TIME_IN_FORCE.items()} | {"GTD": TimeInForce.GTC}
_STATUS = {
    "NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
}
_ALGO_STATUS = {
    "NEW": OrderStatus.NEW,
    "TRIGGERING": OrderStatus.NEW,
    "TRIGGERED": OrderStatus.NEW,
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
}
"""Algo statuses before the triggered order takes over (``FINISHED`` is decided by it)."""
LIQUIDATION_PREFIXES = ("autoclose-", "adl_autoclose", "settlement_autoclose-")
"""Client id prefixes of the orders Binance places itself: liquidation, auto-deleveraging,
settlement."""
MIN_CALLBACK_RATE = Decimal("0.1")
MAX_CALLBACK_RATE = Decimal("10")
_RATE_STEP = Decimal("0.1")
_HUNDRED = Decimal(100)


def text(value: Decimal) -> str:
    """``value`` as Binance reads a decimal: no exponent, no trailing zeros (``"0.01"``)."""
    return format(value.normalize(), "f")


def callback_rate(order: Order) -> Decimal:
    """The ``callbackRate`` (percent) of the trailing stop ``order``: its offset over the best
    price it implies (``stop_price`` + offset for a sell, − offset for a buy), × 100, to 0.1.

    Raises
    ------
    InvalidOrder
        (``field="trailing_offset"``) When the rate falls outside Binance's 0.1 to 10 %.
    """
    offset, level = order.trailing_offset, order.stop_price
    assert offset is not None and level is not None  # a valid trailing stop has both
    best = level + offset if order.side is Side.SELL else level - offset
    rate = (offset / best * _HUNDRED).quantize(_RATE_STEP, ROUND_HALF_EVEN) if best > 0 else ZERO
    if not MIN_CALLBACK_RATE <= rate <= MAX_CALLBACK_RATE:
        raise InvalidOrder(
            f"trailing offset {offset} is {rate}% of the best price {best}; Binance takes "
            f"{MIN_CALLBACK_RATE}% to {MAX_CALLBACK_RATE}%",
            field="trailing_offset",
        )
    return rate


def order_params(order: Order, client_id: str) -> dict[str, str]:
    """The form of ``POST /fapi/v1/order`` for a market or limit ``order`` sent as
    ``client_id`` (one-way mode; the answer is the order's state, ``newOrderRespType=RESULT``)."""
    params = {
        "symbol": order.symbol,
        "side": order.side.upper(),
        "type": order.type.upper(),
        "quantity": text(order.qty),
        "newClientOrderId": client_id,
        "newOrderRespType": "RESULT",
    }
    if order.type is OrderType.LIMIT:
        assert order.price is not None
        params["price"] = text(order.price)
        params["timeInForce"] = TIME_IN_FORCE[order.time_in_force]
    if order.reduce_only:
        params["reduceOnly"] = "true"
    return params


def algo_params(order: Order, client_id: str) -> dict[str, str]:
    """The form of ``POST /fapi/v1/algoOrder`` for a triggered ``order`` sent as ``client_id``
    (triggers on the last price, ``workingType=CONTRACT_PRICE``; a trailing stop activates at
    once, at the price when placed).

    Raises
    ------
    InvalidOrder
        A trailing offset Binance cannot express (see :func:`callback_rate`).
    """
    params = {
        "algoType": "CONDITIONAL",
        "symbol": order.symbol,
        "side": order.side.upper(),
        "type": ALGO_TYPES[order.type],
        "quantity": text(order.qty),
        "clientAlgoId": client_id,
        "workingType": "CONTRACT_PRICE",
    }
    if order.type is OrderType.TRAILING_STOP:
        params["callbackRate"] = text(callback_rate(order))
    else:
        assert order.stop_price is not None
        params["triggerPrice"] = text(order.stop_price)
    if order.reduce_only:
        params["reduceOnly"] = "true"
    return params


def amend_params(order: Order, client_id: str, qty: Decimal, price: Decimal) -> dict[str, str]:
    """The form of ``PUT /fapi/v1/order`` setting the limit ``order``, known to the venue as
    ``client_id``, to ``qty`` at ``price`` (Binance wants both, and the side)."""
    return {
        "symbol": order.symbol,
        "side": order.side.upper(),
        "origClientOrderId": client_id,
        "quantity": text(qty),
        "price": text(price),
    }


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue reports it (REST answer or user-data event).

    ``client_id`` is the venue's client id (ours, or a replacement's); ``venue_order_id`` the
    venue's id (an algo order's ``algoId`` until it triggers, then its market order's id);
    ``status`` the order's state in our terms; ``filled`` and ``avg_price`` the executed qty
    (base asset) and its average price (quote currency); ``time`` the update's time (ms UTC);
    ``reason`` why it ended, when the venue says; ``trigger_rate`` a trailing stop's
    ``callbackRate`` (percent).
    """

    client_id: str
    venue_order_id: str
    symbol: str
    side: Side
    type: OrderType
    status: OrderStatus
    qty: Decimal
    filled: Decimal
    avg_price: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    reduce_only: bool
    time_in_force: TimeInForce
    created: int
    time: int
    algo: bool = False
    reason: str | None = None
    trigger_rate: Decimal | None = None

    @property
    def is_liquidation(self) -> bool:
        """True for an order the venue placed itself to close a position."""
        return self.client_id.startswith(LIQUIDATION_PREFIXES)


@dataclass(frozen=True, slots=True)
class VenueTrade:
    """One execution: ``qty`` (base asset) at ``price`` of the order ``client_id`` (None from
    ``GET /fapi/v1/userTrades``, which names only ``venue_order_id``), ``fee`` in
    ``fee_asset``; ``cum_qty`` is the order's executed qty after it (stream events only)."""

    trade_id: str
    client_id: str | None
    venue_order_id: str
    symbol: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Liquidity
    time: int
    cum_qty: Decimal | None = None

    @property
    def fill_id(self) -> str:
        """Our fill id: trade ids are unique per symbol on Binance."""
        return f"{self.symbol}-{self.trade_id}"


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An ``ORDER_TRADE_UPDATE`` event: ``execution`` (``NEW``, ``TRADE``, ``CALCULATED``
    (a liquidation's execution), ``CANCELED``, ``EXPIRED``, ``AMENDMENT``), the order after it
    and the trade it reports, if any."""

    execution: str
    order: VenueOrder
    trade: VenueTrade | None


def order_view(payload: Json) -> VenueOrder:
    """An order of ``/fapi/v1/order`` or ``/fapi/v1/openOrders``.

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "binance-usdm order"
    filled = field_decimal(payload, "executedQty", source)
    avg = field_decimal(payload, "avgPrice", source)
    price = field_decimal(payload, "price", source)
    stop = field_decimal(payload, "stopPrice", source, default=ZERO)
    return VenueOrder(
        client_id=field_text(payload, "clientOrderId", source),
        venue_order_id=field_text(payload, "orderId", source),
        symbol=field_text(payload, "symbol", source),
        side=_side(payload, "side", source),
        type=_type(field_text(payload, "type", source), source),
        status=_status(_STATUS, field_text(payload, "status", source), source),
        qty=field_decimal(payload, "origQty", source),
        filled=filled,
        avg_price=avg if avg > 0 else None,
        price=price if price > 0 else None,
        stop_price=stop if stop > 0 else None,
        reduce_only=bool(payload.get("reduceOnly", False)),
        time_in_force=_TIF.get(str(payload.get("timeInForce", "GTC")), TimeInForce.GTC),
        created=int(payload.get("time", payload.get("updateTime", 0))),
        time=int(payload.get("updateTime", 0)),
    )


def algo_view(payload: Json, triggered: VenueOrder | None = None) -> VenueOrder:
    """An order of ``/fapi/v1/algoOrder`` or ``/fapi/v1/openAlgoOrders``; once triggered, its
    state is that of its market order ``triggered`` (same client id), when given.

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "binance-usdm algo order"
    algo_status = field_text(payload, "algoStatus", source)
    trigger = field_decimal(payload, "triggerPrice", source, default=ZERO)
    rate = field_decimal(payload, "callbackRate", source, default=ZERO)
    executed = field_decimal(payload, "executedQty", source, default=ZERO)
    view = VenueOrder(
        client_id=field_text(payload, "clientAlgoId", source),
        venue_order_id=field_text(payload, "algoId", source),
        symbol=field_text(payload, "symbol", source),
        side=_side(payload, "side", source),
        type=_type(field_text(payload, "orderType", source), source),
        status=_ALGO_STATUS.get(algo_status, OrderStatus.NEW),
        qty=field_decimal(payload, "quantity", source),
        filled=executed,
        avg_price=None,
        price=None,
        stop_price=trigger if trigger > 0 else None,
        reduce_only=bool(payload.get("reduceOnly", False)),
        time_in_force=_TIF.get(str(payload.get("timeInForce", "GTC")), TimeInForce.GTC),
        created=int(payload.get("createTime", 0)),
        time=int(payload.get("updateTime", 0)),
        algo=True,
        trigger_rate=rate if rate > 0 else None,
    )
    if triggered is None:
        return view
    return _with_state(view, triggered)


def algo_update(message: Json) -> VenueOrder:
    """An ``ALGO_UPDATE`` event's order (``rm``: why the venue refused or ended it).

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "binance-usdm ALGO_UPDATE"
    o = event_object(message, source)
    trigger = field_decimal(o, "tp", source, default=ZERO)
    rate = field_decimal(o, "cr", source, default=ZERO)
    status = field_text(o, "X", source)
    actual = str(o.get("ai") or "")
    reason = str(o.get("rm") or "") or None
    return VenueOrder(
        client_id=field_text(o, "caid", source),
        venue_order_id=actual or field_text(o, "aid", source),
        symbol=field_text(o, "s", source),
        side=_side(o, "S", source),
        type=_type(field_text(o, "o", source), source),
        status=_ALGO_STATUS.get(status, OrderStatus.NEW),
        qty=field_decimal(o, "q", source),
        filled=field_decimal(o, "aq", source, default=ZERO),
        avg_price=None,
        price=None,
        stop_price=trigger if trigger > 0 else None,
        reduce_only=bool(o.get("R", False)),
        time_in_force=_TIF.get(str(o.get("f", "GTC")), TimeInForce.GTC),
        created=int(message.get("T", 0)),
        time=int(message.get("T", 0)),
        algo=True,
        reason=reason if status in ("REJECTED", "EXPIRED", "CANCELED") else None,
        trigger_rate=rate if rate > 0 else None,
    )


def order_update(message: Json) -> OrderUpdate:
    """An ``ORDER_TRADE_UPDATE`` event.

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "binance-usdm ORDER_TRADE_UPDATE"
    o = event_object(message, source)
    time = int(message.get("T", message.get("E", 0)))
    avg = field_decimal(o, "ap", source, default=ZERO)
    price = field_decimal(o, "p", source, default=ZERO)
    stop = field_decimal(o, "sp", source, default=ZERO)
    execution = field_text(o, "x", source)
    view = VenueOrder(
        client_id=field_text(o, "c", source),
        venue_order_id=field_text(o, "i", source),
        symbol=field_text(o, "s", source),
        side=_side(o, "S", source),
        type=_type(field_text(o, "o", source), source),
        status=_status(_STATUS, field_text(o, "X", source), source),
        qty=field_decimal(o, "q", source),
        filled=field_decimal(o, "z", source),
        avg_price=avg if avg > 0 else None,
        price=price if price > 0 else None,
        stop_price=stop if stop > 0 else None,
        reduce_only=bool(o.get("R", False)),
        time_in_force=_TIF.get(str(o.get("f", "GTC")), TimeInForce.GTC),
        created=time,
        time=time,
    )
    trade = None
    last = field_decimal(o, "l", source, default=ZERO)
    if execution in ("TRADE", "CALCULATED") and last > 0:
        trade = VenueTrade(
            trade_id=field_text(o, "t", source),
            client_id=view.client_id,
            venue_order_id=view.venue_order_id,
            symbol=view.symbol,
            qty=last,
            price=field_decimal(o, "L", source),
            fee=field_decimal(o, "n", source, default=ZERO),
            fee_asset=str(o.get("N") or ""),
            liquidity=Liquidity.MAKER if o.get("m") else Liquidity.TAKER,
            time=time,
            cum_qty=view.filled,
        )
    return OrderUpdate(execution, view, trade)


def user_trade(payload: Json) -> VenueTrade:
    """One trade of ``GET /fapi/v1/userTrades``.

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "binance-usdm userTrades"
    return VenueTrade(
        trade_id=field_text(payload, "id", source),
        client_id=None,
        venue_order_id=field_text(payload, "orderId", source),
        symbol=field_text(payload, "symbol", source),
        qty=field_decimal(payload, "qty", source),
        price=field_decimal(payload, "price", source),
        fee=field_decimal(payload, "commission", source, default=ZERO),
        fee_asset=str(payload.get("commissionAsset") or ""),
        liquidity=Liquidity.MAKER if payload.get("maker") else Liquidity.TAKER,
        time=int(payload.get("time", 0)),
    )


def to_order(view: VenueOrder, terms: Order | None = None, order_id: str | None = None) -> Order:
    """The domain order of ``view``: our ``terms`` (tag, links, exits, trailing offset) with
    the venue's state, or, for an order we did not place, its terms from the venue (a venue's
    own order tagged ``liquidation``); named ``order_id`` (default: the venue's client id)."""
    avg = view.avg_price
    if terms is not None:
        return terms.with_state(
            view.status, min(view.filled, terms.qty), avg, view.time, view.reason,
            view.venue_order_id,
        )  # fmt: skip
    offset = None
    stop = view.stop_price
    if view.type is OrderType.TRAILING_STOP:
        reference = stop or view.price or avg or Decimal(1)
        offset = reference * (view.trigger_rate or MIN_CALLBACK_RATE) / _HUNDRED
        stop = stop or reference
    return Order(
        id=order_id or view.client_id,
        symbol=view.symbol,
        side=view.side,
        type=view.type,
        qty=view.qty,
        created_time=view.created,
        price=view.price if view.type is OrderType.LIMIT else None,
        stop_price=stop if view.type.is_triggered else None,
        status=view.status,
        filled_qty=min(view.filled, view.qty),
        avg_fill_price=avg,
        updated_time=view.time,
        reduce_only=view.reduce_only or view.is_liquidation,
        tag=LIQUIDATION_TAG if view.is_liquidation else "external",
        reject_reason=view.reason,
        time_in_force=view.time_in_force if view.type is OrderType.LIMIT else TimeInForce.GTC,
        venue_order_id=view.venue_order_id,
        trailing_offset=offset,
    )


def _with_state(view: VenueOrder, triggered: VenueOrder) -> VenueOrder:
    """An algo order's terms with its triggered market order's state."""
    return VenueOrder(
        view.client_id, triggered.venue_order_id, view.symbol, view.side, view.type,
        triggered.status, view.qty, triggered.filled, triggered.avg_price, view.price,
        view.stop_price, view.reduce_only, view.time_in_force, view.created, triggered.time,
        True, triggered.reason, view.trigger_rate,
    )  # fmt: skip


def _side(payload: Json, key: str, source: str) -> Side:
    value = field_text(payload, key, source)
    if value not in ("BUY", "SELL"):
        raise DataError(f"field {key!r} is not BUY or SELL: {value!r}", source=source)
    return Side(value.lower())


def _type(value: str, source: str) -> OrderType:
    if value not in _TYPES:
        raise DataError(f"order type {value!r} is not one we trade", source=source)
    return _TYPES[value]


def _status(table: Mapping[str, OrderStatus], value: str, source: str) -> OrderStatus:
    if value not in table:
        raise DataError(f"unknown order status {value!r}", source=source)
    return table[value]
