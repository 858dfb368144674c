"""Live venue connections: ``GET /api/v1/venues``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import ServiceDep
from api.errors import error_responses
from domain.venues import VenueStatus

router = APIRouter(tags=["venues"])


class VenueOut(BaseModel):
    """One live venue connection at ``time`` (ms UTC). ``connected``: every stream open;
    ``weight_used`` of ``weight_limit``: request weight in the shared budget's current
    minute; ``held_until`` / ``banned_until``: end (ms UTC) of a hold after a 429 or a ban
    after a 418 (null: none), ``hold_reason`` / ``ban_reason``: the venue's message for it
    (null: none); ``clock_offset_ms``: the venue's clock minus ours;
    ``last_reconciliation``: when the ledger was last compared with the venue (ms UTC; null:
    never, e.g. a market-data feed); ``requests``: REST answers by ``"<path> <status>"``;
    ``reconnects``: reopened stream connections by stream; ``stale``: symbols with no closed
    bar for more than 2 periods; ``drift``: differences between the ledger and the venue that
    reconciliation found and repaired since the server started, by kind; ``user_events``:
    user-data events the execution client absorbed, by kind (``duplicate``, ``out_of_order``,
    ``fill_before_ack``, ``partial_fill``; empty without an execution client)."""

    venue: str
    time: int
    connected: bool
    capabilities: dict[str, Any]
    weight_used: int
    weight_limit: int
    held_until: int | None
    banned_until: int | None
    hold_reason: str | None
    ban_reason: str | None
    clock_offset_ms: int | None
    last_reconciliation: int | None
    requests: dict[str, int]
    reconnects: dict[str, int]
    stale: list[str]
    drift: dict[str, int]
    user_events: dict[str, int]


def venue_out(v: VenueStatus) -> VenueOut:
    """The API form of ``v``."""
    return VenueOut(
        venue=v.venue,
        time=v.time,
        connected=v.connected,
        capabilities=dict(v.capabilities),
        weight_used=v.weight_used,
        weight_limit=v.weight_limit,
        held_until=v.held_until,
        banned_until=v.banned_until,
        hold_reason=v.hold_reason,
        ban_reason=v.ban_reason,
        clock_offset_ms=v.clock_offset_ms,
        last_reconciliation=v.last_reconciliation,
        requests=dict(v.requests),
        reconnects=dict(v.reconnects),
        stale=list(v.stale),
        drift=dict(v.drift),
        user_events=dict(v.user_events),
    )


@router.get("/venues", responses=error_responses(401, 422))
def list_venues(service: ServiceDep) -> list[VenueOut]:
    """The live venues the run is connected to: connection state, capabilities, the request
    budget used, bans, clock offset, last reconciliation, REST answers and stream reconnects.
    Empty for a replay of stored bars (the simulated venue has no connection)."""
    return [venue_out(v) for v in service.venues()]
