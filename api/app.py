"""The FastAPI application: REST under ``/api/v1``, the WebSocket, metrics and the web panel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import Depends, FastAPI, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import reject_unknown_query, require_token
from api.docs import install_docs
from api.errors import install_error_handlers
from api.hub import EventHub
from api.metrics import Metrics, open_orders
from api.routers import (
    account,
    analysis,
    analytics,
    engine,
    health,
    margin,
    market,
    models,
    orders,
    risk,
    venues,
)
from api.routers import alerts as alert_log
from api.routers import backtests as backtest_jobs
from api.timing import RequestTimer
from api.ws import router as ws_router
from domain.errors import EndOfData, EngineStateError, InvalidOrder
from service_layer.alerts import AlertDispatcher
from service_layer.backtest_jobs import BacktestJobs
from service_layer.model_registry import ModelRegistry
from service_layer.risk_service import RiskControl
from service_layer.trading import TradingService
from service_layer.training_jobs import TrainingJobs

API_PREFIX = "/api/v1"

logger = logging.getLogger(__name__)


class AppContainer(Protocol):
    """What the app needs from the composition root."""

    service: TradingService
    hub: EventHub
    metrics: Metrics
    api_token: str
    autostart: bool
    models: ModelRegistry
    training: TrainingJobs
    backtests: BacktestJobs
    alerts: AlertDispatcher

    def close(self) -> None:
        """Close the live venue's connections (after the run stopped)."""
        ...


def create_app(container: AppContainer) -> FastAPI:
    """Build the app around ``container`` (see ``lootcapital.bootstrap``).

    On start-up the hub attaches to the event loop and, when ``container.autostart``, the engine
    starts; on shutdown the engine stops after its current batch and a running training job at
    its next step. The web panel is mounted on
    it by the composition root (``lootcapital.bootstrap.build_app``): the API never imports the
    panel.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        container.hub.attach(asyncio.get_running_loop())
        if container.autostart:
            try:
                container.service.start()
            except EndOfData as exc:  # a finished replay: serve its results
                logger.info("not started: %s", exc.message)
        yield
        await asyncio.to_thread(container.service.stop, "server shut down")
        await asyncio.to_thread(container.close)
        await asyncio.to_thread(container.training.shutdown)
        await asyncio.to_thread(container.backtests.shutdown)
        await asyncio.to_thread(container.alerts.close)

    app = FastAPI(
        title="LootCapital",
        version="0.1.0",
        description="Trading API: backtest, paper and live trading from one engine.",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from local files, not a CDN
        redoc_url=None,
        generate_unique_id_function=_operation_id,
    )
    app.state.service = container.service
    app.state.hub = container.hub
    app.state.metrics = container.metrics
    app.state.api_token = container.api_token
    app.state.risk = risk_control = RiskControl(container.service)
    app.state.models = container.models
    app.state.training = container.training
    app.state.backtests = container.backtests
    install_error_handlers(app)
    install_docs(app)
    strict = [Depends(reject_unknown_query)]
    app.include_router(health.router, prefix=API_PREFIX, dependencies=strict)
    secured = [Depends(require_token), *strict]
    routers = (engine, market, analysis, orders, account, margin, risk, models, alert_log, venues)
    for router in (r.router for r in routers):
        app.include_router(router, prefix=API_PREFIX, dependencies=secured)
    app.include_router(analytics.router, prefix=API_PREFIX, dependencies=secured)
    app.include_router(backtest_jobs.router, prefix=API_PREFIX, dependencies=secured)
    app.include_router(ws_router, prefix=API_PREFIX)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        service = container.service
        container.metrics.set_engine(service.status(), service.positions(), open_orders(service))
        with contextlib.suppress(EngineStateError):  # a run without a risk gate: no gauges
            container.metrics.set_risk(risk_control.gauges())
        with contextlib.suppress(InvalidOrder):  # no perpetuals: no margin gauges
            container.metrics.set_margin(container.service.balance())
        container.metrics.set_pipeline(container.service.pipeline_view())
        container.metrics.venues.update(service.venues())
        return Response(generate_latest(container.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestTimer, histogram=container.metrics.http)
    return app


def _operation_id(route: APIRoute) -> str:
    """A route's OpenAPI ``operationId``: its function's name (``place_order``,
    ``list_orders``), so generated clients get short, stable method names."""
    return route.name
