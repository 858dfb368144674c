"""Orders and fills: place (every order type, brackets; idempotent by client order id), list,
get (by id or client order id), modify, cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from api.deps import (
    CursorQuery,
    EndQuery,
    NumbersDep,
    ServiceDep,
    StartQuery,
    SymbolQuery,
    check_range,
    set_next_cursor,
)
from api.errors import error_responses
from api.schemas import (
    CCXT_STATUS,
    BracketIn,
    BracketOut,
    FillOut,
    OrderIn,
    OrderModifyIn,
    OrderOut,
    bracket_out,
    fill_out,
    order_out,
)
from domain.model import OrderStatus, OrderType, Side, TimeInForce
from domain.strategies.base import OrderIntent
from service_layer.order_requests import BracketRequest

router = APIRouter(tags=["orders"])

_BY_NAME: dict[str, frozenset[OrderStatus]] = {s.value: frozenset({s}) for s in OrderStatus} | {
    ccxt: frozenset(s for s, c in CCXT_STATUS.items() if c == ccxt) for ccxt in ("open", "closed")
}
"""Each accepted ``status`` name → the statuses it selects (ccxt's ``open`` and ``closed`` name
groups; its ``canceled``, ``rejected`` and ``expired`` are ours)."""

StatusName = Literal[
    "pending_new", "new", "partially_filled", "filled", "pending_cancel", "canceled",
    "rejected", "expired", "open", "closed",
]  # fmt: skip
"""Our statuses and ccxt's names for groups of them."""

StatusQuery = Annotated[
    list[StatusName] | None,
    Query(
        description="Only orders in these statuses (repeat the parameter for several): our "
        f"names ({', '.join(s.value for s in OrderStatus)}) or ccxt's (open = every live "
        "state, closed = filled).",
    ),
]


_AGAIN = (
    "The {what} placed before with this `client_order_id` and the same terms (nothing was "
    "sent again)"
)
"""The 200 answer of a repeated placement."""


def _statuses(names: list[StatusName] | None) -> frozenset[OrderStatus] | None:
    if not names:
        return None
    chosen: frozenset[OrderStatus] = frozenset()
    for name in names:
        chosen |= _BY_NAME[name]
    return chosen


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": OrderOut, "description": _AGAIN.format(what="order")},
        **error_responses(400, 401, 404, 409, 422),
    },
)
def place_order(body: OrderIn, service: ServiceDep, n: NumbersDep, response: Response) -> OrderOut:
    """Place an order (201); it fills on the next bars: market at the next open ± slippage,
    limit at ``price`` or better, stop, take-profit and trailing stop at market once
    triggered. Quantities in base asset; prices, stop prices and the trailing offset in quote
    currency.

    Idempotent by ``client_order_id``: sent again with the same terms, the answer is the order
    placed first (200), never a second order.

    400 invalid for the instrument (qty step, tick, min notional; a reduce-only order that
    would not reduce the position), 404 unknown symbol, 409 ``duplicate_order`` when
    ``client_order_id`` names an order with other terms, or ``order_rejected`` when the venue
    rejected it (the body's ``order_id`` is the stored rejected order, ``reason`` the venue's
    reason), 422 a term the type does not take or lacks (``field`` names it).
    """
    placed = service.desk.place(
        OrderIntent(
            symbol=body.symbol,
            side=Side(body.side),
            qty=body.qty,
            type=OrderType(body.type),
            price=body.price,
            stop_price=body.stop_price,
            trailing_offset=body.trailing_offset,
            reduce_only=body.reduce_only,
            time_in_force=TimeInForce(body.time_in_force),
            link_id=body.link_id,
        ),
        body.client_order_id,
    )
    if not placed.created:
        response.status_code = status.HTTP_200_OK
    return order_out(placed.order, n)


@router.post(
    "/orders/bracket",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": BracketOut, "description": _AGAIN.format(what="bracket")},
        **error_responses(400, 401, 404, 409, 422),
    },
)
def place_bracket(
    body: BracketIn, service: ServiceDep, n: NumbersDep, response: Response
) -> BracketOut:
    """Place an entry with a stop-loss and a take-profit attached (201). When the entry has
    filled completely, both exits are placed at once: reduce-only, for the whole quantity,
    linked to the entry (``link_id`` = its ``id``) and one cancels the other (the stop filling
    cancels the take-profit; the take-profit closing the position cancels the stop). Each exit
    is priced at the distance from the entry's price (the limit price, or the last close for a
    market entry) that the request's ``stop_price`` has, counted from the entry's average fill
    price. Quantities in base asset, prices in quote currency.

    The answer holds the entry and its exits (null until placed: read them again with
    ``GET /orders/bracket/{entry_id}``). Idempotent by ``client_order_id`` as ``POST /orders``
    (200 with the bracket placed first).

    400 invalid for the instrument, or an exit off the tick or on the wrong side of the
    entry's price (``field`` ``stop_loss.stop_price`` / ``take_profit.stop_price``), 404
    unknown symbol, 409 ``duplicate_order`` or ``order_rejected`` as ``POST /orders``.
    """
    bracket = service.desk.place_bracket(
        BracketRequest(
            symbol=body.symbol,
            side=Side(body.side),
            qty=body.qty,
            price=body.price,
            stop_loss=body.stop_loss.stop_price,
            take_profit=body.take_profit.stop_price,
        ),
        body.client_order_id,
    )
    if not bracket.created:
        response.status_code = status.HTTP_200_OK
    return bracket_out(bracket, n)


@router.get("/orders/bracket/{entry_id}", responses=error_responses(401, 404))
def get_bracket(entry_id: str, service: ServiceDep, n: NumbersDep) -> BracketOut:
    """The bracket whose entry order is ``entry_id``, with its exits once placed (null
    before); 404 when unknown or not a bracket's entry."""
    return bracket_out(service.desk.bracket(entry_id), n)


@router.get("/orders", responses=error_responses(400, 401, 422))
def list_orders(
    service: ServiceDep,
    n: NumbersDep,
    response: Response,
    symbol: SymbolQuery = None,
    status: StatusQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[OrderOut]:
    """Orders, newest first, filtered by symbol, status and creation time (``start``/``end``,
    ms UTC inclusive); the ``X-Next-Cursor`` header reads the next (older) page."""
    check_range(start, end)
    page = service.orders(
        symbol=symbol,
        statuses=_statuses(status),
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
    )
    set_next_cursor(response, page.next_cursor)
    return [order_out(o, n) for o in page.items]


@router.get("/orders/by-client-id/{client_order_id}", responses=error_responses(401, 404))
def get_order_by_client_id(client_order_id: str, service: ServiceDep, n: NumbersDep) -> OrderOut:
    """The order with ``client_order_id`` (the id given when placing it, or the strategy's
    deterministic id); 404 when unknown."""
    return order_out(service.get_order(client_order_id), n)


@router.get("/orders/{order_id}", responses=error_responses(401, 404))
def get_order(order_id: str, service: ServiceDep, n: NumbersDep) -> OrderOut:
    """One order by its ``id``; 404 when unknown."""
    return order_out(service.get_order(order_id), n)


@router.patch("/orders/{order_id}", responses=error_responses(400, 401, 404, 409, 422))
def modify_order(
    order_id: str, body: OrderModifyIn, service: ServiceDep, n: NumbersDep
) -> OrderOut:
    """Amend a working order: its ``qty`` (base asset, more than has filled), limit ``price``
    or ``stop_price`` (quote currency); the order after the change.

    400 a term the order does not have, or the instrument's rules refuse the new value (tick,
    lot step, min notional), 404 unknown order, 409 ``order_not_cancelable`` when it is
    already final, ``order_rejected`` when the venue refuses the change (``reason`` says why,
    e.g. a qty not above what has filled; the order is unchanged), 422 an empty body or an
    unknown field.
    """
    return order_out(
        service.desk.modify_order(
            order_id, qty=body.qty, price=body.price, stop_price=body.stop_price
        ),
        n,
    )


@router.delete("/orders/{order_id}", responses=error_responses(401, 404, 409))
def cancel_order(order_id: str, service: ServiceDep, n: NumbersDep) -> OrderOut:
    """Cancel an open order; 404 when unknown, 409 when already final."""
    return order_out(service.desk.cancel_order(order_id), n)


@router.get("/fills", responses=error_responses(400, 401, 422))
def list_fills(
    service: ServiceDep,
    n: NumbersDep,
    response: Response,
    symbol: SymbolQuery = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[FillOut]:
    """Fills, newest first, filtered by symbol, order and time (``start``/``end``, ms UTC
    inclusive); the ``X-Next-Cursor`` header reads the next (older) page."""
    check_range(start, end)
    page = service.fills(
        symbol=symbol, order_id=order_id, start=start, end=end, limit=limit, cursor=cursor
    )
    set_next_cursor(response, page.next_cursor)
    return [fill_out(f, n) for f in page.items]
