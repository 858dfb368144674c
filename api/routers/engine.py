"""Engine status and control."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep
from api.schemas import status_json

router = APIRouter(tags=["engine"])


@router.get("/status")
async def status(service: ServiceDep) -> dict:
    """Mode, running, market clock time (ms UTC), symbols, candles processed, equity.

    Served on the event loop: it reads the snapshot the engine publishes after each bar and
    never waits for the engine, so no worker-thread hop is needed.
    """
    return status_json(service.status())


@router.post("/engine/start")
def start(service: ServiceDep) -> dict:
    """Start or resume the engine after the last processed bar (409 if running)."""
    return status_json(service.start())


@router.post("/engine/stop")
def stop(service: ServiceDep) -> dict:
    """Stop the engine after its current batch."""
    return status_json(service.stop())
