"""The price chart page (``/chart``, ``/chart/{symbol}``) and its data (issue 10, "Price chart").

Per traded symbol and timeframe (5m, 15m, 1h, 4h: the engine's 5m bars resampled): candlesticks
with volume (TradingView Lightweight Charts, vendored), zoom and pan, entry and exit markers of
the run's trades, lines at the open position's entry, stop, take-profit and liquidation prices,
and the volume profile's POC, VAH and VAL when the strategy's volume profile is on. The data
comes from ``/ui/chart/data`` (built in :mod:`web.chart_views` from the service the API uses).

The page follows the engine over the SSE stream (``/ui/stream?page=chart``): each ``status``
or ``orders`` event, at most one refresh per second (``web/static/chart.js``), fetches the bars
from the chart's last one on (``since``) and the markers and lines again. The data needs the
session cookie (401 without); the page without it shows the login form.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import MAX_TIME_MS, SESSION_COOKIE, ServiceDep, cookie_valid, require_session
from domain.errors import UnknownSymbol
from domain.symbols import venue_symbol
from service_layer.trading import TradingService
from web.chart_views import chart_context, page_context, timeframes_of
from web.views import NO_STORE, templates

chart = APIRouter(include_in_schema=False)
"""The page; :data:`partials` is included in it."""
partials = APIRouter(prefix="/ui/chart", dependencies=[Depends(require_session)])

Timeframe = Literal["5m", "15m", "1h", "4h"]
SymbolText = Annotated[str, Query(min_length=1, max_length=40)]


def _traded(service: TradingService, symbol: str) -> str:
    """``symbol`` as the venue writes it; UnknownSymbol (404, ``field="symbol"``) when it is no
    symbol or the run does not trade it."""
    try:
        venue = venue_symbol(symbol.strip())
    except ValueError as exc:
        raise UnknownSymbol(str(exc), field="symbol") from None
    if venue not in service.status().symbols:
        raise UnknownSymbol(f"{symbol!r} is not traded", field="symbol")
    return venue


def _page(
    request: Request, service: TradingService, symbol: str | None, timeframe: str | None
) -> Response:
    if not cookie_valid(request, request.cookies.get(SESSION_COOKIE)):
        return templates.TemplateResponse(
            request, "pages/login.html", {"error": None}, headers=NO_STORE
        )
    chosen = service.status().symbols[0] if symbol is None else _traded(service, symbol)
    tf = timeframe or next(iter(timeframes_of(service)), "5m")
    context = {"page": "chart"} | page_context(service, chosen, tf)
    return templates.TemplateResponse(request, "pages/chart.html", context, headers=NO_STORE)


@chart.get("/chart", response_class=HTMLResponse)
def chart_page(
    request: Request,
    service: ServiceDep,
    symbol: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    timeframe: Timeframe | None = None,
) -> Response:
    """The price chart of ``symbol`` (default: the first traded) on ``timeframe`` (default:
    the shortest the engine's bars allow: 5m), with a valid session cookie; else the login
    page. 404 for a symbol not traded, 422 for another timeframe."""
    return _page(request, service, symbol, timeframe)


@chart.get("/chart/{symbol}", response_class=HTMLResponse)
def chart_symbol_page(
    request: Request,
    service: ServiceDep,
    symbol: Annotated[str, Path(min_length=1, max_length=40)],
    timeframe: Timeframe | None = None,
) -> Response:
    """:func:`chart_page` of ``symbol`` (as the venue writes it: ``BTCUSDT``)."""
    return _page(request, service, symbol, timeframe)


@partials.get("/data")
def chart_data(
    service: ServiceDep,
    symbol: SymbolText,
    timeframe: Timeframe = "5m",
    since: Annotated[int | None, Query(ge=0, le=MAX_TIME_MS)] = None,
) -> JSONResponse:
    """The chart of ``symbol`` on ``timeframe``: ``{"symbol", "timeframe", "tf_s",
    "precision", "bars": [{"time": s, "open", "high", "low", "close", "volume"}], "markers":
    [{"time": s, "at": ms, "price", "side", "kind", "trade", "direction", ...}], "lines":
    [{"kind", "title", "price", "order"}], "levels": {"poc", "vah", "val"} | null, "profile",
    "position", "first_time", "last_time"}`` (:func:`web.chart_views.chart_context`): two
    weeks of closed bars, or with ``since`` (ms UTC) the bars opening from it on. 404 (field
    ``symbol``) when not traded, 422 (field ``timeframe``) for a timeframe other than 5m, 15m,
    1h and 4h."""
    context = chart_context(service, _traded(service, symbol), timeframe, since)
    return JSONResponse(context, headers=NO_STORE)


chart.include_router(partials)
