"""The MEXC execution client's submit → acknowledgement latency and the user-data events it
absorbed, in the venue status and the metrics, against the fake MEXC on loopback (the fixtures
of the execution tests; see :mod:`tests.integration.test_venue_order_latency`).
"""

from __future__ import annotations

from adapters.venues.mexc.capabilities import VENUE as MEXC
from adapters.venues.mexc.execution import MexcExecution
from domain.model import Side
from domain.orders import ExecutionEventKind as K
from tests.integration.test_mexc_execution import _events, _order, _until, client, clock, fake
from tests.integration.test_venue_order_latency import sample, status_of
from tests.venues.mexc_fake import FakeMexc

__all__ = ["client", "clock", "fake"]  # the fixtures, shared with the execution tests


def test_each_acknowledged_mexc_order_is_timed_once_under_its_venue_lost_answer_included(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(_order("lc-timed"))
    _events(client, _until(K.ACCEPTED, K.FILL))
    fake.book.lose_answers = 1  # placed, the answer a 504: acknowledged by the lookup
    client.submit(_order("lc-timed-lost", Side.SELL))
    _events(client, _until(K.ACCEPTED, K.FILL))

    status = status_of(client, MEXC)

    assert status.order_latency is not None and status.order_latency.count == 2
    assert sample(status, "lootcapital_order_latency_seconds_count") == 2
    assert status.user_events == dict.fromkeys(
        ("duplicate", "out_of_order", "fill_before_ack", "partial_fill"), 0
    )
    assert sample(status, "lootcapital_venue_user_events_total", kind="duplicate") == 0


def test_a_mexc_order_refused_while_order_entry_is_closed_is_not_timed(
    client: MexcExecution, fake: FakeMexc
) -> None:
    fake.order_entry = False
    client.submit(_order("lc-refused"))
    _events(client, _until(K.REJECTED))

    latency = status_of(client, MEXC).order_latency

    assert latency is not None and latency.count == 0
    assert sample(status_of(client, MEXC), "lootcapital_order_latency_seconds_count") == 0
