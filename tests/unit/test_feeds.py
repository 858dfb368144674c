"""Historical and replay feeds over real bars: batching, pacing, resuming and stopping."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest

from adapters.marketdata.feeds import MAX_SLEEP_S, HistoricalFeed, ReplayFeed, history_cut
from domain.candles import Candles
from domain.errors import ConfigError, UnknownSymbol
from tests.fixtures.data import load_sample_candles

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


class FakeClock:
    """A clock that moves only when something sleeps on it or the test advances it."""

    def __init__(self, start_ms: int = 1_762_000_000_000) -> None:
        self.ms = float(start_ms)
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        return int(self.ms)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, tz=UTC)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.ms += seconds * 1000


class MonotonicClock:
    """Real elapsed time, for the threading tests."""

    def now_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000

    def now(self) -> datetime:
        return datetime.now(tz=UTC)


def _bars(count: int) -> dict[str, Candles]:
    return {s: load_sample_candles(s).slice(0, count) for s in SYMBOLS}


def _without(candles: Candles, i: int) -> Candles:
    return candles.slice(0, i).concat(candles.slice(i + 1, len(candles)))


def test_replay_yields_each_bar_time_once_with_every_symbol_that_has_it() -> None:
    bars = _bars(20)
    bars["ETHUSDT"] = _without(bars["ETHUSDT"], 7)
    clock = FakeClock()
    feed = ReplayFeed(bars, "5m", speed=300, clock=clock, sleep=clock.sleep)

    batches = list(feed.batches())

    assert len(batches) == 20
    assert sorted(batches[7]) == ["BTCUSDT", "SOLUSDT"]
    assert all(len(c) == 1 for batch in batches for c in batch.values())
    times = [batch["BTCUSDT"].open_time[0] for batch in batches]
    np.testing.assert_array_equal(times, bars["BTCUSDT"].open_time)
    assert batches[3]["SOLUSDT"].close[0] == bars["SOLUSDT"].close[3]
    assert feed.finished_reason == "end of data"


def test_speed_300_releases_one_5m_bar_per_wall_second() -> None:
    clock = FakeClock()
    feed = ReplayFeed(_bars(10), "5m", speed=300, clock=clock, sleep=clock.sleep)
    start = clock.now_ms()

    released = [clock.now_ms() - start for _ in feed.batches()]

    assert released == [k * 1000 for k in range(10)]
    assert sum(clock.sleeps) == pytest.approx(9.0)
    assert max(clock.sleeps) <= MAX_SLEEP_S


def test_a_slow_consumer_does_not_make_the_replay_drift() -> None:
    clock = FakeClock()
    feed = ReplayFeed(_bars(10), "5m", speed=300, clock=clock, sleep=clock.sleep)
    start = clock.now_ms()
    released = []

    for _ in feed.batches():
        released.append(clock.now_ms() - start)
        clock.ms += 400  # the engine takes 0.4 s per bar

    assert released == [k * 1000 for k in range(10)]
    assert sum(clock.sleeps) == pytest.approx(9 * 0.6)


def test_infinite_speed_replays_without_sleeping() -> None:
    clock = FakeClock()
    feed = ReplayFeed(_bars(50), "5m", speed=math.inf, clock=clock, sleep=clock.sleep)

    assert len(list(feed.batches())) == 50
    assert clock.sleeps == []


def test_resume_replays_after_start_after_and_returns_the_rest_as_history() -> None:
    bars = _bars(20)
    clock = FakeClock()
    after = {
        "BTCUSDT": int(bars["BTCUSDT"].open_time[9]),
        "ETHUSDT": int(bars["ETHUSDT"].open_time[4]),
    }
    feed = ReplayFeed(bars, "5m", speed=300, clock=clock, sleep=clock.sleep, start_after=after)

    batches = list(feed.batches())

    assert len(feed.history("BTCUSDT")) == 10
    assert feed.history("ETHUSDT").open_time[-1] == after["ETHUSDT"]
    assert len(feed.history("SOLUSDT")) == 0
    assert len(batches) == 20  # SOLUSDT replays from its first bar
    assert sorted(batches[5]) == ["ETHUSDT", "SOLUSDT"]
    assert sorted(batches[10]) == list(SYMBOLS)
    assert sum(len(b) for b in batches) == 10 + 15 + 20


def test_history_of_an_unknown_symbol_is_refused() -> None:
    clock = FakeClock()
    feed = ReplayFeed(_bars(5), "5m", speed=300, clock=clock, sleep=clock.sleep)

    with pytest.raises(UnknownSymbol, match="DOGEUSDT"):
        feed.history("DOGEUSDT")


@pytest.mark.parametrize("speed", [0.0, -1.0, math.nan])
def test_speed_must_be_positive(speed: float) -> None:
    with pytest.raises(ConfigError, match="speed"):
        ReplayFeed(_bars(5), "5m", speed=speed, clock=FakeClock())


def _consume_until_stopped(feed: ReplayFeed) -> tuple[list[dict[str, Candles]], float]:
    """Run batches() on a thread, stop it from this thread after the first batch."""
    got: list[dict[str, Candles]] = []
    first = threading.Event()

    def consume() -> None:
        for batch in feed.batches():
            got.append(batch)
            first.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert first.wait(timeout=5)
    stopped_at = time.monotonic()
    feed.stop()
    worker.join(timeout=5)
    assert not worker.is_alive()
    return got, time.monotonic() - stopped_at


@pytest.mark.parametrize(
    "sleep", [None, time.sleep], ids=["default interruptible wait", "plain time.sleep"]
)
def test_stop_from_another_thread_ends_a_sleeping_replay_promptly(
    sleep: Callable[[float], object] | None,
) -> None:
    feed = ReplayFeed(_bars(10), "5m", speed=1.0, clock=MonotonicClock(), sleep=sleep)

    got, waited = _consume_until_stopped(feed)

    assert len(got) == 1  # the next bar was 5 wall minutes away
    assert waited < MAX_SLEEP_S + 0.2
    assert feed.finished_reason == "stopped"


def test_historical_feed_yields_everything_in_one_batch() -> None:
    bars = _bars(100)
    warmup = {"BTCUSDT": load_sample_candles("BTCUSDT").slice(100, 150)}
    feed = HistoricalFeed(bars, "5m", history_by_symbol=warmup)

    batches = list(feed.batches())

    assert len(batches) == 1
    assert batches[0].keys() == bars.keys()
    assert batches[0]["ETHUSDT"] is bars["ETHUSDT"]
    assert len(feed.history("BTCUSDT")) == 50
    assert len(feed.history("SOLUSDT")) == 0
    assert feed.finished_reason == "end of data"
    assert feed.symbols == SYMBOLS


def test_historical_feed_stopped_before_start_yields_nothing() -> None:
    feed = HistoricalFeed(_bars(10), "5m")

    feed.stop()

    assert list(feed.batches()) == []
    assert feed.finished_reason == "stopped"


DAY_MS = 86_400_000


def test_history_cut_keeps_the_first_days_of_each_symbol_as_history() -> None:
    candles = {s: load_sample_candles(s) for s in SYMBOLS}

    cut = history_cut(candles, 14 * DAY_MS)

    assert cut is not None
    for symbol, bars in candles.items():
        first = int(bars.open_time[0])
        assert cut[symbol] == first + 14 * DAY_MS - 300_000  # the last 5m bar of day 14
        feed = ReplayFeed(
            candles, "5m", speed=math.inf, clock=FakeClock(), start_after=cut, sleep=lambda s: None
        )
        assert len(feed.history(symbol)) == 14 * 288
        assert int(next(feed.batches())[symbol].open_time[0]) == first + 14 * DAY_MS


def test_history_cut_leaves_at_least_half_of_a_short_store_to_replay() -> None:
    bars = load_sample_candles("BTCUSDT")
    short = bars.slice(0, 3 * 288)  # 3 days

    cut = history_cut({"BTCUSDT": short}, 14 * DAY_MS)

    assert cut == {"BTCUSDT": int(short.open_time[len(short) // 2 - 1])}


def test_history_cut_of_zero_days_or_of_empty_stores_replays_from_the_first_bar() -> None:
    bars = load_sample_candles("BTCUSDT")

    assert history_cut({"BTCUSDT": bars}, 0) is None
    assert history_cut({"BTCUSDT": bars.slice(0, 0)}, DAY_MS) is None
    with pytest.raises(ConfigError) as err:
        history_cut({"BTCUSDT": bars}, -1)
    assert err.value.field == "history_days"
