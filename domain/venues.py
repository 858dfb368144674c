"""What a live venue connection is doing, as the API, the panel and the metrics show it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class VenueStatus:
    """One live venue seen at ``time`` (ms UTC, our clock).

    ``connected``: every stream of the venue is open; ``capabilities``: what the adapter can
    do there (order types, streams; name → value); ``weight_used`` of ``weight_limit``: the
    request weight of the shared budget's window (:mod:`adapters.venues.budget`);
    ``held_until`` / ``banned_until``: the end (ms UTC) of a hold after a 429 or a ban after a
    418, None when none, and ``hold_reason`` / ``ban_reason`` the venue's message for it (as
    our venue error words it: status, end, the venue's text; never a key or signature);
    ``clock_offset_ms``: the venue's clock minus ours (ms), None before it was measured;
    ``last_reconciliation``: when the ledger was last compared with the venue (ms UTC), None
    when never (a market-data connection has nothing to reconcile);
    ``requests``: REST answers so far by ``"<path> <HTTP status>"``; ``reconnects``: streams'
    reopened connections by stream (``"BTCUSDT@kline_5m"``); ``stale``: the symbols whose
    feed has had no closed bar for more than 2 periods; ``drift``: differences between the
    ledger and the venue that reconciliation found (and repaired), by kind.
    """

    venue: str
    time: int
    connected: bool
    capabilities: Mapping[str, object] = field(default_factory=dict)
    weight_used: int = 0
    weight_limit: int = 0
    held_until: int | None = None
    banned_until: int | None = None
    hold_reason: str | None = None
    ban_reason: str | None = None
    clock_offset_ms: int | None = None
    last_reconciliation: int | None = None
    requests: Mapping[str, int] = field(default_factory=dict)
    reconnects: Mapping[str, int] = field(default_factory=dict)
    stale: tuple[str, ...] = ()
    drift: Mapping[str, int] = field(default_factory=dict)


@runtime_checkable
class ReportsActivity(Protocol):
    """An execution client that adds its own part of a live venue's connection (its REST
    answers, its user-data stream's reopenings) to the venue's status."""

    def add_activity(self, status: VenueStatus) -> VenueStatus:
        """``status`` with this client's activity at the same venue added (unchanged for
        another venue)."""
        ...
