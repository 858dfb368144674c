"""What a live venue connection is doing, as the API, the panel and the metrics show it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

ORDER_LATENCY_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""The buckets' upper bounds (seconds) of order acknowledgement latencies: the engine's
(``lootcapital_order_ack_latency_seconds``) and a venue client's submit → acknowledgement
(``lootcapital_order_latency_seconds{venue}``)."""


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Latencies (seconds) counted in buckets, as a Prometheus histogram reports them.

    ``bounds``: the buckets' upper bounds (seconds, ascending); ``counts``: the latencies in
    each bucket (not cumulative), one more than ``bounds`` (the last: above every bound);
    ``sum_s``: the latencies' sum (seconds).

    Raises
    ------
    ValueError
        Bounds not ascending, a count per bucket missing or negative, a negative sum.
    """

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum_s: float = 0.0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"bounds must be strictly ascending, were {self.bounds}")
        if len(self.counts) != len(self.bounds) + 1 or any(n < 0 for n in self.counts):
            raise ValueError(
                f"counts must be {len(self.bounds) + 1} counts >= 0, were {self.counts}"
            )
        if self.sum_s < 0:
            raise ValueError(f"sum_s must be >= 0, was {self.sum_s}")

    @property
    def count(self) -> int:
        """How many latencies were counted."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, latencies at or below it)`` per bucket, the last bound ``inf``."""
        total, out = 0, []
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


@dataclass(frozen=True, slots=True)
class VenueStatus:
    """One live venue seen at ``time`` (ms UTC, our clock).

    ``connected``: every stream of the venue is open; ``capabilities``: what the adapter can
    do there (order types, streams; name → value); ``weight_used`` of ``weight_limit``: the
    request weight of the shared budget's window (:mod:`adapters.venues.budget`);
    ``orders_used`` of ``order_limits``: the orders in each of its order-count windows, by
    window (``"10s"``, ``"60s"``; empty where the venue counts none);
    ``held_until`` / ``banned_until``: the end (ms UTC) of a hold after a 429 or a ban after a
    418, None when none, and ``hold_reason`` / ``ban_reason`` the venue's message for it (as
    our venue error words it: status, end, the venue's text; never a key or signature);
    ``clock_offset_ms``: the venue's clock minus ours (ms), None before it was measured;
    ``last_reconciliation``: when the ledger was last compared with the venue (ms UTC), None
    when never (a market-data connection has nothing to reconcile);
    ``requests``: REST answers so far by ``"<path> <HTTP status>"``; ``reconnects``: streams'
    reopened connections by stream (``"BTCUSDT@kline_5m"``); ``stale``: the symbols whose
    feed has had no closed bar for more than 2 periods; ``drift``: differences between the
    ledger and the venue that reconciliation found (and repaired), by kind;
    ``user_events``: what the execution client's user-data stream brought that it had to
    absorb, by kind (``duplicate``: a repeated event dropped, ``out_of_order``: a fill held
    until an earlier one arrived, ``fill_before_ack``: a fill before its order's
    acknowledgement, ``partial_fill``: a fill that left its order partly filled), empty
    without an execution client; ``order_latency``: the execution client's submit →
    acknowledgement latencies, None without one.
    """

    venue: str
    time: int
    connected: bool
    capabilities: Mapping[str, object] = field(default_factory=dict)
    weight_used: int = 0
    weight_limit: int = 0
    orders_used: Mapping[str, int] = field(default_factory=dict)
    order_limits: Mapping[str, int] = field(default_factory=dict)
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
    user_events: Mapping[str, int] = field(default_factory=dict)
    order_latency: LatencyHistogram | None = None


@runtime_checkable
class ReportsActivity(Protocol):
    """An execution client that adds its own part of a live venue's connection (its REST
    answers, its user-data stream's reopenings) to the venue's status."""

    def add_activity(self, status: VenueStatus) -> VenueStatus:
        """``status`` with this client's activity at the same venue added (unchanged for
        another venue)."""
        ...
