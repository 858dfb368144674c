"""The live venues' metrics, read from the venues' own counters at each scrape (a venue keeps
its counts; the exporter reports them as they are, so a restart of the venue connection is a
counter reset, as Prometheus expects)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from domain.reconciliation import DriftKind
from domain.venues import VenueStatus


class VenueCollector(Collector):
    """``lootcapital_venue_requests_total{venue,endpoint,status}``,
    ``lootcapital_ws_reconnects_total{venue,stream}``, ``lootcapital_venue_weight_used{venue}``
    (request weight in the shared budget's minute), ``lootcapital_venue_weight_limit{venue}``,
    ``lootcapital_venue_clock_offset_seconds{venue}`` (the venue's clock minus ours) and
    ``lootcapital_venue_connected{venue}`` (1 while every stream is open) and
    ``lootcapital_reconciliation_drift_total{venue,kind}`` (differences reconciliation found
    between the ledger and the venue; every :class:`~domain.reconciliation.DriftKind` from 0
    once the venue was reconciled, so that a healthy run has the series),
    ``lootcapital_venue_user_events_total{venue,kind}``
    (user-data events the execution client absorbed: duplicate, out_of_order,
    fill_before_ack, partial_fill) and ``lootcapital_order_latency_seconds{venue}`` (histogram:
    wall time from an order's request to the venue's acknowledgement), of the venues last
    given to :meth:`update`; nothing for a replay of stored bars, and no user events or
    latencies without an execution client (paper trading on live data)."""

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
        user_events = CounterMetricFamily(
            "lootcapital_venue_user_events",
            "User-data events of a live venue the execution client absorbed, by kind: "
            "duplicate (dropped), out_of_order (held for an earlier fill), fill_before_ack, "
            "partial_fill (a fill leaving its order partly filled).",
            labels=["venue", "kind"],
        )
        latency = HistogramMetricFamily(
            "lootcapital_order_latency_seconds",
            "Wall time from sending an order to the venue's acknowledgement (its REST answer, "
            "or the user-data stream's event when sooner), seconds.",
            labels=["venue"],
        )
        for v in self._venues:
            for kind, count in v.user_events.items():
                user_events.add_metric([v.venue, kind], count)
            if v.order_latency is not None:
                buckets = [(floatToGoString(bound), n) for bound, n in v.order_latency.cumulative()]
                latency.add_metric([v.venue], buckets, v.order_latency.sum_s)
            reconciled = v.last_reconciliation is not None
            zeros = dict.fromkeys(map(str, DriftKind), 0) if reconciled else {}
            for kind, count in (zeros | dict(v.drift)).items():
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
        yield from (
            requests,
            reconnects,
            used,
            limit,
            offset,
            connected,
            drift,
            user_events,
            latency,
        )
