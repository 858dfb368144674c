"""The per-venue request-weight budget (:mod:`adapters.venues.budget`): requests from callers
that ask at once are given slots that never put more than the limit in any window (spec 001
Property 30, here with Binance's 2,400 weight a minute), a 429 holds everyone, a 418 refuses
everything until the ban ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import SimulatedClock
from adapters.venues.binance_usdm.budget import binance_budget
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.budget import OrderLimit, VenueBudget
from domain.errors import VenueBanned
from tests.fixtures.data import shared_data_dir

MINUTE = 60_000
LIMIT = 2_400


class Waits:
    """The ``sleep`` of a budget: records each wait (s) without moving the clock, as when
    several callers ask at the same instant and each then sleeps to its slot."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def most_in_any_minute(sent: list[tuple[int, int]]) -> int:
    """The most weight sent in any window (t − 1 min, t]."""
    sent = sorted(sent)
    most = total = left = 0
    for t, weight in sent:
        total += weight
        while sent[left][0] <= t - MINUTE:
            total -= sent[left][1]
            left += 1
        most = max(most, total)
    return most


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2_000), st.integers(1, 5), st.sampled_from([1, 5, 10, 20])),
        min_size=50,
        max_size=400,
    )
)
def test_bursts_from_several_callers_never_exceed_the_limit_in_any_minute(
    arrivals: list[tuple[int, int, int]],
) -> None:
    """Each arrival: ms since the last one, how many callers ask at that instant, each for a
    request of that weight (1: an order, 5: 1000 klines, 20: a heavy account call)."""
    clock, waits = SimulatedClock(1_700_000_000_000), Waits()
    budget = VenueBudget("binance-usdm", limit=LIMIT, clock=clock, sleep=waits)
    sent: list[tuple[int, int]] = []

    async def burst(count: int, weight: int) -> None:
        for _ in range(count):
            before = len(waits.seconds)
            await budget.acquire(weight)
            wait_ms = round(waits.seconds[-1] * 1000) if len(waits.seconds) > before else 0
            sent.append((clock.now_ms() + wait_ms, weight))

    for gap, callers, weight in arrivals:
        clock.advance_to(clock.now_ms() + gap)
        asyncio.run(burst(callers, weight))

    assert most_in_any_minute(sent) <= LIMIT
    assert [t for t, _ in sent] == sorted(t for t, _ in sent)  # first come, first served


def test_a_request_waits_only_when_the_minute_is_full() -> None:
    clock, waits = SimulatedClock(0), Waits()
    budget = VenueBudget("binance-usdm", limit=10, clock=clock, sleep=waits)

    asyncio.run(budget.acquire(6))
    clock.advance_to(1_000)
    asyncio.run(budget.acquire(4))
    assert waits.seconds == []
    clock.advance_to(2_000)
    asyncio.run(budget.acquire(3))  # room again when the first request leaves the minute

    assert waits.seconds == [pytest.approx(58.0)]
    state = budget.state()
    assert (state.used, state.limit, state.waited) == (7, 10, 1)  # the minute to its slot


def test_a_429_holds_every_caller_until_its_retry_after() -> None:
    clock, waits = SimulatedClock(10_000), Waits()
    budget = VenueBudget("binance-usdm", limit=LIMIT, clock=clock, sleep=waits)

    budget.hold(25_000)
    asyncio.run(budget.acquire(1))

    assert waits.seconds == [pytest.approx(15.0)]
    assert budget.state().held_until == 25_000
    clock.advance_to(25_000)
    assert budget.state().held_until is None


def test_a_418_refuses_every_request_until_the_ban_ends() -> None:
    clock, waits = SimulatedClock(10_000), Waits()
    budget = VenueBudget("binance-usdm", limit=LIMIT, clock=clock, sleep=waits)
    budget.ban(70_000)

    with pytest.raises(VenueBanned, match="until 70000") as refused:
        asyncio.run(budget.acquire(1))

    assert refused.value.until_ms == 70_000 and budget.state().banned_until == 70_000
    clock.advance_to(70_000)
    asyncio.run(budget.acquire(1))
    assert budget.state().banned_until is None and waits.seconds == []


REQUESTS = 1_200  # spec 001 Property 30: requests in any minute
ORDERS_10S, ORDERS_1M = 300, 1_200  # Binance USDⓈ-M exchangeInfo rateLimits ORDERS
TEN_S = 10_000
EXCHANGE_INFO = "binance_usdm_exchange_info_20251030.json"


def most_in_any_window(sent: list[tuple[int, int]], window_ms: int) -> int:
    """The most ``count`` in any window (t − ``window_ms``, t] of ``(time, count)`` pairs."""
    sent = sorted(sent)
    most = total = left = 0
    for t, count in sent:
        total += count
        while sent[left][0] <= t - window_ms:
            total -= sent[left][1]
            left += 1
        most = max(most, total)
    return most


def _binance(clock: SimulatedClock, waits: Waits) -> VenueBudget:
    return binance_budget(BinanceUsdmSettings(), clock, sleep=waits)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 300), st.integers(1, 40), st.sampled_from([1, 1, 1, 2, 5, 20])),
        min_size=50,
        max_size=300,
    )
)
def test_property_30_no_minute_exceeds_1200_requests_nor_2400_weight(
    arrivals: list[tuple[int, int, int]],
) -> None:
    """Spec 001 Property 30 on the live Binance budget (its settings' defaults): light requests
    are capped by their count (1,200 a minute), heavy ones by their weight (2,400)."""
    clock, waits = SimulatedClock(1_700_000_000_000), Waits()
    budget = _binance(clock, waits)
    sent: list[tuple[int, int]] = []

    async def burst(count: int, weight: int) -> None:
        for _ in range(count):
            before = len(waits.seconds)
            await budget.acquire(weight)
            wait_ms = round(waits.seconds[-1] * 1000) if len(waits.seconds) > before else 0
            sent.append((clock.now_ms() + wait_ms, weight))

    for gap, callers, weight in arrivals:
        clock.advance_to(clock.now_ms() + gap)
        asyncio.run(burst(callers, weight))

    assert most_in_any_window([(t, 1) for t, _ in sent], MINUTE) <= REQUESTS
    assert most_in_any_window(sent, MINUTE) <= LIMIT
    state = budget.state()
    assert (state.request_limit, state.limit) == (REQUESTS, LIMIT)
    assert state.requests_used <= REQUESTS and state.used <= LIMIT


ORDER_KINDS = {"query": (), "order": (1, 1), "batch": (5, 1)}
"""A request's order counts in the 10 s and the minute windows (Binance: a batch is 5 and 1)."""


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 400),
            st.integers(1, 30),
            st.sampled_from(["order", "order", "order", "batch", "query"]),
        ),
        min_size=30,
        max_size=250,
    )
)
def test_orders_never_exceed_300_in_10_s_nor_1200_a_minute_and_wait_only_for_a_full_window(
    arrivals: list[tuple[int, int, str]],
) -> None:
    """Each arrival: ms since the last one, how many requests ask at that instant, and what
    they are. Every request is sent at the first ms, at or after it asks and after the one
    before it, that fits every window: one ms earlier, some window was full."""
    clock, waits = SimulatedClock(1_700_000_000_000), Waits()
    budget = _binance(clock, waits)
    asked: list[int] = []
    sent: list[tuple[int, tuple[int, ...]]] = []

    async def burst(count: int, orders: tuple[int, ...]) -> None:
        for _ in range(count):
            before = len(waits.seconds)
            await budget.acquire(1, orders)
            wait_ms = round(sum(waits.seconds[before:]) * 1000)
            asked.append(clock.now_ms())
            sent.append((clock.now_ms() + wait_ms, orders))

    for gap, callers, kind in arrivals:
        clock.advance_to(clock.now_ms() + gap)
        asyncio.run(burst(callers, ORDER_KINDS[kind]))

    in_10s = [(t, o[0]) for t, o in sent if o]
    in_1m = [(t, o[1]) for t, o in sent if o]
    assert most_in_any_window(in_10s, TEN_S) <= ORDERS_10S
    assert most_in_any_window(in_1m, MINUTE) <= ORDERS_1M
    assert most_in_any_window([(t, 1) for t, _ in sent], MINUTE) <= REQUESTS
    times = [t for t, _ in sent]
    assert times == sorted(times)  # first come, first served
    for i, (t, orders) in enumerate(sent):
        earliest = max(asked[i], times[i - 1] if i else 0)
        if t > earliest:
            assert _full_at(sent[:i], t - 1, orders), f"request {i} waited with room at {t - 1}"


def _full_at(before: list[tuple[int, tuple[int, ...]]], t: int, orders: tuple[int, ...]) -> bool:
    """Whether a request with ``orders`` did not fit at ``t`` after the requests ``before``:
    the minute held 1,200 requests, or an order window had no room for its counts."""

    def used(window_ms: int, count: Callable[[tuple[int, ...]], int]) -> int:
        return sum(count(o) for s, o in before if t - window_ms < s <= t)

    if used(MINUTE, lambda o: 1) + 1 > REQUESTS:
        return True
    return bool(orders) and (
        used(TEN_S, lambda o: o[0] if o else 0) + orders[0] > ORDERS_10S
        or used(MINUTE, lambda o: o[1] if o else 0) + orders[1] > ORDERS_1M
    )


def test_an_order_waits_only_when_an_order_window_is_full_and_other_requests_do_not() -> None:
    clock, waits = SimulatedClock(0), Waits()
    budget = VenueBudget(
        "binance-usdm", limit=LIMIT, clock=clock, order_limits=(OrderLimit(3, TEN_S),), sleep=waits
    )

    for _ in range(3):
        asyncio.run(budget.acquire(1, (1,)))
    asyncio.run(budget.acquire(1))  # not an order: room
    clock.advance_to(4_000)
    assert waits.seconds == []
    asyncio.run(budget.acquire(1, (1,)))  # the fourth order in 10 s waits for the first to leave

    assert waits.seconds == [pytest.approx(6.0)]
    state = budget.state()
    # at its slot (10 s) the first three have left the window; the minute holds all five
    assert (state.orders_used, state.order_limits) == ((1,), (OrderLimit(3, TEN_S),))
    assert state.requests_used == 5


def test_an_order_asked_while_another_waits_for_the_order_window_waits_behind_it() -> None:
    """Two orders fill a window of 2 per 10 s at 0; one asked at 1 s waits until 10 s; one
    asked at 2 s, while it waits, must not go before it (the window would hold 3)."""
    clock, waits, woken = SimulatedClock(0), Waits(), asyncio.Event()

    async def sleep(seconds: float) -> None:
        await waits(seconds)
        await woken.wait()

    budget = VenueBudget(
        "binance-usdm", limit=LIMIT, clock=clock, order_limits=(OrderLimit(2, TEN_S),), sleep=sleep
    )

    async def main() -> None:
        await budget.acquire(1, (1,))
        await budget.acquire(1, (1,))
        clock.advance_to(1_000)
        third = asyncio.create_task(budget.acquire(1, (1,)))
        await asyncio.sleep(0)
        clock.advance_to(2_000)
        fourth = asyncio.create_task(budget.acquire(1, (1,)))
        await asyncio.sleep(0)
        await budget.acquire(1)  # not an order: goes at once
        assert waits.seconds == [pytest.approx(9.0), pytest.approx(8.0)]
        woken.set()
        await asyncio.gather(third, fourth)

    asyncio.run(main())

    assert budget.state().orders_used == (2,)  # at the last slot: the two sent at 10 s


def test_a_429_about_the_order_count_holds_the_orders_alone() -> None:
    """An order held by the 429 waits without a slot: a request asked meanwhile goes at once."""
    clock, waits, woken = SimulatedClock(10_000), Waits(), asyncio.Event()

    async def sleep(seconds: float) -> None:
        await waits(seconds)
        await woken.wait()

    budget = binance_budget(BinanceUsdmSettings(), clock, sleep=sleep)
    budget.hold(13_000, "too many new orders", orders_only=True)

    async def main() -> None:
        order = asyncio.create_task(budget.acquire(1, (1, 1)))
        await asyncio.sleep(0)  # the order now waits for the hold's end
        await budget.acquire(1)
        assert waits.seconds == [pytest.approx(3.0)]  # the order's wait only
        woken.set()
        await order

    asyncio.run(main())

    state = budget.state()
    assert (state.orders_held_until, state.held_until) == (13_000, None)
    assert (state.orders_used, state.requests_used, state.waited) == ((1, 1), 2, 1)
    clock.advance_to(13_000)
    assert budget.state().orders_held_until is None


def test_order_counts_must_match_the_order_windows() -> None:
    budget = _binance(SimulatedClock(0), Waits())

    with pytest.raises(ValueError, match="one count per order window"):
        asyncio.run(budget.acquire(1, (1,)))


def test_the_binance_order_limits_are_exchange_infos() -> None:
    """The settings' defaults are the rate limits Binance publishes in ``exchangeInfo``."""
    info = json.loads((shared_data_dir() / EXCHANGE_INFO).read_text(encoding="utf-8"))
    published = {
        (r["rateLimitType"], r["interval"], r["intervalNum"]): r["limit"]
        for r in info["rateLimits"]
    }
    settings = BinanceUsdmSettings()

    assert published == {
        ("REQUEST_WEIGHT", "MINUTE", 1): settings.weight_limit,
        ("ORDERS", "MINUTE", 1): settings.order_limit_1m,
        ("ORDERS", "SECOND", 10): settings.order_limit_10s,
    }
    limits = binance_budget(settings, SimulatedClock(0)).state().order_limits
    assert limits == (OrderLimit(300, TEN_S), OrderLimit(1_200, MINUTE))
