"""Live trading on MEXC futures: the real server stack (bootstrap, SQLite, the kernel) with its
orders at a fake MEXC on loopback, which streams real 5m bars and fills the orders.

As in :mod:`tests.integration.test_live_trading`, the fake and the server share one simulated
clock, and each bar closes at exactly its close time once the engine has committed the previous
one and its orders have filled: a market order decided on a bar's close fills at the next one's
open, at that time, as the simulated venue fills it. So the run's trades are compared field by
field with a backtest of the bars the run stored (the fake charges 0.02 % taker fees: the
backtest's ``fee``). One symbol: BTCUSDT's lot step (0.001) is a whole number of MEXC's
contracts (0.0001 BTC), so the run and the backtest round quantities alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from domain.candles import Candles
from domain.errors import ConfigError
from domain.model import Trade
from lootcapital.bootstrap import Container, bootstrap
from lootcapital.live import LiveStart
from lootcapital.settings import Settings
from lootcapital.simulation import candle_store
from tests.integration.live_harness import (
    M5,
    OPEN,
    T0,
    costed_key,
    file_bars,
    live_settings,
    play_live,
    settled,
    sma_cross_backtest,
    start_run,
    venue_section,
    wait,
    wait_subscribed,
)
from tests.integration.paper_harness import (
    CrashPlan,
    crash_during_run,
    every,
    read_run,
    wait_stopped,
)
from tests.venues.mexc_fake import API_KEY, API_SECRET, FakeMexc
from tests.venues.mexc_fake_trading import TAKER_FEE

SYMBOL = "BTCUSDT"
CONTRACT = "BTC_USDT"
STREAMS = {f"{CONTRACT}@Min5"}
PARAMS = {"fast": 5, "slow": 20}
BARS = 200
MEXC = "mexc"
ISOLATED = 1  # MEXC's openType


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)  # one minute into the bar opening at T0


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeMexc]:
    with FakeMexc(clock=clock, symbols=(CONTRACT,)) as venue:
        venue.book.cash = Decimal(100_000)  # ten times the run's capital: never the limit
        yield venue


def _settings(tmp_path: Path, fake: FakeMexc, **extra: object) -> Settings:
    venue = venue_section(fake, api_key=API_KEY, api_secret=API_SECRET)
    values = {"symbols": [SYMBOL], "strategy_params": PARAMS, "live_confirm": True}
    return live_settings(tmp_path, {"mexc": venue}, **(values | extra))


def _start(settings: Settings, fake: FakeMexc, clock: SimulatedClock) -> Container:
    return start_run(settings, fake, clock, STREAMS, live=LiveStart(MEXC, real_money=True))


def _play(fake: FakeMexc, container: Container, first: int, last: int) -> None:
    play_live(fake, container, first, last, n_symbols=1)


def _stored(settings: Settings) -> Candles:
    return candle_store(settings).read(MEXC, SYMBOL, "5m")


def _backtest(settings: Settings, candles: Candles) -> list[Trade]:
    """The backtest's round trips closed before the data ends, with MEXC's fee, no slippage."""
    result = sma_cross_backtest(
        settings, {SYMBOL: candles}, params=PARAMS, fee=TAKER_FEE, slippage_bps=Decimal(0)
    )
    return result.trades


def _assert_each_order_sent_once(fake: FakeMexc, container: Container) -> None:
    ids = {o.id for o in every(container.service.orders)}
    assert set(fake.book.submitted) == ids
    assert set(fake.book.submitted.values()) == {1}


def test_a_live_run_on_mexc_places_its_orders_there_and_trades_as_a_backtest_of_its_bars(
    tmp_path: Path, fake: FakeMexc, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    container = _start(settings, fake, clock)

    _play(fake, container, 0, BARS - 1)
    container.service.stop()
    container.close()
    live = every(container.service.trades)
    stored = _stored(settings)
    expected = _backtest(settings, stored)
    status = container.service.status()

    expected_bars = file_bars(SYMBOL, T0, T0 + BARS * M5)
    np.testing.assert_array_equal(stored.open_time, expected_bars.open_time)
    np.testing.assert_array_equal(stored.close, expected_bars.close)
    assert len(expected) > 5
    assert sorted(map(costed_key, live)) == sorted(map(costed_key, expected))
    _assert_each_order_sent_once(fake, container)
    assert len(fake.book.deals) == len(every(container.service.fills))
    assert status.mode == "live" and status.candles_processed == BARS
    assert read_run(settings.database, mode="live").run.mode == "live"
    (venue,) = container.service.venues()
    assert venue.venue == MEXC and venue.last_reconciliation == T0 + BARS * M5
    assert venue.drift == {}  # reconciled after every bar: nothing differed
    assert fake.book.leverage == {(CONTRACT, 1): (1, ISOLATED), (CONTRACT, 2): (1, ISOLATED)}


def test_a_restart_after_a_crash_between_storing_and_sending_looks_the_order_up_by_its_external_oid(
    tmp_path: Path, fake: FakeMexc, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("threading.excepthook", lambda args: None)  # the simulated kill
    settings = _settings(tmp_path, fake)
    crashing = bootstrap(settings, live=LiveStart(MEXC, real_money=True), wall_clock=clock)
    plan = CrashPlan(after_commits=BARS // 2)
    crash_during_run(crashing, plan)
    crashing.service.start()
    wait_subscribed(fake, STREAMS)
    k = 0
    while not plan.fired.is_set():
        fake.advance_to(T0 + (k + 1) * M5)
        settled(crashing, k, 1, plan)
        k += 1
    wait_stopped(crashing)
    crashing.close()
    wait(lambda: f"{CONTRACT}@Min5" not in fake.subscribed(), "the crashed run's stream closed")
    unsent = [o for o in read_run(settings.database, mode="live").orders if o.status is OPEN[0]]

    restarted = _start(settings, fake, clock)
    wait(lambda: not restarted.service.orders(statuses=OPEN).items, "the unsent orders filled")
    _play(fake, restarted, k, BARS - 1)
    restarted.service.stop()
    restarted.close()
    live = every(restarted.service.trades)

    assert unsent, "the crash came after orders were stored, before they were sent"
    for order in unsent:
        lookup = f"/api/v1/private/order/external/{CONTRACT}/{order.id}"
        assert fake.requests[(lookup, 200)] >= 1  # looked up by externalOid: unknown
        assert fake.book.submitted[order.id] == 1
    assert sorted(map(costed_key, live)) == sorted(
        map(costed_key, _backtest(settings, _stored(settings)))
    )
    _assert_each_order_sent_once(fake, restarted)


def test_live_mode_on_mexc_is_refused_with_the_venues_reason_when_the_probe_fails(
    tmp_path: Path, fake: FakeMexc, clock: SimulatedClock
) -> None:
    fake.order_entry = False

    with pytest.raises(ConfigError) as refused:
        bootstrap(
            _settings(tmp_path, fake), live=LiveStart(MEXC, real_money=True), wall_clock=clock
        )

    assert "Contract not allow place order!" in str(refused.value)
    assert "live mode is refused" in str(refused.value)
    assert len(fake.orders) == 1  # the zero-quantity probe, nothing else
    assert not (tmp_path / "data").exists()  # refused before anything was stored
