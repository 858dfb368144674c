"""In-memory fakes of the ports: real implementations, kept in dicts and lists.

* :class:`ManualClock`: a clock the test moves.
* :class:`InMemoryUnitOfWork`: the repositories of one run over a shared :class:`MemoryStore`,
  with commit/rollback semantics (changes are staged and applied on commit).
* :class:`ListFeed`: a market-data feed that yields the batches it was given.
* :class:`ScriptedVenue`: an execution client that acknowledges what it is sent and lets the
  test play venue events (fills, late acknowledgements, duplicates) into the engine.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.candles import Candles
from domain.errors import ConfigError
from domain.funding import FundingPayment
from domain.model import EquityPoint, Fill, Order, OrderStatus, Position, Signal, Trade
from domain.orders import ExecutionEvent
from domain.orders import ExecutionEventKind as K
from domain.pipeline_events import PipelineEvent
from domain.ports import (
    Balance,
    LimitsChange,
    ModelActivation,
    ModelMetadata,
    Page,
    RiskRecord,
    RunState,
)
from domain.risk import RiskEvent


class ManualClock:
    """A clock that moves only when told to (never backwards)."""

    def __init__(self, start_ms: int = 0) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def advance_to(self, ms: int) -> None:
        if ms < self.ms:
            raise ValueError(f"clock cannot go back from {self.ms} to {ms}")
        self.ms = ms


@dataclass
class MemoryStore:
    """Every run's rows, as a database would hold them."""

    orders: dict[str, tuple[str, Order]] = field(default_factory=dict)
    fills: dict[str, tuple[str, Fill]] = field(default_factory=dict)
    trades: dict[str, tuple[str, Trade]] = field(default_factory=dict)
    funding: dict[tuple[str, str, int], FundingPayment] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    equity: dict[tuple[str, int], EquityPoint] = field(default_factory=dict)
    signals: list[tuple[str, Signal]] = field(default_factory=list)
    runs: dict[str, RunState] = field(default_factory=dict)
    risk_events: list[tuple[str, RiskRecord]] = field(default_factory=list)
    risk_limits: list[tuple[str, LimitsChange]] = field(default_factory=list)
    pipeline_events: dict[tuple[str, str, str, int], PipelineEvent] = field(default_factory=dict)
    models: dict[str, ModelMetadata] = field(default_factory=dict)
    activations: list[ModelActivation] = field(default_factory=list)


def _within(time: int, start: int | None, end: int | None) -> bool:
    return (start is None or time >= start) and (end is None or time <= end)


def _page(items: list[Any], key: Callable[[Any], Any], limit: int, cursor: str | None) -> Page:
    ordered = sorted(items, key=key, reverse=True)
    start = 0
    if cursor is not None:
        try:
            start = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except ValueError:
            raise ConfigError(f"malformed cursor {cursor!r}", field="cursor") from None
    chunk = ordered[start : start + limit]
    more = start + limit < len(ordered)
    nxt = base64.urlsafe_b64encode(str(start + limit).encode()).decode() if more else None
    return Page(chunk, nxt)


class _Repo:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self.uow = uow

    @property
    def s(self) -> MemoryStore:
        return self.uow.staged


class _Orders(_Repo):
    def upsert(self, order: Order) -> None:
        self.s.orders[order.id] = (self.uow.run_id, order)

    def get(self, order_id: str) -> Order | None:
        row = self.s.orders.get(order_id)
        return row[1] if row and row[0] == self.uow.run_id else None

    def page(self, *, symbol=None, statuses=None, start=None, end=None, limit=100, cursor=None):
        mine = [o for r, o in self.s.orders.values() if r == self.uow.run_id]
        mine = [o for o in mine if symbol is None or o.symbol == symbol]
        mine = [o for o in mine if statuses is None or o.status in statuses]
        mine = [o for o in mine if _within(o.created_time, start, end)]
        return _page(mine, lambda o: (o.created_time, o.id), limit, cursor)

    def list_open(self) -> list[Order]:
        mine = [o for r, o in self.s.orders.values() if r == self.uow.run_id]
        return sorted((o for o in mine if o.is_open), key=lambda o: (o.created_time, o.id))


class _Fills(_Repo):
    def add(self, fill: Fill) -> None:
        self.s.fills.setdefault(fill.id, (self.uow.run_id, fill))

    def fees_total(self) -> Decimal:
        return sum((f.fee for r, f in self.s.fills.values() if r == self.uow.run_id), Decimal(0))

    def page(self, *, order_id=None, symbol=None, start=None, end=None, limit=100, cursor=None):
        mine = [f for r, f in self.s.fills.values() if r == self.uow.run_id]
        mine = [f for f in mine if order_id is None or f.order_id == order_id]
        mine = [f for f in mine if symbol is None or f.symbol == symbol]
        mine = [f for f in mine if _within(f.time, start, end)]
        return _page(mine, lambda f: (f.time, f.id), limit, cursor)


class _Trades(_Repo):
    def add(self, trade: Trade) -> None:
        self.s.trades[trade.id] = (self.uow.run_id, trade)

    def realized_by_symbol(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for r, t in self.s.trades.values():
            if r == self.uow.run_id:
                out[t.symbol] = out.get(t.symbol, Decimal(0)) + t.pnl
        return out

    def page(self, *, symbol=None, start=None, end=None, limit=100, cursor=None):
        mine = [t for r, t in self.s.trades.values() if r == self.uow.run_id]
        mine = [t for t in mine if symbol is None or t.symbol == symbol]
        mine = [t for t in mine if _within(t.exit_time, start, end)]
        return _page(mine, lambda t: (t.exit_time, t.id), limit, cursor)


class _Funding(_Repo):
    def add(self, payment: FundingPayment) -> None:
        self.s.funding[(self.uow.run_id, payment.symbol, payment.time_ms)] = payment

    def list(self, *, symbol=None, start=None, end=None):
        mine = [p for (r, _, _), p in self.s.funding.items() if r == self.uow.run_id]
        mine = [p for p in mine if symbol is None or p.symbol == symbol]
        mine = [p for p in mine if _within(p.time_ms, start, end)]
        return sorted(mine, key=lambda p: (p.time_ms, p.symbol))

    def total(self) -> Decimal:
        return sum((p.amount for p in self.list()), Decimal(0))


class _Positions(_Repo):
    def upsert(self, position: Position) -> None:
        self.s.positions[(self.uow.run_id, position.symbol)] = position

    def list(self) -> list[Position]:
        return [p for (r, _), p in self.s.positions.items() if r == self.uow.run_id]


class _Equity(_Repo):
    def add(self, point: EquityPoint) -> None:
        self.s.equity[(self.uow.run_id, point.time)] = point

    def list(self, *, since_ms: int | None = None, limit: int = 10_000) -> list[EquityPoint]:
        mine = [p for (r, _), p in self.s.equity.items() if r == self.uow.run_id]
        mine = [p for p in mine if since_ms is None or p.time >= since_ms]
        return sorted(mine, key=lambda p: p.time, reverse=True)[:limit]

    def page(self, *, start=None, end=None, limit=1_000, cursor=None):
        mine = [p for (r, _), p in self.s.equity.items() if r == self.uow.run_id]
        mine = [p for p in mine if _within(p.time, start, end)]
        return _page(mine, lambda p: p.time, limit, cursor)

    def latest(self) -> EquityPoint | None:
        points = self.list(limit=1)
        return points[0] if points else None


class _Signals(_Repo):
    def add(self, signal: Signal) -> None:
        self.s.signals.append((self.uow.run_id, signal))

    def page(self, *, symbol=None, start=None, end=None, limit=100, cursor=None):
        mine = [s for r, s in self.s.signals if r == self.uow.run_id]
        mine = [s for s in mine if symbol is None or s.symbol == symbol]
        mine = [s for s in mine if _within(s.time, start, end)]
        return _page(mine, lambda s: (s.time, s.symbol), limit, cursor)


class _Runs(_Repo):
    def upsert(self, run: RunState) -> None:
        self.s.runs[run.id] = run

    def save_progress(self, run: RunState) -> None:
        stored = self.s.runs.get(run.id)
        if stored is None:
            raise LookupError(f"run {run.id!r} is not stored: upsert it first")
        self.s.runs[run.id] = replace(
            stored,
            cash=run.cash,
            last_bar_time=dict(run.last_bar_time),
            stopped_reason=run.stopped_reason,
            state=run.state,
            candles_processed=run.candles_processed,
            error=run.error,
        )

    def get(self, run_id: str) -> RunState | None:
        return self.s.runs.get(run_id)

    def latest(self, mode: str) -> RunState | None:
        runs = [r for r in self.s.runs.values() if r.mode == mode]
        return max(runs, key=lambda r: r.started_time) if runs else None


class _Risk(_Repo):
    def add_event(self, event: RiskEvent, who: str | None = None) -> None:
        self.s.risk_events.append((self.uow.run_id, RiskRecord(event, who)))

    def events(self, limit: int = 50) -> list[RiskRecord]:
        return [r for run, r in self.s.risk_events if run == self.uow.run_id][::-1][:limit]

    def add_limits(self, change: LimitsChange) -> None:
        self.s.risk_limits.append((self.uow.run_id, change))

    def latest_limits(self) -> LimitsChange | None:
        mine = [c for run, c in self.s.risk_limits if run == self.uow.run_id]
        return mine[-1] if mine else None

    def day_ends(self, limit: int = 400) -> list[EquityPoint]:
        points = sorted(
            (p for (r, _), p in self.s.equity.items() if r == self.uow.run_id),
            key=lambda p: p.time,
        )
        last = {(p.time - 1) // 86_400_000: p for p in points}
        return list(last.values())[-limit:]


class _Pipeline(_Repo):
    def add(self, event: PipelineEvent) -> None:
        key = (self.uow.run_id, event.symbol, event.kind, event.time)
        self.s.pipeline_events[key] = event

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
        mine = [
            e
            for (run, *_), e in self.s.pipeline_events.items()
            if run == self.uow.run_id
            and (symbol is None or e.symbol == symbol)
            and (kind is None or e.kind == kind)
            and _within(e.time, start, end)
        ]
        return _page(mine, lambda e: e.time, limit, cursor)


class _Models(_Repo):
    """The model registry's rows, shared by every run."""

    def add(self, meta: ModelMetadata) -> None:
        self.s.models[meta.model_id] = meta

    def get(self, model_id: str) -> ModelMetadata | None:
        return self.s.models.get(model_id)

    def ids(self) -> set[str]:
        return set(self.s.models)

    def remove(self, model_id: str) -> None:
        self.s.models.pop(model_id, None)

    def list(self, kind: str | None = None, symbol: str | None = None) -> list[ModelMetadata]:
        chosen = [
            m
            for m in self.s.models.values()
            if (kind is None or m.kind == kind) and (symbol is None or symbol in m.symbols)
        ]
        return sorted(chosen, key=lambda m: (m.created_ms, m.model_id), reverse=True)

    def add_activation(self, activation: ModelActivation) -> None:
        self.s.activations.append(activation)

    def active(self) -> dict[tuple[str, str], str]:
        latest = {(a.kind, a.symbol): a.model_id for a in self.s.activations}
        return {key: model_id for key, model_id in latest.items() if model_id is not None}

    def activations(self, model_id: str | None = None, limit: int = 100) -> list[ModelActivation]:
        mine = [a for a in self.s.activations if model_id is None or a.model_id == model_id]
        return mine[::-1][:limit]


class InMemoryUnitOfWork:
    """A unit of work of run ``run_id`` over ``store``: changes are staged on a copy and
    replace the store's content on :meth:`commit`; leaving without commit discards them."""

    def __init__(self, store: MemoryStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.commits = 0
        self.staged = store
        self.orders = _Orders(self)
        self.fills = _Fills(self)
        self.trades = _Trades(self)
        self.funding = _Funding(self)
        self.positions = _Positions(self)
        self.equity = _Equity(self)
        self.signals = _Signals(self)
        self.runs = _Runs(self)
        self.risk = _Risk(self)
        self.pipeline = _Pipeline(self)
        self.models = _Models(self)

    def __enter__(self) -> InMemoryUnitOfWork:
        self.staged = copy.copy(self.store)
        for name in ("orders", "fills", "trades", "funding", "positions", "equity", "runs"):
            setattr(self.staged, name, dict(getattr(self.store, name)))
        self.staged.signals = list(self.store.signals)
        self.staged.risk_events = list(self.store.risk_events)
        self.staged.risk_limits = list(self.store.risk_limits)
        self.staged.pipeline_events = dict(self.store.pipeline_events)
        self.staged.models = dict(self.store.models)
        self.staged.activations = list(self.store.activations)
        return self

    def __exit__(self, *exc: object) -> None:
        self.staged = self.store

    def commit(self) -> None:
        names = ("orders", "fills", "trades", "funding", "positions", "equity", "runs", "signals")
        for name in names:
            setattr(self.store, name, getattr(self.staged, name))
        self.store.risk_events = self.staged.risk_events
        self.store.risk_limits = self.staged.risk_limits
        self.store.pipeline_events = self.staged.pipeline_events
        self.store.models = self.staged.models
        self.store.activations = self.staged.activations
        self.commits += 1

    def rollback(self) -> None:
        self.__enter__()

    def close(self) -> None:
        """Nothing is held between uses."""


class ListFeed:
    """A feed over given batches ``[{symbol: Candles}, ...]`` with optional warm-up history."""

    def __init__(
        self,
        batches: Iterable[Mapping[str, Candles]],
        symbols: tuple[str, ...],
        timeframe: str,
        history: Mapping[str, Candles] | None = None,
    ) -> None:
        self._batches = list(batches)
        self.symbols = symbols
        self.timeframe = timeframe
        self._history = dict(history or {})
        self._stopped = False
        self._reason: str | None = None

    def history(self, symbol: str) -> Candles:
        return self._history.get(symbol, Candles.empty())

    def batches(self) -> Iterator[dict[str, Candles]]:
        for batch in self._batches:
            if self._stopped:
                self._reason = "stopped"
                return
            yield dict(batch)
        self._reason = "end of data"

    def stop(self) -> None:
        self._stopped = True

    @property
    def finished_reason(self) -> str | None:
        return self._reason

    @property
    def exhausted(self) -> bool:
        return not self._batches


class ScriptedVenue:
    """An execution client that acknowledges every order it is sent and otherwise does only
    what the test plays into it (:meth:`play`). ``submitted`` counts sends per client id."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.orders: dict[str, Order] = {}
        self.submitted: dict[str, int] = {}
        self.events: list[ExecutionEvent] = []

    def submit(self, order: Order) -> None:
        self.submitted[order.id] = self.submitted.get(order.id, 0) + 1
        if order.id in self.orders:
            return
        self.orders[order.id] = replace(
            order, status=OrderStatus.NEW, venue_order_id=f"v{order.id}"
        )
        self.events.append(
            ExecutionEvent(K.ACCEPTED, order.id, self.clock.now_ms(), f"v{order.id}")
        )

    def cancel(self, order_id: str) -> None:
        order = self.orders.get(order_id)
        if order is None or order.status.is_final:
            self.events.append(
                ExecutionEvent(K.CANCEL_REJECTED, order_id, self.clock.now_ms(), reason="final")
            )
            return
        self.orders[order_id] = replace(order, status=OrderStatus.CANCELED)
        self.events.append(ExecutionEvent(K.CANCELED, order_id, self.clock.now_ms()))

    def modify(self, order_id: str, **changes: Decimal | None) -> None:
        self.events.append(ExecutionEvent(K.MODIFIED, order_id, self.clock.now_ms(), **changes))

    def fetch_order(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    def positions(self) -> list[Position]:
        return []

    def balance(self) -> Balance:
        return Balance("USDT", Decimal(0), Decimal(0))

    def drain_events(self) -> list[ExecutionEvent]:
        events, self.events = self.events, []
        return events

    def play(self, *events: ExecutionEvent) -> None:
        """Queue venue events as if they arrived from the venue's streams."""
        self.events.extend(events)
