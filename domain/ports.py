"""Ports: the interfaces the domain and service layer need from the outside world.

Adapters implement them (``adapters/``); ``lootcapital/bootstrap.py`` picks which.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from domain.alerts import Alert, AlertRecord
from domain.attribution import TradeEntry
from domain.candles import Candles, Gap
from domain.events import FeedStale
from domain.funding import FundingPayment
from domain.futures import MarginReport
from domain.model import EquityPoint, Fill, Order, OrderStatus, Position, Signal, Trade
from domain.orders import ExecutionEvent
from domain.pipeline_events import PipelineEvent
from domain.risk import RiskEvent
from domain.trade_history import TradeQuery
from domain.venues import VenueStatus

T = TypeVar("T")


class Clock(Protocol):
    """Source of the current time. Only ``adapters/clock.py`` reads the wall clock."""

    def now_ms(self) -> int:
        """Current time in ms UTC."""
        ...

    def now(self) -> datetime:
        """Current time as a timezone-aware UTC datetime."""
        ...

    def advance_to(self, ms: int) -> None:
        """Move a simulated clock to ``ms`` (never backwards); the wall clock ignores it."""
        ...


class MarketData(Protocol):
    """A feed of closed bars for ``symbols`` on one ``timeframe``.

    ``batches()`` yields ``{symbol: Candles}`` with bars that closed since the previous batch,
    in time order; a backtest feed yields everything at once, a replay feed one bar per step,
    paced against the wall clock. When the feed ends, ``finished_reason`` says why.
    """

    symbols: tuple[str, ...]
    timeframe: str

    def history(self, symbol: str) -> Candles:
        """Bars before the first batch (indicator warm-up; never traded on)."""
        ...

    def batches(self) -> Iterator[dict[str, Candles]]:
        """Closed bars, batch by batch."""
        ...

    def stop(self) -> None:
        """Ask a running ``batches()`` iterator to end at the next step."""
        ...

    @property
    def finished_reason(self) -> str | None:
        """Why ``batches()`` ended (``"end of data"``, ``"stopped"``), None while running."""
        ...

    @property
    def exhausted(self) -> bool:
        """True when the feed is finite and holds no bar to yield (a replay at the end of its
        data); a live feed never is."""
        ...


END_OF_DATA = "end of data"
"""``MarketData.finished_reason`` (and a run's stop reason) when a finite feed has no bar left."""


@runtime_checkable
class VenueFeed(Protocol):
    """A :class:`MarketData` feed of a venue's live bars, which can go stale (a replay of
    stored bars cannot)."""

    venue: str
    """The venue's name, e.g. ``"binance-usdm"``."""

    def stale(self) -> tuple[FeedStale, ...]:
        """The symbols with no closed bar for more than 2 periods now (safe from any
        thread)."""
        ...

    def venue_status(self) -> VenueStatus:
        """The connection now (safe from any thread)."""
        ...


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """What the candle store holds for one exchange/symbol/timeframe."""

    exchange: str
    symbol: str
    timeframe: str
    first_open_time: int
    last_open_time: int
    rows: int
    gaps: tuple[Gap, ...]


class CandleStore(Protocol):
    """Persistent candles, one series per exchange/symbol/timeframe (Parquet files)."""

    def write(self, exchange: str, symbol: str, timeframe: str, candles: Candles) -> StoredSeries:
        """Merge ``candles`` into the stored series (same open_time replaces) atomically."""
        ...

    def read(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Candles:
        """Bars with ``start_ms <= open_time < end_ms``; raises ``UnknownSymbol`` if none stored."""
        ...

    def list(self) -> list[StoredSeries]:
        """Every stored series with its first/last time, rows and gaps."""
        ...


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's money in its quote asset: ``wallet`` = deposits + realized PnL − fees −
    funding; ``equity`` = wallet + unrealized PnL at the venue's marks."""

    asset: str
    wallet: Decimal
    equity: Decimal


class ExecutionClient(Protocol):
    """Where orders go: the simulated venue in backtest and paper mode, a venue adapter live.

    Every call is answered by :class:`~domain.orders.ExecutionEvent` s (accepted, rejected,
    fills, canceled, expired, modified) that :meth:`drain_events` returns in the order they
    happened; the engine applies them through :func:`domain.orders.apply_event`. Orders are
    named by their client order id (``Order.id``); submitting an id the venue already knows
    is a no-op, so a re-sent intent never trades twice.
    """

    def submit(self, order: Order) -> None:
        """Send ``order`` (status ``pending_new``); the answer comes as an event."""
        ...

    def cancel(self, order_id: str) -> None:
        """Ask to cancel the order; answered by ``canceled`` or ``cancel_rejected``."""
        ...

    def modify(
        self,
        order_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        """Ask to amend a working order; answered by ``modified`` or ``cancel_rejected``."""
        ...

    def fetch_order(self, order_id: str) -> Order | None:
        """The venue's view of the order with client id ``order_id``; None when unknown."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Working orders at the venue (all symbols or one), oldest first."""
        ...

    def positions(self) -> list[Position]:
        """Every non-flat position at the venue."""
        ...

    def balance(self) -> Balance:
        """The account's balance at the venue."""
        ...

    def drain_events(self) -> list[ExecutionEvent]:
        """Execution events since the last call, oldest first."""
        ...


class MarginAccount(Protocol):
    """A futures account's margining: leverage per symbol and the balance breakdown (the
    simulated venue's :class:`~domain.futures.FuturesBook`, a live venue's account)."""

    @property
    def leverage(self) -> Mapping[str, int]:
        """Leverage per symbol (a live, read-only view)."""
        ...

    def set_leverage(self, symbol: str, leverage: int) -> None:
        """Set ``symbol``'s leverage.

        Raises
        ------
        InvalidOrder
            (``field="leverage"``) Outside 1 to the cap and the symbol's bracket maximum for
            its position.
        """
        ...

    def margin_report(self) -> MarginReport:
        """Wallet, margin in use, available balance, fees and funding, per position margin
        and liquidation price, at the latest marks."""
        ...


class BarMatcher(Protocol):
    """The simulated venue's bar matching, driven by the engine in backtest and paper mode.

    A live venue matches orders itself and has no such interface.
    """

    def mark(self, symbol: str, price: float, time: int) -> None:
        """The latest price of ``symbol`` at ``time`` (ms UTC): margin checks, equity."""
        ...

    def next_funding_time(self, symbol: str) -> int | None:
        """When (ms UTC) the funding of ``symbol``'s position is next settled, or None (no
        funding): the account's cash changes then."""
        ...

    def funding_at_risk(self, symbol: str, candles: Candles, start: int, end: int) -> float | None:
        """The most the position in ``symbol`` can pay in funding at the funding times in
        ``(start, end]`` (ms UTC; quote currency, ≥ 0), None when one lies past ``candles``."""
        ...

    def next_trigger(self, symbol: str, candles: Candles, start: int) -> int | None:
        """Index of the first bar ``>= start`` of ``candles`` on which a working order of
        ``symbol`` fills or expires, or None (vectorized search)."""
        ...

    def process_bar(self, symbol: str, candles: Candles, i: int) -> None:
        """Match every working order of ``symbol`` against bar ``i`` (events are buffered)."""
        ...

    def settle(self, order: Order, price: Decimal, time: int) -> None:
        """Accept the reduce-only ``order`` and fill it whole at exactly ``price`` (taker) at
        ``time`` (ms UTC): the close of a position at the end of a backtest."""
        ...

    def state(self) -> dict[str, Any]:
        """The venue's own path-dependent state (JSON-serializable): leverage per symbol and
        the funding settled so far, stored with the kernel's."""
        ...

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` of an earlier process."""
        ...


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing, newest first: ``items`` and the opaque ``next_cursor`` that
    reads the next (older) page, None on the last page."""

    items: list[T]
    next_cursor: str | None


class OrderRepository(Protocol):
    """Orders of the unit of work's run, by client order id."""

    def upsert(self, order: Order) -> None: ...
    def get(self, order_id: str) -> Order | None: ...
    def page(
        self,
        *,
        symbol: str | None = None,
        statuses: Collection[OrderStatus] | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Order]: ...
    def list_open(self) -> list[Order]: ...


class FillRepository(Protocol):
    """Fills of the run; append-only, and adding a fill id twice keeps the first."""

    def add(self, fill: Fill) -> None: ...
    def fees_total(self) -> Decimal: ...
    def page(
        self,
        *,
        order_id: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Fill]: ...


class TradeRepository(Protocol):
    """Closed round-trip trades of the run, append-only."""

    def add(self, trade: Trade) -> None: ...
    def realized_by_symbol(self) -> dict[str, Decimal]:
        """Each symbol's closed trades' PnL summed exactly (quote currency, net of fees)."""
        ...

    def page(
        self,
        *,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Trade]: ...


class TradeHistoryRepository(Protocol):
    """Reads of the run's closed trades for the trade history and its analytics."""

    def page(
        self, query: TradeQuery, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Trade]:
        """Trades matching ``query``, newest ``(exit_time, id)`` first, one keyset page."""
        ...

    def window(self, query: TradeQuery, *, offset: int, limit: int) -> list[Trade]:
        """Trades matching ``query``, newest first, from the ``offset``-th (a numbered page)."""
        ...

    def count(self, query: TradeQuery) -> int:
        """How many trades match ``query``."""
        ...

    def entries(
        self, query: TradeQuery, *, tags: bool = False, reasons: bool = False, equity: bool = False
    ) -> list[TradeEntry]:
        """Trades matching ``query`` in exit order, each with what is asked for: its entry
        order's tag, its entry signal's reasons (:mod:`domain.attribution`), the equity before
        its entry."""
        ...


class PositionRepository(Protocol):
    """Current net position per symbol of the run (a flat position is stored with qty 0)."""

    def upsert(self, position: Position) -> None: ...
    def list(self) -> list[Position]: ...


class EquityRepository(Protocol):
    """Equity snapshots of the run, one per processed bar time."""

    def add(self, point: EquityPoint) -> None: ...
    def list(self, *, since_ms: int | None = None, limit: int = 10_000) -> list[EquityPoint]: ...
    def page(
        self,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1_000,
        cursor: str | None = None,
    ) -> Page[EquityPoint]: ...
    def latest(self) -> EquityPoint | None: ...


class SignalRepository(Protocol):
    """Strategy signals of the run with their reasons."""

    def add(self, signal: Signal) -> None: ...
    def page(
        self,
        *,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Signal]: ...


@dataclass(frozen=True, slots=True)
class RunState:
    """A paper/live run: what it trades, how far it got and the state to continue from.

    ``last_bar_time`` is the open_time (ms UTC) of the last bar fully processed, per symbol;
    ``cash`` is the wallet balance at that point. ``state`` is the kernel's and the strategy's
    path-dependent state (JSON-serializable: pending wake-ups, strategy memory), committed with
    each bar. ``candles_processed`` counts bars over the whole run. ``stopped_reason`` is None
    while running; ``error`` holds the last error that stopped it (the run resumes at the
    failed bar).
    """

    id: str
    mode: str
    strategy: str
    params: dict[str, float | int | str | bool]
    symbols: tuple[str, ...]
    timeframe: str
    started_time: int
    initial_cash: Decimal
    cash: Decimal
    last_bar_time: dict[str, int]
    stopped_reason: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    candles_processed: int = 0
    error: str | None = None


class RunRepository(Protocol):
    """Runs (one row per run id). ``save_progress`` stores the fields that change while a run
    runs (cash, last bar times, state, bars processed, stop reason, error) on the stored run;
    ``LookupError`` when it is not stored."""

    def upsert(self, run: RunState) -> None: ...
    def save_progress(self, run: RunState) -> None: ...
    def get(self, run_id: str) -> RunState | None: ...
    def latest(self, mode: str) -> RunState | None: ...


class FundingRepository(Protocol):
    """Funding settlements of the run (one per symbol and funding time)."""

    def add(self, payment: FundingPayment) -> None: ...
    def list(
        self, *, symbol: str | None = None, start: int | None = None, end: int | None = None
    ) -> list[FundingPayment]: ...
    def total(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class RiskRecord:
    """A stored risk event (a trading-state change or an alert) and ``who`` caused it by hand
    (the API token's subject; None for a breaker)."""

    event: RiskEvent
    who: str | None = None


@dataclass(frozen=True, slots=True)
class LimitsChange:
    """The risk limits set at ``time`` (ms UTC, market clock) by ``who``: the whole new
    configuration in its JSON form (:mod:`service_layer.risk_config`)."""

    time: int
    who: str
    limits: dict[str, Any]


class RiskRepository(Protocol):
    """The run's risk events and limit changes (append-only), and its daily equity."""

    def add_event(self, event: RiskEvent, who: str | None = None) -> None: ...
    def events(self, limit: int = 50) -> list[RiskRecord]: ...
    def add_limits(self, change: LimitsChange) -> None: ...
    def latest_limits(self) -> LimitsChange | None: ...
    def day_ends(self, limit: int = 400) -> list[EquityPoint]:
        """The last equity point of each of the latest ``limit`` UTC days (a point at 00:00
        ends the day before), oldest first."""
        ...


class PipelineEventRepository(Protocol):
    """The run's adaptive-pipeline events (:mod:`domain.pipeline_events`), append-only."""

    def add(self, event: PipelineEvent) -> None: ...
    def page(
        self,
        *,
        symbol: str | None = None,
        kind: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[PipelineEvent]:
        """Events matching the filters (each optional), newest first."""
        ...


class UnitOfWork(Protocol):
    """A transaction over the repositories of one run: ``with uow: ...; uow.commit()``.

    Every repository but ``runs`` and ``models`` (the model registry, shared by every run)
    reads and writes only the rows of the run the unit of work was opened for. Leaving the
    block without ``commit()`` rolls back, so nothing is half-written. An instance may be
    entered again after it is left; :meth:`close` releases what it holds between uses (a
    database connection kept for a run's writer).
    """

    orders: OrderRepository
    fills: FillRepository
    trades: TradeRepository
    funding: FundingRepository
    positions: PositionRepository
    equity: EquityRepository
    signals: SignalRepository
    runs: RunRepository
    risk: RiskRepository
    pipeline: PipelineEventRepository
    models: ModelRepository
    alerts: AlertRepository
    trade_history: TradeHistoryRepository

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class Notifier(Protocol):
    """One channel that takes alerts to a person (a webhook, e-mail, the WebSocket), named by
    ``name`` (a metrics label, shown in the alert log). ``send`` runs on the alert
    dispatcher's event loop, never on the engine's thread."""

    name: str

    async def send(self, record: AlertRecord) -> None:
        """Deliver the alert of ``record`` once (its ``id`` lets a receiver drop a repeat: a
        retry after an answer was lost sends it again).

        Raises
        ------
        TransientDeliveryError
            When a retry may succeed (the dispatcher retries with backoff).
        PermanentDeliveryError
            When it cannot (not retried).
        """
        ...


class AlertRepository(Protocol):
    """The run's alert log: each alert stored when it fires, then its delivery's outcome."""

    def add(self, alert: Alert, channels: Sequence[str]) -> AlertRecord:
        """Store ``alert`` as sent to ``channels`` (none delivered yet); its record with the
        assigned id."""
        ...

    def record(self, alert_id: int, delivered: Sequence[str], failed: Sequence[str]) -> None:
        """Set which channels took alert ``alert_id`` and which refused it."""
        ...

    def page(
        self,
        *,
        rule: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AlertRecord]:
        """Alerts (of ``rule``, fired from ``start`` to ``end`` ms UTC inclusive, each when
        given), newest first."""
        ...


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """What the model registry records beside a trained model's artifact (JSON-friendly).

    ``model_id`` and ``sha256`` (hex digest of the artifact file) are assigned by
    :meth:`ModelStore.save`; pass them empty. Times are ms UTC: ``train_start_ms`` is the open of
    the first training bar, ``train_end_ms`` the exclusive end of the last bar any training
    label read (a backtest may use the model from there on). ``symbols`` are venue symbols,
    ``feature_set`` a :class:`domain.ml.features.FeatureSet` key (``"ml_core@v1"``), ``label``
    the label's parameters, ``metrics`` the training report's scores, ``versions`` the
    libraries the artifact depends on (distribution name → version, plus ``python``).

    Raises
    ------
    ConfigError
        Empty ``kind``, ``algo``, ``symbols`` or ``feature_names``, or ``train_end_ms <=
        train_start_ms`` (the field named).
    """

    model_id: str
    kind: str
    algo: str
    symbols: tuple[str, ...]
    timeframe: str
    feature_set: str
    feature_names: tuple[str, ...]
    label: Mapping[str, Any]
    train_start_ms: int
    train_end_ms: int
    created_ms: int
    metrics: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    sha256: str = ""

    def __post_init__(self) -> None:
        from domain.errors import ConfigError

        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        for name in ("kind", "algo", "symbols", "feature_names"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must not be empty", field=name)
        if self.train_end_ms <= self.train_start_ms:
            raise ConfigError(
                f"train_end_ms must be after train_start_ms {self.train_start_ms}, was "
                f"{self.train_end_ms}",
                field="train_end_ms",
            )


class ModelStore(Protocol):
    """Trained models and their metadata (the model registry), with one active model per
    model kind and symbol, and the history of activations for roll-backs."""

    def save(self, model: object, meta: ModelMetadata) -> ModelMetadata:
        """Store ``model`` with ``meta``; returns ``meta`` with ``model_id`` and ``sha256``
        filled. The new model is not activated."""
        ...

    def load(self, model_id: str) -> tuple[object, ModelMetadata]:
        """The model and its metadata; raises ``ModelMismatch`` when the artifact's sha256 or
        the library versions differ from the metadata, ``ConfigError`` for an unknown id."""
        ...

    def get(self, model_id: str) -> ModelMetadata:
        """The metadata of ``model_id``; ``ModelNotFound`` (a ``ConfigError``) for an unknown
        id."""
        ...

    def ids(self) -> list[str]:
        """The ids of every stored model, whether or not its metadata reads (sorted)."""
        ...

    def list(self, kind: str | None = None, symbol: str | None = None) -> list[ModelMetadata]:
        """Stored models (of ``kind`` and ``symbol`` when given), oldest first."""
        ...

    def active(self, kind: str, symbol: str) -> ModelMetadata | None:
        """The active model of ``kind`` on ``symbol``, None when there is none."""
        ...

    def activate(self, model_id: str) -> ModelMetadata:
        """Make ``model_id`` the active model of its kind on each of its symbols, after
        checking that it would load (``ModelMismatch`` otherwise)."""
        ...

    def rollback(self, kind: str, symbol: str) -> ModelMetadata:
        """Re-activate the model that was active before the current one of ``kind`` on
        ``symbol``; ``NoEarlierModel`` (a ``ConfigError``) when there is none."""
        ...

    def compare(self, model_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Metrics side by side: ``{metric: {model_id: value}}`` (dotted metric paths, a
        missing one is None)."""
        ...


ActivationAction = Literal["activate", "rollback", "sync"]
"""How an activation came about: by hand (``activate``), by a roll-back, or found in the
model store's files at start-up (``sync``: the CLI changed them while the server was down)."""


@dataclass(frozen=True, slots=True)
class ModelActivation:
    """``model_id`` became the active model of ``kind`` on ``symbol`` at ``time`` (ms UTC, wall
    clock) by ``who`` (``api``, ``cli``, ``sync``) through ``action``; ``model_id`` None: no
    model is active any more (the store's index lost it)."""

    kind: str
    symbol: str
    model_id: str | None
    time: int
    who: str
    action: ActivationAction


class ModelRepository(Protocol):
    """The model registry's rows (one per stored model, mirroring its metadata) and the
    history of activations, shared by every run. The artifacts live in a
    :class:`ModelStore`; :mod:`service_layer.model_registry` keeps the two consistent."""

    def add(self, meta: ModelMetadata) -> None:
        """Store ``meta`` (again in place when its ``model_id`` is stored)."""
        ...

    def get(self, model_id: str) -> ModelMetadata | None: ...
    def ids(self) -> set[str]: ...
    def remove(self, model_id: str) -> None:
        """Forget the row of ``model_id`` (its activations stay in the history)."""
        ...

    def list(self, kind: str | None = None, symbol: str | None = None) -> list[ModelMetadata]:
        """Models of ``kind`` on ``symbol`` (each when given), newest first (``created_ms``,
        then id)."""
        ...

    def add_activation(self, activation: ModelActivation) -> None: ...
    def active(self) -> dict[tuple[str, str], str]:
        """``{(kind, symbol): model_id}``: the latest activation of each kind and symbol that
        names a model."""
        ...

    def activations(self, model_id: str | None = None, limit: int = 100) -> list[ModelActivation]:
        """The activation history (of ``model_id`` when given), newest first."""
        ...
