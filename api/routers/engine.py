"""Engine status and control."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import NumbersDep, ServiceDep
from api.errors import error_responses
from api.schemas import StatusOut, status_out

router = APIRouter(tags=["engine"])


@router.get("/status", responses=error_responses(401, 422))
async def get_status(service: ServiceDep, n: NumbersDep) -> StatusOut:
    """Mode, running, market clock time (ms UTC), symbols, candles processed, equity.

    Served on the event loop: it reads the snapshot the engine publishes after each bar and
    never waits for the engine, so no worker-thread hop is needed.
    """
    return status_out(service.status(), n)


@router.post("/engine/start", responses=error_responses(401, 409, 422))
def start_engine(service: ServiceDep, n: NumbersDep) -> StatusOut:
    """Start or resume the engine after the last processed bar; 409 ``engine_state`` when it
    is running, 409 ``end_of_data`` when a replay has no bar left."""
    return status_out(service.start(), n)


@router.post("/engine/stop", responses=error_responses(401, 422))
def stop_engine(service: ServiceDep, n: NumbersDep) -> StatusOut:
    """Stop the engine after its current batch."""
    return status_out(service.stop(), n)
