"""The adaptive-pipeline page (``/analysis``) and its partials (issue 6, "Surfaces").

Per traded symbol: the regime, the adaptive thresholds, the timeframe alignment, the volume
profile and the assembled signal with its reasons (``/ui/analysis/symbol/{symbol}``), and a
candlestick chart with the POC, VAH and VAL drawn as price lines, fed by
``/ui/analysis/symbol/{symbol}/chart.json``; the portfolio's PnL per symbol, correlation matrix
and diversification ratio (``/ui/analysis/portfolio``); each feature's state
(``/ui/analysis/features``). The views are built in :mod:`web.analysis_views` from the same
service and the same snapshot as ``GET /api/v1/analysis/{symbol}``.

The page shows the engine status over the SSE stream (``/ui/stream?page=analysis``); each
status event, at most one refresh per couple of seconds (``web/static/analysis.js``), reloads
the partials and the charts. The partials and the chart need the session cookie (401
without); the page without it shows the login form.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import SESSION_COOKIE, ServiceDep, cookie_valid, require_session
from domain.errors import UnknownSymbol
from domain.symbols import venue_symbol
from web.analysis_views import (
    chart_context,
    features_context,
    page_context,
    portfolio_context,
    symbol_context,
)
from web.views import NO_STORE, render, templates

analysis = APIRouter(include_in_schema=False)
"""The page; :data:`partials` is included in it."""
partials = APIRouter(prefix="/ui/analysis", dependencies=[Depends(require_session)])


@analysis.get("/analysis", response_class=HTMLResponse)
def analysis_page(request: Request, service: ServiceDep) -> Response:
    """The adaptive pipeline of every traded symbol, the portfolio and the features' states,
    with a valid session cookie; else the login page."""
    if not cookie_valid(request, request.cookies.get(SESSION_COOKIE)):
        return templates.TemplateResponse(
            request, "pages/login.html", {"error": None}, headers=NO_STORE
        )
    context = {"page": "analysis"} | page_context(service)
    return templates.TemplateResponse(request, "pages/analysis.html", context, headers=NO_STORE)


def _venue(symbol: str) -> str:
    """``symbol`` as the venue writes it (:func:`~domain.symbols.venue_symbol`); UnknownSymbol
    (404) when it is no symbol."""
    try:
        return venue_symbol(symbol)
    except ValueError as exc:
        raise UnknownSymbol(str(exc), field="symbol") from None


def _partial(template: str, context: dict[str, Any]) -> HTMLResponse:
    return HTMLResponse(render(template, context).strip(), headers=NO_STORE)


@partials.get("/symbol/{symbol}", response_class=HTMLResponse)
def symbol_partial(symbol: str, service: ServiceDep) -> HTMLResponse:
    """The pipeline of ``symbol`` (as the venue writes it: ``BTCUSDT``) at its last bar:
    regime, thresholds, timeframe alignment, volume profile, signal and reasons. 404 when not
    traded."""
    return _partial("partials/pipeline_symbol.html", symbol_context(service, _venue(symbol)))


@partials.get("/symbol/{symbol}/chart.json")
def chart_json(symbol: str, service: ServiceDep) -> JSONResponse:
    """The price chart of ``symbol``: ``{"symbol", "bars": [{"time": s, "open", "high",
    "low", "close", "volume"}, ...], "levels": {"poc", "vah", "val"} | null, "precision"}``,
    the last :data:`~web.analysis_views.CHART_BARS` bars, oldest first, times in seconds UTC.
    404 when not traded."""
    return JSONResponse(chart_context(service, _venue(symbol)), headers=NO_STORE)


@partials.get("/portfolio", response_class=HTMLResponse)
def portfolio_partial(service: ServiceDep) -> HTMLResponse:
    """Realized, unrealized and total PnL per symbol and in all; the correlation matrix of the
    traded symbols' hourly log returns; the diversification ratio of the open positions."""
    return _partial("partials/pipeline_portfolio.html", portfolio_context(service))


@partials.get("/features", response_class=HTMLResponse)
def features_partial(service: ServiceDep) -> HTMLResponse:
    """Each feature of each symbol's pipeline: on, off or failed, with its failures so far
    (or why there is none: a strategy without an adaptive pipeline)."""
    return _partial("partials/pipeline_features.html", features_context(service))


analysis.include_router(partials)
