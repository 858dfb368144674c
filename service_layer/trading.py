"""The trading service: the use cases the API, the web panel and the CLI call.

It holds the run and its kernel (engine, ledger, venue), rebuilt from storage at start and after
an error. Mutating calls (orders, start/stop) are commands run in order by the engine's owner
(:class:`~service_layer.commands.CommandQueue`); reads never wait for a bar: status and
positions come from the snapshot the engine publishes after each bar, history from storage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from domain.candles import Candles
from domain.cursors import decode_cursor, encode_cursor
from domain.errors import (
    ConfigError,
    EndOfData,
    EngineStateError,
    InvalidOrder,
    OrderNotFound,
    UnknownSymbol,
    VenueError,
)
from domain.events import EngineStarted, FeedStale
from domain.funding import FundingPayment
from domain.futures import MarginReport, PositionMargin
from domain.ledger import LedgerChanges
from domain.model import (
    EquityPoint,
    Fill,
    Order,
    OrderStatus,
    Position,
    Signal,
    Trade,
)
from domain.pipeline_events import PipelineEvent
from domain.ports import END_OF_DATA, MarketData, Page, RunState, UnitOfWork, VenueFeed
from domain.reconciliation import Reconciling
from domain.resample import resample
from domain.strategies.base import ExplainsPipeline, PipelineView, Strategy
from domain.timeframes import timeframe_ms
from domain.venues import ReportsActivity, VenueStatus
from service_layer.commands import CommandQueue
from service_layer.engine import BatchOutcome, Engine
from service_layer.messagebus import MessageBus
from service_layer.order_desk import OrderDesk
from service_layer.reconciliation import Reconciler
from service_layer.runner import EngineRunner, Snapshot, change_events, snapshot, store_changes

logger = logging.getLogger(__name__)

BAR_GUARD_MS = 2_000
"""How long before a live bar's close a due reconciliation waits for the bar (ms)."""


@dataclass(frozen=True, slots=True)
class Status:
    """What the engine is doing. ``clock_time`` is market time (ms UTC); ``equity`` and
    ``cash`` quote currency; ``candles_processed`` counts the whole run; ``stopped_reason``
    says why it is not running (None while running); ``error`` the last error that stopped it;
    ``feed_venue`` the venue whose live bars are traded (None: a replay of stored bars) and
    ``stale_feeds`` its symbols with no closed bar for more than 2 periods."""

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
    error: str | None = None
    feed_venue: str | None = None
    stale_feeds: tuple[FeedStale, ...] = ()


@dataclass(frozen=True, slots=True)
class PositionView:
    """A position with its mark price and unrealized PnL (quote currency), and its margin
    figures when the account is margined as futures (the liquidation price rounded to the
    tick against the position: up for a long, down for a short)."""

    position: Position
    mark_price: Decimal | None
    unrealized_pnl: Decimal
    margin: PositionMargin | None = None


@dataclass(frozen=True, slots=True)
class CandlePage:
    """One page of bars, oldest first; ``next_cursor`` reads the older page (None: no more)."""

    candles: Candles
    next_cursor: str | None


FeedFactory = Callable[[dict[str, int] | None, Callable[[float], object]], MarketData]
"""Builds the feed resuming after ``{symbol: last open_time}`` (None: from the start), sleeping
through the given callable."""
EngineFactory = Callable[[RunState], Engine]
"""Builds the run's kernel restored from storage (ledger, venue, kernel state)."""


class TradingService:
    """Use cases over one run and its kernel.

    ``uow_factory`` gives the units of work of reads and commands; ``writer_factory`` (default:
    the same) the engine thread's own, used for every bar's commit of a run and closed when
    the run stops; ``model_loader`` hands the registry's active models of some symbols to a
    strategy (:meth:`use_models`).
    """

    def __init__(
        self,
        *,
        engine_factory: EngineFactory,
        feed_factory: FeedFactory,
        uow_factory: Callable[[], UnitOfWork],
        bus: MessageBus,
        run: RunState,
        on_batch: Callable[[BatchOutcome, float], None] | None = None,
        perf_counter: Callable[[], float],
        writer_factory: Callable[[], UnitOfWork] | None = None,
        model_loader: Callable[[Strategy, Sequence[str]], None] | None = None,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.engine_factory = engine_factory
        self.feed_factory = feed_factory
        self.uow_factory = uow_factory
        self.writer_factory = writer_factory or uow_factory
        self.bus = bus
        self.run = run
        self.on_batch = on_batch
        self.perf_counter = perf_counter
        self.model_loader = model_loader
        self.reconciler = reconciler
        self.commands = CommandQueue()
        self._runner: EngineRunner | None = None
        self._stop_requested: str | None = None
        self._feed: MarketData | None = None
        self.engine = self._prepare()
        self.desk = OrderDesk(
            engine=lambda: self.engine,
            commands=self.commands,
            commit=self._commit,
            stored=self._stored,
            get_order=self.get_order,
        )

    # -- kernel -----------------------------------------------------------------------------
    def _prepare(self) -> Engine:
        """The kernel restored from storage, warmed up on the bars already processed, with its
        unacknowledged orders reconciled (before any new decision), and a live venue's orders,
        fills and positions."""
        engine = self.engine_factory(self.run)
        feed = self._new_feed(self.run)
        engine.warm_up({s: feed.history(s) for s in feed.symbols})
        engine.reconcile()
        changes = engine.flush()
        if changes.orders or changes.fills:
            with self.uow_factory() as uow:
                store_changes(uow, changes)
                uow.commit()
        self._snapshot = snapshot(engine, self.run.candles_processed)
        self._reconcile(engine)  # its repairs refresh the snapshot
        self._feed = feed
        return engine

    def _new_feed(self, run: RunState) -> MarketData:
        return self.feed_factory(dict(run.last_bar_time) or None, self._between_bars)

    def _between_bars(self, seconds: float) -> None:
        """The feed's wait for its next bar (engine thread): the commands queued meanwhile
        run; with a live venue (no bar matcher: its fills come between bars), what it said
        since is applied, stored and published as it comes (the stop of a filled entry is
        placed then, not at the next bar), and the positions and equity shown follow."""
        self.commands.wait(seconds)
        engine = self.engine
        if engine.matcher is None:
            self._commit(engine.flush())
            if self._bar_due(engine):
                return  # the bar first: a reconciliation now would delay its orders
            try:
                self._reconcile(engine)
            except VenueError as exc:  # the next wait tries again
                logger.warning("reconciliation failed: %s", exc)

    def _bar_due(self, engine: Engine) -> bool:
        """True from :data:`BAR_GUARD_MS` before the next bar's close until it is processed
        (at most a period late: a feed that late is stale and reconciliation goes on): a
        reconciliation due then waits for the wait after the bar, off the bar's path."""
        reconciler = self.reconciler
        times = [t for s in engine.symbols if (t := engine.last_bar_time(s)) is not None]
        if reconciler is None or not times:
            return False
        tf_ms = engine.tf_ms
        next_close = max(times) + 2 * tf_ms  # the last bar opened at max(times)
        now = reconciler.clock.now_ms()
        return next_close - BAR_GUARD_MS <= now < next_close + tf_ms

    def _reconcile(self, engine: Engine) -> None:
        """Reconcile a live venue's client with the ledger when it is due; store and publish
        the repairs."""
        reconciler, client = self.reconciler, engine.execution
        if reconciler is None or not isinstance(client, Reconciling):
            return
        if reconciler.due(client, engine.ledger.account.positions):
            changes, found = reconciler.reconcile(engine, self._fill_ids_since)
            self._commit(changes, engine)
            reconciler.announce(found)

    def _save_cash(self, engine: Engine) -> None:
        """Store the ledger's cash with the run's progress: a live venue's fills and funding
        booked between bars move it, and a restart before the next bar's commit starts from
        the stored cash."""
        runner = self._runner
        if runner is not None and runner.running:  # the engine thread, between bars
            runner.save_cash(engine.ledger.cash)
            return
        self.run = replace(self.run, cash=engine.ledger.cash)
        with self.uow_factory() as uow:
            uow.runs.save_progress(self.run)
            uow.commit()

    def _fill_ids_since(self, start: int) -> set[str]:
        """Ids of the stored fills at or after ``start`` (ms UTC)."""
        ids: set[str] = set()
        cursor: str | None = None
        with self.uow_factory() as uow:
            while True:
                page = uow.fills.page(start=start, limit=1_000, cursor=cursor)
                ids.update(fill.id for fill in page.items)
                if page.next_cursor is None:
                    return ids
                cursor = page.next_cursor

    def _set_snapshot(self, value: Snapshot) -> None:
        self._snapshot = value

    # -- engine control ---------------------------------------------------------------------
    def start(self) -> Status:
        """Start (or resume) the run after the last committed bar; after an error, the kernel
        is first rebuilt from storage so the failed bar is processed again.

        Raises
        ------
        EngineStateError
            When it is already running.
        EndOfData
            When the feed has no bar left (a replay at the end of its data); the run is stored
            as stopped for ``"end of data"``.
        """
        with self.commands.lock:
            if self._runner is not None and self._runner.running:
                raise EngineStateError("the engine is already running")
            if self._runner is not None:
                self.run = self._runner.run
                if self._runner.error is not None:
                    self.engine = self._prepare()
            feed = self._feed or self._new_feed(self.run)
            if feed.exhausted:
                self._feed = feed
                if self.run.stopped_reason != END_OF_DATA:  # e.g. killed after its last bar
                    self.run = replace(self.run, stopped_reason=END_OF_DATA)
                    with self.uow_factory() as uow:
                        uow.runs.upsert(self.run)
                        uow.commit()
                raise EndOfData(
                    "end of data: every stored bar is processed (import newer candles to go on)"
                )
            self._feed = None
            self.run = replace(self.run, stopped_reason=None)
            with self.uow_factory() as uow:  # stored as running; every bar then saves progress
                uow.runs.upsert(self.run)
                uow.commit()
            self._stop_requested = None
            self._runner = EngineRunner(
                engine=self.engine,
                feed=feed,
                uow=self.writer_factory(),
                bus=self.bus,
                run=self.run,
                commands=self.commands,
                on_batch=self.on_batch,
                on_snapshot=self._set_snapshot,
                perf_counter=self.perf_counter,
            )
            self._runner.start()
            self.bus.publish([EngineStarted(self.engine.clock.now_ms())])
        return self.status()

    def stop(self, reason: str = "stopped by user") -> Status:
        """Stop the engine after its current bar (no-op when already stopped)."""
        runner = self._runner
        if runner is not None and runner.running:
            self._stop_requested = reason
            runner.stop()
        return self.status()

    def status(self) -> Status:
        """The engine's current state (from the last bar's snapshot; never waits)."""
        runner = self._runner
        running = runner is not None and runner.running
        reason = None
        error = self.run.error
        if runner is None:
            reason = self.run.stopped_reason or "not started"
        elif not running:
            stopped = runner.feed.finished_reason == "stopped"
            reason = (
                self._stop_requested if stopped and self._stop_requested else runner.stopped_reason
            )
            error = runner.error
        snap = self._snapshot
        feed = runner.feed if runner is not None else self._feed
        live = feed if isinstance(feed, VenueFeed) else None
        return Status(
            mode=self.run.mode,
            running=running,
            clock_time=snap.clock_time,
            symbols=self.engine.symbols,
            timeframe=self.engine.timeframe,
            strategy=self.engine.strategy.name,
            candles_processed=snap.candles_processed,
            equity=snap.equity,
            cash=snap.cash,
            stopped_reason=reason,
            error=error,
            feed_venue=None if live is None else live.venue,
            stale_feeds=() if live is None else live.stale(),
        )

    def venues(self) -> list[VenueStatus]:
        """The live venues the run is connected to, each as it is now (none for a replay of
        stored bars: the simulated venue has no connection)."""
        runner = self._runner
        feed = runner.feed if runner is not None else self._feed
        statuses = [feed.venue_status()] if isinstance(feed, VenueFeed) else []
        execution = self.engine.execution
        if isinstance(execution, ReportsActivity):
            statuses = [execution.add_activity(s) for s in statuses]
        reconciler = self.reconciler
        if reconciler is None:
            return statuses
        return [
            replace(s, last_reconciliation=reconciler.last, drift=dict(reconciler.drift))
            for s in statuses
        ]

    # -- market data ------------------------------------------------------------------------
    def pipeline_view(self) -> list[PipelineView]:
        """The strategy's pipeline at its last bars, read on the engine thread between bars
        (empty for a strategy without one)."""
        strategy = self.engine.strategy
        if not isinstance(strategy, ExplainsPipeline):
            return []
        return self.commands.call(strategy.pipeline_view)

    def recent_candles(self, symbol: str) -> Candles:
        """Every bar of ``symbol`` the engine keeps (its window, oldest first).

        Raises
        ------
        UnknownSymbol
            ``symbol`` is not traded.
        """
        history = self.engine.history.get(symbol)
        if history is None:
            raise UnknownSymbol(f"unknown symbol {symbol!r}", field="symbol")
        return history.candles

    def candles(
        self,
        symbol: str,
        timeframe: str | None = None,
        limit: int = 500,
        *,
        start: int | None = None,
        end: int | None = None,
        cursor: str | None = None,
    ) -> CandlePage:
        """The last ``limit`` closed bars of ``symbol`` on ``timeframe`` with ``start <=
        open_time <= end`` (ms UTC; each bound optional), oldest first; ``next_cursor`` reads
        the older page before them. The engine's bar timeframe by default; higher ones are
        resampled from it (epoch-aligned, complete buckets only). Bars come from the engine's
        window (the most recent bars it keeps), not from the whole store.

        Raises
        ------
        UnknownSymbol
            ``symbol`` is not traded.
        ConfigError
            For a timeframe that is not a multiple of the engine's (``field="timeframe"``) or a
            malformed ``cursor`` (``field="cursor"``).
        """
        candles = self.recent_candles(symbol)
        tf = timeframe or self.engine.timeframe
        target, base = timeframe_ms(tf), self.engine.tf_ms
        if cursor is not None:
            before, _ = decode_cursor(cursor, f"candles:{symbol}:{tf}", str)
            end = before - 1 if end is None else min(end, before - 1)
        times = candles.open_time
        hi = len(candles) if end is None else int(times.searchsorted(end, "right"))
        lo = 0 if start is None else int(times.searchsorted(start, "left"))
        if target != base:
            if target % base:
                raise ConfigError(
                    f"timeframe {tf} is not a multiple of {self.engine.timeframe}",
                    field="timeframe",
                )
            ratio = target // base
            # Whole buckets up to the one holding `end`, enough of them for `limit`.
            last = (
                len(candles)
                if end is None
                else int(times.searchsorted(end - end % target + target, "left"))
            )
            first = max(lo, last - (limit + 2) * ratio)
            candles = resample(candles.slice(first, last), base, target)
            times = candles.open_time
            hi = len(candles) if end is None else int(times.searchsorted(end, "right"))
            lo = 0 if start is None else int(times.searchsorted(start, "left"))
        first = max(lo, hi - limit)
        page = candles.slice(first, max(first, hi))
        more = first > lo
        next_cursor = (
            encode_cursor(f"candles:{symbol}:{tf}", int(times[first]), "") if more else None
        )
        return CandlePage(page, next_cursor)

    # -- orders -----------------------------------------------------------------------------
    def current_run(self) -> RunState:
        """The run as last committed (the runner's progress while it runs or after it ran)."""
        runner = self._runner
        return runner.run if runner is not None else self.run

    def _commit(self, changes: LedgerChanges, engine: Engine | None = None) -> None:
        """Store and publish ``changes`` made outside a bar's processing (engine thread): a
        live venue's answers between bars, reconciliation's repairs, the order desk's orders;
        a live venue's fills and funding store the cash they moved with the run, and the
        positions and equity shown follow at once, not at the next bar."""
        if not (changes.orders or changes.fills or changes.positions or changes.fundings):
            return
        engine = engine or self.engine
        with self.uow_factory() as uow:
            store_changes(uow, changes)
            uow.commit()
        self.bus.publish(change_events(changes, engine.marks))
        if (changes.fills or changes.fundings) and engine.matcher is None:
            self._save_cash(engine)
        if changes.fills or changes.positions:
            self._set_snapshot(snapshot(engine, self._snapshot.candles_processed))

    def _stored(self, order_id: str) -> Order | None:
        with self.uow_factory() as uow:
            return uow.orders.get(order_id)

    def get_order(self, order_id: str) -> Order:
        """The order with ``order_id`` as stored; raises ``OrderNotFound``."""
        order = self._stored(order_id)
        if order is None:
            raise OrderNotFound(f"no order with id {order_id!r}", field="id")
        return order

    def orders(
        self,
        *,
        symbol: str | None = None,
        statuses: Collection[OrderStatus] | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Order]:
        """Orders of ``symbol``, in ``statuses``, created from ``start`` to ``end`` (ms UTC,
        inclusive; each filter when given), newest first, one page (``next_cursor`` reads the
        next)."""
        with self.uow_factory() as uow:
            return uow.orders.page(
                symbol=symbol, statuses=statuses, start=start, end=end, limit=limit, cursor=cursor
            )

    def fills(
        self,
        *,
        symbol: str | None = None,
        order_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Fill]:
        """Fills of ``symbol`` or of order ``order_id``, from ``start`` to ``end`` (ms UTC,
        inclusive; each filter when given), newest first, one page."""
        with self.uow_factory() as uow:
            return uow.fills.page(
                symbol=symbol, order_id=order_id, start=start, end=end, limit=limit, cursor=cursor
            )

    # -- account ----------------------------------------------------------------------------
    def positions(self) -> list[PositionView]:
        """Open positions with mark price, unrealized PnL and margin (as of the last bar, or of
        the last fill a live venue reported since)."""
        snap = self._snapshot
        margins = {} if snap.margin is None else {m.symbol: m for m in snap.margin.positions}
        views = []
        for p in snap.positions:
            mark = snap.marks.get(p.symbol)
            margin = margins.get(p.symbol)
            if margin is not None and margin.liquidation_price is not None:
                rules = self.engine.instruments[p.symbol]
                shown = rules.round_price(margin.liquidation_price, up=p.qty > 0)
                margin = replace(margin, liquidation_price=shown)
            views.append(PositionView(p, mark, p.unrealized_pnl(mark or p.entry_price), margin))
        return views

    def balance(self) -> MarginReport:
        """The futures balance breakdown as of the last bar (wallet, margin in use, available,
        fees and funding paid over the run, margin ratio).

        Raises
        ------
        InvalidOrder
            (``field="symbol"``) When the account is not margined as futures (spot, stocks).
        """
        report = self._snapshot.margin
        if report is None:
            raise InvalidOrder("the account trades no perpetual futures", field="symbol")
        return report

    def leverages(self) -> dict[str, int] | None:
        """The leverage of every traded symbol, None when the account is not margined as
        futures (read on the engine's thread: a change may be under way)."""

        def read() -> dict[str, int] | None:
            margin = self.engine.margin
            return None if margin is None else dict(margin.leverage)

        return self.commands.call(read)

    def set_leverage(self, symbol: str, leverage: int) -> int:
        """Set ``symbol``'s leverage (kept with the run's state, so a restart keeps it) and
        return it.

        Raises
        ------
        UnknownSymbol
            When the run does not trade ``symbol``.
        InvalidOrder
            (``field="leverage"``) Without futures margining, or outside 1 to the
            ``max_leverage`` setting and the symbol's bracket maximum for its position.
        """
        self.desk.instrument(symbol)
        return self.commands.call(lambda: self._set_leverage(symbol, leverage))

    def use_models(self, symbols: Sequence[str]) -> None:
        """Hand the registry's active models of those of ``symbols`` the run trades to the
        running strategy (on the engine's thread), after an activation or a roll-back: the
        next prediction uses them, with a fresh accuracy (a disabled predictor is enabled
        again). Nothing without a model loader or for a strategy without ML inputs."""
        loader = self.model_loader
        traded = [s for s in symbols if s in self.run.symbols]
        if loader is None or not traded:
            return
        self.commands.call(lambda: loader(self.engine.strategy, traded))

    def _set_leverage(self, symbol: str, leverage: int) -> int:
        engine = self.engine
        if engine.margin is None:
            raise InvalidOrder("leverage applies to perpetual futures only", field="leverage")
        engine.margin.set_leverage(symbol, leverage)
        self.run = replace(self.run, state=engine.state())
        with self.uow_factory() as uow:
            uow.runs.save_progress(self.run)
            uow.commit()
        self._set_snapshot(snapshot(engine, self._snapshot.candles_processed))
        return engine.margin.leverage[symbol]

    def fundings(
        self, *, symbol: str | None = None, start: int | None = None, end: int | None = None
    ) -> list[FundingPayment]:
        """The run's funding settlements (of ``symbol``, between ``start`` and ``end`` ms UTC
        inclusive, each when given), oldest first, as stored."""
        with self.uow_factory() as uow:
            return uow.funding.list(symbol=symbol, start=start, end=end)

    def trades(
        self,
        *,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Trade]:
        """Closed round trips (of ``symbol``, closed from ``start`` to ``end`` ms UTC inclusive,
        each when given), newest first, one page."""
        with self.uow_factory() as uow:
            return uow.trades.page(symbol=symbol, start=start, end=end, limit=limit, cursor=cursor)

    def realized_by_symbol(self) -> dict[str, Decimal]:
        """The run's realized PnL per symbol: its closed trades' PnL summed (quote currency,
        net of fees)."""
        with self.uow_factory() as uow:
            return uow.trades.realized_by_symbol()

    def equity(self, *, since_ms: int | None = None, limit: int = 10_000) -> list[EquityPoint]:
        """The latest ``limit`` equity snapshots (one per processed bar time), oldest first."""
        with self.uow_factory() as uow:
            return uow.equity.list(since_ms=since_ms, limit=limit)[::-1]

    def equity_page(
        self,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1_000,
        cursor: str | None = None,
    ) -> Page[EquityPoint]:
        """The latest ``limit`` equity snapshots from ``start`` to ``end`` (ms UTC inclusive),
        oldest first within the page; ``next_cursor`` reads the older page before it."""
        with self.uow_factory() as uow:
            page = uow.equity.page(start=start, end=end, limit=limit, cursor=cursor)
        return Page(page.items[::-1], page.next_cursor)

    def pipeline_events(
        self,
        *,
        symbol: str | None = None,
        kind: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[PipelineEvent]:
        """The run's stored threshold adjustments and regime changes (of ``symbol`` and
        ``kind``, from ``start`` to ``end`` ms UTC inclusive, each when given), newest first,
        one page."""
        with self.uow_factory() as uow:
            return uow.pipeline.page(
                symbol=symbol, kind=kind, start=start, end=end, limit=limit, cursor=cursor
            )

    def signals(
        self,
        *,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Signal]:
        """Strategy signals with their reasons (of ``symbol``, from ``start`` to ``end`` ms UTC
        inclusive, each when given), newest first, one page."""
        with self.uow_factory() as uow:
            return uow.signals.page(symbol=symbol, start=start, end=end, limit=limit, cursor=cursor)
