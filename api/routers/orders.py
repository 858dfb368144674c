"""Orders: place, list, get, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import CursorQuery, ServiceDep, set_next_cursor
from api.schemas import OrderIn, order_json
from domain.model import OrderType, Side

router = APIRouter(tags=["orders"])


@router.post("/orders", status_code=status.HTTP_201_CREATED)
def place_order(body: OrderIn, service: ServiceDep) -> dict:
    """Place an order; it fills on the next bars (market: next open ± slippage).

    400 invalid for the instrument (qty step, tick, min notional), 404 unknown symbol,
    409 insufficient margin or duplicate ``client_order_id``.
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
    return order_json(order)


@router.get("/orders")
def list_orders(
    service: ServiceDep,
    response: Response,
    symbol: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[dict]:
    """Orders, newest first; the ``X-Next-Cursor`` header reads the next (older) page."""
    page = service.orders(symbol=symbol, limit=limit, cursor=cursor)
    set_next_cursor(response, page.next_cursor)
    return [order_json(o) for o in page.items]


@router.get("/orders/{order_id}")
def get_order(order_id: str, service: ServiceDep) -> dict:
    """One order; 404 when unknown."""
    return order_json(service.get_order(order_id))


@router.delete("/orders/{order_id}")
def cancel_order(order_id: str, service: ServiceDep) -> dict:
    """Cancel an open order; 404 when unknown, 409 when already final."""
    return order_json(service.cancel_order(order_id))
