"""The adaptive pipeline's view of a traded symbol."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.analysis_schemas import AnalysisOut, PipelineEventOut
from api.deps import (
    MAX_TIME_MS,
    CursorQuery,
    EndQuery,
    ServiceDep,
    StartQuery,
    SymbolQuery,
    check_range,
    invalid,
    set_next_cursor,
)
from api.errors import error_responses
from domain.analysis import snapshot
from domain.errors import DataError
from domain.symbols import venue_symbol

router = APIRouter(tags=["analysis"])


@router.get("/pipeline/events", responses=error_responses(400, 401, 422))
def list_pipeline_events(
    service: ServiceDep,
    response: Response,
    symbol: SymbolQuery = None,
    kind: Annotated[
        Literal["thresholds", "regime", "ml", "ml_error"] | None,
        Query(description="thresholds adjustments, regime changes, ML disablings or failures"),
    ] = None,
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[PipelineEventOut]:
    """The adaptive pipeline's history: every adjustment of a symbol's thresholds (old and new
    values with the volatility percentile behind them) and every change of its confirmed
    regime, newest first, filtered by symbol, kind and time (``start``/``end``, ms UTC
    inclusive); the ``X-Next-Cursor`` header reads the next (older) page. Empty for a
    strategy without an adaptive pipeline."""
    check_range(start, end)
    page = service.pipeline_events(
        symbol=symbol, kind=kind, start=start, end=end, limit=limit, cursor=cursor
    )
    set_next_cursor(response, page.next_cursor)
    return [
        PipelineEventOut(
            time=e.time,
            symbol=e.symbol,
            kind=e.kind,  # type: ignore[arg-type]
            values=dict(e.values),
            message=e.message,
        )
        for e in page.items
    ]


@router.get("/analysis/{symbol:path}", responses=error_responses(401, 404, 422))
def get_analysis(
    symbol: str,
    service: ServiceDep,
    at: Annotated[
        str | None,
        Query(
            max_length=40,
            description="ISO 8601 date/time (UTC when no offset is given): the last bar "
            "closed then; the last bar by default",
        ),
    ] = None,
) -> AnalysisOut:
    """What every component of the adaptive pipeline says about ``symbol`` (``BTCUSDT`` or
    ``BTC/USDT:USDT``) at the last bar closed at ``at``, from the bars the engine keeps:
    adaptive thresholds, regime, timeframe alignment, volume profile, allocation and the
    assembled signal with its reasons. 404 for a symbol not traded, 422 for a malformed
    ``at`` or one before the first bar kept."""
    try:
        venue = venue_symbol(symbol)
    except ValueError as exc:
        raise invalid("path", "symbol", str(exc), symbol) from None
    at_ms = None if at is None else _iso_ms(at)
    candles = service.recent_candles(venue)
    try:
        shot = snapshot(candles, venue, timeframe=service.engine.timeframe, at=at_ms)
    except DataError as exc:
        raise invalid("query", "at", exc.message, at) from None
    views = {v.symbol: v for v in service.pipeline_view()}
    view = views.get(venue)
    return AnalysisOut.model_validate(shot | {"features": None if view is None else view.features})


def _iso_ms(text: str) -> int:
    """``text`` (ISO 8601) as ms UTC; 422 naming ``at`` when it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        message = f"at must be an ISO 8601 date/time, was {text!r}"
        raise invalid("query", "at", message, text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms = int(moment.timestamp() * 1000)
    if not 0 <= ms <= MAX_TIME_MS:
        raise invalid("query", "at", f"at must be in 1970 to 9999, was {text!r}", text)
    return ms
