"""The web control panel: login, the dashboard, the control centre (its routes in
:mod:`web.control`), their HTMX partials and their SSE streams.

Pages are rendered on the server with Jinja2; HTMX loads and swaps the partials, and the htmx
SSE extension swaps the panels that :mod:`web.stream` re-renders as the engine runs. The panel
authenticates with the session cookie set at login (an HMAC of the API token, never the token
itself; HttpOnly, SameSite=Strict, so other sites can neither read it nor post with it).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Form, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.deps import (
    SESSION_COOKIE,
    HubDep,
    ServiceDep,
    cookie_valid,
    require_session,
    session_value,
    token_matches,
)
from domain.errors import DomainError
from service_layer.trading import TradingService
from web.ai_routes import ai
from web.analysis_routes import analysis
from web.backtest_routes import backtests
from web.chart_routes import chart as price_chart
from web.control import control
from web.stream import event_stream
from web.trades_routes import trades
from web.views import (
    ALERTS_SHOWN,
    CONTROL_PANELS,
    DASHBOARD_PANELS,
    EQUITY_POINTS,
    NO_STORE,
    STATIC_DIR,
    equity_series,
    render,
    render_panel,
    status_context,
    templates,
)

router = APIRouter(include_in_schema=False)
ui = APIRouter(prefix="/ui", dependencies=[Depends(require_session)])

STREAMS: dict[str, tuple[tuple[str, ...], bool]] = {
    "dashboard": (DASHBOARD_PANELS, True),
    "control": (CONTROL_PANELS, False),
    "analysis": (("status",), False),
    "ai": (("status",), False),
    "backtests": (("status",), False),
    "trades": (("status",), False),
    "chart": (("status", "positions", "orders"), False),
}
"""Per page: the live panels its stream sends and whether it sends the equity chart's points."""


def _login_page(request: Request, error: str | None = None, code: int = 200) -> Response:
    return templates.TemplateResponse(
        request, "pages/login.html", {"error": error}, status_code=code, headers=NO_STORE
    )


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> Response:
    """The dashboard with a valid session cookie, else the login page."""
    if not cookie_valid(request, request.cookies.get(SESSION_COOKIE)):
        return _login_page(request)
    return templates.TemplateResponse(
        request,
        "pages/dashboard.html",
        {"page": "dashboard", "equity_points": EQUITY_POINTS},
        headers=NO_STORE,
    )


@router.get("/control", response_class=HTMLResponse)
def control_centre(request: Request) -> Response:
    """The control centre with a valid session cookie, else the login page: trading states
    with halt, resume and close all; the balance; positions with leverage, margin and
    liquidation price; the stop rules; leverage per symbol; the alert log."""
    if not cookie_valid(request, request.cookies.get(SESSION_COOKIE)):
        return _login_page(request)
    return templates.TemplateResponse(
        request,
        "pages/control.html",
        {"page": "control", "alerts_shown": ALERTS_SHOWN},
        headers=NO_STORE,
    )


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form()] = "") -> Response:
    """Check ``token`` against the API token; on success set the session cookie and go to
    the dashboard (303), else show the login page again with 401."""
    if not token_matches(request, token):
        return _login_page(request, "That is not the API token.", status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    """Clear the session cookie and go back to the login page (303)."""
    response = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _panel(name: str, service: TradingService) -> HTMLResponse:
    return HTMLResponse(render_panel(name, service), headers=NO_STORE)


@ui.get("/status", response_class=HTMLResponse)
def status_partial(service: ServiceDep) -> HTMLResponse:
    """Mode, running state, market time, symbols, strategy, bars processed, equity, cash."""
    return _panel("status", service)


@ui.get("/positions", response_class=HTMLResponse)
def positions_partial(service: ServiceDep) -> HTMLResponse:
    """Open positions: side, qty, entry, mark and unrealized PnL."""
    return _panel("positions", service)


@ui.get("/orders", response_class=HTMLResponse)
def orders_partial(service: ServiceDep) -> HTMLResponse:
    """The 20 most recent orders: who placed each (the API or a strategy) and, for a
    rejected one, why."""
    return _panel("orders", service)


@ui.get("/trades", response_class=HTMLResponse)
def trades_partial(service: ServiceDep) -> HTMLResponse:
    """The 20 most recent closed trades."""
    return _panel("trades", service)


@ui.get("/signals", response_class=HTMLResponse)
def signals_partial(service: ServiceDep) -> HTMLResponse:
    """The 10 most recent signals, each with the reasons behind it."""
    return _panel("signals", service)


@ui.get("/equity.json")
def equity_points(service: ServiceDep) -> JSONResponse:
    """Equity curve for the chart: ``[[time_ms, equity], ...]``, oldest first, at most
    :data:`~web.views.EQUITY_POINTS` points."""
    return JSONResponse(equity_series(service), headers=NO_STORE)


def _engine_action(
    service: TradingService, action: Callable[[], object], done: str
) -> HTMLResponse:
    try:
        action()
    except DomainError as exc:  # EngineStateError: start while running
        context = status_context(service, error=exc.message)
    else:
        context = status_context(service, action=done)
    return HTMLResponse(render("partials/status.html", context), headers=NO_STORE)


@ui.post("/engine/start", response_class=HTMLResponse)
def engine_start(service: ServiceDep) -> HTMLResponse:
    """Start (or resume) the engine; the status panel, with the reason if it was refused."""
    return _engine_action(service, service.start, "Engine started.")


@ui.post("/engine/stop", response_class=HTMLResponse)
def engine_stop(service: ServiceDep) -> HTMLResponse:
    """Stop the engine after its current batch; the status panel."""
    return _engine_action(service, service.stop, "Engine stopped.")


class EventStreamResponse(StreamingResponse):
    """A streaming response that always closes its generator when the response ends.

    Starlette abandons the body iterator when the client disconnects mid-stream; the generator
    would then stay subscribed to the hub until garbage collection finalizes it.
    """

    body_iterator: AsyncGenerator[str, None]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the response, then close the generator whatever happened."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()


@ui.get("/stream")
async def stream(
    request: Request,
    service: ServiceDep,
    hub: HubDep,
    page: Literal[
        "dashboard",
        "control",
        "analysis",
        "ai",
        "chart",
        "trades",
        "backtests",
    ] = "dashboard",
) -> EventStreamResponse:
    """Server-Sent Events of ``page``, until the client disconnects: re-rendered panels (the
    dashboard's ``status``, ``positions``, ``orders``, ``trades``, ``signals``, and equity
    points, ``equity``; the control centre's ``status``, ``risk``, ``balance``,
    ``positions``, ``alerts``; the adaptive-pipeline page's and the AI signal page's
    ``status``, whose events make them reload their own partials; the price chart page's
    ``status``, ``positions`` and ``orders``, whose events also make it reload its chart)."""
    panels, chart = STREAMS[page]
    return EventStreamResponse(
        event_stream(service, hub, request.is_disconnected, panels=panels, chart=chart),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


router.include_router(ui)
router.include_router(control)
router.include_router(analysis)
router.include_router(ai)
router.include_router(backtests)
router.include_router(trades)
router.include_router(price_chart)


def mount_web(app: FastAPI) -> None:
    """Add the panel's routes to ``app`` and serve ``web/static`` at ``/static``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
