"""SQL implementations of the repository ports of :mod:`domain.ports`.

Each repository works inside the session of one :class:`~adapters.storage.sql.unit_of_work.
SqlUnitOfWork` and never commits. Writes are single ``INSERT … ON CONFLICT`` statements (SQLite
and PostgreSQL share the syntax), so an upsert or a replayed append is atomic and needs no read
first. Reads reload rows from the database (``populate_existing``) because those Core writes
bypass the session's identity map. ``list`` methods return newest first, at most ``limit`` items.
A money or quantity outside ``NUMERIC(38, 18)`` (``|x| >= 1e20``, NaN) raises ``ValueError``.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col

from adapters.storage.sql.mappers import (
    equity_to_row,
    fill_to_row,
    order_to_row,
    position_to_row,
    row_to_equity,
    row_to_fill,
    row_to_order,
    row_to_position,
    row_to_run,
    row_to_signal,
    row_to_trade,
    row_values,
    run_to_row,
    signal_to_row,
    trade_to_row,
)
from adapters.storage.sql.tables import (
    EquityRow,
    FillRow,
    OrderRow,
    PositionRow,
    RunRow,
    SignalRow,
    TradeRow,
)
from domain.model import EquityPoint, Fill, Order, OrderStatus, Position, Signal, Trade
from domain.ports import RunState

_FINAL_STATUSES = [status.value for status in OrderStatus if status.is_final]
_SIGNAL_KEY = ("symbol", "timeframe", "strategy", "time")


_DIALECTS = {"sqlite": sqlite, "postgresql": postgresql}


@functools.cache
def _statement(dialect: str, row_type: type[SQLModel], key: tuple[str, ...] | None) -> Any:
    """``INSERT`` into ``row_type``'s table: on a conflict over ``key`` update every other column,
    or (``key`` None) do nothing when the primary key exists. Built once per table and dialect."""
    module = _DIALECTS.get(dialect)
    if module is None:
        raise ValueError(f"SQL storage supports sqlite and postgresql, not {dialect!r}")
    table = sa.inspect(row_type).local_table
    stmt = module.insert(table)
    if key is None:
        primary_key = [column.name for column in table.primary_key.columns]
        return stmt.on_conflict_do_nothing(index_elements=primary_key)
    update = {
        column.name: stmt.excluded[column.name]
        for column in table.columns
        if column.name not in key and not column.primary_key
    }
    return stmt.on_conflict_do_update(index_elements=list(key), set_=update)


def _write(session: Session, row: SQLModel, key: tuple[str, ...] | None) -> None:
    stmt = _statement(session.get_bind().dialect.name, type(row), key)
    try:
        session.execute(stmt, row_values(row))
    except sa.exc.StatementError as exc:
        # A value the column refuses (ExactDecimal's range check) surfaces as itself.
        if isinstance(exc.orig, ValueError) and not isinstance(exc, sa.exc.DBAPIError):
            raise ValueError(str(exc.orig)) from exc
        raise


def _upsert(session: Session, row: SQLModel, key: tuple[str, ...]) -> None:
    """Insert ``row``, or overwrite every non-key column of the row with the same ``key``."""
    _write(session, row, key)


def _insert_once(session: Session, row: SQLModel) -> None:
    """Insert ``row`` unless a row with its primary key exists (then do nothing)."""
    _write(session, row, None)


def _check_limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be >= 1, was {limit}")
    return limit


def _fresh(stmt: Any) -> Any:
    return stmt.execution_options(populate_existing=True)


class SqlOrderRepository:
    """Orders by id, in their latest state.

    Parameters
    ----------
    session:
        The unit of work's session; the repository never commits it.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert(self, order: Order) -> None:
        """Store ``order``, replacing the stored state of the same id."""
        _upsert(self._session, order_to_row(order), ("id",))

    def get(self, order_id: str) -> Order | None:
        """The order with ``order_id``, or None."""
        row = self._session.get(OrderRow, order_id, populate_existing=True)
        return None if row is None else row_to_order(row)

    def get_by_client_id(self, client_order_id: str) -> Order | None:
        """The order placed with ``client_order_id``, or None."""
        stmt = sa.select(OrderRow).where(col(OrderRow.client_order_id) == client_order_id)
        row = self._session.scalars(_fresh(stmt.limit(1))).first()
        return None if row is None else row_to_order(row)

    def list(self, *, symbol: str | None = None, limit: int = 100) -> list[Order]:
        """Orders (of ``symbol`` when given), newest ``created_time`` first, at most ``limit``."""
        stmt = sa.select(OrderRow)
        if symbol is not None:
            stmt = stmt.where(col(OrderRow.symbol) == symbol)
        stmt = stmt.order_by(col(OrderRow.created_time).desc(), col(OrderRow.id).desc())
        rows = self._session.scalars(_fresh(stmt.limit(_check_limit(limit))))
        return [row_to_order(row) for row in rows]

    def list_open(self) -> list[Order]:
        """Orders that can still fill (status ``new`` or ``partially_filled``), oldest first."""
        stmt = (
            sa.select(OrderRow)
            .where(col(OrderRow.status).not_in(_FINAL_STATUSES))
            .order_by(col(OrderRow.created_time), col(OrderRow.id))
        )
        return [row_to_order(row) for row in self._session.scalars(_fresh(stmt))]


class SqlFillRepository:
    """Fills, append-only: adding a fill id that is already stored does nothing (replay-safe).

    Parameters
    ----------
    session:
        The unit of work's session; the repository never commits it.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, fill: Fill) -> None:
        """Store ``fill`` unless its id is stored already. Its order must exist by commit time."""
        _insert_once(self._session, fill_to_row(fill))

    def list(self, *, order_id: str | None = None, limit: int = 100) -> list[Fill]:
        """Fills (of ``order_id`` when given), newest ``time`` first, at most ``limit``."""
        stmt = sa.select(FillRow)
        if order_id is not None:
            stmt = stmt.where(col(FillRow.order_id) == order_id)
        stmt = stmt.order_by(col(FillRow.time).desc(), col(FillRow.id).desc())
        rows = self._session.scalars(_fresh(stmt.limit(_check_limit(limit))))
        return [row_to_fill(row) for row in rows]


class SqlTradeRepository:
    """Closed round-trip trades, append-only: a trade id already stored is not added again.

    Parameters
    ----------
    session:
        The unit of work's session; the repository never commits it.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, trade: Trade) -> None:
        """Store ``trade`` unless its id is stored already."""
        _insert_once(self._session, trade_to_row(trade))

    def list(self, *, symbol: str | None = None, limit: int = 100) -> list[Trade]:
        """Trades (of ``symbol`` when given), newest ``exit_time`` first, at most ``limit``."""
        stmt = sa.select(TradeRow)
        if symbol is not None:
            stmt = stmt.where(col(TradeRow.symbol) == symbol)
        stmt = stmt.order_by(col(TradeRow.exit_time).desc(), col(TradeRow.id).desc())
        rows = self._session.scalars(_fresh(stmt.limit(_check_limit(limit))))
        return [row_to_trade(row) for row in rows]


class SqlPositionRepository:
    """The current net position of each symbol (flat ones are kept with ``qty`` 0).

    Parameters
    ----------
    session:
        The unit of work's session; the repository never commits it.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert(self, position: Position) -> None:
        """Store ``position`` as the current one of its symbol."""
        _upsert(self._session, position_to_row(position), ("symbol",))

    def list(self) -> list[Position]:
        """Every stored position, flat ones included, by symbol."""
        stmt = sa.select(PositionRow).order_by(col(PositionRow.symbol))
        return [row_to_position(row) for row in self._session.scalars(_fresh(stmt))]


class SqlEquityRepository:
    """Equity snapshots, one per bar time: adding a time again replaces its snapshot.

    Parameters
    ----------
    session:
        The unit of work's session; the repository never commits it.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, point: EquityPoint) -> None:
        """Store ``point``, replacing a stored point of the same ``time`` (ms UTC)."""
        _upsert(self._session, equity_to_row(point), ("time",))

    def list(self, *, since_ms: int | None = None, limit: int = 10_000) -> list[EquityPoint]:
        """Points with ``time >= since_ms`` (ms UTC), newest first, at most ``limit``.

        Reverse the list for a chart in time order.
        """
        stmt = sa.select(EquityRow)
        if since_ms is not None:
            stmt = stmt.where(col(EquityRow.time) >= since_ms)
        stmt = stmt.order_by(col(EquityRow.time).desc()).limit(_check_limit(limit))
        return [row_to_equity(row) for row in self._session.scalars(_fresh(stmt))]

    def latest(self) -> EquityPoint | None:
        """The point with the largest ``time``, or None when nothing is stored."""
        points = self.list(limit=1)
        return points[0] if points else None


class SqlSignalRepository:
    """Strategy signals with their reasons.

    A signal is identified by (symbol, timeframe, strategy, time): adding it again (a replayed
    bar) replaces the stored one instead of duplicating it.

    Parameters
    ----------
    session:
        The unit of work's session; the repository never commits it.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, signal: Signal) -> None:
        """Store ``signal``, replacing a stored signal with the same identity."""
        _upsert(self._session, signal_to_row(signal), _SIGNAL_KEY)

    def list(self, *, symbol: str | None = None, limit: int = 100) -> list[Signal]:
        """Signals (of ``symbol`` when given), newest ``time`` first, at most ``limit``."""
        stmt = sa.select(SignalRow)
        if symbol is not None:
            stmt = stmt.where(col(SignalRow.symbol) == symbol)
        stmt = stmt.order_by(col(SignalRow.time).desc(), col(SignalRow.id).desc())
        rows = self._session.scalars(_fresh(stmt.limit(_check_limit(limit))))
        return [row_to_signal(row) for row in rows]


class SqlRunRepository:
    """Paper/live runs, one row per run id.

    Parameters
    ----------
    session:
        The unit of work's session; the repository never commits it.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert(self, run: RunState) -> None:
        """Store ``run``, replacing the stored state of the same id."""
        _upsert(self._session, run_to_row(run), ("id",))

    def get(self, run_id: str) -> RunState | None:
        """The run with ``run_id``, or None."""
        row = self._session.get(RunRow, run_id, populate_existing=True)
        return None if row is None else row_to_run(row)

    def latest(self, mode: str) -> RunState | None:
        """The run of ``mode`` (``"paper"``, ``"live"``) started last, or None."""
        stmt = (
            sa.select(RunRow)
            .where(col(RunRow.mode) == mode)
            .order_by(col(RunRow.started_time).desc(), col(RunRow.id).desc())
            .limit(1)
        )
        row = self._session.scalars(_fresh(stmt)).first()
        return None if row is None else row_to_run(row)
