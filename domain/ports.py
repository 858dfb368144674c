"""Ports: the interfaces the domain and service layer need from the outside world.

Adapters implement them (``adapters/``); ``lootcapital/bootstrap.py`` picks which.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from domain.candles import Candles, Gap
from domain.model import EquityPoint, Fill, Order, Position, Signal, Trade


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


class Broker(Protocol):
    """Where orders go: the paper broker in backtest and paper mode, a venue when live.

    Simulated time advances through :meth:`next_trigger` and :meth:`execute`, which the engine
    calls for each bar that can fill an order.
    """

    def submit(self, order: Order) -> Order:
        """Accept (status ``new``) or reject (status ``rejected`` with a reason) ``order``."""
        ...

    def cancel(self, order_id: str, time: int) -> Order:
        """Cancel an open order. Raises ``OrderNotFound`` or ``OrderNotCancelable``."""
        ...

    def get_order(self, order_id: str) -> Order:
        """The order with ``order_id``. Raises ``OrderNotFound``."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders that can still fill, oldest first."""
        ...

    def position(self, symbol: str) -> Position:
        """Net position in ``symbol`` (flat when none)."""
        ...

    def positions(self) -> list[Position]:
        """Every non-flat position."""
        ...

    @property
    def cash(self) -> Decimal:
        """Wallet balance in quote currency: deposits + realized PnL − fees."""
        ...

    def next_trigger(self, symbol: str, candles: Candles, start: int) -> int | None:
        """Index of the first bar ``>= start`` of ``candles`` at which an open order of
        ``symbol`` fills, or None."""
        ...

    def execute(self, symbol: str, candles: Candles, i: int) -> list[Fill]:
        """Fill every open order of ``symbol`` that bar ``i`` triggers; returns the fills."""
        ...

    def close_position(self, symbol: str, price: Decimal, time: int) -> Fill | None:
        """Close ``symbol``'s position at ``price`` now (end of a backtest); None when flat."""
        ...

    def mark(self, symbol: str, price: float) -> None:
        """Record the latest price of ``symbol`` (margin checks, equity)."""
        ...

    def equity(self) -> Decimal:
        """Cash plus unrealized PnL at the latest marks (quote currency)."""
        ...

    @property
    def marks(self) -> Mapping[str, Decimal]:
        """Latest known price per symbol."""
        ...

    def next_id(self) -> str:
        """A fresh unique id for an order."""
        ...

    def drain_events(self) -> tuple[list[Order], list[Fill], list[Trade], list[Position]]:
        """Orders changed, fills, closed trades and positions changed since the last call."""
        ...


class OrderRepository(Protocol):
    """Orders by id."""

    def upsert(self, order: Order) -> None: ...
    def get(self, order_id: str) -> Order | None: ...
    def get_by_client_id(self, client_order_id: str) -> Order | None: ...
    def list(self, *, symbol: str | None = None, limit: int = 100) -> list[Order]: ...
    def list_open(self) -> list[Order]: ...


class FillRepository(Protocol):
    """Fills are append-only."""

    def add(self, fill: Fill) -> None: ...
    def list(self, *, order_id: str | None = None, limit: int = 100) -> list[Fill]: ...


class TradeRepository(Protocol):
    """Closed round-trip trades, append-only."""

    def add(self, trade: Trade) -> None: ...
    def list(self, *, symbol: str | None = None, limit: int = 100) -> list[Trade]: ...


class PositionRepository(Protocol):
    """Current net position per symbol (a flat position is stored with qty 0)."""

    def upsert(self, position: Position) -> None: ...
    def list(self) -> list[Position]: ...


class EquityRepository(Protocol):
    """Equity snapshots, one per processed bar time."""

    def add(self, point: EquityPoint) -> None: ...
    def list(self, *, since_ms: int | None = None, limit: int = 10_000) -> list[EquityPoint]: ...
    def latest(self) -> EquityPoint | None: ...


class SignalRepository(Protocol):
    """Strategy signals with their reasons."""

    def add(self, signal: Signal) -> None: ...
    def list(self, *, symbol: str | None = None, limit: int = 100) -> list[Signal]: ...


@dataclass(frozen=True, slots=True)
class RunState:
    """A paper/live run: what it trades and how far it got.

    ``last_bar_time`` is the open_time (ms UTC) of the last bar fully processed, per symbol;
    ``cash`` is the wallet balance at that point. ``stopped_reason`` is None while running.
    """

    id: str
    mode: str
    strategy: str
    params: dict[str, float | int | str]
    symbols: tuple[str, ...]
    timeframe: str
    started_time: int
    initial_cash: Decimal
    cash: Decimal
    last_bar_time: dict[str, int]
    stopped_reason: str | None = None


class RunRepository(Protocol):
    """Runs (one row per run id)."""

    def upsert(self, run: RunState) -> None: ...
    def get(self, run_id: str) -> RunState | None: ...
    def latest(self, mode: str) -> RunState | None: ...


class UnitOfWork(Protocol):
    """A transaction over the repositories: ``with uow: ...; uow.commit()``.

    Leaving the block without ``commit()`` rolls back, so nothing is half-written.
    """

    orders: OrderRepository
    fills: FillRepository
    trades: TradeRepository
    positions: PositionRepository
    equity: EquityRepository
    signals: SignalRepository
    runs: RunRepository

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class Notifier(Protocol):
    """Pushes events to the outside (WebSocket clients, alerts)."""

    def publish(self, events: Sequence[object]) -> None: ...
