"""Orders and fills: place, list, get (by id or client order id), cancel."""

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
from api.schemas import CCXT_STATUS, FillOut, OrderIn, OrderOut, fill_out, order_out
from domain.model import OrderStatus, OrderType, Side

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
    responses=error_responses(400, 401, 404, 409, 422),
)
def place_order(body: OrderIn, service: ServiceDep, n: NumbersDep) -> OrderOut:
    """Place an order; it fills on the next bars (market: next open ± slippage).

    400 invalid for the instrument (qty step, tick, min notional), 404 unknown symbol,
    409 duplicate ``client_order_id`` or an order the venue rejected (``order_rejected``: the
    body's ``order_id`` is the stored rejected order, ``reason`` the venue's reason).
    """
    order = service.place_order(
        symbol=body.symbol,
        side=Side(body.side),
        type=OrderType(body.type),
        qty=body.qty,
        price=body.price,
        stop_price=body.stop_price,
        client_order_id=body.client_order_id,
    )
    return order_out(order, n)


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


@router.delete("/orders/{order_id}", responses=error_responses(401, 404, 409))
def cancel_order(order_id: str, service: ServiceDep, n: NumbersDep) -> OrderOut:
    """Cancel an open order; 404 when unknown, 409 when already final."""
    return order_out(service.cancel_order(order_id), n)


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
