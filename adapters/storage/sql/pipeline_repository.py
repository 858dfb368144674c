"""The run's adaptive-pipeline events in SQL (:class:`~domain.pipeline_events.PipelineEvent`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from adapters.storage.sql.paging import read_page
from adapters.storage.sql.statements import write
from adapters.storage.sql.tables import PipelineEventRow
from domain.pipeline_events import PipelineEvent
from domain.ports import Page

PIPELINE_EVENTS: sa.Table = PipelineEventRow.__table__  # type: ignore[attr-defined]
COLUMNS = ("time", "symbol", "kind", "data")
"""Columns, in :class:`~domain.pipeline_events.PipelineEvent` field order."""
_KEY = ("run_id", "symbol", "kind", "time")


class SqlPipelineEventRepository:
    """One run's threshold adjustments and regime changes.

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose events this repository reads and writes.
    """

    def __init__(self, connect: Callable[[], Connection], run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def add(self, event: PipelineEvent) -> None:
        """Store ``event`` (again in place when a replayed bar reports it twice).

        Raises
        ------
        ValueError
            If its values hold what JSON cannot (NaN, infinity).
        """
        values = {
            "run_id": self._run_id, "time": event.time, "symbol": event.symbol,
            "kind": event.kind, "data": dict(event.values),
        }  # fmt: skip
        write(self._connect(), PIPELINE_EVENTS, values, _KEY)

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
        """Events (of ``symbol`` and ``kind``, ``time`` between ``start`` and ``end`` ms UTC
        inclusive, each when given), newest first.

        Raises
        ------
        ConfigError
            For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``"limit"``).
        """
        table = PIPELINE_EVENTS
        where = [table.c.run_id == self._run_id]
        if symbol is not None:
            where.append(table.c.symbol == symbol)
        if kind is not None:
            where.append(table.c.kind == kind)
        return read_page(
            self._connect(),
            listing="pipeline_events",
            table=table,
            columns=COLUMNS,
            time_column="time",
            where=where,
            limit=limit,
            cursor=cursor,
            convert=_event,
            start=start,
            end=end,
        )


def _event(row: Any) -> PipelineEvent:
    return PipelineEvent(row.time, row.symbol, row.kind, dict(row.data))
