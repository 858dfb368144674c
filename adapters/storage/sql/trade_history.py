"""The trade history's reads (:class:`~domain.ports.TradeHistoryRepository`): the run's closed
trades filtered by symbol, side, exit reason and exit time, as keyset or numbered pages, counted,
and with what opened each one, for the analytics of :mod:`domain.attribution` and
:mod:`domain.trade_history`.

What opened a trade is read in the same statement, by correlated subqueries that the indexes
answer with a few rows each: the tag of the order of its entry fill (a fill of its symbol and
side at its entry time), the reasons of its entry signal (the latest signal of its symbol and
direction at most :data:`SIGNAL_LOOKBACK_MS` before its entry) and the equity of the last
snapshot before its entry.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from adapters.storage.sql import mappers as m
from adapters.storage.sql.paging import check_limit, read_page
from adapters.storage.sql.repositories import (
    EQUITY,
    FILLS,
    ORDERS,
    SIGNALS,
    TRADES,
    Connect,
)
from domain.attribution import TradeEntry
from domain.errors import ConfigError
from domain.model import ExitReason, Side, Trade, fast_constructor
from domain.ports import Page
from domain.trade_history import TradeQuery

SIGNAL_LOOKBACK_MS = 86_400_000
"""How far before a trade's entry its entry signal is looked for (a day: an entry fills at the
open after its signal, or later for a resting limit order)."""

_TRADE = [TRADES.c[name] for name in m.TRADE_COLUMNS]
_MONEY = ("qty", "entry_price", "exit_price", "pnl", "fees")
_RAW_TRADE = [
    sa.type_coerce(TRADES.c[name], sa.String()).label(name) if name in _MONEY else TRADES.c[name]
    for name in m.TRADE_COLUMNS
]
"""The trade columns for :meth:`SqlTradeHistoryRepository.entries`, amounts read as the driver
gives them: SQLite's text, which the column type wrote without trailing zeros, or PostgreSQL's
``Decimal``, whose trailing zeros change no value. Their column type's exact-decimal processing
(a quantize at 68 digits per value) is most of the cost of reading thousands of trades."""
_DIRECTION = sa.case((TRADES.c.side == "buy", "long"), else_="short")
_ENTRY_TAG = (
    sa.select(ORDERS.c.tag)
    .select_from(FILLS.join(ORDERS, ORDERS.c.id == FILLS.c.order_id))
    .where(
        FILLS.c.run_id == TRADES.c.run_id,
        FILLS.c.time == TRADES.c.entry_time,
        FILLS.c.symbol == TRADES.c.symbol,
        FILLS.c.side == TRADES.c.side,
    )
    .order_by(FILLS.c.id)
    .limit(1)
    .correlate(TRADES)
    .scalar_subquery()
    .label("entry_tag")
)
_ENTRY_REASONS = (
    sa.select(SIGNALS.c.reasons)
    .where(
        SIGNALS.c.run_id == TRADES.c.run_id,
        SIGNALS.c.symbol == TRADES.c.symbol,
        SIGNALS.c.time <= TRADES.c.entry_time,
        SIGNALS.c.time >= TRADES.c.entry_time - SIGNAL_LOOKBACK_MS,
        SIGNALS.c.direction == _DIRECTION,
    )
    .order_by(SIGNALS.c.time.desc(), SIGNALS.c.id.desc())
    .limit(1)
    .correlate(TRADES)
    .scalar_subquery()
    .label("entry_reasons")
)
_EQUITY_BEFORE = (
    sa.select(EQUITY.c.equity)
    .where(EQUITY.c.run_id == TRADES.c.run_id, EQUITY.c.time < TRADES.c.entry_time)
    .order_by(EQUITY.c.time.desc())
    .limit(1)
    .correlate(TRADES)
    .scalar_subquery()
    .label("equity_before")
)


class SqlTradeHistoryRepository:
    """The trade history's reads of one run (it writes nothing).

    Parameters
    ----------
    connect:
        Returns the unit of work's connection.
    run_id:
        The run whose trades it reads.
    """

    def __init__(self, connect: Connect, run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def _where(self, query: TradeQuery, *, times: bool = True) -> list[sa.ColumnElement[bool]]:
        where = [TRADES.c.run_id == self._run_id]
        if query.symbol is not None:
            where.append(TRADES.c.symbol == query.symbol)
        if query.side is not None:
            where.append(TRADES.c.side == query.side.value)
        if query.exit_reason is not None:
            where.append(TRADES.c.exit_reason == query.exit_reason.value)
        if times and query.start is not None:
            where.append(TRADES.c.exit_time >= query.start)
        if times and query.end is not None:
            where.append(TRADES.c.exit_time <= query.end)
        return where

    def page(
        self, query: TradeQuery, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Trade]:
        """Trades matching ``query``, newest ``(exit_time, id)`` first, one keyset page (the
        cursors of ``GET /api/v1/trades``).

        Raises
        ------
        ConfigError
            For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``"limit"``).
        """
        return read_page(
            self._connect(),
            listing="trades",
            table=TRADES,
            columns=m.TRADE_COLUMNS,
            time_column="exit_time",
            where=self._where(query, times=False),
            limit=limit,
            cursor=cursor,
            convert=m.trade_from_row,
            start=query.start,
            end=query.end,
        )

    def window(self, query: TradeQuery, *, offset: int, limit: int) -> list[Trade]:
        """Up to ``limit`` trades matching ``query``, newest first, skipping the ``offset``
        newest.

        Raises
        ------
        ConfigError
            For ``limit < 1`` (``field="limit"``) or ``offset < 0`` (``"offset"``).
        """
        check_limit(limit)
        if offset < 0:
            raise ConfigError(f"offset must be >= 0, was {offset}", field="offset")
        stmt = (
            sa.select(*_TRADE)
            .where(*self._where(query))
            .order_by(TRADES.c.exit_time.desc(), TRADES.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [m.trade_from_row(row) for row in self._connect().execute(stmt)]

    def count(self, query: TradeQuery) -> int:
        """How many trades match ``query``."""
        stmt = sa.select(sa.func.count()).select_from(TRADES).where(*self._where(query))
        return int(self._connect().execute(stmt).scalar_one())

    def entries(
        self, query: TradeQuery, *, tags: bool = False, reasons: bool = False, equity: bool = False
    ) -> list[TradeEntry]:
        """Trades matching ``query`` in exit order (``(exit_time, id)``), each with what is asked
        for: its entry order's tag (``tags``), its entry signal's reasons (``reasons``) and the
        equity before its entry (``equity``), as the module docstring says (each subquery
        costs, so only those asked for run)."""
        extra: list[Any] = []
        if tags:
            extra.append(_ENTRY_TAG)
        if reasons:
            extra.append(_ENTRY_REASONS)
        if equity:
            extra.append(_EQUITY_BEFORE)
        stmt = (
            sa.select(*_RAW_TRADE, *extra)
            .where(*self._where(query))
            .order_by(TRADES.c.exit_time, TRADES.c.id)
        )
        rows = self._connect().execute(stmt).all()
        return [
            _entry(
                _fast_trade(row),
                row.entry_tag if tags else None,
                m.reasons_from_json(row.entry_reasons) if reasons and row.entry_reasons else (),
                row.equity_before if equity else None,
            )
            for row in rows
        ]


_entry = fast_constructor(TradeEntry, validate=False)
_trade = fast_constructor(Trade, validate=False)
_SIDES = {side.value: side for side in Side}
_REASONS = {reason.value: reason for reason in ExitReason}


def _fast_trade(row: Any) -> Trade:
    """The trade in ``row``, as :func:`~adapters.storage.sql.mappers.trade_from_row` builds it
    at a fraction of the cost (thousands are read per analytics request)."""
    return _trade(
        row.id, row.symbol, _SIDES[row.side], Decimal(row.qty), row.entry_time,
        Decimal(row.entry_price), row.exit_time, Decimal(row.exit_price), Decimal(row.pnl),
        Decimal(row.fees), _REASONS[row.exit_reason],
    )  # fmt: skip
