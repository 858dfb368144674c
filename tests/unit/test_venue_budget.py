"""The per-venue request-weight budget (:mod:`adapters.venues.budget`): requests from callers
that ask at once are given slots that never put more than the limit in any window (spec 001
Property 30, here with Binance's 2,400 weight a minute), a 429 holds everyone, a 418 refuses
everything until the ban ends."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import SimulatedClock
from adapters.venues.budget import VenueBudget
from domain.errors import VenueBanned

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
