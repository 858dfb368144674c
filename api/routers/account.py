"""Account: positions, trades, equity, signals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CursorQuery, ServiceDep, set_next_cursor
from api.schemas import equity_json, position_view_json, signal_json, trade_json

router = APIRouter(tags=["account"])


@router.get("/positions")
async def positions(service: ServiceDep) -> list[dict]:
    """Open positions with mark price and unrealized PnL (from the engine's last-bar snapshot,
    on the event loop: it never waits for the engine)."""
    return [position_view_json(v) for v in service.positions()]


@router.get("/trades")
def trades(
    service: ServiceDep,
    response: Response,
    symbol: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[dict]:
    """Closed round trips, newest first (``pnl`` net of fees); the ``X-Next-Cursor`` header
    reads the next (older) page."""
    page = service.trades(symbol=symbol, limit=limit, cursor=cursor)
    set_next_cursor(response, page.next_cursor)
    return [trade_json(x) for x in page.items]


@router.get("/equity")
def equity(
    service: ServiceDep,
    since: Annotated[int | None, Query(ge=0, description="ms UTC")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[dict]:
    """Equity snapshots at bar closes, oldest first."""
    return [equity_json(p) for p in service.equity(since_ms=since, limit=limit)]


@router.get("/signals")
def signals(
    service: ServiceDep,
    response: Response,
    symbol: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[dict]:
    """Strategy signals with their reasons, newest first; the ``X-Next-Cursor`` header reads
    the next (older) page."""
    page = service.signals(symbol=symbol, limit=limit, cursor=cursor)
    set_next_cursor(response, page.next_cursor)
    return [signal_json(x) for x in page.items]
