"""Runs the engine on a live or replayed feed in its own thread, committing each bar whole.

For each batch: the engine processes it; one unit of work stores every order change, fill,
trade, position, signal and equity point with the run's progress and the kernel's state, and
the orders the bar decided as ``pending_new``; only then are those orders sent (store, then
send) and the venue's answers committed; then the events are published. A crash at any moment
loses nothing committed: the run resumes after the last committed bar and reconciles the orders
that were stored but not acknowledged. An error (a strategy exception, a venue error) rolls the
bar back whole, is stored in the run and shown in ``status``, and the run stops; started again,
it resumes at the failed bar from the committed state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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
from domain.futures import MarginReport
from domain.ledger import LedgerChanges
from domain.model import EquityPoint, Position, fast_constructor
from domain.pipeline_events import ML, ML_ERROR
from domain.ports import END_OF_DATA, MarketData, RunState, UnitOfWork
from domain.strategies.base import Portfolio
from service_layer.commands import CommandQueue
from service_layer.engine import BatchOutcome, Engine
from service_layer.messagebus import MessageBus

logger = logging.getLogger(__name__)
_WARNINGS = (ML, ML_ERROR)
"""Pipeline events logged as warnings: an ML predictor disabled, a prediction failed."""


def store_changes(uow: UnitOfWork, changes: LedgerChanges) -> None:
    """Store ledger changes in ``uow`` (orders first: fills reference them; caller commits)."""
    for order in changes.orders:
        uow.orders.upsert(order)
    for fill in changes.fills:
        uow.fills.add(fill)
    for trade in changes.trades:
        uow.trades.add(trade)
    for payment in changes.fundings:
        uow.funding.add(payment)
    for position in changes.positions:
        uow.positions.upsert(position)


def persist(
    uow: UnitOfWork,
    outcome: BatchOutcome,
    run: RunState,
    last: tuple[Decimal, Decimal],
    money: Decimal,
) -> list[EquityPoint]:
    """Store one batch and the run's progress in ``uow`` (the caller commits).

    Equity points are rounded to the ``money`` quantum (the quote asset's precision); the last
    one takes the exact ``(equity, cash)`` of the ledger at the batch's end (in paper and live a
    batch is one bar, so every stored point is exact, never a float round trip).
    """
    store_changes(uow, outcome.changes)
    for signal in outcome.signals:
        uow.signals.add(signal)
    for event in outcome.risk_events:
        uow.risk.add_event(event)
    for change in outcome.pipeline_events:
        uow.pipeline.add(change)
        logger.log(logging.WARNING if change.kind in _WARNINGS else logging.INFO, change.message)
    times = outcome.equity_time.tolist()
    points = [
        EquityPoint(t, to_decimal(e).quantize(money), to_decimal(c).quantize(money))
        for t, e, c in zip(times[:-1], outcome.equity[:-1], outcome.cash[:-1], strict=True)
    ]
    if times:
        equity, cash = last
        points.append(EquityPoint(times[-1], equity.quantize(money), cash.quantize(money)))
    for point in points:
        uow.equity.add(point)
    uow.runs.save_progress(run)
    return points


def change_events(changes: LedgerChanges, marks: Mapping[str, Decimal]) -> list[object]:
    """The bus events of committed ledger changes; positions carry their symbol's mark."""
    events: list[object] = [OrderUpdated(o) for o in changes.orders]
    events += [OrderFilled(f) for f in changes.fills]
    events += [PositionChanged(p, marks.get(p.symbol)) for p in changes.positions]
    return events


def batch_events(
    outcome: BatchOutcome, timeframe: str, points: list[EquityPoint], marks: Mapping[str, Decimal]
) -> list:
    """The events of one committed batch, in the order they happened per kind."""
    events: list = [
        CandleClosed(symbol, timeframe, bars.candle(i))
        for symbol, bars in outcome.bars.items()
        for i in range(len(bars))
    ]
    events += [SignalGenerated(s) for s in outcome.signals]
    events += change_events(outcome.changes, marks)
    events += [EquityUpdated(p) for p in points]
    events += outcome.risk_events  # trading-state changes and alerts: published as they are
    events += outcome.pipeline_events  # thresholds, regimes, ML disabled (the alert rules)
    return events


def progress(run: RunState, engine: Engine, bars: int) -> RunState:
    """``run`` after the engine processed a batch of ``bars`` bars: the last bar time of each
    symbol, the cash, the kernel's state and the bar count, with no error."""
    last = {s: t for s in engine.symbols if (t := engine.last_bar_time(s)) is not None}
    return _run_state(
        id=run.id,
        mode=run.mode,
        strategy=run.strategy,
        params=run.params,
        symbols=run.symbols,
        timeframe=run.timeframe,
        started_time=run.started_time,
        initial_cash=run.initial_cash,
        cash=engine.ledger.cash,
        last_bar_time=last,
        stopped_reason=run.stopped_reason,
        state=engine.state(),
        candles_processed=run.candles_processed + bars,
        error=None,
    )


_run_state = fast_constructor(RunState, validate=False)
"""Every bar's run state (every field given by name, nothing to check)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What reads show without waiting for the engine: market ``clock_time`` (ms UTC),
    ``equity`` and ``cash`` (quote currency), bars processed over the run, open positions and
    the marks (last closes) they are valued at; ``margin`` the futures balance breakdown and
    each position's margin (None without futures margining)."""

    clock_time: int
    equity: Decimal
    cash: Decimal
    candles_processed: int
    positions: tuple[Position, ...]
    marks: dict[str, Decimal]
    margin: MarginReport | None = None


def snapshot(
    engine: Engine, candles_processed: int, portfolio: Portfolio | None = None
) -> Snapshot:
    """The engine's state now (call on the engine's owner thread); ``portfolio`` is
    ``engine.portfolio()`` when the caller has it already."""
    if portfolio is None:
        portfolio = engine.portfolio()
    return Snapshot(
        clock_time=engine.clock.now_ms(),
        equity=portfolio.equity,
        cash=portfolio.cash,
        candles_processed=candles_processed,
        positions=tuple(portfolio.positions.values()),
        marks=dict(portfolio.marks),
        margin=None if engine.margin is None else engine.margin.margin_report(),
    )


class EngineRunner:
    """One run of ``engine`` over ``feed`` in the ``engine`` thread, which owns the engine and
    runs ``commands`` between bars. ``on_batch`` observes each processed batch (metrics).

    ``uow`` is the thread's own unit of work, entered for every commit (it may keep its
    database connection between bars) and closed when the run stops.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        feed: MarketData,
        uow: UnitOfWork,
        bus: MessageBus,
        run: RunState,
        commands: CommandQueue,
        on_batch: Callable[[BatchOutcome, float], None] | None = None,
        on_snapshot: Callable[[Snapshot], None],
        perf_counter: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.feed = feed
        self.uow = uow
        self.bus = bus
        self.run = run
        self.commands = commands
        self.on_batch = on_batch
        self.on_snapshot = on_snapshot
        self.perf_counter = perf_counter
        self.stopped_reason: str | None = None
        self.error: str | None = None
        self._finished = False
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)

    @property
    def running(self) -> bool:
        """True while the thread processes the feed (False once its stop is stored)."""
        return self._thread.is_alive() and not self._finished

    def start(self) -> None:
        """Own the engine and start the thread."""
        self.commands.own()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the feed to end and wait for the thread to finish its bar."""
        self.feed.stop()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def save_cash(self, cash: Decimal) -> None:
        """Store ``cash`` (quote currency: the ledger's, moved between bars by a live venue's
        fills and funding) with the run's progress, on the engine thread, so that a restart
        before the next bar's commit starts from it."""
        self.run = replace(self.run, cash=cash)
        with self.uow as uow:
            uow.runs.save_progress(self.run)
            uow.commit()

    def _loop(self) -> None:
        try:
            self.commands.run_pending()
            for batch in self.feed.batches():
                self._step(batch)
                self.commands.run_pending()
            self.stopped_reason = self.feed.finished_reason or END_OF_DATA
        except Exception as exc:
            logger.exception("engine stopped on an error")
            self.error = f"{type(exc).__name__}: {exc}"
            self.stopped_reason = f"error: {self.error}"
        self._finish()

    def _step(self, batch: dict) -> None:
        started = self.perf_counter()
        engine = self.engine
        outcome = engine.process(batch)
        engine.observe_risk(outcome)
        run = progress(self.run, engine, sum(map(len, outcome.bars.values())))
        portfolio = engine.portfolio()
        with self.uow as uow:
            money = engine.ledger.account.money
            points = persist(uow, outcome, run, (portfolio.equity, portfolio.cash), money)
            uow.commit()
        self.run = run  # only once committed: after an error the run resumes at this bar
        events = batch_events(outcome, engine.timeframe, points, engine.marks)
        if outcome.outbox:
            sent = engine.send(outcome.outbox)
            with self.uow as uow:
                store_changes(uow, sent)
                uow.commit()
            events += change_events(sent, engine.marks)
            outcome.rejections.extend(sent.refused)
        elapsed = self.perf_counter() - started
        if outcome.outbox:
            portfolio = engine.portfolio()  # the answers to the orders sent may have changed it
        self.on_snapshot(snapshot(engine, self.run.candles_processed, portfolio))
        if self.on_batch is not None:
            self.on_batch(outcome, elapsed)
        self.bus.publish(events)

    def _finish(self) -> None:
        reason = self.stopped_reason or "stopped"
        # self.run is the committed progress (a failed bar never advanced it).
        self.run = replace(self.run, stopped_reason=reason, error=self.error)
        try:
            with self.uow as uow:
                uow.runs.upsert(self.run)
                uow.commit()
        finally:
            self.uow.close()
            self.commands.release()
            self._finished = True
            self.bus.publish([EngineStopped(reason, self.engine.clock.now_ms())])
