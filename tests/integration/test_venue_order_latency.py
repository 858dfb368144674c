"""The Binance USDⓈ-M execution client's submit → acknowledgement latency and the user-data
events it absorbed, as the venue status carries them and
:class:`~api.venue_metrics.VenueCollector` exports them
(``lootcapital_order_latency_seconds{venue}``,
``lootcapital_venue_user_events_total{venue,kind}``), against the fake venue on loopback (the
fixtures of the execution tests; MEXC's in :mod:`tests.integration.test_mexc_order_latency`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from adapters.venues.execution_loop import LatencyRecorder
from api.venue_metrics import VenueCollector
from domain.model import Side
from domain.orders import ExecutionEventKind as K
from domain.venues import ReportsActivity, VenueStatus
from tests.integration.test_binance_execution import (
    ORDER,
    Book,
    _filled,
    _has,
    _order,
    book,
    client,
    clock,
    fake,
)
from tests.venues.binance_fake import FakeBinanceUsdm

__all__ = ["book", "client", "clock", "fake"]  # the fixtures, shared with the execution tests

BINANCE, MEXC = "binance-usdm", "mexc"


def status_of(client: ReportsActivity, venue: str) -> VenueStatus:
    """The venue's status with the execution client's activity added."""
    return client.add_activity(VenueStatus(venue=venue, time=0, connected=True))


def sample(status: VenueStatus, name: str, **labels: str) -> float | None:
    """A sample of the venue metrics of ``status`` as Prometheus would scrape them."""
    collector = VenueCollector()
    collector.update([status])
    registry = CollectorRegistry()
    registry.register(collector)
    return registry.get_sample_value(name, {"venue": status.venue} | labels)


def test_each_acknowledged_binance_order_is_timed_once_under_its_venue(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    first = book.submit(_order(40, Side.BUY))
    book.until(_filled(first.id))
    second = book.submit(_order(41, Side.SELL))
    book.until(_filled(second.id))

    status = status_of(book.client, BINANCE)

    assert status.order_latency is not None and status.order_latency.count == 2
    assert sample(status, "lootcapital_order_latency_seconds_count") == 2
    assert sample(status, "lootcapital_order_latency_seconds_bucket", le="+Inf") == 2
    assert sample(status, "lootcapital_order_latency_seconds_sum") == status.order_latency.sum_s
    assert status.order_latency.sum_s > 0


def test_the_binance_acknowledgement_is_the_streams_new_event_when_it_beats_the_rest_answer(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    fake.private.delay_answer(ORDER, 1.5)  # the stream's NEW goes out at once
    order = book.submit(_order(42, Side.BUY))  # returns after the REST answer
    book.until(_has(order.id, K.ACCEPTED))

    latency = status_of(book.client, BINANCE).order_latency

    assert latency is not None and latency.count == 1
    assert latency.sum_s < 1.5


def test_a_binance_order_the_venue_refuses_is_not_timed(book: Book) -> None:
    order = book.submit(_order(43, Side.SELL, reduce_only=True))  # nothing to reduce
    book.until(_has(order.id, K.REJECTED))

    latency = status_of(book.client, BINANCE).order_latency

    assert latency is not None and latency.count == 0


def test_binance_user_events_absorbed_show_in_the_status_and_metrics_by_kind(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    fake.account.trades_per_fill = 3
    fake.private.duplicate_events(20)
    order = book.submit(_order(44, Side.BUY))
    book.until(_filled(order.id))

    status = status_of(book.client, BINANCE)

    duplicates = book.client.tracker.duplicates
    assert duplicates >= 3
    assert status.user_events == {
        "duplicate": duplicates, "out_of_order": 0, "fill_before_ack": 0, "partial_fill": 2,
    }  # fmt: skip
    assert sample(status, "lootcapital_venue_user_events_total", kind="duplicate") == duplicates
    assert sample(status, "lootcapital_venue_user_events_total", kind="partial_fill") == 2


def test_another_venues_status_gets_nothing_of_the_client(book: Book) -> None:
    status = status_of(book.client, MEXC)

    assert status.order_latency is None and status.user_events == {}
    assert sample(status, "lootcapital_order_latency_seconds_count") is None


def test_a_latency_on_a_bucket_bound_counts_in_that_bucket() -> None:
    recorder = LatencyRecorder((0.1, 1.0))
    for seconds in (0.1, 0.5, 2.0, -0.01):
        recorder.observe(seconds)

    histogram = recorder.snapshot()

    assert histogram.counts == (2, 1, 1)
    assert histogram.cumulative() == [(0.1, 2), (1.0, 3), (float("inf"), 4)]
    assert histogram.sum_s == 2.6
