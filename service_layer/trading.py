"""The trading service: the use cases the API, the web panel and the CLI call.

It owns the engine, the current run and the lock that serializes the engine thread with API
calls. Reads come from the broker (live state) or the unit of work (history).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from domain.candles import Candles
from domain.errors import ConfigError, DuplicateOrder, EngineStateError, UnknownSymbol
from domain.events import OrderUpdated
from domain.model import EquityPoint, Order, OrderType, Position, Side, Signal, Trade
from domain.ports import MarketData, RunState, UnitOfWork
from domain.resample import resample
from domain.strategies.base import OrderIntent
from domain.timeframes import timeframe_ms
from service_layer.engine import BatchOutcome, Engine
from service_layer.messagebus import MessageBus
from service_layer.runner import EngineRunner, store_changes


@dataclass(frozen=True, slots=True)
class Status:
    """What the engine is doing. ``clock_time`` is market time (ms UTC); ``equity`` quote
    currency; ``stopped_reason`` says why it is not running (None while running)."""

    mode: str
    running: bool
    clock_time: int
    symbols: tuple[str, ...]
    timeframe: str
    strategy: str
    candles_processed: int
    equity: Decimal
    cash: Decimal
    stopped_reason: str | None


@dataclass(frozen=True, slots=True)
class PositionView:
    """A position with its mark price and unrealized PnL (quote currency)."""

    position: Position
    mark_price: Decimal | None
    unrealized_pnl: Decimal


FeedFactory = Callable[[dict[str, int] | None], MarketData]


class TradingService:
    """Use cases over one engine and its run.

    Parameters
    ----------
    feed_factory:
        Builds the feed, resuming after ``{symbol: last open_time}`` when given.
    run:
        The run to continue (restored from storage) or a new one.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        feed_factory: FeedFactory,
        uow_factory: Callable[[], UnitOfWork],
        bus: MessageBus,
        run: RunState,
        on_batch: Callable[[BatchOutcome, float], None] | None = None,
        perf_counter: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.feed_factory = feed_factory
        self.uow_factory = uow_factory
        self.bus = bus
        self.run = run
        self.on_batch = on_batch
        self.perf_counter = perf_counter
        self.lock = threading.RLock()
        self._runner: EngineRunner | None = None
        self._stop_requested: str | None = None
        self._feed: MarketData | None = self._next_feed()

    def _next_feed(self) -> MarketData:
        """A feed resuming after the last processed bar; the first one also warms the engine up
        with the bars already processed (restored runs) so prices and marks are known."""
        seen = {s: t for s in self.engine.symbols if (t := self.engine.last_bar_time(s))}
        feed = self.feed_factory(seen or dict(self.run.last_bar_time) or None)
        if not seen:
            self.engine.warm_up({s: feed.history(s) for s in feed.symbols})
        return feed

    # -- engine control ---------------------------------------------------------------------
    def start(self) -> Status:
        """Start (or resume) the engine after the last processed bar.

        Raises
        ------
        EngineStateError
            When it is already running.
        """
        with self.lock:
            if self._runner is not None and self._runner.running:
                raise EngineStateError("the engine is already running")
            feed = self._feed or self._next_feed()
            self._feed = None
            # The runner owns the run's progress while it runs; carry on from where it got.
            latest = self._runner.run if self._runner is not None else self.run
            self.run = replace(latest, stopped_reason=None)
            self._stop_requested = None
            self._runner = EngineRunner(
                engine=self.engine,
                feed=feed,
                uow_factory=self.uow_factory,
                bus=self.bus,
                run=self.run,
                lock=self.lock,
                on_batch=self.on_batch,
                perf_counter=self.perf_counter,
            )
            self._runner.start()
        return self.status()

    def stop(self, reason: str = "stopped by user") -> Status:
        """Stop the engine after its current batch (no-op when already stopped)."""
        runner = self._runner
        if runner is not None and runner.running:
            self._stop_requested = reason
            runner.stop()
        return self.status()

    def status(self) -> Status:
        """The engine's current state."""
        runner = self._runner
        running = runner is not None and runner.running
        reason = None
        if runner is None:
            reason = self.run.stopped_reason or "not started"
        elif not running:
            stopped = runner.feed.finished_reason == "stopped"
            reason = (
                self._stop_requested if stopped and self._stop_requested else runner.stopped_reason
            )
        with self.lock:
            equity = self.engine.broker.equity()
            cash = self.engine.broker.cash
        return Status(
            mode=self.run.mode,
            running=running,
            clock_time=self.engine.clock.now_ms(),
            symbols=self.engine.symbols,
            timeframe=self.engine.timeframe,
            strategy=self.engine.strategy.name,
            candles_processed=self.engine.candles_processed,
            equity=equity,
            cash=cash,
            stopped_reason=reason,
        )

    # -- market data ------------------------------------------------------------------------
    def candles(self, symbol: str, timeframe: str | None = None, limit: int = 500) -> Candles:
        """The last ``limit`` closed bars of ``symbol`` on ``timeframe`` (the engine's bar
        timeframe by default; higher ones are resampled from it, complete buckets only).

        Raises
        ------
        UnknownSymbol
            ``symbol`` is not traded. ``ConfigError`` for a bad timeframe.
        """
        history = self.engine.history.get(symbol)
        if history is None:
            raise UnknownSymbol(f"unknown symbol {symbol!r}", field="symbol")
        with self.lock:
            candles = history.candles
        tf = timeframe or self.engine.timeframe
        target, base = timeframe_ms(tf), self.engine.tf_ms
        if target != base:
            if target % base:
                raise ConfigError(
                    f"timeframe {tf} is not a multiple of {self.engine.timeframe}",
                    field="timeframe",
                )
            tail = min(len(candles), (limit + 1) * (target // base))
            candles = resample(candles.slice(len(candles) - tail, len(candles)), base, target)
        return candles.slice(max(0, len(candles) - limit), len(candles))

    # -- orders -----------------------------------------------------------------------------
    def place_order(
        self,
        *,
        symbol: str,
        side: Side,
        type: OrderType,
        qty: Decimal,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Place an order now; it fills on the next bars by the execution rules.

        Raises
        ------
        UnknownSymbol, InvalidOrder, InsufficientMargin
            When the broker refuses it (the message says why).
        """
        intent = OrderIntent(side, qty, type=type, price=price, stop_price=stop_price)
        with self.lock:
            if client_order_id is not None and self._client_id_taken(client_order_id):
                raise DuplicateOrder(
                    f"client_order_id {client_order_id!r} is already used", field="client_order_id"
                )
            try:
                order = self.engine.submit(intent, symbol, tag="api", client_id=client_order_id)
            finally:
                changed = self._save_broker_changes()
        self.bus.publish([OrderUpdated(o) for o in changed])
        return order

    def cancel_order(self, order_id: str) -> Order:
        """Cancel an open order; raises ``OrderNotFound`` or ``OrderNotCancelable``."""
        with self.lock:
            order = self.engine.broker.cancel(order_id, self.engine.clock.now_ms())
            changed = self._save_broker_changes()
        self.bus.publish([OrderUpdated(o) for o in changed])
        return order

    def _save_broker_changes(self) -> list[Order]:
        """Commit what an API call changed at the broker; returns the changed orders."""
        orders, fills, trades, positions = self.engine.broker.drain_events()
        with self.uow_factory() as uow:
            store_changes(uow, orders, fills, trades, positions)
            uow.commit()
        return orders

    def _client_id_taken(self, client_order_id: str) -> bool:
        with self.uow_factory() as uow:
            return uow.orders.get_by_client_id(client_order_id) is not None

    def get_order(self, order_id: str) -> Order:
        """The order with ``order_id``; raises ``OrderNotFound``."""
        with self.lock:
            return self.engine.broker.get_order(order_id)

    def orders(self, *, symbol: str | None = None, limit: int = 100) -> list[Order]:
        """Orders, newest first."""
        with self.uow_factory() as uow:
            return uow.orders.list(symbol=symbol, limit=limit)

    # -- account ----------------------------------------------------------------------------
    def positions(self) -> list[PositionView]:
        """Open positions with mark price and unrealized PnL."""
        with self.lock:
            marks: Mapping[str, Decimal] = dict(self.engine.broker.marks)
            held = self.engine.broker.positions()
        return [
            PositionView(
                p, marks.get(p.symbol), p.unrealized_pnl(marks.get(p.symbol, p.entry_price))
            )
            for p in held
        ]

    def trades(self, *, symbol: str | None = None, limit: int = 100) -> list[Trade]:
        """Closed round trips, newest first."""
        with self.uow_factory() as uow:
            return uow.trades.list(symbol=symbol, limit=limit)

    def equity(self, *, since_ms: int | None = None, limit: int = 10_000) -> list[EquityPoint]:
        """The latest ``limit`` equity snapshots (one per processed bar time), oldest first."""
        with self.uow_factory() as uow:
            return uow.equity.list(since_ms=since_ms, limit=limit)[::-1]

    def signals(self, *, symbol: str | None = None, limit: int = 100) -> list[Signal]:
        """Strategy signals with their reasons, newest first."""
        with self.uow_factory() as uow:
            return uow.signals.list(symbol=symbol, limit=limit)
