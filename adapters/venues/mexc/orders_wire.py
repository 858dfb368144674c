"""Our orders and MEXC futures' order JSON, both ways; the JSON never leaves this package.

Quantities: MEXC counts ``vol`` in contracts of the contract's ``contractSize`` (base asset;
0.0001 BTC for ``BTC_USDT``), ours in base asset; an order whose qty is not a whole number of
contracts is refused here. Orders go to ``POST /api/v1/private/order/create`` (the endpoint
ccxt's ``create_order`` and the order-entry probe use) with our client id as ``externalOid``,
one-way mode: ``side`` 1 open long, 3 open short, 2 close short (a reduce-only buy), 4 close
long (a reduce-only sell); ``type`` 1 limit, 2 post only, 3 IOC, 4 FOK, 5 market. Stop-market
and take-profit-market orders are MEXC plan orders (``POST /api/v1/private/planorder/place``,
market on trigger, on the last price, valid 7 days), which carry no client id: MEXC knows them
by its own id only. Answers (REST and the private websocket's ``push.personal.order``,
``push.personal.order.deal``, ``push.personal.plan.order``) become the venue-neutral
:class:`~adapters.venues.binance_usdm.orders_wire.VenueOrder` and ``VenueTrade`` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters.venues.binance_usdm.orders_wire import VenueOrder, VenueTrade
from adapters.venues.binance_usdm.wire_fields import Json, field_decimal, field_text
from adapters.venues.mexc.market_data import Contract
from domain.errors import DataError, InvalidOrder
from domain.margin import MarginMode
from domain.model import (
    ZERO,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from domain.ports import Balance

ORDER_TYPES = {
    TimeInForce.GTC: 1,
    TimeInForce.POST_ONLY: 2,
    TimeInForce.IOC: 3,
    TimeInForce.FOK: 4,
}
"""A limit order's MEXC ``type`` by our time in force."""
MARKET = 5
_TIF = {code: tif for tif, code in ORDER_TYPES.items()}
_OPEN_TYPES = {MarginMode.ISOLATED: 1, MarginMode.CROSS: 2}


def open_type(margin_mode: MarginMode) -> int:
    """MEXC's ``openType`` of ``margin_mode``: 1 isolated, 2 cross."""
    return _OPEN_TYPES[margin_mode]


_STATES = {1: OrderStatus.NEW, 2: OrderStatus.NEW, 3: OrderStatus.FILLED, 4: OrderStatus.CANCELED}
"""Order ``state``: 1 uninformed, 2 uncompleted, 3 completed, 4 cancelled (5 invalid:
rejected)."""
_PLAN_STATES = {1: OrderStatus.NEW, 2: OrderStatus.CANCELED, 3: OrderStatus.NEW}
"""Plan order ``state``: 1 untriggered, 2 cancelled, 3 executed (its order takes over); 4
invalid and 5 execution failed end it (expired)."""
PLAN_EXECUTE_CYCLE = 2
"""A plan order's validity: 2 = 7 days (MEXC's longest)."""


def _side_code(side: Side, reduce_only: bool) -> int:
    if side is Side.BUY:
        return 2 if reduce_only else 1
    return 4 if reduce_only else 3


def _side(code: int) -> tuple[Side, bool]:
    """Our side and reduce-only flag of MEXC's ``side``."""
    return (Side.BUY if code in (1, 2) else Side.SELL), code in (2, 4)


def contracts(qty: Decimal, contract: Contract) -> int:
    """``qty`` (base asset) in whole contracts.

    Raises
    ------
    InvalidOrder
        (``field="qty"``) When ``qty`` is not a whole, positive number of contracts.
    """
    count = qty / contract.size
    if count != count.to_integral_value() or count < 1:
        raise InvalidOrder(
            f"qty {qty} is not a whole number of {contract.id} contracts of {contract.size}",
            field="qty",
        )
    return int(count)


def order_params(
    order: Order, contract: Contract, client_id: str, margin_mode: MarginMode
) -> dict[str, Any]:
    """The JSON body of ``order/create`` for a market or limit ``order`` sent as ``client_id``.

    Raises
    ------
    InvalidOrder
        A qty that is not a whole number of contracts.
    """
    params: dict[str, Any] = {
        "symbol": contract.id,
        "vol": contracts(order.qty, contract),
        "side": _side_code(order.side, order.reduce_only),
        "openType": _OPEN_TYPES[margin_mode],
        "externalOid": client_id,
    }
    if order.type is OrderType.LIMIT:
        assert order.price is not None
        params["type"] = ORDER_TYPES[order.time_in_force]
        params["price"] = float(order.price)
    else:
        params["type"] = MARKET
    return params


def _trigger_type(side: Side, type_: OrderType) -> int:
    """1 (last price ≥ trigger) for a buy stop or a sell take-profit, else 2 (≤)."""
    rising = (side is Side.BUY) == (type_ is OrderType.STOP)
    return 1 if rising else 2


def plan_params(order: Order, contract: Contract, margin_mode: MarginMode) -> dict[str, Any]:
    """The JSON body of ``planorder/place`` for a stop or take-profit ``order``.

    Raises
    ------
    InvalidOrder
        A trailing stop (MEXC's plan orders do not trail) or a qty that is not a whole number
        of contracts.
    """
    if order.type not in (OrderType.STOP, OrderType.TAKE_PROFIT):
        raise InvalidOrder(f"MEXC has no {order.type} plan order", field="type")
    assert order.stop_price is not None
    return {
        "symbol": contract.id,
        "vol": contracts(order.qty, contract),
        "side": _side_code(order.side, order.reduce_only),
        "openType": _OPEN_TYPES[margin_mode],
        "triggerPrice": float(order.stop_price),
        "triggerType": _trigger_type(order.side, order.type),
        "executeCycle": PLAN_EXECUTE_CYCLE,
        "orderType": MARKET,
        "trend": 1,
    }


def _int(payload: Json, key: str, source: str) -> int:
    value = field_decimal(payload, key, source)
    return int(value)


def order_view(payload: Json, contract: Contract) -> VenueOrder:
    """An order of ``order/external/...``, ``order/get/...``, ``order/list/open_orders`` or
    a ``push.personal.order``'s data (``externalOid`` is the client id; "" when none).

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "mexc order"
    state = _int(payload, "state", source)
    side, reduce_only = _side(_int(payload, "side", source))
    kind = _int(payload, "orderType", source)
    filled = field_decimal(payload, "dealVol", source, default=ZERO) * contract.size
    avg = field_decimal(payload, "dealAvgPrice", source, default=ZERO)
    price = field_decimal(payload, "price", source, default=ZERO)
    status = _STATES.get(state, OrderStatus.REJECTED)
    if status is OrderStatus.NEW and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    error = int(payload.get("errorCode") or 0)
    return VenueOrder(
        client_id=str(payload.get("externalOid") or ""),
        venue_order_id=field_text(payload, "orderId", source),
        symbol=contract.symbol,
        side=side,
        type=OrderType.MARKET if kind in (5, 6) else OrderType.LIMIT,
        status=status,
        qty=field_decimal(payload, "vol", source) * contract.size,
        filled=filled,
        avg_price=avg if avg > 0 else None,
        price=price if price > 0 and kind not in (5, 6) else None,
        stop_price=None,
        reduce_only=reduce_only,
        time_in_force=_TIF.get(kind, TimeInForce.GTC),
        created=_int(payload, "createTime", source),
        time=_int(payload, "updateTime", source),
        reason=f"MEXC error code {error}" if error else None,
    )


def plan_view(payload: Json, contract: Contract, client_id: str) -> VenueOrder:
    """A plan order of ``planorder/list/orders`` or a ``push.personal.plan.order``'s data,
    known to us as ``client_id``.

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "mexc plan order"
    state = _int(payload, "state", source)
    side, reduce_only = _side(_int(payload, "side", source))
    rising = _int(payload, "triggerType", source) == 1
    stop = (side is Side.BUY) == rising
    status = _PLAN_STATES.get(state, OrderStatus.EXPIRED)
    error = int(payload.get("errorCode") or 0)
    return VenueOrder(
        client_id=client_id,
        venue_order_id=field_text(payload, "id", source),
        symbol=contract.symbol,
        side=side,
        type=OrderType.STOP if stop else OrderType.TAKE_PROFIT,
        status=status,
        qty=field_decimal(payload, "vol", source) * contract.size,
        filled=ZERO,
        avg_price=None,
        price=None,
        stop_price=field_decimal(payload, "triggerPrice", source),
        reduce_only=reduce_only,
        time_in_force=TimeInForce.GTC,
        created=_int(payload, "createTime", source),
        time=_int(payload, "updateTime", source),
        algo=True,
        reason=f"MEXC plan order ended (state {state}, code {error})" if state > 3 else None,
    )


def triggered_order_id(payload: Json) -> str | None:
    """The id of the order an executed plan order placed (None until it has)."""
    value = payload.get("orderId")
    return str(value) if value not in (None, "", 0, "0") else None


def plan_matches(payload: Json, params: Mapping[str, Any], since_ms: int) -> bool:
    """Whether the untriggered plan order ``payload`` is the one ``params`` placed at or after
    ``since_ms`` (venue time): same contract, side, volume, trigger price and direction."""
    return (
        payload.get("symbol") == params["symbol"]
        and int(payload.get("side", 0)) == params["side"]
        and Decimal(str(payload.get("vol", 0))) == params["vol"]
        and Decimal(str(payload.get("triggerPrice", 0))) == Decimal(str(params["triggerPrice"]))
        and int(payload.get("triggerType", 0)) == params["triggerType"]
        and int(payload.get("createTime", 0)) >= since_ms
    )


def deal(payload: Json, contract: Contract) -> VenueTrade:
    """A fill of ``push.personal.order.deal`` or ``order/deal_details/{order_id}``.

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "mexc deal"
    return VenueTrade(
        trade_id=field_text(payload, "id", source),
        client_id=str(payload.get("externalOid") or "") or None,
        venue_order_id=field_text(payload, "orderId", source),
        symbol=contract.symbol,
        qty=field_decimal(payload, "vol", source) * contract.size,
        price=field_decimal(payload, "price", source),
        fee=field_decimal(payload, "fee", source, default=ZERO),
        fee_asset=str(payload.get("feeCurrency") or ""),
        liquidity=Liquidity.TAKER
        if payload.get("taker", payload.get("isTaker"))
        else Liquidity.MAKER,
        time=_int(payload, "timestamp", source),
    )


def position(payload: Json, contract: Contract) -> Position:
    """A position of ``position/open_positions`` (``positionType`` 1 long, 2 short).

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "mexc position"
    qty = field_decimal(payload, "holdVol", source) * contract.size
    if _int(payload, "positionType", source) == 2:
        qty = -qty
    opened = payload.get("createTime")
    return Position(
        contract.symbol,
        qty,
        field_decimal(payload, "holdAvgPrice", source),
        int(opened) if opened else None,
    )


def balance(assets: Any, asset: str) -> Balance:
    """``asset``'s balance in ``account/assets``: ``equity`` (wallet + unrealized PnL) and
    the wallet, ``equity`` − ``unrealized``.

    Raises
    ------
    DataError
        No such asset, or a field missing or not a number.
    """
    source = "mexc account assets"
    if not isinstance(assets, list):
        raise DataError(f"expected a list of assets, got {assets!r:.200}", source=source)
    for row in assets:
        if isinstance(row, Mapping) and row.get("currency") == asset:
            equity = field_decimal(row, "equity", source)
            unrealized = field_decimal(row, "unrealized", source, default=ZERO)
            return Balance(asset, equity - unrealized, equity)
    raise DataError(f"no {asset} in the account's assets", source=source)
