"""Binance USDⓈ-M's order-count limits in the venue's shared budget, against the fake venue on
loopback: new orders, algo (conditional) orders and amendments count in the 10 s and the minute
windows, cancels and queries do not; a 429 about the order count (code -1015) holds the orders
alone until its ``Retry-After``, while a 429 about the request weight still holds everything.
The venue's status shows the orders counted in each window."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from adapters.clock import SimulatedClock
from adapters.venues.binance_usdm.budget import binance_budget
from adapters.venues.binance_usdm.capabilities import CAPABILITIES, VENUE
from adapters.venues.binance_usdm.execution import BinanceUsdmExecution
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.binance_usdm.venue_status import venue_status
from adapters.venues.budget import VenueBudget
from domain.margin import MarginMode
from domain.model import Order, OrderType, Side
from domain.orders import ExecutionEvent
from domain.orders import ExecutionEventKind as K
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC, a bar open inside the file
NOW = T0 + 60_000
BTC = "BTCUSDT"
ORDER = "/fapi/v1/order"
TOO_MANY_ORDERS = (
    '{"code":-1015,"msg":"Too many new orders; current limit is 300 orders per TEN_SECONDS."}'
)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(NOW)


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=clock, symbols=(BTC,)) as venue:
        yield venue


@pytest.fixture
def budget(fake: FakeBinanceUsdm, clock: SimulatedClock) -> VenueBudget:
    return binance_budget(_settings(fake), clock)


@pytest.fixture
def client(
    fake: FakeBinanceUsdm, clock: SimulatedClock, budget: VenueBudget
) -> Iterator[BinanceUsdmExecution]:
    with BinanceUsdmExecution(
        _settings(fake), clock=clock, leverage={BTC: 5}, margin_mode=MarginMode.ISOLATED,
        budget=budget,
    ) as execution:  # fmt: skip
        yield execution


def _settings(fake: FakeBinanceUsdm) -> BinanceUsdmSettings:
    return BinanceUsdmSettings(
        rest_url=fake.rest_url, ws_url=fake.ws_url, timeout_s=0.5, retries=2, backoff_s=0.01,
        max_backoff_s=0.05, recv_window_ms=300, api_key=API_KEY, api_secret=API_SECRET,  # type: ignore[arg-type]
    )  # fmt: skip


def _order(n: int, side: Side, kind: OrderType = OrderType.MARKET, **terms: object) -> Order:
    return Order(f"lc{n:030d}", BTC, side, kind, Decimal("0.010"), NOW, **terms)  # type: ignore[arg-type]


def _until(client: BinanceUsdmExecution, order_id: str, kind: K) -> list[ExecutionEvent]:
    """The client's events until ``order_id`` has one of ``kind`` (fails after 10 s)."""
    events: list[ExecutionEvent] = []
    deadline = time.monotonic() + 10
    while not any(e.order_id == order_id and e.kind is kind for e in events):
        assert time.monotonic() < deadline, f"events so far: {events}"
        time.sleep(0.005)
        events += client.drain_events()
    return events


def test_orders_amendments_and_algo_orders_count_and_cancels_do_not(
    client: BinanceUsdmExecution, budget: VenueBudget
) -> None:
    assert budget.state().orders_used == (0, 0)  # opening: markets, time, leverage, margin

    entry = _order(1, Side.BUY)
    client.submit(entry)
    _until(client, entry.id, K.FILL)
    limit = _order(2, Side.BUY, OrderType.LIMIT, price=Decimal("90000"))
    client.submit(limit)
    _until(client, limit.id, K.ACCEPTED)
    stop = _order(3, Side.SELL, OrderType.STOP, stop_price=Decimal("90000"), reduce_only=True)
    client.submit(stop)
    _until(client, stop.id, K.ACCEPTED)
    assert budget.state().orders_used == (3, 3)

    client.modify(limit.id, qty=Decimal("0.02"), price=Decimal("90100"))
    _until(client, limit.id, K.MODIFIED)
    client.cancel(limit.id)
    client.cancel(stop.id)
    _until(client, stop.id, K.CANCELED)
    client.open_orders()

    state = budget.state()
    assert state.orders_used == (4, 4)  # the amendment counts; cancels and the query do not
    assert 0 < state.requests_used <= 1_200
    status = venue_status(
        venue=VENUE, capabilities=CAPABILITIES, time=NOW, source=None, answered={}, streams=[],
        budget=state, stale=[],
    )  # fmt: skip
    assert status.orders_used == {"10s": 4, "60s": 4}
    assert status.order_limits == {"10s": 300, "60s": 1_200}


def test_a_429_about_the_order_count_holds_only_the_orders_until_its_retry_after(
    client: BinanceUsdmExecution, budget: VenueBudget, fake: FakeBinanceUsdm
) -> None:
    fake.fail_next(ORDER, 429, retry_after_s=1, body=TOO_MANY_ORDERS)

    entry = _order(5, Side.BUY)
    client.submit(entry)
    _until(client, entry.id, K.FILL)

    state = budget.state()
    assert (state.orders_held_until, state.held_until) == (NOW + 1_000, None)
    assert (fake.requests[(ORDER, 429)], fake.requests[(ORDER, 200)]) == (1, 1)


def test_a_429_about_the_request_weight_on_an_order_still_holds_every_request(
    client: BinanceUsdmExecution, budget: VenueBudget, fake: FakeBinanceUsdm
) -> None:
    fake.fail_next(ORDER, 429, retry_after_s=1)  # Binance's -1003 body: the IP's weight

    entry = _order(6, Side.BUY)
    client.submit(entry)
    _until(client, entry.id, K.FILL)

    state = budget.state()
    assert (state.held_until, state.orders_held_until) == (NOW + 1_000, None)
