"""The live venues' metrics, read from the venues' own counters at each scrape (a venue keeps
its counts; the exporter reports them as they are, so a restart of the venue connection is a
counter reset, as Prometheus expects)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.venues import VenueStatus


class VenueCollector(Collector):
    """``lootcapital_venue_requests_total{venue,endpoint,status}``,
    ``lootcapital_ws_reconnects_total{venue,stream}``, ``lootcapital_venue_weight_used{venue}``
    (request weight in the shared budget's minute), ``lootcapital_venue_weight_limit{venue}``,
    ``lootcapital_venue_clock_offset_seconds{venue}`` (the venue's clock minus ours) and
    ``lootcapital_venue_connected{venue}`` (1 while every stream is open) and
    ``lootcapital_reconciliation_drift_total{venue,kind}`` (differences reconciliation found
    between the ledger and the venue), of the venues last
    given to :meth:`update`; nothing for a replay of stored bars."""

    def __init__(self) -> None:
        self._venues: tuple[VenueStatus, ...] = ()

    def update(self, venues: Sequence[VenueStatus]) -> None:
        """Report ``venues`` from now on (called on each scrape)."""
        self._venues = tuple(venues)

    def collect(self) -> Iterator[Metric]:
        """The families of the venues last given (Prometheus client's collector protocol)."""
        requests = CounterMetricFamily(
            "lootcapital_venue_requests",
            "REST requests answered by a live venue, by endpoint path and HTTP status.",
            labels=["venue", "endpoint", "status"],
        )
        reconnects = CounterMetricFamily(
            "lootcapital_ws_reconnects",
            "Websocket connections of a live venue's streams reopened after a loss.",
            labels=["venue", "stream"],
        )
        used = GaugeMetricFamily(
            "lootcapital_venue_weight_used",
            "Request weight used in the venue's shared budget's current minute.",
            labels=["venue"],
        )
        limit = GaugeMetricFamily(
            "lootcapital_venue_weight_limit",
            "Request weight a minute the venue's shared budget allows.",
            labels=["venue"],
        )
        offset = GaugeMetricFamily(
            "lootcapital_venue_clock_offset_seconds",
            "The venue's clock minus ours, seconds (as last measured).",
            labels=["venue"],
        )
        connected = GaugeMetricFamily(
            "lootcapital_venue_connected",
            "1 while every stream of the venue is open, else 0.",
            labels=["venue"],
        )
        drift = CounterMetricFamily(
            "lootcapital_reconciliation_drift",
            "Differences between the ledger and a live venue found (and repaired) by "
            "reconciliation, by kind.",
            labels=["venue", "kind"],
        )
        for v in self._venues:
            for kind, count in v.drift.items():
                drift.add_metric([v.venue, kind], count)
            for key, count in v.requests.items():
                endpoint, _, status = key.rpartition(" ")
                requests.add_metric([v.venue, endpoint, status], count)
            for stream, count in v.reconnects.items():
                reconnects.add_metric([v.venue, stream], count)
            used.add_metric([v.venue], v.weight_used)
            limit.add_metric([v.venue], v.weight_limit)
            if v.clock_offset_ms is not None:
                offset.add_metric([v.venue], v.clock_offset_ms / 1000)
            connected.add_metric([v.venue], 1.0 if v.connected else 0.0)
        yield from (requests, reconnects, used, limit, offset, connected, drift)
