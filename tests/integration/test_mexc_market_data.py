"""MEXC futures market data and the order-entry probe through ccxt against the fake MEXC on
loopback, real 5m bars (Binance's, served as MEXC's ``BTC_USDT``: see ``mexc_fake``).

The fake and the adapter share one simulated clock: the fake's "now" is the test's. Streams are
driven in lock step (move the clock, await the bars) except where high-speed streaming is the
point; every check compares with the real file's bars.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.marketdata.parquet_store import ParquetCandleStore
from adapters.venues.mexc.capabilities import Capabilities
from adapters.venues.mexc.kline_stream import KlineStream
from adapters.venues.mexc.market_data import MexcMarketData
from adapters.venues.mexc.settings import MexcSettings
from domain.candles import Candles, Gap
from domain.errors import ConfigError, TransientVenueError, UnknownSymbol
from lootcapital.cli import main
from tests.fixtures.data import load_candles
from tests.venues.mexc_fake import API_KEY, API_SECRET, FakeMexc

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC, a bar open inside the file
FILE = "binance_usdm_BTCUSDT_5m.csv.gz"
KLINES = "/api/v1/contract/kline/BTC_USDT"
KEYS = {"api_key": API_KEY, "api_secret": API_SECRET}


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)  # one minute into the bar opening at T0


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeMexc]:
    with FakeMexc(clock=clock, symbols=("BTC_USDT",)) as venue:
        yield venue


def _settings(fake: FakeMexc, **overrides: object) -> MexcSettings:
    fast = {"poll_s": 0.02, "backoff_s": 0.01, "max_backoff_s": 0.05}
    return MexcSettings(rest_url=fake.rest_url, ws_url=fake.ws_url, **(fast | overrides))  # type: ignore[arg-type]


def _run(
    fake: FakeMexc,
    clock: SimulatedClock,
    body: Callable[[MexcMarketData], Awaitable[object]],
    **settings: object,
) -> object:
    async def main() -> object:
        async with MexcMarketData(_settings(fake, **settings), clock=clock) as md:
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


async def _advance(fake: FakeMexc, ms: int) -> None:
    await asyncio.to_thread(fake.advance_to, ms)


async def _subscribed(fake: FakeMexc) -> None:
    """Wait until the venue has the stream subscribed on an open connection."""
    async with asyncio.timeout(10):
        while "BTC_USDT@Min5" not in fake.subscribed():
            await asyncio.sleep(0.005)


def test_backfill_equals_the_files_closed_bars_over_two_pages(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    start = T0 - 2_500 * M5

    got = _run(fake, clock, lambda md: md.backfill("BTCUSDT", "5m", start))

    _assert_same_bars(got, _file_bars(start, T0))  # the bar forming at T0 is left out
    assert fake.requests == {
        ("/api/v1/contract/detail", 200): 1,
        ("/api/v1/contract/ping", 200): 1,
        (KLINES, 200): 2,
    }
    windows = [(int(q["start"]), int(q["end"])) for q in fake.queries]
    assert windows == [  # in seconds: from 1 s before the first bar to 1 s before the next
        (start // 1000 - 1, (start + 2_000 * M5) // 1000 - 1),
        ((start + 2_000 * M5) // 1000 - 1, T0 // 1000 - 1),
    ]


def test_backfill_stops_before_its_end_and_goes_on_past_a_window_without_bars(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    start, end = T0 - 100 * M5, T0 - 40 * M5
    fake.omit("BTC_USDT", [start + k * M5 for k in range(10)])  # the whole first window

    async def main() -> Candles:
        pages = Capabilities(klines_per_page=10)
        async with MexcMarketData(_settings(fake), clock=clock, capabilities=pages) as md:
            return await md.backfill("BTCUSDT", "5m", start, end)

    got = asyncio.run(main())

    _assert_same_bars(got, _file_bars(start + 10 * M5, end))
    assert fake.requests[(KLINES, 200)] == 6


def test_unknown_symbol_and_timeframe_are_refused_naming_the_field(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    async def body(md: MexcMarketData) -> list[tuple[str | None, str]]:
        refused = []
        for symbol, timeframe in (("BTC_USDT", "5m"), ("BTCUSDT", "3m"), ("BTCUSDT", "1w")):
            try:
                await md.backfill(symbol, timeframe, T0 - 10 * M5)
            except (UnknownSymbol, ConfigError) as exc:
                refused.append((exc.field, exc.message))
        return refused

    refused = _run(fake, clock, body)

    assert [field for field, _ in refused] == ["symbol", "timeframe", "timeframe"]
    assert "'BTC_USDT'" in refused[0][1] and "write BTCUSDT" in refused[0][1]
    assert "'3m'" in refused[1][1]


def test_stream_yields_only_closed_bars_with_their_final_values_at_high_speed(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    last_stored = T0 - 3 * M5
    until = T0 + 60 * M5

    async def body(md: MexcMarketData) -> tuple[Candles, KlineStream]:
        stream = md.stream("BTCUSDT", "5m", after_ms=last_stored)
        await _subscribed(fake)
        # Play to the middle of the bar opening at `until`: it has had its first update.
        player = asyncio.create_task(asyncio.to_thread(fake.play, until + M5 // 2, pause_s=0.002))
        got = await _next(stream)  # the bars after the stored one, over REST
        while got.open_time[-1] < until - M5:
            got = got.concat(await _next(stream))
        await player
        await _advance(fake, until + M5 + 10)
        return got.concat(await _next(stream)), stream

    got, stream = _run(fake, clock, body)

    # Each bar with its final values (an update of a forming bar has open = high = low = close
    # and no volume), the one forming at `until` only once it closed.
    _assert_same_bars(got, _file_bars(last_stored + M5, until + M5))
    assert stream.updates >= 2 * 60 and stream.status().gaps == ()


def test_a_quiet_bar_is_fetched_over_rest_once_its_close_is_past_the_grace(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    async def body(md: MexcMarketData) -> tuple[Candles, KlineStream, int]:
        stream = md.stream("BTCUSDT", "5m", after_ms=T0 - M5)
        await _subscribed(fake)
        fake.mute("BTC_USDT")  # no update of the next bar comes to close the one at T0
        await _advance(fake, T0 + M5 + 3_500)  # the grace is 3 s
        bars = await _next(stream)
        return bars, stream, fake.requests[(KLINES, 200)]

    bars, stream, klines = _run(fake, clock, body)

    _assert_same_bars(bars, _file_bars(T0, T0 + M5))
    assert stream.rest_bars == 1 and klines == 1


def test_dropped_websocket_reconnects_and_the_missed_bars_come_over_rest_in_order_once(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    async def body(md: MexcMarketData) -> tuple[list[Candles], KlineStream, int]:
        stream = md.stream("BTCUSDT", "5m", after_ms=T0 - M5)
        await _subscribed(fake)
        batches = []
        for k in (1, 2):
            await _advance(fake, T0 + k * M5 + 10)
            batches.append(await _next(stream))
        klines_before = fake.requests[(KLINES, 200)]
        fake.drop_websockets(refuse=True)
        await _advance(fake, T0 + 7 * M5 + 10)  # five bars close while the venue is away
        fake.accept_websockets()
        batches.append(await _next(stream))
        await _subscribed(fake)
        await _advance(fake, T0 + 9 * M5 + 10)
        while batches[-1].open_time[-1] < T0 + 8 * M5:
            batches.append(await _next(stream))
        return batches, stream, fake.requests[(KLINES, 200)] - klines_before

    batches, stream, klines_after_drop = _run(fake, clock, body)

    got = batches[0]
    for batch in batches[1:]:
        got = got.concat(batch)
    _assert_same_bars(got, _file_bars(T0, T0 + 9 * M5))  # in order, each bar once
    assert [len(b) for b in batches[:2]] == [1, 1]
    assert len(batches[2]) >= 4  # the missed bars, in one batch, from REST
    assert stream.reconnects == 1 and fake.handshakes >= 2 and klines_after_drop >= 1
    assert stream.status().connected


def test_a_bar_forming_when_the_connection_dropped_comes_over_rest_not_from_its_last_update(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    async def body(md: MexcMarketData) -> tuple[Candles, Candles, KlineStream]:
        stream = md.stream("BTCUSDT", "5m", after_ms=T0 - M5)
        await _subscribed(fake)
        await _advance(fake, T0 + M5 + 10)
        first = await _next(stream)  # the bar at T0; the one at T0 + M5 has had its first update
        fake.drop_websockets(refuse=True)
        await _advance(fake, T0 + 2 * M5 + 10)  # it closes while the venue is away
        updates = stream.updates
        following = asyncio.create_task(_next(stream))
        fake.accept_websockets()
        async with asyncio.timeout(10):  # the reconnection's first update: the next bar's
            while stream.updates == updates:
                await asyncio.sleep(0.005)
        await _advance(fake, T0 + 2 * M5 + 3_500)  # past the grace: over REST
        return first, await following, stream

    first, following, stream = _run(fake, clock, body)

    _assert_same_bars(first.concat(following), _file_bars(T0, T0 + 2 * M5))
    assert stream.rest_bars == 1 and stream.reconnects == 1


def test_a_late_repeat_of_a_closed_bars_update_is_dropped(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    async def body(md: MexcMarketData) -> tuple[Candles, KlineStream]:
        stream = md.stream("BTCUSDT", "5m", after_ms=T0 - M5)
        await _subscribed(fake)
        fake.repeat_next_close("BTC_USDT")
        got = Candles.empty()
        for k in (1, 2, 3):
            await _advance(fake, T0 + k * M5 + 10)
            got = got.concat(await _next(stream))
        return got, stream

    got, stream = _run(fake, clock, body)

    _assert_same_bars(got, _file_bars(T0, T0 + 3 * M5))
    assert stream.duplicates == 1


def test_a_feed_without_closed_bars_for_two_periods_is_stale_and_the_hole_reported(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    holes = [T0 + k * M5 for k in range(3)]  # the venue has no bars for 15 minutes
    fake.omit("BTC_USDT", holes)

    async def body(md: MexcMarketData) -> tuple[object, object, Candles, KlineStream]:
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


def test_a_5xx_and_a_rate_limit_refusal_are_retried_and_counted(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    fake.fail_next(KLINES, 502)
    too_frequent = '{"success":false,"code":510,"message":"Requests are too frequent!"}'
    fake.fail_next(KLINES, 200, body=too_frequent)

    async def main() -> tuple[Candles, dict[str, int]]:
        async with MexcMarketData(_settings(fake), clock=clock, sleep=record) as md:
            bars = await md.backfill("BTCUSDT", "5m", T0 - 50 * M5)
            return bars, dict(md.call.retries)

    bars, retries = asyncio.run(main())

    _assert_same_bars(bars, _file_bars(T0 - 50 * M5, T0))
    assert retries == {"venue_transient": 1, "venue_rate_limited": 1}
    assert len(waits) == 2
    assert {k: v for k, v in fake.requests.items() if k[0] == KLINES} == {
        (KLINES, 502): 1,
        (KLINES, 200): 2,  # the refusal, then the bars
    }


def test_the_probe_reports_order_entry_open_after_a_zero_quantity_order_is_checked(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    entry = _run(fake, clock, lambda md: md.probe_order_entry("BTCUSDT"), **KEYS)

    assert entry.allowed and entry.venue_code == 2011  # "Order quantity error"
    assert fake.orders == [  # post only, zero contracts, at one tick: it cannot trade
        {"symbol": "BTC_USDT", "price": 0.1, "vol": 0, "side": 1, "type": 2, "openType": 2}
    ]


def test_the_probe_reports_order_entry_refused_with_the_venues_reason(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    fake.order_entry = False

    entry = _run(fake, clock, lambda md: md.probe_order_entry("BTCUSDT"), **KEYS)

    assert not entry.allowed and entry.venue_code == 1002
    assert "Contract not allow place order!" in entry.reason
    assert entry.checked_ms == T0 + 60_000


def test_the_probe_refuses_without_a_key_or_with_a_bad_signature_before_any_order(
    fake: FakeMexc, clock: SimulatedClock
) -> None:
    async def probe(**keys: str) -> object:
        settings = _settings(fake, **keys)
        async with MexcMarketData(settings, clock=clock) as md:
            return await md.probe_order_entry("BTCUSDT")

    keyless = asyncio.run(probe())
    bad_secret = asyncio.run(probe(api_key=API_KEY, api_secret="not-the-secret-0000"))

    assert not keyless.allowed and "no API key" in keyless.reason
    assert not bad_secret.allowed and bad_secret.venue_code == 602
    assert "account check" in bad_secret.reason
    assert fake.orders == []


def test_secrets_never_appear_in_errors_or_logs(
    fake: FakeMexc, clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_secret = "wrong0secret0value0abcdef"
    fake.fail_next("/api/v1/private/account/assets", 503, times=3)

    async def main() -> tuple[str, str]:
        async with MexcMarketData(_settings(fake, **KEYS, retries=2), clock=clock) as md:
            with pytest.raises(TransientVenueError) as failed:
                await md.probe_order_entry("BTCUSDT")
        settings = _settings(fake, api_key=API_KEY, api_secret=wrong_secret)
        async with MexcMarketData(settings, clock=clock) as md:
            refused = await md.probe_order_entry("BTCUSDT")
        return str(failed.value), refused.reason

    with caplog.at_level(logging.DEBUG):
        failed, refused = asyncio.run(main())

    assert "HTTP 503" in failed and "602" in refused
    # ccxt logs each signed request with its headers at DEBUG level: redacted.
    assert "Signature': '***" in caplog.text and "ApiKey': '***" in caplog.text
    for text in (failed, refused, caplog.text):
        for secret in (API_KEY, API_SECRET, wrong_secret):
            assert secret not in text


def test_data_download_from_mexc_stores_the_venues_bars_under_mexc(
    fake: FakeMexc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LOOTCAPITAL_CONFIG", raising=False)
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOOTCAPITAL_VENUES__MEXC__REST_URL", fake.rest_url)
    monkeypatch.setenv("LOOTCAPITAL_VENUES__MEXC__WS_URL", fake.ws_url)
    start, end = T0 - 300 * M5, T0 - 100 * M5
    period = ("--start", _iso(start), "--end", _iso(end))

    code = main(["data", "download", "--venue", "mexc", "--symbol", "BTCUSDT", *period])

    assert code == 0
    _assert_same_bars(
        ParquetCandleStore(tmp_path).read("mexc", "BTCUSDT", "5m"), _file_bars(start, end)
    )
    assert capsys.readouterr().out.startswith("mexc BTCUSDT 5m: 200 bars")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
