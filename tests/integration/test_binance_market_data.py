"""Binance USDⓈ-M market data through ccxt against the fake venue on loopback, real 5m bars.

The fake and the adapter share one simulated clock: the fake's "now" is the test's. Streams are
driven in lock step (move the clock, await the bars) except where high-speed streaming is the
point; every check compares with the real file's bars.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.venues.binance_usdm.kline_stream import KlineStream
from adapters.venues.binance_usdm.market_data import BinanceUsdmMarketData
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from domain.candles import Candles, Gap
from domain.errors import ConfigError, DataError, UnknownSymbol, VenueBanned
from tests.fixtures.data import load_candles
from tests.venues.binance_fake import FakeBinanceUsdm

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC, a bar open inside the file
FILE = "binance_usdm_BTCUSDT_5m.csv.gz"


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)  # one minute into the bar opening at T0


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=clock, symbols=("BTCUSDT",)) as venue:
        yield venue


def _settings(fake: FakeBinanceUsdm, **overrides: object) -> BinanceUsdmSettings:
    fast = {"poll_s": 0.02, "backoff_s": 0.01, "max_backoff_s": 0.05}
    return BinanceUsdmSettings(rest_url=fake.rest_url, ws_url=fake.ws_url, **(fast | overrides))  # type: ignore[arg-type]


def _run(
    fake: FakeBinanceUsdm,
    clock: SimulatedClock,
    body: Callable[[BinanceUsdmMarketData], Awaitable[object]],
    **settings: object,
) -> object:
    async def main() -> object:
        async with BinanceUsdmMarketData(_settings(fake, **settings), clock=clock) as md:
            return await body(md)

    return asyncio.run(main())


def _file_bars(start: int, end: int) -> Candles:
    return load_candles(FILE).between(start, end)


def _assert_same_bars(got: Candles, expected: Candles) -> None:
    np.testing.assert_array_equal(got.open_time, expected.open_time)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


async def _next(stream: KlineStream) -> Candles:
    return await asyncio.wait_for(anext(stream), timeout=10)


async def _advance(fake: FakeBinanceUsdm, ms: int) -> None:
    await asyncio.to_thread(fake.advance_to, ms)


async def _subscribed(fake: FakeBinanceUsdm) -> None:
    """Wait until the venue has the stream subscribed on an open connection."""
    async with asyncio.timeout(10):
        while "btcusdt@kline_5m" not in fake.subscribed():
            await asyncio.sleep(0.005)


def test_backfill_equals_the_files_closed_bars_over_two_pages(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    start = T0 - 1_200 * M5

    got = _run(fake, clock, lambda md: md.backfill("BTCUSDT", "5m", start))

    _assert_same_bars(got, _file_bars(start, T0))  # the bar forming at T0 is left out
    assert fake.requests == {
        ("/fapi/v1/exchangeInfo", 200): 1,
        ("/fapi/v1/time", 200): 1,
        ("/fapi/v1/klines", 200): 2,
    }


def test_backfill_stops_before_its_end(fake: FakeBinanceUsdm, clock: SimulatedClock) -> None:
    start, end = T0 - 100 * M5, T0 - 40 * M5

    got = _run(fake, clock, lambda md: md.backfill("BTCUSDT", "5m", start, end))

    _assert_same_bars(got, _file_bars(start, end))


def test_a_malformed_bar_from_the_venue_is_refused_naming_the_row(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    good = [T0 - 2 * M5, "94000.1", "94100.0", "93950.5", "94050.0", "12.5",
            T0 - M5 - 1, "0", 0, "0", "0", "0"]  # fmt: skip
    high_below_low = [T0 - M5, "94050.0", "94000.0", "94020.0", "94010.0", "8.1",
                      T0 - 1, "0", 0, "0", "0", "0"]  # fmt: skip
    fake.fail_next("/fapi/v1/klines", 200, body=json.dumps([good, high_below_low]))

    with pytest.raises(DataError) as raised:
        _run(fake, clock, lambda md: md.backfill("BTCUSDT", "5m", T0 - 2 * M5))

    assert "row 2: high 94000.0 < low 94020.0" in str(raised.value)


def test_unknown_symbol_and_timeframe_are_refused_naming_the_field(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    async def body(md: BinanceUsdmMarketData) -> list[tuple[str | None, str]]:
        refused = []
        for symbol, timeframe in (("NOSUCHUSDT", "5m"), ("BTCUSDT", "7m"), ("BTCUSDT", "1w")):
            try:
                await md.backfill(symbol, timeframe, T0 - 10 * M5)
            except (UnknownSymbol, ConfigError) as exc:
                refused.append((exc.field, exc.message))
        return refused

    refused = _run(fake, clock, body)

    assert [field for field, _ in refused] == ["symbol", "timeframe", "timeframe"]
    assert "'NOSUCHUSDT'" in refused[0][1]
    assert "'7m'" in refused[1][1]


def test_stream_yields_only_closed_bars_at_high_speed(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    last_stored = T0 - 3 * M5
    until = T0 + 60 * M5

    async def body(md: BinanceUsdmMarketData) -> tuple[Candles, KlineStream]:
        stream = md.stream("BTCUSDT", "5m", after_ms=last_stored)
        got = await _next(stream)  # the bars after the stored one, over REST
        await _subscribed(fake)
        player = asyncio.create_task(asyncio.to_thread(fake.play, until + 1, pause_s=0.002))
        while got.open_time[-1] < until - M5:
            got = got.concat(await _next(stream))
        await player
        return got, stream

    got, stream = _run(fake, clock, body)

    _assert_same_bars(got, _file_bars(last_stored + M5, until))
    assert stream.forming_ignored >= 60  # every bar's opening update came and was ignored
    assert stream.status().gaps == ()


def test_dropped_websocket_reconnects_and_the_missed_bars_come_over_rest_in_order(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    async def body(md: BinanceUsdmMarketData) -> tuple[list[Candles], KlineStream, int]:
        stream = md.stream("BTCUSDT", "5m", after_ms=T0 - M5)
        await _subscribed(fake)
        batches = []
        for k in (1, 2):
            await _advance(fake, T0 + k * M5 + 10)
            batches.append(await _next(stream))
        klines_before = fake.requests[("/fapi/v1/klines", 200)]
        fake.drop_websockets(refuse=True)
        await _advance(fake, T0 + 7 * M5 + 10)  # five bars close while the venue is away
        fake.accept_websockets()
        batches.append(await _next(stream))
        await _subscribed(fake)
        await _advance(fake, T0 + 9 * M5 + 10)
        while batches[-1].open_time[-1] < T0 + 8 * M5:
            batches.append(await _next(stream))
        return batches, stream, fake.requests[("/fapi/v1/klines", 200)] - klines_before

    batches, stream, klines_after_drop = _run(fake, clock, body)

    got = batches[0]
    for batch in batches[1:]:
        got = got.concat(batch)
    _assert_same_bars(got, _file_bars(T0, T0 + 9 * M5))
    assert [len(b) for b in batches[:2]] == [1, 1]
    assert len(batches[2]) >= 4  # the missed bars, in one batch, from REST
    assert stream.reconnects == 1
    assert fake.handshakes >= 2
    assert klines_after_drop >= 1
    assert stream.status().connected


def test_a_duplicated_closed_kline_is_dropped(fake: FakeBinanceUsdm, clock: SimulatedClock) -> None:
    async def body(md: BinanceUsdmMarketData) -> tuple[Candles, KlineStream]:
        stream = md.stream("BTCUSDT", "5m", after_ms=T0 - M5)
        await _subscribed(fake)
        await _advance(fake, T0 + M5 + 10)
        got = await _next(stream)
        fake.repeat_next_close("BTCUSDT")
        for k in (2, 3):
            await _advance(fake, T0 + k * M5 + 10)
            got = got.concat(await _next(stream))
        return got, stream

    got, stream = _run(fake, clock, body)

    _assert_same_bars(got, _file_bars(T0, T0 + 3 * M5))
    assert stream.duplicates == 1


def test_a_feed_without_closed_bars_for_two_periods_is_stale_and_the_hole_reported(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    holes = [T0 + k * M5 for k in range(3)]  # the venue has no bars for 15 minutes
    fake.omit("BTCUSDT", holes)

    async def body(md: BinanceUsdmMarketData) -> tuple[object, object, Candles, KlineStream]:
        stream = md.stream("BTCUSDT", "5m", after_ms=T0 - M5)
        await _subscribed(fake)
        await _advance(fake, T0 + M5 + 10)
        fresh = stream.staleness()
        await _advance(fake, T0 + 2 * M5 + 10)
        stale = stream.staleness()
        await _advance(fake, T0 + 4 * M5 + 10)
        return fresh, stale, await _next(stream), stream

    fresh, stale, bars, stream = _run(fake, clock, body)

    assert fresh is None
    assert stale is not None and stale.symbol == "BTCUSDT"
    assert stale.last_bar_time == T0 - M5 and stale.silent_ms == 2 * M5 + 10
    _assert_same_bars(bars, _file_bars(T0 + 3 * M5, T0 + 4 * M5))
    assert stream.status().gaps == (Gap(holes[0], holes[-1], 3),)
    assert stream.staleness() is None


def test_5xx_and_429_are_retried_honouring_retry_after_and_counted(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    fake.fail_next("/fapi/v1/klines", 503)
    fake.fail_next("/fapi/v1/klines", 429, retry_after_s=2)

    async def main() -> tuple[Candles, dict[str, int]]:
        settings = _settings(fake, backoff_s=0.01)
        async with BinanceUsdmMarketData(settings, clock=clock, sleep=record) as md:
            bars = await md.backfill("BTCUSDT", "5m", T0 - 50 * M5)
            return bars, dict(md.call.retries)

    bars, retries = asyncio.run(main())

    _assert_same_bars(bars, _file_bars(T0 - 50 * M5, T0))
    assert retries == {"venue_transient": 1, "venue_rate_limited": 1}
    assert waits[0] <= 0.02 and waits[1] >= 2.0  # jittered backoff, then the Retry-After
    assert {k: v for k, v in fake.requests.items() if k[0] == "/fapi/v1/klines"} == {
        ("/fapi/v1/klines", 503): 1,
        ("/fapi/v1/klines", 429): 1,
        ("/fapi/v1/klines", 200): 1,
    }


def test_418_is_a_permanent_error_carrying_the_bans_end(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    fake.fail_next("/fapi/v1/klines", 418, retry_after_s=600)

    with pytest.raises(VenueBanned) as raised:
        _run(fake, clock, lambda md: md.backfill("BTCUSDT", "5m", T0 - 50 * M5))

    assert raised.value.until_ms == clock.now_ms() + 600_000  # the body's "banned until"
    assert str(raised.value.until_ms) in str(raised.value)
    assert fake.requests[("/fapi/v1/klines", 418)] == 1
    assert fake.requests[("/fapi/v1/klines", 200)] == 0  # not retried
