"""Account: positions, trades, equity, signals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import (
    MAX_TIME_MS,
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
    EquityOut,
    PositionOut,
    SignalOut,
    TradeOut,
    equity_out,
    position_view_out,
    signal_out,
    trade_out,
)

router = APIRouter(tags=["account"])


@router.get("/positions", responses=error_responses(401, 422))
async def list_positions(service: ServiceDep, n: NumbersDep) -> list[PositionOut]:
    """Open positions with mark price and unrealized PnL (from the engine's last-bar snapshot,
    on the event loop: it never waits for the engine)."""
    return [position_view_out(v, n) for v in service.positions()]


@router.get("/trades", responses=error_responses(400, 401, 422))
def list_trades(
    service: ServiceDep,
    n: NumbersDep,
    response: Response,
    symbol: SymbolQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[TradeOut]:
    """Closed round trips, newest first (``pnl`` net of fees), filtered by symbol and exit
    time (``start``/``end``, ms UTC inclusive); the ``X-Next-Cursor`` header reads the next
    (older) page."""
    check_range(start, end)
    page = service.trades(symbol=symbol, start=start, end=end, limit=limit, cursor=cursor)
    set_next_cursor(response, page.next_cursor)
    return [trade_out(x, n) for x in page.items]


@router.get("/equity", responses=error_responses(400, 401, 422))
def list_equity(
    service: ServiceDep,
    n: NumbersDep,
    response: Response,
    start: StartQuery = None,
    end: EndQuery = None,
    since: Annotated[
        int | None,
        Query(ge=0, le=MAX_TIME_MS, deprecated=True, description="Same as start (ms UTC)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    cursor: CursorQuery = None,
) -> list[EquityOut]:
    """The latest ``limit`` equity snapshots at bar closes from ``start`` to ``end`` (ms UTC
    inclusive), oldest first; the ``X-Next-Cursor`` header reads the older page before them."""
    start = start if start is not None else since
    check_range(start, end)
    page = service.equity_page(start=start, end=end, limit=limit, cursor=cursor)
    set_next_cursor(response, page.next_cursor)
    return [equity_out(p, n) for p in page.items]


@router.get("/signals", responses=error_responses(400, 401, 422))
def list_signals(
    service: ServiceDep,
    response: Response,
    symbol: SymbolQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[SignalOut]:
    """Strategy signals with their reasons, newest first, filtered by symbol and bar time
    (``start``/``end``, ms UTC inclusive); the ``X-Next-Cursor`` header reads the next
    (older) page."""
    check_range(start, end)
    page = service.signals(symbol=symbol, start=start, end=end, limit=limit, cursor=cursor)
    set_next_cursor(response, page.next_cursor)
    return [signal_out(x) for x in page.items]
