"""One request-weight budget per venue, shared by its callers, against the fake Binance USDⓈ-M
on loopback with real 5m bars: every request takes ccxt's cost of its endpoint (Binance's
request weight), a 429 holds every caller until its ``Retry-After``, and a 418 seen by one
caller refuses the other callers' requests before they reach the venue."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from adapters.clock import SimulatedClock
from adapters.venues.binance_usdm.market_data import BinanceUsdmMarketData
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.budget import VenueBudget
from domain.errors import VenueBanned
from tests.venues.binance_fake import FakeBinanceUsdm

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC, a bar open inside the file


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=clock, symbols=("BTCUSDT",)) as venue:
        yield venue


def _settings(fake: FakeBinanceUsdm) -> BinanceUsdmSettings:
    return BinanceUsdmSettings(
        rest_url=fake.rest_url, ws_url=fake.ws_url, backoff_s=0.01, max_backoff_s=0.05
    )


def test_two_callers_take_their_requests_weight_from_one_budget(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    budget = VenueBudget("binance-usdm", limit=2_400, clock=clock)

    async def main() -> None:
        async with (
            BinanceUsdmMarketData(_settings(fake), clock=clock, budget=budget) as first,
            BinanceUsdmMarketData(_settings(fake), clock=clock, budget=budget) as second,
        ):
            await first.backfill("BTCUSDT", "5m", T0 - 1_500 * M5)  # two pages of 1000
            await second.backfill("BTCUSDT", "5m", T0 - 50 * M5)  # one page

    asyncio.run(main())

    # Each opening: exchangeInfo (1) and time (1); klines of limit 1000 weigh 5 each.
    pages = fake.requests[("/fapi/v1/klines", 200)]
    assert pages == 3
    assert budget.state().used == 2 * (1 + 1) + 5 * pages


def test_a_ban_seen_by_one_caller_stops_the_others_before_the_venue(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    budget = VenueBudget("binance-usdm", limit=2_400, clock=clock, sleep=record)

    async def main() -> None:
        async with (
            BinanceUsdmMarketData(
                _settings(fake), clock=clock, budget=budget, sleep=record
            ) as first,
            BinanceUsdmMarketData(
                _settings(fake), clock=clock, budget=budget, sleep=record
            ) as second,
        ):
            fake.fail_next("/fapi/v1/klines", 429, retry_after_s=3)
            await first.backfill("BTCUSDT", "5m", T0 - 50 * M5)
            assert budget.state().held_until == clock.now_ms() + 3_000
            fake.fail_next("/fapi/v1/klines", 418, retry_after_s=600)
            with pytest.raises(VenueBanned):
                await first.backfill("BTCUSDT", "5m", T0 - 50 * M5)
            with pytest.raises(VenueBanned) as refused:
                await second.backfill("BTCUSDT", "5m", T0 - 50 * M5)
            assert refused.value.until_ms == clock.now_ms() + 600_000

    asyncio.run(main())

    assert fake.requests[("/fapi/v1/klines", 418)] == 1
    assert fake.requests[("/fapi/v1/klines", 200)] == 1  # the second caller never reached it
    assert budget.state().banned_until == clock.now_ms() + 600_000
    assert 3.0 in waits  # the retry after the 429 waited for the hold
