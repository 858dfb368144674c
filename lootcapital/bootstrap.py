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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from fastapi import FastAPI

from adapters.clock import SimulatedClock, SystemClock
from adapters.marketdata.binance_csv import infer_market, infer_symbol_timeframe, read_klines
from adapters.marketdata.exchange_info import load_catalog
from adapters.marketdata.feeds import HistoricalFeed, ReplayFeed
from adapters.marketdata.funding_csv import read_funding, read_mark_prices
from adapters.marketdata.leverage_brackets import read_leverage_brackets
from adapters.marketdata.parquet_store import ParquetCandleStore
from adapters.storage.sql.migrations import upgrade_to_head
from adapters.storage.sql.unit_of_work import SqlUnitOfWork, make_engine, make_session_factory
from adapters.venues.simulated.venue import SimulatedVenue
from api.app import create_app
from api.hub import EventHub
from api.messages import WsMessages
from api.metrics import Metrics
from domain.candles import Candles
from domain.errors import ConfigError, UnknownSymbol
from domain.execution import FeeSchedule
from domain.funding import FundingRates
from domain.futures import FuturesBook, FuturesTerms, MarketFeeds
from domain.instruments import DEFAULT_VENUE
from domain.ledger import Ledger
from domain.model import Instrument, MarketType, Order, Position
from domain.ports import (
    BarMatcher,
    Clock,
    ExecutionClient,
    LimitsChange,
    MarginAccount,
    RunState,
    StoredSeries,
    UnitOfWork,
)
from domain.strategies import build_strategy
from domain.timeframes import timeframe_ms
from lootcapital.futures import beside, sample_files
from lootcapital.settings import Settings
from service_layer.backtest import BacktestResult, run_backtest
from service_layer.engine import Engine
from service_layer.market_data import ImportReport, check_spacing, import_files, list_series
from service_layer.messagebus import MessageBus
from service_layer.risk_config import RiskConfig
from service_layer.risk_gate import RiskGate
from service_layer.trading import FeedFactory, TradingService
from web.routes import mount_web

if TYPE_CHECKING:
    from adapters.models.filesystem import FilesystemModelStore

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


def instruments(
    settings: Settings,
    symbols: Sequence[str],
    *,
    markets: Mapping[str, MarketType] | None = None,
    venue: str = DEFAULT_VENUE,
) -> dict[str, Instrument]:
    """Trading rules for ``symbols``, keyed by symbol, each looked up by venue, market and
    symbol in the exchange-info files ``settings.instruments_files``.

    ``markets`` gives a symbol's market (see :func:`data_markets`); a symbol it does not name
    trades on the perpetual market. A symbol the files do not know gets permissive defaults
    (tick and lot step 1e-8, no minimum notional, no quantity cap) on its venue and market,
    with a warning that says where else the symbol is known.

    Raises
    ------
    DataError
        When an exchange-info file cannot be read or parsed (file and symbol named).
    """
    catalog = load_catalog(settings.instruments_files)
    rules = {}
    for symbol in symbols:
        market = (markets or {}).get(symbol, MarketType.PERPETUAL)
        try:
            rules[symbol] = catalog.get(symbol, venue=venue, market=market)
        except UnknownSymbol as exc:
            logger.warning("%s: using tick/step 1e-8 and no limits", exc.message)
            rules[symbol] = Instrument(symbol, venue=venue, market=market)
    return rules


def with_brackets(settings: Settings, rules: Mapping[str, Instrument]) -> dict[str, Instrument]:
    """``rules`` with each perpetual's leverage brackets from ``settings.leverage_brackets_file``
    (unchanged when unset, or for a symbol the file does not list: that symbol is traded with no
    liquidation, and a warning says so).

    Raises
    ------
    DataError
        When the file cannot be read or parsed (file, symbol and bracket named).
    """
    path = settings.leverage_brackets_file
    if path is None:
        return dict(rules)
    brackets = read_leverage_brackets(path)
    out = {}
    for symbol, rule in rules.items():
        found = brackets.get(symbol) if rule.market is MarketType.PERPETUAL else None
        if found is None and rule.market is MarketType.PERPETUAL:
            logger.warning("%s: no leverage brackets in %s; no liquidation simulated", symbol, path)
        out[symbol] = rule if found is None else replace(rule, brackets=found)
    return out


class FundingFeed(NamedTuple):
    """A perpetual's funding ``rates`` and 1 h mark-price bars (``marks``; None where no mark
    file lies beside the funding file), read once per process."""

    rates: FundingRates
    marks: Candles | None


def read_funding_feeds(funding: Mapping[str, Path | None]) -> dict[str, FundingFeed]:
    """The funding feeds of the files ``funding`` names per symbol (None: none for that
    symbol), each with the mark prices of the ``mark_1h`` file beside it when there is one.

    Raises
    ------
    DataError
        A funding or mark file that cannot be read (file and row named).
    """
    feeds = {}
    for symbol, path in funding.items():
        if path is not None:
            mark_path = _mark_file(path)
            marks = read_mark_prices(mark_path) if mark_path is not None else None
            feeds[symbol] = FundingFeed(read_funding(path), marks)
    return feeds


def futures_book(
    settings: Settings,
    rules: Mapping[str, Instrument],
    bar_ms: int,
    *,
    funding: Mapping[str, FundingFeed],
    leverage: int | None = None,
) -> FuturesBook | None:
    """The futures margining of an account trading ``rules``, or None when not every symbol is
    a perpetual (spot and stocks keep the plain margin check).

    ``funding`` holds each symbol's funding feed (:func:`read_funding_feeds`; absent: no
    funding). ``leverage`` overrides ``settings.leverage`` for every symbol.

    Raises
    ------
    ConfigError, ValueError
        A leverage above the cap (the message names it).
    """
    if not rules or any(r.market is not MarketType.PERPETUAL for r in rules.values()):
        return None
    terms = FuturesTerms(
        mode=settings.margin_mode,
        leverage=leverage or settings.leverage,
        max_leverage=int(settings.max_leverage),
        liquidation_fee=settings.liquidation_fee,
    )
    markets = {}
    for symbol, rule in rules.items():
        rates, marks = funding.get(symbol, (None, None))
        markets[symbol] = MarketFeeds(rule.brackets, rates, marks)
    book = FuturesBook(terms, markets, bar_ms)
    for symbol in rules:
        book.set_leverage(symbol, terms.leverage)
    return book


def _mark_file(funding: Path) -> Path | None:
    name = funding.name.replace("_funding", "_mark_1h", 1)
    found = funding.with_name(name)
    return found if name != funding.name and found.exists() else None


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


def _run_state(settings: Settings, sessions: Callable[[], Any], params: dict) -> RunState:
    with SqlUnitOfWork(sessions, "-") as uow:
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
    run = RunState(
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
    with SqlUnitOfWork(sessions, run.id) as uow:  # orders placed before the first bar belong to it
        uow.runs.upsert(run)
        uow.commit()
    return run


def sample_funding(settings: Settings, symbols: Sequence[str]) -> dict[str, FundingFeed]:
    """The funding feeds of the shipped sample's funding files beside the candles of
    ``symbols`` at the settings' timeframe, where there are some.

    Raises
    ------
    DataError
        A funding or mark file that cannot be read (file and row named).
    """
    samples = sample_files(settings, list(symbols), settings.timeframe)
    return read_funding_feeds({s: beside(path, "funding") for s, path in samples.items()})


def simulated_venue(
    settings: Settings,
    rules: Mapping[str, Instrument],
    cash: Decimal,
    clock: Clock,
    funding: Mapping[str, FundingFeed],
) -> SimulatedVenue:
    """A simulated venue with the settings' fees, slippage, leverage cap and participation;
    perpetuals margined as futures with the settings' leverage and margin mode, funded from
    ``funding`` (:func:`sample_funding`)."""
    book = futures_book(settings, rules, timeframe_ms(settings.timeframe), funding=funding)
    return SimulatedVenue(
        instruments=rules,
        cash=cash,
        clock=clock,
        fees=FeeSchedule(taker=settings.fee_taker, maker=settings.fee_maker),
        slippage_bps=settings.slippage_bps,
        max_leverage=settings.max_leverage,
        participation=settings.participation,
        futures=book,
    )


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


def risk_config(settings: Settings, stored: LimitsChange | None = None) -> RiskConfig:
    """The risk gate's configuration: the settings' ``risk`` section, or the limits last set
    through the API for the run (``stored``), which win.

    Raises
    ------
    ConfigError
        On limits that do not hold together (the field named).
    """
    config = RiskConfig.from_json(settings.risk.model_dump(mode="json"))
    return config if stored is None else RiskConfig.from_json(stored.limits, base=config)


def risk_gate(
    settings: Settings,
    timeframe: str,
    stored: LimitsChange | None = None,
    *,
    paper: bool = False,
    leverage: int | None = None,
) -> RiskGate | None:
    """The risk gate of a run: always in paper and live (manual halts, close-all and the risk
    view need it; with every rule off it refuses nothing), in a backtest only when a rule is
    on (else none, at no cost). ``leverage`` is the account's (the settings' by default)."""
    config = risk_config(settings, stored)
    if not paper and not config.enforces_anything:
        return None
    return RiskGate(
        config,
        timeframe=timeframe,
        leverage=Decimal(leverage or settings.leverage),
        track_drawdown=paper,
    )


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


def bootstrap(
    settings: Settings,
    *,
    feed_factory: FeedFactory | None = None,
    execution_factory: ExecutionFactory | None = None,
    market_clock: Callable[[], Clock] = SimulatedClock,
    wall_clock: Clock | None = None,
) -> Container:
    """Wire the paper-trading server: storage (migrated to head), candles (the shipped sample
    imported on first start), the run's kernel restored from storage (strategy state, ledger,
    execution client), bus and metrics.

    Every port can be injected: ``feed_factory`` replaces the replay of the candle store,
    ``execution_factory`` the simulated venue, ``market_clock`` makes the kernel's clock (one
    per kernel build), ``wall_clock`` paces the replay (the system clock by default).

    Raises
    ------
    ConfigError
        On settings that cannot work together (unknown symbol data, another run's data dir).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token, generated = api_token(settings)
    sessions = _sessions(settings)
    store = candle_store(settings)
    _ensure_sample(settings, store)
    rules = with_brackets(settings, instruments(settings, settings.symbols))
    funding = sample_funding(settings, settings.symbols)  # read once, not at every rebuild
    params = build_strategy(
        settings.strategy, settings.strategy_params, settings.timeframe
    ).params()
    run = _run_state(settings, sessions, params)

    def uow_factory() -> UnitOfWork:
        return SqlUnitOfWork(sessions, run.id)

    def simulated(
        state: RunState, clock: Clock, positions: list[Position], orders: list[Order]
    ) -> tuple[ExecutionClient, BarMatcher | None]:
        venue = simulated_venue(settings, rules, state.cash, clock, funding)
        with uow_factory() as uow:
            fees, funding_paid = uow.fills.fees_total(), uow.funding.total()
        venue.restore(state.cash, positions, orders, fees, funding_paid)
        return venue, venue

    make_execution = execution_factory or simulated

    def engine_factory(state: RunState) -> Engine:
        clock = market_clock()
        with uow_factory() as uow:
            positions, orders = uow.positions.list(), uow.orders.list_open()
            fill_ids = _applied_fill_ids(uow, orders)
            limits = uow.risk.latest_limits()
        execution, matcher = make_execution(state, clock, positions, orders)
        strategy = build_strategy(state.strategy, state.params, state.timeframe, incremental=True)
        engine = Engine(
            strategy=strategy,
            execution=execution,
            matcher=matcher,
            clock=clock,
            instruments=rules,
            symbols=state.symbols,
            timeframe=state.timeframe,
            run_id=state.id,
            ledger=Ledger(state.cash, positions, orders, fill_ids=fill_ids),
            window=PAPER_WINDOW,
            margin=_margin(execution),
            risk=risk_gate(settings, state.timeframe, limits, paper=True),
        )
        engine.restore(state.state)
        return engine

    wall = wall_clock or SystemClock()
    if feed_factory is None:
        candles = {
            s: store.read(settings.exchange, s, settings.timeframe) for s in settings.symbols
        }

        def replay(
            start_after: dict[str, int] | None, sleep: Callable[[float], object]
        ) -> ReplayFeed:
            return ReplayFeed(
                candles,
                settings.timeframe,
                speed=settings.speed,
                clock=wall,
                start_after=start_after,
                sleep=sleep,
            )

        feed_factory = replay

    bus = MessageBus()
    metrics = Metrics(settings.timeframe)
    bus.subscribe(object, metrics.handle)
    service = TradingService(
        engine_factory=engine_factory,
        feed_factory=feed_factory,
        uow_factory=uow_factory,
        bus=bus,
        run=run,
        on_batch=metrics.on_batch,
        perf_counter=time.perf_counter,
        writer_factory=lambda: SqlUnitOfWork(sessions, run.id, keep_connection=True),
    )
    hub = EventHub(WsMessages(service))
    bus.subscribe(object, hub.handle)
    return Container(settings, service, hub, metrics, bus, token, generated, settings.autostart)


def build_app(container: Container) -> FastAPI:
    """The HTTP app of ``container``: the API with the web panel mounted on it."""
    app = create_app(container)
    mount_web(app)
    return app


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
    markets: Mapping[str, MarketType] | None = None,
    funding: Mapping[str, FundingFeed] | None = None,
    leverage: int | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` on ``candles`` against a fresh simulated venue and clock.

    ``fee`` is the taker rate; the maker rate keeps the settings' ratio to it. ``markets``
    names each symbol's market (spot files trade with spot rules); perpetual by default.
    Perpetuals are margined as futures (:func:`futures_book`): ``leverage`` (default
    ``settings.leverage``) for every symbol, the settings' margin mode, and funding from the
    feeds ``funding`` holds per symbol (:func:`read_funding_feeds`; none for a symbol it does
    not name).

    Raises
    ------
    InvalidOrder
        (``field="leverage"``) A leverage above the cap or a symbol's bracket maximum.
    """
    rules = with_brackets(settings, instruments(settings, list(candles), markets=markets))
    maker = fee * settings.fee_maker / settings.fee_taker if settings.fee_taker else fee
    clock = SimulatedClock()
    book = futures_book(
        settings, rules, timeframe_ms(timeframe), funding=funding or {}, leverage=leverage
    )
    venue = SimulatedVenue(
        instruments=rules,
        cash=cash,
        clock=clock,
        fees=FeeSchedule(taker=fee, maker=maker),
        slippage_bps=slippage_bps,
        max_leverage=settings.max_leverage,
        participation=settings.participation,
        futures=book,
    )
    return run_backtest(
        strategy=build_strategy(strategy, params, timeframe),
        feed=HistoricalFeed(candles, timeframe),
        venue=venue,
        matcher=venue,
        clock=clock,
        instruments=rules,
        initial_cash=cash,
        margin=None if book is None else venue,
        risk=risk_gate(settings, timeframe, leverage=leverage),
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
        name = _data_symbol(k, path, symbols)
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


def data_markets(
    settings: Settings, *, data: Sequence[Path], symbols: Sequence[str]
) -> dict[str, MarketType]:
    """The market of each symbol :func:`load_candles` loads with the same ``data`` and
    ``symbols``, to pass to :func:`instruments` so each is traded by its own market's rules.

    A ``--data`` file's market comes from its name (``binance_spot_…`` spot, ``binance_usdm_…``
    perpetual, ``us_stock_…`` stock, any other name perpetual); without ``data`` every symbol
    is on the market of the candle store's exchange (``settings.exchange``: spot when it ends
    in ``-spot``, else perpetual).

    Raises
    ------
    ConfigError
        A file whose symbol cannot be inferred (as :func:`load_candles`).
    """
    if not data:
        store_market = (
            MarketType.SPOT if settings.exchange.endswith("-spot") else MarketType.PERPETUAL
        )
        return dict.fromkeys(symbols, store_market)
    return {
        _data_symbol(k, path, symbols): infer_market(path) or MarketType.PERPETUAL
        for k, path in enumerate(data)
    }


def _data_symbol(k: int, path: Path, symbols: Sequence[str]) -> str:
    """The symbol of the ``k``-th ``--data`` file: ``symbols[k]``, else from its file name."""
    name = symbols[k] if k < len(symbols) else infer_symbol_timeframe(path)[0]
    if name is None:
        raise ConfigError(f"{path}: cannot infer the symbol; pass --symbol", field="symbol")
    return name


def model_store(settings: Settings) -> FilesystemModelStore:
    """The model registry of ``settings``: ``<data_dir>/models`` (joblib is imported only
    here, when a command needs the registry)."""
    from adapters.models.filesystem import FilesystemModelStore

    return FilesystemModelStore(settings.data_dir / "models")
