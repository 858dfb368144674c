"""MEXC futures as one venue account against the fake MEXC on loopback: one request budget
(20 requests per 2 s, MEXC's published futures limit) shared by the feed and the order client,
which a 429's ``Retry-After`` holds and a 418 bans for both; the order client's requests and
private-websocket reconnections in the venue's status; and the funding MEXC charged
(``position/funding_records``) as the ledger's payments, once per symbol and time.

The budget waits on the simulated clock (its ``sleep`` moves it), so no test waits for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import SimulatedClock
from adapters.marketdata.parquet_store import ParquetCandleStore
from adapters.venues.budget import VenueBudget
from adapters.venues.mexc.client import mexc_budget
from adapters.venues.mexc.execution import MexcExecution
from adapters.venues.mexc.live_feed import MexcLiveFeed
from adapters.venues.mexc.market_data import MexcMarketData
from adapters.venues.mexc.settings import MexcSettings
from domain.errors import RateLimited, VenueBanned
from domain.model import Order, OrderType, Side
from tests.integration.test_mexc_live import _play as play
from tests.integration.test_mexc_live import _settings as live_settings
from tests.integration.test_mexc_live import _start as start_live
from tests.venues.mexc_fake import API_KEY, API_SECRET, FakeMexc

T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC, a funding time and a bar open inside the file
H8 = 8 * 3_600_000
FIRST_FUNDING, SECOND_FUNDING = T0 + 60 * 300_000, T0 + 80 * 300_000  # 05:00, 06:40 (a fake's)
BTC = "BTCUSDT"
CONTRACT = "BTC_USDT"
POSITIONS = "/api/v1/private/position/open_positions"
DETAIL = "/api/v1/contract/detail"


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeMexc]:
    with FakeMexc(clock=clock, symbols=(CONTRACT,)) as venue:
        venue.book.prices[CONTRACT] = Decimal("94000")
        yield venue


@pytest.fixture
def settings(fake: FakeMexc) -> MexcSettings:
    return MexcSettings(
        rest_url=fake.rest_url, ws_url=fake.ws_url, api_key=API_KEY, api_secret=API_SECRET,  # type: ignore[arg-type]
        timeout_s=5, retries=2, backoff_s=0.01, max_backoff_s=0.05,
    )  # fmt: skip


@pytest.fixture
def budget(clock: SimulatedClock) -> VenueBudget:
    async def wait(seconds: float) -> None:  # the wait passes on the simulated clock
        clock.advance_to(max(clock.now_ms(), clock.now_ms() + round(seconds * 1000)))

    return mexc_budget(clock, sleep=wait)


async def _no_wait(seconds: float) -> None:
    return None


@pytest.fixture
def client(
    settings: MexcSettings, clock: SimulatedClock, budget: VenueBudget
) -> Iterator[MexcExecution]:
    venue = MexcExecution(settings, clock=clock, symbols=[BTC], sleep=_no_wait, budget=budget)
    with venue:
        yield venue


def _market_data(settings: MexcSettings, clock: SimulatedClock, budget: VenueBudget) -> None:
    """Open and close the feed's REST connection on the shared budget (contracts, time)."""

    async def open_and_close() -> None:
        async with MexcMarketData(settings, clock=clock, budget=budget, sleep=_no_wait):
            pass

    asyncio.run(open_and_close())


def _wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, f"waited 10 s for {what}"
        time.sleep(0.005)


def test_the_feed_and_the_order_client_take_turns_in_one_budget_of_20_requests_per_2_s(
    client: MexcExecution, settings: MexcSettings, clock: SimulatedClock, budget: VenueBudget
) -> None:
    started = clock.now_ms()

    _market_data(settings, clock, budget)  # the feed's contract list and time
    for _ in range(40):
        client.positions()
    state = budget.state()

    # 2 contract lists, 1 time and 40 position polls: 43 requests, which 20 per 2 s sends
    # over at least 4 s on the shared clock.
    assert clock.now_ms() - started >= 4_000
    assert state.limit == 20 and state.window_ms == 2_000 and state.waited >= 2
    assert 0 < state.used <= 20


def test_a_429_with_retry_after_to_the_feed_holds_the_order_client_until_then(
    client: MexcExecution,
    fake: FakeMexc,
    settings: MexcSettings,
    clock: SimulatedClock,
    budget: VenueBudget,
) -> None:
    fake.fail_next(DETAIL, 429, retry_after_s=30)
    refused_at = clock.now_ms()
    with pytest.raises(RateLimited):  # the feed's connection, without retries
        _market_data(settings.model_copy(update={"retries": 0}), clock, budget)
    held = budget.state()

    client.positions()

    assert held.held_until == refused_at + 30_000
    assert held.hold_reason is not None and "429" in held.hold_reason
    assert fake.requests[(POSITIONS, 200)] == 1
    assert clock.now_ms() >= refused_at + 30_000  # the client sent nothing before Retry-After


def test_a_418_bans_the_venue_for_every_caller_with_the_reason_in_the_status(
    client: MexcExecution,
    fake: FakeMexc,
    settings: MexcSettings,
    clock: SimulatedClock,
    budget: VenueBudget,
    tmp_path: Path,
) -> None:
    fake.fail_next(POSITIONS, 418, retry_after_s=120)
    feed = MexcLiveFeed(
        settings, symbols=[BTC], timeframe="5m", clock=clock,
        store=ParquetCandleStore(tmp_path), history_ms=0, budget=budget,
    )  # fmt: skip
    details = fake.requests[(DETAIL, 200)]

    with pytest.raises(VenueBanned) as banned:
        client.positions()
    with pytest.raises(VenueBanned):
        _market_data(settings, clock, budget)  # refused here, never sent
    status = client.add_activity(feed.venue_status())

    assert banned.value.until_ms == clock.now_ms() + 120_000
    assert fake.requests[(DETAIL, 200)] == details
    assert status.banned_until == banned.value.until_ms
    assert status.ban_reason is not None and "418" in status.ban_reason
    assert status.weight_limit == 20 and status.weight_used > 0


def test_the_venue_status_counts_the_order_clients_requests_and_websocket_reconnections(
    client: MexcExecution,
    fake: FakeMexc,
    settings: MexcSettings,
    clock: SimulatedClock,
    budget: VenueBudget,
    tmp_path: Path,
) -> None:
    feed = MexcLiveFeed(
        settings, symbols=[BTC], timeframe="5m", clock=clock,
        store=ParquetCandleStore(tmp_path), history_ms=0, budget=budget,
    )  # fmt: skip
    fake.fail_next(POSITIONS, 503)
    client.positions()

    fake.drop_websockets(refuse=False)
    _wait(lambda: client.stream_opens == 2, "the private websocket logged in again")
    status = client.add_activity(feed.venue_status())

    assert status.venue == "mexc"
    assert status.requests[f"{POSITIONS} 503"] == 1
    assert status.requests[f"{POSITIONS} 200"] == 1
    assert status.requests[f"{DETAIL} 200"] == 1
    assert status.reconnects["user-data"] == 1
    assert status.weight_used == budget.state().used > 0


def test_funding_mexc_charged_becomes_payments_once_per_symbol_and_time(
    client: MexcExecution, fake: FakeMexc
) -> None:
    client.submit(Order("buy-1", BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), T0))
    _wait(lambda: bool(client.positions()), "the buy filled")
    fake.settle_funding(CONTRACT, T0 - H8, "0.0001")
    fake.settle_funding(CONTRACT, T0, "-0.00005")

    payments = client.funding_payments(T0 - H8, booked=set())
    after_restart = client.funding_payments(T0 - H8, booked={(BTC, T0 - H8)})

    rows = {r["settleTime"] - 7: r for r in fake.book.funding}
    assert [(p.symbol, p.time_ms) for p in payments] == [(BTC, T0 - H8), (BTC, T0)]
    for payment in payments:
        assert payment.amount == -Decimal(str(rows[payment.time_ms]["funding"]))
        assert payment.qty == Decimal("0.01")  # the long the venue charged, in BTC
        assert payment.mark == fake.fair_price(CONTRACT, payment.time_ms)
    assert payments[0].amount > 0 > payments[1].amount  # paid at +0.01 %, received at -0.005 %
    assert [(p.symbol, p.time_ms) for p in after_restart] == [(BTC, T0)]


def test_a_live_run_on_mexc_books_its_funding_once_across_a_restart_and_shows_its_activity(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    with FakeMexc(clock=clock, symbols=(CONTRACT,)) as venue:
        venue.book.cash = Decimal(100_000)
        settings = live_settings(tmp_path, venue)
        first = start_live(settings, venue, clock)
        play(venue, first, 0, 59)  # to 05:00
        venue.settle_funding(CONTRACT, FIRST_FUNDING, "0.0001")
        play(venue, first, 60, 63)
        (status,) = first.service.venues()
        first.service.stop()
        first.close()
        booked_before = [(p.symbol, p.time_ms, p.amount) for p in first.service.fundings()]

        second = start_live(settings, venue, clock)
        play(venue, second, 64, 79)  # to 06:40
        venue.settle_funding(CONTRACT, SECOND_FUNDING, "-0.0002")
        play(venue, second, 80, 83)
        second.service.stop()
        second.close()
        booked = [(p.symbol, p.time_ms, p.amount) for p in second.service.fundings()]

    charged = [(BTC, r["settleTime"] - 7, -Decimal(str(r["funding"]))) for r in venue.book.funding]
    assert charged, "the run held a position at a funding time"
    assert booked_before == [c for c in charged if c[1] == FIRST_FUNDING]
    assert booked == charged
    assert status.weight_limit == 20
    assert status.requests[f"{POSITIONS} 200"] > 0  # the order client's polls
    assert status.requests[f"{DETAIL} 200"] >= 2  # the feed's and the client's
    assert status.reconnects == {"BTCUSDT@kline_5m": 0, "user-data": 0}
