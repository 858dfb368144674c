"""The trade history page (``/trades``) and its partials (issue 10, "Trade history and analytics"
and "Performance attribution").

Every closed trade of the run, filtered by symbol, side, exit reason and a range of exit dates
(the form ``#trade-filters``; its values travel with every partial's request), paginated
(``/ui/trades/table?page=``, swapped by HTMX); the statistics and the PnL calendar
(``/ui/trades/stats?month=YYYY-MM``); the attribution table by a chosen dimension
(``/ui/trades/attribution?by=``); and the CSV export of the filtered trades
(``/ui/trades.csv``). The statistics and the attribution partials carry their charts' series as
JSON (drawdown and PnL bars; the attribution's bars), drawn by ``web/static/trades.js`` with
uPlot. The views are in :mod:`web.trades_views`. Without the session cookie the page shows the
login form and the partials answer 401; a bad filter answers 400 naming it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from api.deps import SESSION_COOKIE, ServiceDep, cookie_valid, require_session
from web.trades_views import (
    Filters,
    attribution_context,
    csv_lines,
    page_context,
    stats_context,
    table_context,
)
from web.views import NO_STORE, render, templates

trades = APIRouter(include_in_schema=False)
"""The page; :data:`partials` and the export are included in it."""
partials = APIRouter(prefix="/ui/trades", dependencies=[Depends(require_session)])
export = APIRouter(dependencies=[Depends(require_session)])

Text = Annotated[str, Query(max_length=40)]


def filters(
    symbol: Text = "", side: Text = "", exit_reason: Text = "", start: Text = "", end: Text = ""
) -> Filters:
    """The trade filters of a request, as given (checked when read)."""
    return Filters(symbol, side, exit_reason, start, end)


FiltersDep = Annotated[Filters, Depends(filters)]


def _html(template: str, context: dict[str, object]) -> HTMLResponse:
    return HTMLResponse(render(template, context).strip(), headers=NO_STORE)


@trades.get("/trades", response_class=HTMLResponse)
def trades_page(request: Request, service: ServiceDep, chosen: FiltersDep) -> Response:
    """Every trade with its filters, statistics, calendar, charts and attribution, with a
    valid session cookie; else the login page."""
    if not cookie_valid(request, request.cookies.get(SESSION_COOKIE)):
        return templates.TemplateResponse(
            request, "pages/login.html", {"error": None}, headers=NO_STORE
        )
    context = {"page": "trades"} | page_context(service, chosen)
    return templates.TemplateResponse(request, "pages/trades.html", context, headers=NO_STORE)


@partials.get("/table", response_class=HTMLResponse)
def table_partial(
    service: ServiceDep, chosen: FiltersDep, page: Annotated[int, Query(ge=1, le=1_000_000)] = 1
) -> HTMLResponse:
    """Page ``page`` of the filtered trades, newest first, with the pager."""
    return _html("partials/trades_table.html", table_context(service, chosen.query(), page))


@partials.get("/stats", response_class=HTMLResponse)
def stats_partial(service: ServiceDep, chosen: FiltersDep, month: Text = "") -> HTMLResponse:
    """The filtered trades' statistics and their PnL calendar of ``month`` (``YYYY-MM``;
    default: the month of the latest trade)."""
    context = stats_context(service, chosen.query(), month)
    return _html("partials/trades_stats.html", context)


@partials.get("/attribution", response_class=HTMLResponse)
def attribution_partial(
    service: ServiceDep, chosen: FiltersDep, by: Text = "strategy"
) -> HTMLResponse:
    """The filtered trades' PnL, count, win rate and profit factor per strategy, model,
    symbol, regime, exit reason, hour or weekday, with the bar chart's data."""
    context = attribution_context(service, chosen.query(), by)
    return _html("partials/trades_attribution.html", context)


@export.get("/ui/trades.csv")
def trades_csv(service: ServiceDep, chosen: FiltersDep) -> StreamingResponse:
    """The filtered trades as CSV (``text/csv``, one line per trade, newest first)."""
    lines = csv_lines(service, chosen.query())
    headers = NO_STORE | {"Content-Disposition": 'attachment; filename="trades.csv"'}
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=headers)


trades.include_router(partials)
trades.include_router(export)
