"""MEXC futures orders through ccxt against the fake MEXC on loopback: the ``ExecutionClient``
port (submit with ``externalOid``, plan orders, cancel, cancel-and-replace, lookups, positions
polled, balance) and a lost answer settled by a lookup, never by a blind resend.

The fake's market price is the close of the last closed real 5m bar (Binance's BTCUSDT, served
as MEXC's ``BTC_USDT``) unless a test sets it; a ``BTC_USDT`` contract is 0.0001 BTC.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from adapters.clock import SimulatedClock
from adapters.venues.mexc.execution import MexcExecution
from adapters.venues.mexc.settings import MexcSettings
from domain.model import Order, OrderStatus, OrderType, Side, TimeInForce
from domain.orders import ExecutionEvent
from domain.orders import ExecutionEventKind as K
from tests.venues.mexc_fake import API_KEY, API_SECRET, FakeMexc

T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC, a bar open inside the file
CREATE = "/api/v1/private/order/create"
BTC = "BTCUSDT"


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeMexc]:
    with FakeMexc(clock=clock, symbols=("BTC_USDT",)) as venue:
        venue.book.prices["BTC_USDT"] = Decimal("94000")
        yield venue


async def _no_wait(seconds: float) -> None:
    return None


@pytest.fixture
def client(fake: FakeMexc, clock: SimulatedClock) -> Iterator[MexcExecution]:
    settings = MexcSettings(
        rest_url=fake.rest_url, ws_url=fake.ws_url, api_key=API_KEY, api_secret=API_SECRET,  # type: ignore[arg-type]
        timeout_s=5, retries=2, backoff_s=0.01, max_backoff_s=0.05,
    )  # fmt: skip
    with MexcExecution(settings, clock=clock, symbols=[BTC], sleep=_no_wait) as venue:
        yield venue


def _order(
    order_id: str,
    side: Side = Side.BUY,
    type_: OrderType = OrderType.MARKET,
    qty: str = "0.01",
    **terms: object,
) -> Order:
    return Order(order_id, BTC, side, type_, Decimal(qty), T0, **terms)  # type: ignore[arg-type]


def _events(
    client: MexcExecution, done: Callable[[list[ExecutionEvent]], bool]
) -> list[ExecutionEvent]:
    """The client's events until ``done`` says they are complete (pushes arrive on their own
    connection, after or before the REST answer)."""
    events: list[ExecutionEvent] = []
    deadline = time.monotonic() + 10
    while not done(events):
        assert time.monotonic() < deadline, f"events so far: {events}"
        events += client.drain_events()
        time.sleep(0.005)
    return events


def _kinds(events: list[ExecutionEvent]) -> list[K]:
    return [e.kind for e in events]


def _until(*kinds: K) -> Callable[[list[ExecutionEvent]], bool]:
    return lambda events: _kinds(events)[: len(kinds)] == list(kinds) or len(events) > len(kinds)


def test_a_market_order_is_acknowledged_and_filled_under_our_client_id(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(_order("lc-market-1"))

    events = _events(client, _until(K.ACCEPTED, K.FILL))
    assert _kinds(events) == [K.ACCEPTED, K.FILL]
    fill = events[1].fill
    assert fill is not None
    assert (fill.qty, fill.price, fill.order_id) == (Decimal("0.01"), Decimal(94000), "lc-market-1")
    assert fill.fee == Decimal("0.01") * 94000 * Decimal("0.0002")
    assert fake.book.submitted == {"lc-market-1": 1}
    sent = fake.book.by_external("lc-market-1")
    assert sent is not None and (sent.vol, sent.side, sent.kind) == (100, 1, 5)


def test_a_limit_order_rests_then_fills_as_maker_at_its_price(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(_order("lc-limit-1", type_=OrderType.LIMIT, price=Decimal("93000")))
    assert _kinds(_events(client, _until(K.ACCEPTED))) == [K.ACCEPTED]

    fake._call(fake.book.fill("lc-limit-1"))

    fills = _events(client, _until(K.FILL))
    assert _kinds(fills) == [K.FILL]
    assert fills[0].fill is not None and fills[0].fill.price == Decimal(93000)
    assert fills[0].fill.fee == 0


def test_a_reduce_only_order_closes_the_position_and_one_that_would_open_is_rejected(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(_order("lc-open"))
    _events(client, _until(K.ACCEPTED, K.FILL))

    client.submit(_order("lc-close", Side.SELL, reduce_only=True))
    closed = _events(client, _until(K.ACCEPTED, K.FILL))
    client.submit(_order("lc-too-far", Side.SELL, reduce_only=True))
    refused = _events(client, _until(K.REJECTED))

    assert _kinds(closed) == [K.ACCEPTED, K.FILL]
    assert fake.book.by_external("lc-close").side == 4  # type: ignore[union-attr]  # close long
    assert _kinds(refused) == [K.REJECTED]
    assert "2009" in (refused[0].reason or "")
    assert client.positions() == []


def test_a_post_only_order_that_would_take_ends_unfilled(
    client: MexcExecution, fake: FakeMexc
) -> None:
    order = _order(
        "lc-post", type_=OrderType.LIMIT, price=Decimal("95000"),
        time_in_force=TimeInForce.POST_ONLY,
    )  # fmt: skip
    client.submit(order)

    events = _events(client, _until(K.ACCEPTED, K.CANCELED))
    assert _kinds(events) == [K.ACCEPTED, K.CANCELED]
    assert fake.book.by_external("lc-post").kind == 2  # type: ignore[union-attr]
    assert fake.book.deals == []


def test_a_stop_goes_as_a_plan_order_and_fills_when_it_triggers(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(_order("lc-entry"))
    _events(client, _until(K.ACCEPTED, K.FILL))
    stop = _order("lc-stop", Side.SELL, OrderType.STOP, stop_price=Decimal(90000), reduce_only=True)

    client.submit(stop)
    accepted = _events(client, _until(K.ACCEPTED))
    [plan] = fake.book.plans.values()
    working = client.open_orders(BTC)
    fake.book.prices["BTC_USDT"] = Decimal(89990)
    fake._call(fake.book.trigger(plan.plan_id))
    filled = _events(client, _until(K.FILL))

    assert _kinds(accepted) == [K.ACCEPTED]
    assert (plan.body["triggerPrice"], plan.body["triggerType"], plan.body["side"]) == (
        90000.0, 2, 4,
    )  # fmt: skip
    assert [(o.id, o.type, o.stop_price) for o in working] == [
        ("lc-stop", OrderType.STOP, Decimal(90000))
    ]
    assert filled[0].order_id == "lc-stop"
    assert filled[0].fill is not None and filled[0].fill.price == Decimal(89990)
    assert client.positions() == []


def test_cancel_ends_a_resting_order(client: MexcExecution, fake: FakeMexc) -> None:
    client.submit(_order("lc-rest", type_=OrderType.LIMIT, price=Decimal("90000")))
    _events(client, _until(K.ACCEPTED))

    client.cancel("lc-rest")

    assert _kinds(_events(client, _until(K.CANCELED))) == [K.CANCELED]
    assert client.open_orders() == []
    assert fake.book.by_external("lc-rest").state == 4  # type: ignore[union-attr]


def test_modify_cancels_and_replaces_under_a_new_venue_id_keeping_our_order(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(_order("lc-move", type_=OrderType.LIMIT, price=Decimal("90000")))
    _events(client, _until(K.ACCEPTED))

    client.modify("lc-move", price=Decimal("91000"))
    modified = _events(client, _until(K.MODIFIED))
    fake._call(fake.book.fill("lc-mover1"))
    filled = _events(client, _until(K.FILL))

    assert _kinds(modified) == [K.MODIFIED] and modified[0].price == Decimal(91000)
    assert fake.book.by_external("lc-move").state == 4  # type: ignore[union-attr]
    assert filled[0].order_id == "lc-move"
    assert filled[0].fill is not None and filled[0].fill.price == Decimal(91000)
    assert client.fetch_order("lc-move").status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_fetch_order_by_client_id_and_none_for_an_id_the_venue_does_not_know(
    client: MexcExecution,
) -> None:
    client.submit(_order("lc-fetch", type_=OrderType.LIMIT, price=Decimal("90000")))
    _events(client, _until(K.ACCEPTED))

    got = client.fetch_order("lc-fetch")

    assert got is not None
    assert (got.id, got.status, got.price, got.qty) == (
        "lc-fetch", OrderStatus.NEW, Decimal(90000), Decimal("0.01"),
    )  # fmt: skip
    assert client.fetch_order("lc-never-sent") is None


def test_a_lost_answer_is_looked_up_by_client_id_not_sent_again(
    client: MexcExecution, fake: FakeMexc
) -> None:
    fake.book.lose_answers = 1  # the venue places it, the answer is a 504

    client.submit(_order("lc-lost"))

    assert _kinds(_events(client, _until(K.ACCEPTED, K.FILL))) == [K.ACCEPTED, K.FILL]
    assert fake.book.submitted == {"lc-lost": 1}
    assert fake.requests[(CREATE, 504)] == 1
    assert fake.requests[("/api/v1/private/order/external/BTC_USDT/lc-lost", 200)] >= 1


def test_an_order_the_venue_does_not_have_is_sent_again_once_with_the_same_id(
    client: MexcExecution, fake: FakeMexc
) -> None:
    fake.fail_next(CREATE, 503)  # refused before the venue placed it

    client.submit(_order("lc-again"))

    assert _kinds(_events(client, _until(K.ACCEPTED, K.FILL))) == [K.ACCEPTED, K.FILL]
    assert fake.book.submitted == {"lc-again": 1}  # the 503 never reached the book
    assert fake.requests[(CREATE, 503)] == 1 and fake.requests[(CREATE, 200)] == 1


def test_positions_are_polled_and_the_balance_counts_fees_and_pnl(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(_order("lc-long", qty="0.02"))
    _events(client, _until(K.ACCEPTED, K.FILL))
    fake.book.prices["BTC_USDT"] = Decimal(95000)

    [position] = client.positions()
    balance = client.balance()

    assert (position.symbol, position.qty, position.entry_price) == (
        BTC, Decimal("0.02"), Decimal(94000),
    )  # fmt: skip
    fee = Decimal("0.02") * 94000 * Decimal("0.0002")
    assert balance.wallet == 10_000 - fee
    assert balance.equity == 10_000 - fee + Decimal("0.02") * 1000


def test_orders_are_rejected_with_the_venues_reason_while_order_entry_is_closed(
    client: MexcExecution, fake: FakeMexc
) -> None:
    fake.order_entry = False

    client.submit(_order("lc-closed"))

    [event] = _events(client, _until(K.REJECTED))
    assert event.kind is K.REJECTED and "1002" in (event.reason or "")


def test_fills_missed_while_the_private_websocket_was_down_come_after_it_reconnects(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(_order("lc-missed", type_=OrderType.LIMIT, price=Decimal("93000")))
    _events(client, _until(K.ACCEPTED))
    fake.drop_websockets()

    fake._call(fake.book.fill("lc-missed"))  # pushed to no one
    fake.accept_websockets()

    filled = _events(client, _until(K.FILL))
    assert _kinds(filled) == [K.FILL] and client.stream_opens == 2
    assert filled[0].fill is not None and filled[0].fill.price == Decimal(93000)


def test_a_plan_order_whose_answer_is_lost_is_found_by_its_terms_not_placed_again(
    client: MexcExecution, fake: FakeMexc
) -> None:
    fake.book.lose_answers = 1
    stop = _order("lc-stop-lost", Side.SELL, OrderType.STOP, stop_price=Decimal(90000))

    client.submit(stop)

    assert _kinds(_events(client, _until(K.ACCEPTED))) == [K.ACCEPTED]
    assert len(fake.book.plans) == 1
    assert fake.requests[("/api/v1/private/planorder/place", 504)] == 1
    assert [o.id for o in client.open_orders()] == ["lc-stop-lost"]


def test_modifying_a_stop_replaces_its_plan_order_and_the_new_one_fills_our_order(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(_order("lc-stop-move", Side.SELL, OrderType.STOP, stop_price=Decimal(90000)))
    _events(client, _until(K.ACCEPTED))
    [first] = fake.book.plans

    client.modify("lc-stop-move", stop_price=Decimal(91000))
    modified = _events(client, _until(K.MODIFIED))
    [second] = [p for p in fake.book.plans.values() if p.plan_id != first]
    fake._call(fake.book.trigger(second.plan_id))
    filled = _events(client, _until(K.FILL))

    assert _kinds(modified) == [K.MODIFIED] and modified[0].stop_price == Decimal(91000)
    assert fake.book.plans[first].state == 2 and second.body["triggerPrice"] == 91000.0
    assert filled[0].order_id == "lc-stop-move"
