"""Account: positions, trades, equity, signals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ServiceDep
from api.schemas import equity_json, position_view_json, signal_json, trade_json

router = APIRouter(tags=["account"])


@router.get("/positions")
def positions(service: ServiceDep) -> list[dict]:
    """Open positions with mark price and unrealized PnL."""
    return [position_view_json(v) for v in service.positions()]


@router.get("/trades")
def trades(
    service: ServiceDep,
    symbol: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict]:
    """Closed round trips, newest first (``pnl`` net of fees)."""
    return [trade_json(t) for t in service.trades(symbol=symbol, limit=limit)]


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
    symbol: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict]:
    """Strategy signals with their reasons, newest first."""
    return [signal_json(s) for s in service.signals(symbol=symbol, limit=limit)]
