"""Market data: closed candles of the traded symbols."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ServiceDep
from api.schemas import candles_json

router = APIRouter(tags=["market"])


@router.get("/candles")
def candles(
    service: ServiceDep,
    symbol: Annotated[str, Query(min_length=1, max_length=40)],
    timeframe: Annotated[str | None, Query(pattern=r"^\d+[mhdw]$")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict]:
    """The last ``limit`` closed bars (``open_time`` ms UTC); 404 for an unknown symbol."""
    return candles_json(service.candles(symbol, timeframe, limit))
