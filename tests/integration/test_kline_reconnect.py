"""Bars that close while Binance USDⓈ-M's kline stream is not subscribed (at start, during an
outage) come over REST as soon as the venue has closed them, not ``close_grace_s`` or a bar
later: the fake and the adapter share one simulated clock that moves only when the test moves
it, so a bar left waiting would never come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.venues.binance_usdm.kline_stream import KlineStream
from adapters.venues.binance_usdm.market_data import BinanceUsdmMarketData
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from domain.candles import Candles
from tests.fixtures.data import load_candles
from tests.venues.binance_fake import FakeBinanceUsdm

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC, a bar open inside the file
FILE = "binance_usdm_BTCUSDT_5m.csv.gz"
STREAM = "btcusdt@kline_5m"


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=clock, symbols=("BTCUSDT",)) as venue:
        yield venue


def _source(fake: FakeBinanceUsdm, clock: SimulatedClock) -> BinanceUsdmMarketData:
    settings = BinanceUsdmSettings(
        rest_url=fake.rest_url,  # type: ignore[arg-type]
        ws_url=fake.ws_url,  # type: ignore[arg-type]
        poll_s=0.02,
        backoff_s=0.01,
        max_backoff_s=0.05,
        close_grace_s=3.0,
    )
    return BinanceUsdmMarketData(settings, clock=clock)


def _assert_file_bars(got: Candles, start: int, end: int) -> None:
    expected = load_candles(FILE).between(start, end)
    np.testing.assert_array_equal(got.open_time, expected.open_time)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


async def _until(stream: KlineStream, last_open_time: int) -> Candles:
    """The stream's bars up to the one opening at ``last_open_time``, the clock standing still."""
    got = Candles.empty()
    async with asyncio.timeout(10):
        while not len(got) or got.open_time[-1] < last_open_time:
            got = got.concat(await anext(stream))
    return got


async def _subscribed(fake: FakeBinanceUsdm, stream: KlineStream) -> None:
    """Wait until the venue has the stream subscribed and the stream has its first update."""
    async with asyncio.timeout(10):
        while STREAM not in fake.subscribed() or not stream.status().connected:
            await asyncio.sleep(0.005)


async def _advance(fake: FakeBinanceUsdm, ms: int) -> None:
    await asyncio.to_thread(fake.advance_to, ms)


def test_every_bar_closed_during_an_outage_comes_right_after_the_reconnect(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    async def main() -> tuple[Candles, Candles, KlineStream]:
        async with _source(fake, clock) as md:
            stream = md.stream("BTCUSDT", "5m", after_ms=T0 - M5)
            await _subscribed(fake, stream)
            await _advance(fake, T0 + M5 + 10)
            before = await _until(stream, T0)
            fake.drop_websockets(refuse=True)
            await _advance(fake, T0 + 4 * M5 + 10)  # three bars close while the venue is away
            fake.accept_websockets()
            await _subscribed(fake, stream)
            return before, await _until(stream, T0 + 3 * M5), stream

    before, missed, stream = asyncio.run(main())

    _assert_file_bars(before, T0, T0 + M5)
    _assert_file_bars(missed, T0 + M5, T0 + 4 * M5)  # the one that closed 10 ms ago included
    assert stream.reconnects == 1
    assert stream.rest_bars == 3


def test_a_bar_closed_just_before_the_stream_starts_comes_over_rest_at_once(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    clock.advance_to(T0 + M5 + 10)  # the bar opening at T0 closed 10 ms ago

    async def main() -> Candles:
        async with _source(fake, clock) as md:
            return await _until(md.stream("BTCUSDT", "5m", after_ms=T0 - 2 * M5), T0)

    _assert_file_bars(asyncio.run(main()), T0 - M5, T0 + M5)


def test_backfill_returns_a_bar_the_venue_has_closed_but_never_the_one_forming(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    clock.advance_to(T0 + M5 + 10)  # inside close_grace_s of the bar opening at T0

    async def main() -> Candles:
        async with _source(fake, clock) as md:
            return await md.backfill("BTCUSDT", "5m", T0 - 10 * M5)

    _assert_file_bars(asyncio.run(main()), T0 - 10 * M5, T0 + M5)
