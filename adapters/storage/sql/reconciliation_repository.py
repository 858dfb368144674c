"""A live run's reconciliation events in SQL (:class:`~domain.reconciliation.ReconciliationLog`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from adapters.storage.sql.tables import ReconciliationEventRow
from domain.reconciliation import DriftKind, ReconciliationEvent

EVENTS: sa.Table = ReconciliationEventRow.__table__  # type: ignore[attr-defined]


class SqlReconciliationLog:
    """One run's reconciliation events; each call is its own transaction.

    Parameters
    ----------
    session_factory:
        Returns a new connection (:func:`~adapters.storage.sql.unit_of_work.make_session_factory`).
    run_id:
        The run whose events this log reads and writes.
    """

    def __init__(self, session_factory: Callable[[], Connection], run_id: str) -> None:
        self._connect = session_factory
        self._run_id = run_id

    def add(self, events: Sequence[ReconciliationEvent]) -> None:
        """Store ``events`` and commit."""
        if not events:
            return
        rows = [
            {"run_id": self._run_id, "time": e.time, "kind": e.kind.value, "venue": e.venue,
             "symbol": e.symbol, "details": e.details}
            for e in events
        ]  # fmt: skip
        with self._connect() as connection:
            connection.execute(EVENTS.insert(), rows)
            connection.commit()

    def recent(self, limit: int = 100) -> list[ReconciliationEvent]:
        """The latest ``limit`` events of the run, newest first."""
        stmt = (
            sa.select(EVENTS)
            .where(EVENTS.c.run_id == self._run_id)
            .order_by(EVENTS.c.time.desc(), EVENTS.c.id.desc())
            .limit(limit)
        )
        with self._connect() as connection:
            rows = connection.execute(stmt).all()
        return [
            ReconciliationEvent(DriftKind(r.kind), r.venue, r.symbol, r.details, r.time)
            for r in rows
        ]
