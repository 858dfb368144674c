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
from decimal import Decimal
from pathlib import Path

from adapters.clock import SimulatedClock, SystemClock
from adapters.exchanges.paper import PaperBroker, sequential_ids
from adapters.marketdata.binance_csv import infer_symbol_timeframe, read_klines
from adapters.marketdata.exchange_info import load_instruments
from adapters.marketdata.feeds import HistoricalFeed, ReplayFeed
from adapters.marketdata.parquet_store import ParquetCandleStore
from adapters.storage.sql.migrations import upgrade_to_head
from adapters.storage.sql.unit_of_work import SqlUnitOfWork, make_engine, make_session_factory
from api.hub import EventHub
from api.metrics import Metrics
from domain.candles import Candles
from domain.errors import ConfigError
from domain.execution import FeeSchedule
from domain.model import Instrument
from domain.ports import RunState, StoredSeries, UnitOfWork
from domain.strategies import build_strategy
from lootcapital.settings import Settings
from service_layer.backtest import BacktestResult, run_backtest
from service_layer.engine import Engine
from service_layer.market_data import ImportReport, check_spacing, import_files, list_series
from service_layer.messagebus import MessageBus
from service_layer.trading import TradingService

logger = logging.getLogger(__name__)

TOKEN_FILE = "api_token"
MODE = "paper"


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


def candle_store(settings: Settings) -> ParquetCandleStore:
    """The Parquet candle store under the data directory."""
    return ParquetCandleStore(settings.data_dir)


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


def instruments(settings: Settings, symbols: Sequence[str]) -> dict[str, Instrument]:
    """Trading rules for ``symbols``: from the exchange-info file, else permissive defaults
    (tick and lot step 1e-8, no minimum notional) with a warning."""
    known = load_instruments(settings.instruments_path)
    rules = {}
    for symbol in symbols:
        if symbol not in known:
            logger.warning("no exchange rules for %s: using tick/step 1e-8", symbol)
        rules[symbol] = known.get(symbol) or Instrument(symbol)
    return rules


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


def _uow_factory(settings: Settings) -> Callable[[], UnitOfWork]:
    url = settings.database
    upgrade_to_head(url)
    sessions = make_session_factory(make_engine(url))
    return lambda: SqlUnitOfWork(sessions)


def _run_state(settings: Settings, uow_factory: Callable[[], UnitOfWork], params: dict) -> RunState:
    with uow_factory() as uow:
        previous = uow.runs.latest(MODE)
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
    return RunState(
        id=uuid.uuid4().hex,
        mode=MODE,
        strategy=settings.strategy,
        params=params,
        symbols=tuple(settings.symbols),
        timeframe=settings.timeframe,
        started_time=SystemClock().now_ms(),
        initial_cash=settings.initial_cash,
        cash=settings.initial_cash,
        last_bar_time={},
    )


def bootstrap(settings: Settings) -> Container:
    """Wire the paper-trading server: storage (migrated to head), candles (the shipped sample
    imported on first start), the paper broker restored from the last run, engine, bus, metrics.

    Raises
    ------
    ConfigError
        On settings that cannot work together (unknown symbol data, another run's data dir).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token, generated = api_token(settings)
    uow_factory = _uow_factory(settings)
    store = candle_store(settings)
    _ensure_sample(settings, store)
    rules = instruments(settings, settings.symbols)
    strategy = build_strategy(settings.strategy, settings.strategy_params, settings.timeframe)
    run = _run_state(settings, uow_factory, strategy.params())
    broker = PaperBroker(
        instruments=rules,
        cash=run.cash,
        fees=FeeSchedule(taker=settings.fee_taker, maker=settings.fee_maker),
        slippage_bps=settings.slippage_bps,
        max_leverage=settings.max_leverage,
        ids=lambda: uuid.uuid4().hex[:20],
    )
    with uow_factory() as uow:
        broker.restore(run.cash, uow.positions.list(), uow.orders.list_open())
    clock = SimulatedClock()
    engine = Engine(
        strategy=strategy,
        broker=broker,
        clock=clock,
        instruments=rules,
        symbols=tuple(settings.symbols),
        timeframe=settings.timeframe,
    )
    candles = {s: store.read(settings.exchange, s, settings.timeframe) for s in settings.symbols}
    wall = SystemClock()

    def feed_factory(start_after: dict[str, int] | None) -> ReplayFeed:
        return ReplayFeed(
            candles, settings.timeframe, speed=settings.speed, clock=wall, start_after=start_after
        )

    bus = MessageBus()
    metrics = Metrics(settings.timeframe)
    hub = EventHub(clock.now_ms)
    bus.subscribe(object, metrics.handle)
    bus.subscribe(object, hub.handle)
    service = TradingService(
        engine=engine,
        feed_factory=feed_factory,
        uow_factory=uow_factory,
        bus=bus,
        run=run,
        on_batch=metrics.on_batch,
        perf_counter=time.perf_counter,
    )
    return Container(settings, service, hub, metrics, bus, token, generated, settings.autostart)


def backtest(
    settings: Settings,
    *,
    strategy: str,
    params: dict[str, str],
    candles: dict[str, Candles],
    timeframe: str,
    cash: Decimal,
    fee: Decimal,
    slippage_bps: Decimal,
) -> BacktestResult:
    """Backtest ``strategy`` on ``candles`` with a fresh paper broker and a simulated clock.

    ``fee`` is the taker rate; the maker rate keeps the settings' ratio to it.
    """
    rules = instruments(settings, list(candles))
    maker = fee * settings.fee_maker / settings.fee_taker if settings.fee_taker else fee
    broker = PaperBroker(
        instruments=rules,
        cash=cash,
        fees=FeeSchedule(taker=fee, maker=maker),
        slippage_bps=slippage_bps,
        max_leverage=settings.max_leverage,
        ids=sequential_ids(""),
    )
    return run_backtest(
        strategy=build_strategy(strategy, params, timeframe),
        feed=HistoricalFeed(candles, timeframe),
        broker=broker,
        clock=SimulatedClock(),
        instruments=rules,
        initial_cash=cash,
    )


def load_candles(
    settings: Settings,
    *,
    data: Sequence[Path],
    symbols: Sequence[str],
    timeframe: str,
    start_ms: int | None,
    end_ms: int | None,
) -> dict[str, Candles]:
    """Bars to backtest: from kline files (``data``; ``symbols`` name them in order, else the
    file name does) or the candle store.

    Raises
    ------
    ConfigError
        A file whose symbol cannot be inferred, or two files for one symbol.
    DataError
        A bad row, or bars not spaced on ``timeframe`` (file and row named).
    """
    out: dict[str, Candles] = {}
    for k, path in enumerate(data):
        name = symbols[k] if k < len(symbols) else infer_symbol_timeframe(path)[0]
        if name is None:
            raise ConfigError(f"{path}: cannot infer the symbol; pass --symbol", field="symbol")
        if name in out:
            raise ConfigError(f"{path}: a second file for {name}", field="data")
        candles = read_klines(path)
        check_spacing(candles.open_time, timeframe, str(path))
        out[name] = candles.between(start_ms, end_ms)
    if not data:
        store = candle_store(settings)
        for symbol in symbols:
            out[symbol] = store.read(settings.exchange, symbol, timeframe, start_ms, end_ms)
    return out
