"""SQL implementations of the repository ports of :mod:`domain.ports`, on SQLAlchemy Core.

Each repository works on the connection of one
:class:`~adapters.storage.sql.unit_of_work.SqlUnitOfWork` and never commits. Every repository but
:class:`SqlRunRepository` is bound to the unit of work's run: it writes its rows with that
``run_id`` and reads only rows that carry it. Writes are single ``INSERT … ON CONFLICT``
statements (SQLite and PostgreSQL share the syntax) compiled once per dialect
(:mod:`adapters.storage.sql.statements`), so an upsert or a replayed append is atomic and needs
no read first. Listings are keyset pages, newest first
(:mod:`adapters.storage.sql.paging`).

Errors: a money or quantity outside ``NUMERIC(38, 18)`` (``|x| >= 1e20``, NaN) or a JSON value
that JSON cannot hold (NaN, ``Decimal``) raises ``ValueError``; an id already stored for another
run raises :class:`~domain.errors.DuplicateOrder` (orders) or ``ValueError`` (fills, trades).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from adapters.storage.sql import mappers as m
from adapters.storage.sql.paging import check_limit, read_page
from adapters.storage.sql.statements import write
from adapters.storage.sql.tables import (
    EquityRow,
    FillRow,
    FundingRow,
    OrderRow,
    PositionRow,
    RiskEventRow,
    RiskLimitsRow,
    RunRow,
    SignalRow,
    TradeRow,
)
from domain.errors import DuplicateOrder
from domain.funding import FundingPayment
from domain.model import EquityPoint, Fill, Order, OrderStatus, Position, Signal, Trade
from domain.ports import LimitsChange, Page, RiskRecord, RunState
from domain.risk import RiskEvent

Connect = Callable[[], Connection]
"""Returns the unit of work's connection (inside its open transaction)."""

ORDERS: sa.Table = OrderRow.__table__  # type: ignore[attr-defined]
FILLS: sa.Table = FillRow.__table__  # type: ignore[attr-defined]
TRADES: sa.Table = TradeRow.__table__  # type: ignore[attr-defined]
FUNDING: sa.Table = FundingRow.__table__  # type: ignore[attr-defined]
POSITIONS: sa.Table = PositionRow.__table__  # type: ignore[attr-defined]
EQUITY: sa.Table = EquityRow.__table__  # type: ignore[attr-defined]
SIGNALS: sa.Table = SignalRow.__table__  # type: ignore[attr-defined]
RUNS: sa.Table = RunRow.__table__  # type: ignore[attr-defined]
RISK_EVENTS: sa.Table = RiskEventRow.__table__  # type: ignore[attr-defined]
RISK_LIMITS: sa.Table = RiskLimitsRow.__table__  # type: ignore[attr-defined]

_OPEN_STATUSES = [status.value for status in OrderStatus if not status.is_final]
_RUN = sa.bindparam("run_id")


def _select(table: sa.Table, columns: tuple[str, ...]) -> sa.Select[Any]:
    return sa.select(*(table.c[name] for name in columns))


# Prebuilt reads (dialect-neutral; their compiled form is cached per engine).
_GET_ORDER = _select(ORDERS, m.ORDER_COLUMNS).where(
    ORDERS.c.id == sa.bindparam("id"), ORDERS.c.run_id == _RUN
)
_OPEN_ORDERS = (
    _select(ORDERS, m.ORDER_COLUMNS)
    .where(ORDERS.c.run_id == _RUN, ORDERS.c.status.in_(_OPEN_STATUSES))
    .order_by(ORDERS.c.created_time, ORDERS.c.id)
)
_POSITIONS = (
    _select(POSITIONS, m.POSITION_COLUMNS)
    .where(POSITIONS.c.run_id == _RUN)
    .order_by(POSITIONS.c.symbol)
)
_EQUITY = (
    _select(EQUITY, m.EQUITY_COLUMNS)
    .where(EQUITY.c.run_id == _RUN, EQUITY.c.time >= sa.bindparam("since"))
    .order_by(EQUITY.c.time.desc())
    .limit(sa.bindparam("limit"))
)
_GET_RUN = _select(RUNS, m.RUN_COLUMNS).where(RUNS.c.id == sa.bindparam("id"))
_LATEST_RUN = (
    _select(RUNS, m.RUN_COLUMNS)
    .where(RUNS.c.mode == sa.bindparam("mode"))
    .order_by(RUNS.c.started_time.desc(), RUNS.c.id.desc())
    .limit(1)
)


def _owner(connection: Connection, table: sa.Table, item_id: str) -> str | None:
    stmt = sa.select(table.c.run_id).where(table.c.id == item_id)
    return connection.execute(stmt).scalar_one_or_none()


def _append_once(connect: Connect, table: sa.Table, values: dict[str, Any], what: str) -> None:
    """Insert a row unless its id is stored; refuse an id stored for another run."""
    connection = connect()
    if write(connection, table, values, ("id",), update=False):
        return
    owner = _owner(connection, table, values["id"])
    if owner != values["run_id"]:
        raise ValueError(f"{what} id {values['id']!r} is already stored for run {owner!r}")


class SqlOrderRepository:
    """Orders of one run by client order id (:attr:`Order.id`), in their latest state.

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose orders this repository reads and writes.
    """

    def __init__(self, connect: Connect, run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def upsert(self, order: Order) -> None:
        """Store ``order``, replacing the stored state of the same id.

        Raises
        ------
        DuplicateOrder
            If the id is stored for another run (that order is left unchanged).
        ValueError
            If a money/qty value does not fit the column.
        """
        values = m.order_values(order, self._run_id)
        if not write(self._connect(), ORDERS, values, ("id",), same_run=True):
            raise DuplicateOrder(
                f"order id {order.id!r} is already used by another run", field="id"
            )

    def get(self, order_id: str) -> Order | None:
        """The order with client id ``order_id`` in this run, or None."""
        params = {"id": order_id, "run_id": self._run_id}
        row = self._connect().execute(_GET_ORDER, params).first()
        return None if row is None else m.order_from_row(row)

    def page(
        self,
        *,
        symbol: str | None = None,
        statuses: Collection[OrderStatus] | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Order]:
        """Orders (of ``symbol``, in one of ``statuses``, created between ``start`` and ``end``
        ms UTC inclusive, each when given), newest ``(created_time, id)`` first.

        Raises
        ------
        ConfigError
            For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``"limit"``).
        """
        where = [ORDERS.c.run_id == self._run_id]
        if symbol is not None:
            where.append(ORDERS.c.symbol == symbol)
        if statuses is not None:
            where.append(ORDERS.c.status.in_([status.value for status in statuses]))
        return read_page(
            self._connect(),
            listing="orders",
            table=ORDERS,
            columns=m.ORDER_COLUMNS,
            time_column="created_time",
            where=where,
            limit=limit,
            cursor=cursor,
            convert=m.order_from_row,
            start=start,
            end=end,
        )

    def list_open(self) -> list[Order]:
        """Orders not yet final (not filled, canceled, rejected or expired), oldest first."""
        rows = self._connect().execute(_OPEN_ORDERS, {"run_id": self._run_id})
        return [m.order_from_row(row) for row in rows]


class SqlFillRepository:
    """Fills of one run, append-only: adding a stored fill id again keeps the first.

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose fills this repository reads and writes.
    """

    def __init__(self, connect: Connect, run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def add(self, fill: Fill) -> None:
        """Store ``fill`` unless its id is stored already. Its order must exist by commit time.

        Raises
        ------
        ValueError
            If the fill id is stored for another run, or a value does not fit its column.
        """
        _append_once(self._connect, FILLS, m.fill_values(fill, self._run_id), "fill")

    def fees_total(self) -> Decimal:
        """The fees of every fill of the run (quote currency), summed exactly."""
        query = sa.select(FILLS.c.fee).where(FILLS.c.run_id == self._run_id)
        return sum((row.fee for row in self._connect().execute(query)), Decimal(0))

    def page(
        self,
        *,
        order_id: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Fill]:
        """Fills (of ``order_id``, of ``symbol``, between ``start`` and ``end`` ms UTC inclusive,
        each when given), newest ``(time, id)`` first.

        Raises
        ------
        ConfigError
            For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``"limit"``).
        """
        where = [FILLS.c.run_id == self._run_id]
        if order_id is not None:
            where.append(FILLS.c.order_id == order_id)
        if symbol is not None:
            where.append(FILLS.c.symbol == symbol)
        return read_page(
            self._connect(),
            listing="fills",
            table=FILLS,
            columns=m.FILL_COLUMNS,
            time_column="time",
            where=where,
            limit=limit,
            cursor=cursor,
            convert=m.fill_from_row,
            start=start,
            end=end,
        )


class SqlTradeRepository:
    """Closed round-trip trades of one run, append-only: a stored trade id is not added again.

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose trades this repository reads and writes.
    """

    def __init__(self, connect: Connect, run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def add(self, trade: Trade) -> None:
        """Store ``trade`` unless its id is stored already.

        Raises
        ------
        ValueError
            If the trade id is stored for another run, or a value does not fit its column.
        """
        _append_once(self._connect, TRADES, m.trade_values(trade, self._run_id), "trade")

    def realized_by_symbol(self) -> dict[str, Decimal]:
        """Each symbol's closed trades' PnL (quote currency, net of fees), summed exactly: two
        columns read, not whole trades."""
        query = sa.select(TRADES.c.symbol, TRADES.c.pnl).where(TRADES.c.run_id == self._run_id)
        out: dict[str, Decimal] = {}
        for row in self._connect().execute(query):
            out[row.symbol] = out.get(row.symbol, Decimal(0)) + row.pnl
        return out

    def page(
        self,
        *,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Trade]:
        """Trades (of ``symbol``, ``exit_time`` between ``start`` and ``end`` ms UTC inclusive, each
        when given), newest ``(exit_time, id)`` first.

        Raises
        ------
        ConfigError
            For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``"limit"``).
        """
        where = [TRADES.c.run_id == self._run_id]
        if symbol is not None:
            where.append(TRADES.c.symbol == symbol)
        return read_page(
            self._connect(),
            listing="trades",
            table=TRADES,
            columns=m.TRADE_COLUMNS,
            time_column="exit_time",
            where=where,
            limit=limit,
            cursor=cursor,
            convert=m.trade_from_row,
            start=start,
            end=end,
        )


class SqlFundingRepository:
    """Funding settlements of one run: adding a (symbol, time) again replaces it.

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose payments this repository reads and writes.
    """

    def __init__(self, connect: Connect, run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def add(self, payment: FundingPayment) -> None:
        """Store ``payment``.

        Raises
        ------
        ValueError
            If a value does not fit its column.
        """
        values = m.funding_values(payment, self._run_id)
        write(self._connect(), FUNDING, values, ("run_id", "symbol", "time"))

    def list(
        self, *, symbol: str | None = None, start: int | None = None, end: int | None = None
    ) -> list[FundingPayment]:
        """Payments (of ``symbol``, between ``start`` and ``end`` ms UTC inclusive, each when
        given), oldest first."""
        query = sa.select(*(FUNDING.c[c] for c in m.FUNDING_COLUMNS)).where(
            FUNDING.c.run_id == self._run_id
        )
        if symbol is not None:
            query = query.where(FUNDING.c.symbol == symbol)
        if start is not None:
            query = query.where(FUNDING.c.time >= start)
        if end is not None:
            query = query.where(FUNDING.c.time <= end)
        rows = self._connect().execute(query.order_by(FUNDING.c.time, FUNDING.c.symbol))
        return [m.funding_from_row(row) for row in rows]

    def total(self) -> Decimal:
        """What the run paid in funding (quote currency; received counts negative), exactly."""
        query = sa.select(FUNDING.c.amount).where(FUNDING.c.run_id == self._run_id)
        return sum((row.amount for row in self._connect().execute(query)), Decimal(0))


class SqlPositionRepository:
    """The current net position of each symbol in one run (flat ones kept with ``qty`` 0).

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose positions this repository reads and writes.
    """

    def __init__(self, connect: Connect, run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def upsert(self, position: Position) -> None:
        """Store ``position`` as the run's current one for its symbol.

        Raises
        ------
        ValueError
            If a money/qty value does not fit the column.
        """
        values = m.position_values(position, self._run_id)
        write(self._connect(), POSITIONS, values, ("run_id", "symbol"))

    def list(self) -> list[Position]:
        """Every stored position of the run, flat ones included, by symbol."""
        rows = self._connect().execute(_POSITIONS, {"run_id": self._run_id})
        return [m.position_from_row(row) for row in rows]


class SqlEquityRepository:
    """Equity snapshots of one run, one per bar time: adding a time again replaces it.

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose equity this repository reads and writes.
    """

    def __init__(self, connect: Connect, run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def add(self, point: EquityPoint) -> None:
        """Store ``point``, replacing a stored point of the same ``time`` (ms UTC).

        Raises
        ------
        ValueError
            If a money value does not fit the column.
        """
        values = m.equity_values(point, self._run_id)
        write(self._connect(), EQUITY, values, ("run_id", "time"))

    def list(self, *, since_ms: int | None = None, limit: int = 10_000) -> list[EquityPoint]:
        """Points with ``time >= since_ms`` (ms UTC), newest first, at most ``limit``.

        Reverse the list for a chart in time order.

        Raises
        ------
        ConfigError
            If ``limit < 1`` (``field="limit"``).
        """
        params = {
            "run_id": self._run_id,
            "since": -(2**63) if since_ms is None else since_ms,
            "limit": check_limit(limit),
        }
        return [m.equity_from_row(row) for row in self._connect().execute(_EQUITY, params)]

    def page(
        self,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1_000,
        cursor: str | None = None,
    ) -> Page[EquityPoint]:
        """Points with ``start <= time <= end`` (ms UTC, each bound optional), newest first.

        Raises
        ------
        ConfigError
            For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``"limit"``).
        """
        return read_page(
            self._connect(),
            listing="equity",
            table=EQUITY,
            columns=m.EQUITY_COLUMNS,
            time_column="time",
            id_column="time",
            where=[EQUITY.c.run_id == self._run_id],
            limit=limit,
            cursor=cursor,
            convert=m.equity_from_row,
            start=start,
            end=end,
        )

    def latest(self) -> EquityPoint | None:
        """The point with the largest ``time``, or None when nothing is stored."""
        points = self.list(limit=1)
        return points[0] if points else None


class SqlSignalRepository:
    """Strategy signals of one run with their reasons.

    A signal is identified by (symbol, timeframe, strategy, time) within its run: adding it
    again (a replayed bar) replaces the stored one instead of duplicating it.

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose signals this repository reads and writes.
    """

    _KEY = ("run_id", "symbol", "timeframe", "strategy", "time")

    def __init__(self, connect: Connect, run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def add(self, signal: Signal) -> None:
        """Store ``signal``, replacing a stored signal with the same identity."""
        write(self._connect(), SIGNALS, m.signal_values(signal, self._run_id), self._KEY)

    def page(
        self,
        *,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Signal]:
        """Signals (of ``symbol``, ``time`` between ``start`` and ``end`` ms UTC inclusive, each
        when given), newest ``time`` first (ties: newest stored).

        Raises
        ------
        ConfigError
            For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``"limit"``).
        """
        where = [SIGNALS.c.run_id == self._run_id]
        if symbol is not None:
            where.append(SIGNALS.c.symbol == symbol)
        return read_page(
            self._connect(),
            listing="signals",
            table=SIGNALS,
            columns=m.SIGNAL_COLUMNS,
            time_column="time",
            where=where,
            limit=limit,
            cursor=cursor,
            convert=m.signal_from_row,
            start=start,
            end=end,
        )


class SqlRunRepository:
    """Paper/live runs, one row per run id (not bound to the unit of work's run).

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    """

    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    def upsert(self, run: RunState) -> None:
        """Store ``run``, replacing the stored state of the same id.

        Raises
        ------
        ValueError
            If a money value does not fit its column, or ``params``/``state`` hold values
            JSON cannot (NaN, infinity, ``Decimal``, other objects).
        """
        write(self._connect(), RUNS, m.run_values(run), ("id",))

    def save_progress(self, run: RunState) -> None:
        """Store how far the stored ``run`` got: cash, last bar times, kernel state, bars
        processed, stop reason and error (the columns that change while it runs; one bar's
        commit writes only these).

        Raises
        ------
        LookupError
            If no run with ``run.id`` is stored (store it with :meth:`upsert` first).
        ValueError
            If a value does not fit its column or ``state`` holds values JSON cannot.
        """
        values = m.run_progress_values(run)
        if not write(self._connect(), RUNS, values, ("id",), insert=False):
            raise LookupError(f"run {run.id!r} is not stored: upsert it first")

    def get(self, run_id: str) -> RunState | None:
        """The run with ``run_id``, or None."""
        row = self._connect().execute(_GET_RUN, {"id": run_id}).first()
        return None if row is None else m.run_from_row(row)

    def latest(self, mode: str) -> RunState | None:
        """The run of ``mode`` (``"paper"``, ``"live"``) started last, or None."""
        row = self._connect().execute(_LATEST_RUN, {"mode": mode}).first()
        return None if row is None else m.run_from_row(row)


_DAY_MS = 86_400_000
_RISK_EVENTS = (
    _select(RISK_EVENTS, m.RISK_EVENT_COLUMNS)
    .where(RISK_EVENTS.c.run_id == _RUN)
    .order_by(RISK_EVENTS.c.time.desc(), RISK_EVENTS.c.id.desc())
    .limit(sa.bindparam("limit"))
)
_LATEST_LIMITS = (
    _select(RISK_LIMITS, m.LIMITS_COLUMNS)
    .where(RISK_LIMITS.c.run_id == _RUN)
    .order_by(RISK_LIMITS.c.time.desc(), RISK_LIMITS.c.id.desc())
    .limit(1)
)
# A point at 00:00 closes the day before: its day is (time - 1) // 1 day (rendered as `/` on
# BIGINT operands: integer division on both databases).
_DAY = (EQUITY.c.time - 1) // _DAY_MS
_DAY_ENDS = (
    _select(EQUITY, m.EQUITY_COLUMNS)
    .where(
        EQUITY.c.run_id == _RUN,
        EQUITY.c.time.in_(
            sa.select(sa.func.max(EQUITY.c.time)).where(EQUITY.c.run_id == _RUN).group_by(_DAY)
        ),
    )
    .order_by(EQUITY.c.time.desc())
    .limit(sa.bindparam("limit"))
)


class SqlRiskRepository:
    """One run's risk events and risk limit changes (append-only), and its daily equity.

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose rows this repository reads and writes.
    """

    def __init__(self, connect: Connect, run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def add_event(self, event: RiskEvent, who: str | None = None) -> None:
        """Store a trading-state change or an alert (``who``: the person, for a change made
        by hand)."""
        values = m.risk_event_values(event, who, self._run_id)
        self._connect().execute(RISK_EVENTS.insert(), values)

    def events(self, limit: int = 50) -> list[RiskRecord]:
        """The latest ``limit`` events, newest first."""
        check_limit(limit)
        rows = self._connect().execute(_RISK_EVENTS, {"run_id": self._run_id, "limit": limit})
        return [m.risk_record_from_row(row) for row in rows]

    def add_limits(self, change: LimitsChange) -> None:
        """Store a change of the risk limits.

        Raises
        ------
        ValueError
            If the limits hold a value JSON cannot (NaN, infinity, ``Decimal``).
        """
        self._connect().execute(RISK_LIMITS.insert(), m.limits_values(change, self._run_id))

    def latest_limits(self) -> LimitsChange | None:
        """The limits in force (the latest change), or None when they were never changed."""
        row = self._connect().execute(_LATEST_LIMITS, {"run_id": self._run_id}).first()
        return None if row is None else m.limits_from_row(row)

    def day_ends(self, limit: int = 400) -> list[EquityPoint]:
        """The last equity point of each of the latest ``limit`` UTC days, oldest first."""
        check_limit(limit)
        rows = self._connect().execute(_DAY_ENDS, {"run_id": self._run_id, "limit": limit})
        return [m.equity_from_row(row) for row in rows][::-1]
