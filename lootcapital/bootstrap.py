"""The composition root: the one place that picks concrete adapters and wires the app.

Tests call these functions with their own settings (a temporary data directory, a fast replay
speed) and, where they need to, their own clock or sleep.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from adapters.clock import SimulatedClock, SystemClock
from adapters.marketdata.binance_csv import infer_symbol_timeframe, read_klines
from adapters.marketdata.feeds import ReplayFeed, history_cut
from adapters.marketdata.parquet_store import ParquetCandleStore
from adapters.storage.sql.backtest_repository import SqlBacktestStore
from adapters.storage.sql.migrations import upgrade_to_head
from adapters.storage.sql.reconciliation_repository import SqlReconciliationLog
from adapters.storage.sql.unit_of_work import SqlUnitOfWork, make_engine, make_session_factory
from adapters.venues.simulated.venue import SimulatedVenue
from api.app import create_app
from api.hub import EventHub
from api.messages import WsMessages
from api.metrics import Metrics
from domain.candles import Candles
from domain.errors import ConfigError
from domain.ledger import Ledger
from domain.model import Order, Position
from domain.ports import (
    BarMatcher,
    Clock,
    ExecutionClient,
    MarginAccount,
    RunState,
    StoredSeries,
    UnitOfWork,
)
from domain.strategies import build_strategy
from domain.timeframes import timeframe_ms
from lootcapital.alerts import alert_dispatcher
from lootcapital.backtest_runs import prepare_backtest, stored_candles
from lootcapital.live import (
    LIVE,
    LiveStart,
    LiveVenue,
    check_live_start,
    live_feed_factory,
    venue_funding,
    venue_rules,
)
from lootcapital.ml_models import hand_over_models, model_store
from lootcapital.settings import Settings
from lootcapital.simulation import (
    candle_store,
    instruments,
    risk_gate,
    sample_funding,
    simulated_venue,
    with_brackets,
)
from service_layer.alerts import AlertDispatcher
from service_layer.backtest_jobs import BacktestJobs
from service_layer.engine import Engine
from service_layer.market_data import ImportReport, import_files, list_series
from service_layer.messagebus import MessageBus
from service_layer.model_registry import ModelRegistry
from service_layer.reconciliation import FundingWindow, Reconciler
from service_layer.trading import FeedFactory, TradingService
from service_layer.training_jobs import TrainingJobs
from web.backtest_views import stored_view
from web.routes import mount_web

logger = logging.getLogger(__name__)

TOKEN_FILE = "api_token"
MODE = "paper"
REPLAY = "replay"
"""``settings.feed`` of a replay of the candle store (the other feeds are venues' live bars)."""


@dataclass(slots=True)
class Container:
    """Everything the server needs, wired. ``token_generated`` is True when the API token was
    created at this start (the CLI prints it)."""

    settings: Settings
    service: TradingService
    hub: EventHub
    metrics: Metrics
    bus: MessageBus
    api_token: str
    token_generated: bool
    autostart: bool
    models: ModelRegistry
    training: TrainingJobs
    backtests: BacktestJobs
    alerts: AlertDispatcher
    venue: LiveVenue | None = None

    def close(self) -> None:
        """Close a live run's venue connection (its execution client; nothing in paper
        mode). Call after the run has stopped."""
        if self.venue is not None:
            self.venue.close()


def api_token(settings: Settings) -> tuple[str, bool]:
    """The API token from settings, else from ``<data_dir>/api_token`` (created with mode 600
    on first start). Returns ``(token, generated_now)``."""
    if settings.api_token is not None:
        value = settings.api_token.get_secret_value()
        if len(value) < 16:
            raise ConfigError("api_token must be at least 16 characters", field="api_token")
        return value, False
    path = settings.data_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), False
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token, True


def import_data(
    settings: Settings,
    paths: Sequence[str | Path],
    *,
    exchange: str,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> list[ImportReport]:
    """Import kline files into the candle store (all or nothing)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return import_files(
        paths,
        reader=read_klines,
        store=candle_store(settings),
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        infer=infer_symbol_timeframe,
    )


def list_data(settings: Settings) -> list[StoredSeries]:
    """What the candle store holds."""
    return list_series(candle_store(settings))


def _ensure_sample(settings: Settings, store: ParquetCandleStore) -> None:
    stored = {(s.exchange, s.symbol, s.timeframe) for s in store.list()}
    for symbol in settings.symbols:
        if (settings.exchange, symbol, settings.timeframe) in stored:
            continue
        sample = settings.sample_dir / f"binance_usdm_{symbol}_{settings.timeframe}.csv.gz"
        if not sample.exists():
            raise ConfigError(
                f"no {settings.timeframe} candles for {symbol}: import them with "
                f"`lootcapital data import FILE --symbol {symbol}`",
                field="symbols",
            )
        import_data(settings, [sample], exchange=settings.exchange)


def _sessions(settings: Settings) -> Callable[[], Any]:
    url = settings.database
    upgrade_to_head(url)
    return make_session_factory(make_engine(url))


def _run_state(
    settings: Settings, sessions: Callable[[], Any], params: dict, mode: str
) -> RunState:
    with SqlUnitOfWork(sessions, "-") as uow:
        previous = uow.runs.latest(mode)
        other = uow.runs.latest(LIVE if mode == MODE else MODE)
    if other is not None:
        raise ConfigError(
            f"the data directory {settings.data_dir} holds a {other.mode} run; a {mode} run "
            "needs a data directory of its own: use another LOOTCAPITAL_DATA_DIR",
            field="data_dir",
        )
    wanted = (settings.strategy, tuple(settings.symbols), settings.timeframe)
    if previous is not None:
        if (previous.strategy, previous.symbols, previous.timeframe) != wanted:
            raise ConfigError(
                f"the data directory {settings.data_dir} holds a {previous.strategy} run on "
                f"{','.join(previous.symbols)} {previous.timeframe}; use another "
                "LOOTCAPITAL_DATA_DIR for a different strategy, symbols or timeframe",
                field="data_dir",
            )
        return previous
    run = RunState(
        id=uuid.uuid4().hex,
        mode=mode,
        strategy=settings.strategy,
        params=params,
        symbols=tuple(settings.symbols),
        timeframe=settings.timeframe,
        started_time=SystemClock().now_ms(),
        initial_cash=settings.initial_cash,
        cash=settings.initial_cash,
        last_bar_time={},
    )
    with SqlUnitOfWork(sessions, run.id) as uow:  # orders placed before the first bar belong to it
        uow.runs.upsert(run)
        uow.commit()
    return run


TRAINING_THREADS = max(1, (os.cpu_count() or 1) - 1)
"""Threads of a background training job's native pools: a core stays with the engine and the
API (and OpenMP threads that share a busy core spin, many times slower than one)."""

PAPER_WINDOW = 10_000
"""Bars kept per symbol in paper mode (35 days of 5m bars: the panel's and API's charts)."""


ExecutionFactory = Callable[
    [RunState, Clock, list[Position], list[Order]], tuple[ExecutionClient, BarMatcher | None]
]
"""Builds the run's execution client (and its bar matcher, for a simulated venue) at market
clock ``Clock``, restored with the stored positions and open orders."""


def _margin(execution: ExecutionClient) -> MarginAccount | None:
    """The simulated venue as the run's futures margining, None for another client or one
    without futures."""
    if isinstance(execution, SimulatedVenue) and execution.futures is not None:
        return execution
    return None


def _applied_fill_ids(uow: UnitOfWork, orders: list[Order]) -> list[str]:
    """Ids of the stored fills of ``orders`` (those partly filled), for the restored ledger to
    refuse a fill the venue sends again after a restart."""
    ids: list[str] = []
    for order in orders:
        cursor: str | None = None
        while order.filled_qty > 0:
            page = uow.fills.page(order_id=order.id, limit=1_000, cursor=cursor)
            ids += [fill.id for fill in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return ids


def _first_fill_time(uow: UnitOfWork) -> int | None:
    """When the run's first stored fill happened (ms UTC); None without one."""
    first, cursor = None, None
    while True:
        page = uow.fills.page(limit=1_000, cursor=cursor)  # newest first
        first = page.items[-1].time if page.items else first
        if page.next_cursor is None:
            return first
        cursor = page.next_cursor


def _reconciler(
    venue: LiveVenue, sessions: Callable[[], Any], run: RunState, wall: Clock, bus: MessageBus
) -> Reconciler:
    """A live run's reconciliation with its ``venue``, every ``reconcile_s`` of ``wall``; its first
    window of the venue's trades starts at the run's newest stored fill (now for a run
    without one); the venue's funding payments are booked from the run's first stored fill
    (its first position; now for a run without one)."""
    with SqlUnitOfWork(sessions, run.id) as uow:
        newest = uow.fills.page(limit=1).items
        first = _first_fill_time(uow)

    def booked(start: int) -> set[tuple[str, int]]:
        with SqlUnitOfWork(sessions, run.id) as uow:
            return {(p.symbol, p.time_ms) for p in uow.funding.list(start=start)}

    return Reconciler(
        interval_ms=round(venue.reconcile_s * 1000),
        clock=wall,
        log=SqlReconciliationLog(sessions, run.id),
        publish=bus.publish,
        since=newest[0].time if newest else wall.now_ms(),
        funding=FundingWindow(wall.now_ms() if first is None else first, booked),
    )


def bootstrap(
    settings: Settings,
    *,
    live: LiveStart | None = None,
    feed_factory: FeedFactory | None = None,
    execution_factory: ExecutionFactory | None = None,
    market_clock: Callable[[], Clock] = SimulatedClock,
    wall_clock: Clock | None = None,
) -> Container:
    """Wire the trading server: storage (migrated to head), candles (the shipped sample
    imported on first start of a replay), the run's kernel restored from storage (strategy
    state, ledger, execution client), bus and metrics, the model registry (its SQL rows synced
    with the model store's files), background training and backtests on the stored bars.

    Paper trading (``live`` None) fills on the simulated venue; its feed is ``settings.feed``:
    a replay of the candle store, or a venue's live bars (each appended to the candle store as
    it is traded; a stale symbol published as ``FeedStale``). A live run (``live``: see
    :mod:`lootcapital.live`) trades the venue's live bars with its orders at the venue, once
    :func:`~lootcapital.live.check_live_start` lets it. Every port can be injected:
    ``feed_factory`` replaces the feed, ``execution_factory`` the simulated venue or the live
    one, ``market_clock`` makes the kernel's clock (one per kernel build), ``wall_clock`` paces
    the replay and times the live feed and venue (the system clock by default).

    Raises
    ------
    ConfigError
        On settings that cannot work together (unknown symbol data, another run's data dir),
        and a live start refused (the message says what to set).
    VenueError
        When a live venue cannot be reached (warm-up bars, leverage and margin mode) or refuses
        the leverage or margin mode.
    """
    wall = wall_clock or SystemClock()
    if live is not None:
        check_live_start(settings, live, wall)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token, generated = api_token(settings)
    sessions = _sessions(settings)
    store = candle_store(settings)
    if settings.feed == REPLAY and live is None:
        _ensure_sample(settings, store)
    rules = with_brackets(settings, instruments(settings, settings.symbols))
    if live is not None or settings.feed != REPLAY:  # a venue's live bars: its rules
        where = settings.feed if live is None else live.venue
        rules = venue_rules(settings, rules, signed=live is not None, clock=wall, venue=where)
    live_funding = None  # paper on a venue's live bars: the venue's funding rates and marks
    if live is None and settings.feed != REPLAY:
        live_funding = venue_funding(settings, wall, venue=settings.feed)
    # read once, not at every rebuild
    funding = {} if live_funding is not None else sample_funding(settings, settings.symbols)
    params = build_strategy(
        settings.strategy, settings.strategy_params, settings.timeframe
    ).params()
    run = _run_state(settings, sessions, params, MODE if live is None else LIVE)

    def uow_factory() -> UnitOfWork:
        return SqlUnitOfWork(sessions, run.id)

    def simulated(
        state: RunState, clock: Clock, positions: list[Position], orders: list[Order]
    ) -> tuple[ExecutionClient, BarMatcher | None]:
        venue = simulated_venue(settings, rules, state.cash, clock, funding)
        if live_funding is not None:
            live_funding.attach(venue.futures)
        with uow_factory() as uow:
            fees, funding_paid = uow.fills.fees_total(), uow.funding.total()
        venue.restore(state.cash, positions, orders, fees, funding_paid)
        return venue, venue

    bus = MessageBus()
    venue = None
    if live is not None:
        venue = LiveVenue(settings, store=store, clock=wall, publish=bus.publish, venue=live.venue)
        feed_factory = feed_factory or venue.feed
        execution_factory = execution_factory or venue.execution
    make_execution = execution_factory or simulated

    def engine_factory(state: RunState) -> Engine:
        clock = market_clock()
        with uow_factory() as uow:
            positions, orders = uow.positions.list(), uow.orders.list_open()
            fill_ids = _applied_fill_ids(uow, orders)
            limits = uow.risk.latest_limits()
        execution, matcher = make_execution(state, clock, positions, orders)
        margin, cash = _margin(execution), state.cash
        if venue is not None:  # a live run: the venue's balance and leverage
            with uow_factory() as uow:
                fees, funded = uow.fills.fees_total(), uow.funding.total()
            account = venue.margin(
                execution,
                lambda: (fees + ledger.account.fees_paid, funded + ledger.account.funding_paid),
            )
            if account is not None:
                margin, cash = account, account.capital(state.cash)
        ledger = Ledger(cash, positions, orders, fill_ids=fill_ids)
        strategy = build_strategy(state.strategy, state.params, state.timeframe, incremental=True)
        hand_over_models(strategy, settings, state.symbols)
        engine = Engine(
            strategy=strategy,
            execution=execution,
            matcher=matcher,
            clock=clock,
            instruments=rules,
            symbols=state.symbols,
            timeframe=state.timeframe,
            run_id=state.id,
            ledger=ledger,
            window=PAPER_WINDOW,
            margin=margin,
            leverage=None if venue is None else venue.leverage,
            risk=risk_gate(settings, state.timeframe, limits, paper=True),
        )
        engine.restore(state.state)
        return engine

    if feed_factory is None and settings.feed != REPLAY:
        feed_factory = live_feed_factory(
            settings, store, wall, bus.publish, funding=live_funding, venue=settings.feed
        )
    if feed_factory is None:
        candles = {
            s: store.read(settings.exchange, s, settings.timeframe) for s in settings.symbols
        }

        history = history_cut(candles, round(settings.history_days * timeframe_ms("1d")))

        def replay(
            start_after: dict[str, int] | None, sleep: Callable[[float], object]
        ) -> ReplayFeed:
            return ReplayFeed(
                candles,
                settings.timeframe,
                speed=settings.speed,
                clock=wall,
                start_after=start_after if start_after is not None else history,
                sleep=sleep,
            )

        feed_factory = replay

    metrics = Metrics(settings.timeframe)
    bus.subscribe(object, metrics.handle)
    try:
        service = TradingService(
            engine_factory=engine_factory,
            feed_factory=feed_factory,
            uow_factory=uow_factory,
            bus=bus,
            run=run,
            on_batch=metrics.on_batch,
            perf_counter=time.perf_counter,
            writer_factory=lambda: SqlUnitOfWork(sessions, run.id, keep_connection=True),
            model_loader=lambda strategy, symbols: hand_over_models(strategy, settings, symbols),
            reconciler=None if venue is None else _reconciler(venue, sessions, run, wall, bus),
        )
    except BaseException:
        if venue is not None:  # a live venue's client started before the failure
            venue.close()
        raise
    hub = EventHub(WsMessages(service))
    bus.subscribe(object, hub.handle)
    alerts = alert_dispatcher(
        settings.alerts,
        initial_equity=run.initial_cash,
        uow_factory=uow_factory,
        push=hub.handle,
        on_result=metrics.on_alert,
    )
    if settings.alerts.enabled:
        bus.subscribe(object, alerts.handle)
    models = ModelRegistry(model_store(settings), uow_factory, wall, on_activate=service.use_models)
    models.sync()  # models the CLI trained or activated while the server was down

    def stored_bars(symbol: str, timeframe: str) -> Candles:
        return store.read(settings.exchange, symbol, timeframe)

    training = TrainingJobs(
        candles=stored_bars,
        registry=models,
        publish=bus.publish,
        clock=wall,
        threads=TRAINING_THREADS,
    )
    backtests = BacktestJobs(
        store=SqlBacktestStore(sessions),
        prepare=partial(prepare_backtest, settings),
        publish=bus.publish,
        clock=wall,
        summarize=stored_view,  # the panel's view, stored with each done backtest
        bars=partial(backtest_bars, settings),
    )
    backtests.recover()  # those a stopped server left running
    return Container(
        settings, service, hub, metrics, bus, token, generated, settings.autostart, models,
        training, backtests=backtests, alerts=alerts, venue=venue,
    )  # fmt: skip


def backtest_bars(
    settings: Settings, symbol: str, timeframe: str, start: int | None, end: int | None
) -> Candles:
    """The stored bars of ``symbol`` a backtest at ``timeframe`` from ``start`` to ``end`` (ms
    UTC) runs on (:func:`lootcapital.backtest_runs.stored_candles`), for the panel's chart."""
    return stored_candles(settings, [symbol], timeframe, start, end)[0][symbol]


def build_app(container: Container) -> FastAPI:
    """The HTTP app of ``container``: the API with the web panel mounted on it."""
    app = create_app(container)
    mount_web(app)
    return app
