"""The trading service over in-memory fakes: one owner, whole bars, errors that roll back.

Storage is :class:`tests.fakes.InMemoryUnitOfWork`, the feed :class:`tests.fakes.ListFeed` of real
BTCUSDT bars one per batch, the venue the real simulated venue, the strategy the real
``sma_cross`` (short periods, so it trades) wrapped to fail once on a chosen bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.marketdata.exchange_info import load_instruments
from adapters.venues.simulated.venue import SimulatedVenue
from domain.candles import Candles
from domain.ledger import Ledger
from domain.model import Instrument, OrderStatus, OrderType, Side
from domain.ports import RunState
from domain.strategies import build_strategy
from domain.strategies.base import Decision, DecisionContext
from service_layer.engine import Engine
from service_layer.messagebus import MessageBus
from service_layer.trading import TradingService
from tests.fakes import InMemoryUnitOfWork, ListFeed, MemoryStore
from tests.fixtures.data import load_sample_candles, sample_dir

SYMBOL = "BTCUSDT"
BARS = 400
CASH = Decimal(10_000)


class FailsOnce:
    """``sma_cross`` that raises in ``decide`` at bar close ``fail_at`` the first time only."""

    def __init__(self, fail_at: int | None, failed: list[int]) -> None:
        self.inner = build_strategy("sma_cross", {"fast": 5, "slow": 20}, "5m", incremental=True)
        self.name = self.inner.name
        self.fail_at = fail_at
        self.failed = failed
        self.wanted: set[tuple[str, int]] = set()

    def params(self) -> dict[str, float | int | str | bool]:
        return self.inner.params()

    def warmup_bars(self) -> int:
        return self.inner.warmup_bars()

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        self.inner.prepare(symbols, instruments)

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        out = self.inner.on_bars(bars)
        self.wanted = {(s, int(t)) for s, times in out.items() for t in times}
        if self.fail_at is not None:  # ask to decide on the failing bar even without a cross
            for symbol, block in bars.items():
                closes = block.open_time + 300_000
                if self.fail_at in closes:
                    out[symbol] = np.union1d(out.get(symbol, []), [self.fail_at]).astype(np.int64)
        return out

    def decide(self, ctx: DecisionContext) -> Decision:
        if ctx.time == self.fail_at and not self.failed:
            self.failed.append(ctx.time)
            raise RuntimeError("strategy bug on this bar")
        due = frozenset(s for s in ctx.due if (s, ctx.time) in self.wanted)
        return self.inner.decide(DecisionContext(ctx.time, ctx.timeframe, ctx.portfolio, due))

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        return None


class FailingCommit(InMemoryUnitOfWork):
    """The engine thread's unit of work, whose commit of the bar closing at ``fail_at`` fails
    once (a storage error: disk full, the database gone)."""

    def __init__(self, store: MemoryStore, run_id: str, fail_at: int, failed: list) -> None:
        super().__init__(store, run_id)
        self.fail_at = fail_at
        self.failed = failed  # shared by the runs of one test: the commit fails once

    def commit(self) -> None:
        if not self.failed and any(t == self.fail_at for (_, t) in self.staged.equity):
            self.failed.append(self.fail_at)
            raise OSError("disk I/O error")
        super().commit()


def _service(
    store: MemoryStore, fail_at: int | None = None, commit_fails_at: int | None = None
) -> TradingService:
    candles = load_sample_candles(SYMBOL).slice(0, BARS)
    rules = load_instruments(sample_dir() / "binance_usdm_exchange_info_20251030.json")
    instruments = {SYMBOL: rules[SYMBOL]}
    failed: list[int] = []
    run = RunState("run-a", "paper", "sma_cross", {}, (SYMBOL,), "5m", 0, CASH, CASH, {})
    with InMemoryUnitOfWork(store, run.id) as uow:
        stored = uow.runs.get(run.id)
    run = stored or run

    def uow() -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(store, run.id)

    def engine_factory(state: RunState) -> Engine:
        clock = SimulatedClock()
        with uow() as u:
            positions, orders = u.positions.list(), u.orders.list_open()
        venue = SimulatedVenue(instruments=instruments, cash=state.cash, clock=clock)
        venue.restore(state.cash, positions, orders)
        engine = Engine(
            strategy=FailsOnce(fail_at, failed),
            execution=venue,
            matcher=venue,
            clock=clock,
            instruments=instruments,
            symbols=(SYMBOL,),
            timeframe="5m",
            run_id=state.id,
            ledger=Ledger(state.cash, positions, orders),
            window=100,
        )
        engine.restore(state.state)
        return engine

    def feed(after: dict[str, int] | None, sleep: Callable[[float], object]) -> ListFeed:
        cut = 0 if not after else int(np.searchsorted(candles.open_time, after[SYMBOL], "right"))
        batches = [{SYMBOL: candles.slice(i, i + 1)} for i in range(cut, BARS)]
        return ListFeed(batches, (SYMBOL,), "5m", {SYMBOL: candles.slice(0, cut)})

    return TradingService(
        engine_factory=engine_factory,
        feed_factory=feed,
        uow_factory=uow,
        bus=MessageBus(),
        run=run,
        perf_counter=time.perf_counter,
        writer_factory=None
        if commit_fails_at is None
        else lambda: FailingCommit(store, run.id, commit_fails_at, failed),
    )


def _wait(service: TradingService) -> None:
    deadline = time.monotonic() + 30
    while service.status().running and time.monotonic() < deadline:
        time.sleep(0.005)


def _trades(store: MemoryStore) -> list[tuple]:
    return sorted(
        (t.entry_time, t.exit_time, t.qty, t.entry_price, t.exit_price, t.pnl)
        for _, t in store.trades.values()
    )


@pytest.mark.parametrize(
    ("failure", "bar", "error"),
    [
        ("fail_at", 250, "RuntimeError: strategy bug on this bar"),
        ("commit_fails_at", 300, "OSError: disk I/O error"),  # storage: disk full, db gone
    ],
)
def test_an_error_rolls_its_bar_back_and_the_run_resumes_at_that_bar(
    failure: str, bar: int, error: str
) -> None:
    reference = MemoryStore()
    clean = _service(reference)
    clean.start()
    _wait(clean)
    candles = load_sample_candles(SYMBOL)
    fail_at = int(candles.open_time[bar]) + 300_000
    store = MemoryStore()
    service = _service(store, **{failure: fail_at})

    service.start()
    _wait(service)
    failed = service.status()
    run = store.runs["run-a"]

    assert failed.error == error
    assert failed.stopped_reason == f"error: {error}"
    assert run.error == failed.error
    assert run.last_bar_time[SYMBOL] == int(candles.open_time[bar - 1])
    assert run.candles_processed == bar
    assert max(t for (_, t) in store.equity) == fail_at - 300_000
    service.start()
    _wait(service)
    assert service.status().stopped_reason == "end of data"
    assert service.status().error is None
    assert store.runs["run-a"].candles_processed == reference.runs["run-a"].candles_processed
    assert store.equity == reference.equity
    assert _trades(store) == _trades(reference) and len(_trades(store)) > 5


def test_api_orders_run_on_the_engine_thread_and_are_stored_before_they_are_sent() -> None:
    store = MemoryStore()
    service = _service(store)
    service.start()
    order = service.desk.place_order(symbol=SYMBOL, side=Side.BUY, type=OrderType.MARKET,
                                qty=Decimal("0.010"), client_order_id="my-bot-1")  # fmt: skip
    _wait(service)

    stored = service.get_order("my-bot-1")
    assert order.id == "my-bot-1"
    assert order.status in (OrderStatus.NEW, OrderStatus.FILLED)
    assert stored.status is OrderStatus.FILLED
    assert stored.filled_qty == Decimal("0.010")


def test_a_repeated_client_order_id_returns_the_first_order_and_never_trades_twice() -> None:
    from domain.errors import DuplicateOrder

    store = MemoryStore()
    service = _service(store)
    first = service.desk.place_order(symbol=SYMBOL, side=Side.BUY, type=OrderType.MARKET,
                                qty=Decimal("0.010"), client_order_id="dup")  # fmt: skip

    again = service.desk.place_order(symbol=SYMBOL, side=Side.BUY, type=OrderType.MARKET,
                                qty=Decimal("0.010"), client_order_id="dup")  # fmt: skip
    with pytest.raises(DuplicateOrder, match=r"qty 0\.020 \(the order has 0\.010\)"):
        service.desk.place_order(symbol=SYMBOL, side=Side.BUY, type=OrderType.MARKET,
                            qty=Decimal("0.020"), client_order_id="dup")  # fmt: skip

    assert again == first
    assert [o.id for _, o in store.orders.values()] == ["dup"]
