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

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from domain.candles import Candles
from domain.errors import ConfigError
from domain.model import OrderStatus, Trade
from lootcapital.bootstrap import Container, bootstrap
from lootcapital.live import LiveStart
from lootcapital.settings import Settings
from lootcapital.simulation import backtest, candle_store
from tests.fixtures.data import load_candles as file_candles
from tests.integration.paper_harness import (
    CrashPlan,
    crash_during_run,
    every,
    read_run,
    wait_stopped,
)
from tests.venues.mexc_fake import API_KEY, API_SECRET, FakeMexc
from tests.venues.mexc_fake_trading import TAKER_FEE

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded (history_days 0)
SYMBOL = "BTCUSDT"
CONTRACT = "BTC_USDT"
PARAMS = {"fast": 5, "slow": 20}
BARS = 200
MEXC = "mexc"
OPEN = [OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED]
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
    sample = tmp_path / "sample"  # no kline or funding file: nothing replayed, nothing funded
    sample.mkdir(exist_ok=True)
    venue = {
        "rest_url": fake.rest_url,
        "ws_url": fake.ws_url,
        "api_key": API_KEY,
        "api_secret": API_SECRET,
        "poll_s": 0.02,
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
    }
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "sample_dir": sample,
        "symbols": [SYMBOL],
        "strategy": "sma_cross",
        "strategy_params": PARAMS,
        "api_token": "test-token-0123456789",
        "autostart": False,
        "history_days": 0,
        "live_confirm": True,
        "venues": {"mexc": venue},
    }
    return Settings(**(values | extra))  # type: ignore[arg-type]


def _wait(done: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.002)


def _wait_subscribed(fake: FakeMexc) -> None:
    _wait(lambda: f"{CONTRACT}@Min5" in fake.subscribed(), "the kline stream subscribed")


def _start(settings: Settings, fake: FakeMexc, clock: SimulatedClock) -> Container:
    container = bootstrap(settings, live=LiveStart(MEXC, real_money=True), wall_clock=clock)
    container.service.start()
    _wait_subscribed(fake)
    return container


def _settled(container: Container, k: int, crash: CrashPlan | None = None) -> None:
    """Wait until the engine has processed bar ``k``, sent its orders and applied their
    fills, or until ``crash`` has fired."""
    service = container.service

    def crashed() -> bool:
        return crash is not None and crash.fired.is_set()

    def processed() -> bool:
        status = service.status()
        if crashed():
            return True
        assert status.running, f"the engine stopped: {status.stopped_reason}"
        return status.candles_processed >= k + 1

    _wait(processed, f"bar {k} processed")
    _wait(lambda: crashed() or not service.orders(statuses=OPEN).items, f"bar {k}'s fills")


def _play(fake: FakeMexc, container: Container, first: int, last: int) -> None:
    for k in range(first, last + 1):
        fake.advance_to(T0 + (k + 1) * M5)
        _settled(container, k)


def _key(t: Trade) -> tuple:
    return (
        t.symbol, t.side, t.qty, t.entry_time, t.entry_price, t.exit_time, t.exit_price,
        t.fees, t.pnl,
    )  # fmt: skip


def _stored(settings: Settings) -> Candles:
    return candle_store(settings).read(MEXC, SYMBOL, "5m")


def _backtest(settings: Settings, candles: Candles) -> list[Trade]:
    """The backtest's round trips closed before the data ends, with MEXC's fee, no slippage."""
    result = backtest(
        settings,
        strategy="sma_cross",
        params={k: str(v) for k, v in PARAMS.items()},
        candles={SYMBOL: candles},
        timeframe="5m",
        cash=settings.initial_cash,
        fee=TAKER_FEE,
        slippage_bps=Decimal(0),
    )
    end = int(candles.open_time[-1]) + M5
    return [t for t in result.trades if t.exit_time < end]


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

    expected_bars = file_candles(f"binance_usdm_{SYMBOL}_5m.csv.gz").between(T0, T0 + BARS * M5)
    np.testing.assert_array_equal(stored.open_time, expected_bars.open_time)
    np.testing.assert_array_equal(stored.close, expected_bars.close)
    assert len(expected) > 5
    assert sorted(map(_key, live)) == sorted(map(_key, expected))
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
    _wait_subscribed(fake)
    k = 0
    while not plan.fired.is_set():
        fake.advance_to(T0 + (k + 1) * M5)
        _settled(crashing, k, plan)
        k += 1
    wait_stopped(crashing)
    crashing.close()
    _wait(lambda: f"{CONTRACT}@Min5" not in fake.subscribed(), "the crashed run's stream closed")
    unsent = [o for o in read_run(settings.database, mode="live").orders if o.status is OPEN[0]]

    restarted = _start(settings, fake, clock)
    _wait(lambda: not restarted.service.orders(statuses=OPEN).items, "the unsent orders filled")
    _play(fake, restarted, k, BARS - 1)
    restarted.service.stop()
    restarted.close()
    live = every(restarted.service.trades)

    assert unsent, "the crash came after orders were stored, before they were sent"
    for order in unsent:
        lookup = f"/api/v1/private/order/external/{CONTRACT}/{order.id}"
        assert fake.requests[(lookup, 200)] >= 1  # looked up by externalOid: unknown
        assert fake.book.submitted[order.id] == 1
    assert sorted(map(_key, live)) == sorted(map(_key, _backtest(settings, _stored(settings))))
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
