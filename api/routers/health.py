"""``GET /api/v1/healthz``: liveness, open to everyone."""

from __future__ import annotations

from fastapi import APIRouter

from api.errors import error_responses
from api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", responses=error_responses(422))
def healthz() -> HealthOut:
    """Always ``{"status": "ok"}`` while the process serves requests."""
    return HealthOut(status="ok")
