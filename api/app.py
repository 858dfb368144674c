"""The FastAPI application: REST under ``/api/v1``, the WebSocket, metrics and the web panel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import require_token
from api.errors import install_error_handlers
from api.hub import EventHub
from api.metrics import Metrics
from api.routers import account, engine, health, market, orders
from api.ws import router as ws_router
from service_layer.trading import TradingService

API_PREFIX = "/api/v1"


class AppContainer(Protocol):
    """What the app needs from the composition root."""

    service: TradingService
    hub: EventHub
    metrics: Metrics
    api_token: str
    autostart: bool


def create_app(container: AppContainer) -> FastAPI:
    """Build the app around ``container`` (see ``lootcapital.bootstrap``).

    On start-up the hub attaches to the event loop and, when ``container.autostart``, the engine
    starts; on shutdown the engine stops after its current batch. The web panel is mounted on
    it by the composition root (``lootcapital.bootstrap.build_app``): the API never imports the
    panel.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        container.hub.attach(asyncio.get_running_loop())
        if container.autostart:
            container.service.start()
        yield
        await asyncio.to_thread(container.service.stop, "server shut down")

    app = FastAPI(
        title="LootCapital",
        version="0.1.0",
        description="Trading API: backtest, paper and live trading from one engine.",
        lifespan=lifespan,
    )
    app.state.service = container.service
    app.state.hub = container.hub
    app.state.metrics = container.metrics
    app.state.api_token = container.api_token
    install_error_handlers(app)
    app.include_router(health.router, prefix=API_PREFIX)
    secured = [Depends(require_token)]
    for router in (engine.router, market.router, orders.router, account.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=secured)
    app.include_router(ws_router, prefix=API_PREFIX)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        status = container.service.status()
        container.metrics.equity.set(float(status.equity))
        return Response(generate_latest(container.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def time_requests(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response = await call_next(request)
        container.metrics.http.labels(
            request.method, _route_template(request), str(response.status_code)
        ).observe(time.perf_counter() - started)
        return response

    return app


def _route_template(request: Request) -> str:
    """The matched route as a template (``/api/v1/orders/{order_id}``): path parameters are put
    back as names so metric labels stay few; requests that matched no route share one label."""
    if request.scope.get("route") is None:
        return "unmatched"
    path: str = request.scope["path"]
    for name, value in request.scope.get("path_params", {}).items():
        head, sep, tail = path.rpartition(str(value))
        if sep:
            path = f"{head}{{{name}}}{tail}"
    return path
