"""Stored backtests in SQL (:class:`~domain.backtest_records.BacktestStore`): one row of the
``backtests`` table per backtest, its request, metrics, result and view as JSON. Shared by every
run. A record read for showing (``result=False``) leaves the result unread: its JSON can be
megabytes, and parsing it is most of what reading a record costs.

Unlike the unit of work's repositories, each call is its own transaction: a backtest job
stores its record when it starts and when it ends, with nothing else to commit alongside.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from adapters.storage.sql.paging import read_page
from adapters.storage.sql.statements import write
from adapters.storage.sql.tables import BacktestRow
from domain.backtest_records import BacktestRecord, json_safe
from domain.ports import Page

BACKTESTS: sa.Table = BacktestRow.__table__  # type: ignore[attr-defined]
LISTING = "backtests"
"""The listing name the cursors of :meth:`SqlBacktestStore.page` carry."""
_SUMMARY = [c.name for c in BACKTESTS.columns if c.name not in ("result", "view")]
"""Every column but the result and the view (a listing leaves them out: megabytes)."""
_SHOWN = [c for c in BACKTESTS.columns if c.name != "result"]
"""Every column but the result (what showing a record with a view reads)."""


class SqlBacktestStore:
    """Backtest records over connections of ``connect`` (a session factory:
    :func:`~adapters.storage.sql.unit_of_work.make_session_factory`), one transaction a call.
    """

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect

    def add(self, record: BacktestRecord) -> None:
        """Store ``record``, replacing the row of the same id (non-finite floats of its JSON
        become null)."""
        with self._connect() as connection, connection.begin():  # the write joins it
            write(connection, BACKTESTS, _values(record), ("id",))

    def get(self, backtest_id: str, *, result: bool = True) -> BacktestRecord | None:
        """The record of ``backtest_id`` with its view, and its result unless ``result`` is
        False; None when there is none."""
        found = self.get_many([backtest_id], result=result)
        return found[0] if found else None

    def get_many(self, ids: Sequence[str], *, result: bool = True) -> builtins.list[BacktestRecord]:
        """The records of ``ids`` with their views, and their results unless ``result`` is
        False, in the order of ``ids`` (an id without a row is left out)."""
        columns = list(BACKTESTS.columns) if result else _SHOWN
        with self._connect() as connection:
            rows = connection.execute(sa.select(*columns).where(BACKTESTS.c.id.in_(list(ids))))
            by_id = {row.id: _record(row) for row in rows}
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    def trades(self, backtest_id: str) -> builtins.list[dict[str, Any]] | None:
        """The ``trades`` of the result of ``backtest_id``, extracted by the database from the
        result's JSON (SQLite's ``json_extract``, PostgreSQL's ``->``): only they are parsed
        here. None when no row is stored; empty while it has no result."""
        query = sa.select(BACKTESTS.c.result["trades"]).where(BACKTESTS.c.id == backtest_id)
        with self._connect() as connection:
            found = connection.execute(query).first()
        return None if found is None else list(found[0] or [])

    def page(self, *, limit: int, cursor: str | None = None) -> Page[BacktestRecord]:
        """The latest ``limit`` records without results, newest ``(created_ms, id)`` first;
        ``cursor`` reads the next older page.

        Raises
        ------
        ConfigError
            A malformed cursor (field ``cursor``) or ``limit < 1`` (field ``limit``).
        """
        with self._connect() as connection:
            return read_page(
                connection,
                listing=LISTING,
                table=BACKTESTS,
                columns=_SUMMARY,
                time_column="created_ms",
                where=[],
                limit=limit,
                cursor=cursor,
                convert=_record,
            )

    def fail_running(self, error: str, finished_ms: int) -> int:
        """Mark the records still ``running`` failed with ``error`` at ``finished_ms``; how
        many there were."""
        with self._connect() as connection, connection.begin():
            done = connection.execute(
                BACKTESTS.update()
                .where(BACKTESTS.c.status == "running")
                .values(status="failed", error=error, finished_ms=finished_ms)
            )
        return int(done.rowcount)


def _values(record: BacktestRecord) -> dict[str, Any]:
    return {
        "id": record.id, "status": record.status, "strategy": record.strategy,
        "symbols": list(record.symbols), "timeframe": record.timeframe,
        "request": json_safe(record.request), "created_ms": record.created_ms,
        "finished_ms": record.finished_ms, "error": record.error,
        "metrics": None if record.metrics is None else json_safe(record.metrics),
        "result": None if record.result is None else json_safe(record.result),
        "view": None if record.view is None else json_safe(record.view),
    }  # fmt: skip


def _record(row: Any) -> BacktestRecord:
    mapping = row._mapping
    return BacktestRecord(
        id=row.id,
        status=row.status,
        strategy=row.strategy,
        symbols=tuple(row.symbols),
        timeframe=row.timeframe,
        request=dict(row.request),
        created_ms=row.created_ms,
        finished_ms=row.finished_ms,
        error=row.error,
        metrics=row.metrics,
        result=mapping.get("result"),
        view=mapping.get("view"),
    )
