"""Runs the engine on a live or replayed feed in a background thread, committing each batch.

For each batch: the engine processes it under the trading lock, one unit of work stores every
order change, fill, trade, position, signal and equity point with the run's progress, and only
then are the events published. A crash between two batches loses nothing that was committed, and
the run resumes after the last committed bar.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal

from domain.events import (
    CandleClosed,
    EngineStopped,
    EquityUpdated,
    OrderFilled,
    OrderUpdated,
    PositionChanged,
    SignalGenerated,
)
from domain.execution import to_decimal
from domain.model import EquityPoint, Fill, Order, Position, Trade
from domain.ports import MarketData, RunState, UnitOfWork
from service_layer.engine import BatchOutcome, Engine
from service_layer.messagebus import MessageBus

logger = logging.getLogger(__name__)


def store_changes(
    uow: UnitOfWork,
    orders: Iterable[Order],
    fills: Iterable[Fill],
    trades: Iterable[Trade],
    positions: Iterable[Position],
) -> None:
    """Store broker changes in ``uow`` (orders first: fills reference them; caller commits)."""
    for order in orders:
        uow.orders.upsert(order)
    for fill in fills:
        uow.fills.add(fill)
    for trade in trades:
        uow.trades.add(trade)
    for position in positions:
        uow.positions.upsert(position)


def persist(uow: UnitOfWork, outcome: BatchOutcome, run: RunState) -> list[EquityPoint]:
    """Store one batch and the run's progress in ``uow`` (the caller commits)."""
    store_changes(uow, outcome.orders, outcome.fills, outcome.trades, outcome.positions)
    for signal in outcome.signals:
        uow.signals.add(signal)
    points = [
        EquityPoint(int(t), to_decimal(e), to_decimal(c))
        for t, e, c in zip(outcome.equity_time, outcome.equity, outcome.cash, strict=True)
    ]
    for point in points:
        uow.equity.add(point)
    uow.runs.upsert(run)
    return points


def batch_events(outcome: BatchOutcome, timeframe: str, points: list[EquityPoint]) -> list:
    """The events of one committed batch, in the order they happened per kind."""
    events: list = [
        CandleClosed(symbol, timeframe, bars.candle(i))
        for symbol, bars in outcome.bars.items()
        for i in range(len(bars))
    ]
    events += [SignalGenerated(s) for s in outcome.signals]
    events += [OrderUpdated(o) for o in outcome.orders]
    events += [OrderFilled(f) for f in outcome.fills]
    events += [PositionChanged(p) for p in outcome.positions]
    events += [EquityUpdated(p) for p in points]
    return events


class EngineRunner:
    """One run of ``engine`` over ``feed`` in a daemon thread.

    ``on_batch`` observes each processed batch (metrics); ``lock`` serializes the engine with
    API calls that place or cancel orders.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        feed: MarketData,
        uow_factory: Callable[[], UnitOfWork],
        bus: MessageBus,
        run: RunState,
        lock: threading.RLock,
        on_batch: Callable[[BatchOutcome, float], None] | None = None,
        perf_counter: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.feed = feed
        self.uow_factory = uow_factory
        self.bus = bus
        self.run = run
        self.lock = lock
        self.on_batch = on_batch
        self.perf_counter = perf_counter
        self.stopped_reason: str | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)

    @property
    def running(self) -> bool:
        """True while the thread processes the feed."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the feed to end and wait for the thread to finish its batch."""
        self.feed.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        try:
            for batch in self.feed.batches():
                self._step(batch)
            self.stopped_reason = self.feed.finished_reason or "end of data"
        except Exception as exc:
            logger.exception("engine stopped on an error")
            self.error = f"{type(exc).__name__}: {exc}"
            self.stopped_reason = f"error: {self.error}"
        self._finish()

    def _step(self, batch: dict) -> None:
        started = self.perf_counter()
        with self.lock:
            outcome = self.engine.process(batch)
            last = {s: t for s in self.engine.symbols if (t := self.engine.last_bar_time(s))}
            self.run = replace(self.run, last_bar_time=last, cash=Decimal(self.engine.broker.cash))
            with self.uow_factory() as uow:
                points = persist(uow, outcome, self.run)
                uow.commit()
        elapsed = self.perf_counter() - started
        if self.on_batch is not None:
            self.on_batch(outcome, elapsed)
        self.bus.publish(batch_events(outcome, self.engine.timeframe, points))

    def _finish(self) -> None:
        reason = self.stopped_reason or "stopped"
        self.run = replace(self.run, stopped_reason=reason)
        with self.lock, self.uow_factory() as uow:
            uow.runs.upsert(self.run)
            uow.commit()
        self.bus.publish([EngineStopped(reason, self.engine.clock.now_ms())])
