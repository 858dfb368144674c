"""A soak test of live trading: 10,000 bars of BTCUSDT through the fake Binance USDⓈ-M on
loopback (see :mod:`tests.integration.test_live_trading`), with random faults, seeded, at 1 %
of the signed requests and user-data events (:class:`~tests.venues.binance_fake_private.Chaos`:
5xx, 429, answers lost after or before the order was taken, events repeated, swapped, the
stream dropped) and of the bars (the market stream dropped, and reconnected before the next
bars close).

Fast replay: each move of the clock closes :data:`STEP` bars, which the engine takes as they
come; an order fills at the fake's price when it arrives. At the end no order reached the venue
twice, our orders and positions are the venue's, and a last reconciliation, once the faults have
stopped, finds nothing to repair.
"""

from __future__ import annotations

import random
from pathlib import Path

from adapters.clock import SimulatedClock
from lootcapital.bootstrap import Container, bootstrap
from lootcapital.live import LiveStart
from tests.integration.live_harness import M5, OPEN, T0, wait
from tests.integration.test_live_faults import assert_matches_the_venue, fast_settings
from tests.integration.test_live_trading import VENUE, clock, fake
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import EVENT_FAULTS, REQUEST_FAULTS, Chaos

__all__ = ["clock", "fake"]  # the fixtures, shared with the live-trading tests

BARS = 10_000
SYMBOL = "BTCUSDT"
STREAM = "btcusdt@kline_5m"
STEP = 50  # bars closed by one move of the clock
CLEAN = 2 * STEP  # bars at the end with no fault
RATE = 0.01
SEED = 20_250_505


def _until(fake: FakeBinanceUsdm, container: Container, bars: int) -> None:
    """Close the bars up to ``bars`` (a count from T0) and wait until the engine has processed
    them and no order is open."""
    service = container.service
    fake.advance_to(T0 + bars * M5)

    def processed() -> bool:
        status = service.status()
        assert status.running, f"the engine stopped: {status.stopped_reason}"
        return status.candles_processed >= bars

    wait(processed, f"{bars} bars processed", timeout=30)
    wait(lambda: not service.orders(statuses=OPEN).items, f"the fills after bar {bars}", 30)


def test_ten_thousand_bars_with_random_faults_end_with_no_duplicate_and_nothing_to_reconcile(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = fast_settings(tmp_path, fake).model_copy(update={"symbols": [SYMBOL]})
    chaos = Chaos(rate=RATE, seed=SEED, hang_s=0.6)
    bars = random.Random(SEED)
    container = bootstrap(settings, live=LiveStart(VENUE), wall_clock=clock)
    container.service.start()
    wait(lambda: STREAM in fake.subscribed(), "the kline stream subscribed")
    reconciler = container.service.reconciler
    assert reconciler is not None

    fake.private.chaos = chaos
    for end in range(STEP, BARS - CLEAN + 1, STEP):
        if bars.random() < RATE * STEP:  # 1 % of the bars: the market stream drops first
            fake.drop_websockets(refuse=False)
            wait(lambda: STREAM in fake.subscribed(), "the kline stream subscribed again")
        _until(fake, container, end)
    fake.private.chaos = None
    for end in range(BARS - CLEAN + STEP, BARS + 1, STEP):
        _until(fake, container, end)
    wait(lambda: reconciler.last == clock.now_ms(), "the reconciliation after the last bar")
    drift = dict(reconciler.drift)
    fake.advance_to(clock.now_ms() + round(settings.venues.binance_usdm.reconcile_s * 1000))
    wait(lambda: reconciler.last == clock.now_ms(), "a last reconciliation")
    status = container.service.status()
    venue = container.service.venues()[0]
    assert_matches_the_venue(fake, container)
    container.service.stop()
    container.close()

    assert dict(reconciler.drift) == drift  # the last one found nothing to repair
    assert status.running and status.candles_processed == BARS
    assert len(fake.account.trades) > BARS // 20, "the run traded all along"
    assert {*REQUEST_FAULTS, *EVENT_FAULTS} <= set(chaos.injected), chaos.injected
    assert venue.reconnects["user-data"] >= chaos.injected["drop"] > 0
