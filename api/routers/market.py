"""Market data: closed candles of the traded symbols."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import (
    SYMBOL_PATTERN,
    CursorQuery,
    EndQuery,
    NumbersDep,
    ServiceDep,
    StartQuery,
    check_range,
    invalid,
    set_next_cursor,
    symbol_query,
)
from api.errors import error_responses
from api.schemas import CandleOut, candles_out
from domain.errors import ConfigError
from domain.timeframes import timeframe_ms

router = APIRouter(tags=["market"])

_TIMEFRAME_DOC = (
    "5m, 15m, 1h, 4h, 1d…: a multiple of the engine's bar timeframe (the default), "
    "resampled from its bars"
)


@router.get("/candles", responses=error_responses(400, 401, 404, 422))
def list_candles(
    service: ServiceDep,
    n: NumbersDep,
    response: Response,
    symbol: Annotated[
        str,
        Query(
            min_length=1,
            max_length=40,
            pattern=SYMBOL_PATTERN,
            description="BTCUSDT or BTC/USDT:USDT",
        ),
    ],
    timeframe: Annotated[
        str | None,
        Query(description=_TIMEFRAME_DOC),
    ] = None,
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    cursor: CursorQuery = None,
) -> list[CandleOut]:
    """The last ``limit`` closed bars with ``start <= open_time <= end`` (ms UTC), oldest
    first, from the engine's recent window; the ``X-Next-Cursor`` header reads the older page.
    404 for an unknown symbol."""
    venue = symbol_query(symbol) or symbol
    check_range(start, end)
    tf = timeframe or service.engine.timeframe
    try:
        tf_ms = timeframe_ms(tf)
    except ConfigError as exc:
        raise invalid("query", "timeframe", exc.message, timeframe) from None
    if tf_ms % service.engine.tf_ms:
        message = f"{tf} is not a multiple of the engine's {service.engine.timeframe} bars"
        raise invalid("query", "timeframe", message, timeframe)
    page = service.candles(venue, tf, limit, start=start, end=end, cursor=cursor)
    set_next_cursor(response, page.next_cursor)
    return candles_out(venue, tf, tf_ms, page.candles, n)
