"""The run's alert log in SQL (:class:`~domain.alerts.AlertRecord`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from adapters.storage.sql.paging import read_page
from adapters.storage.sql.tables import AlertRow
from domain.alerts import Alert, AlertRecord, AlertRule, Severity
from domain.ports import Page

ALERTS: sa.Table = AlertRow.__table__  # type: ignore[attr-defined]
COLUMNS = (
    "id", "time", "rule", "severity", "title", "message", "data", "channels", "delivered",
    "failed",
)  # fmt: skip


class SqlAlertRepository:
    """One run's alerts, each stored when it fired and updated with its delivery.

    Parameters
    ----------
    connect:
        Returns the unit of work's connection; the repository never commits.
    run_id:
        The run whose alerts this repository reads and writes.
    """

    def __init__(self, connect: Callable[[], Connection], run_id: str) -> None:
        self._connect = connect
        self._run_id = run_id

    def add(self, alert: Alert, channels: Sequence[str]) -> AlertRecord:
        """Store ``alert`` as sent to ``channels``; its record with the new id.

        Raises
        ------
        ValueError
            If its data holds what JSON cannot (NaN, infinity).
        """
        values = {
            "run_id": self._run_id, "time": alert.time, "rule": alert.rule.value,
            "severity": alert.severity.value, "title": alert.title, "message": alert.message,
            "data": dict(alert.data), "channels": list(channels), "delivered": [], "failed": [],
        }  # fmt: skip
        result = self._connect().execute(ALERTS.insert(), values)
        alert_id = int(result.inserted_primary_key[0])
        return AlertRecord(alert_id, alert, tuple(channels))

    def record(self, alert_id: int, delivered: Sequence[str], failed: Sequence[str]) -> None:
        """Set the channels that took alert ``alert_id`` and those that refused it (nothing
        when the run holds no such alert)."""
        table = ALERTS
        stmt = (
            table.update()
            .where(table.c.run_id == self._run_id, table.c.id == alert_id)
            .values(delivered=list(delivered), failed=list(failed))
        )
        self._connect().execute(stmt)

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
        given), newest first.

        Raises
        ------
        ConfigError
            For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``"limit"``).
        """
        table = ALERTS
        where = [table.c.run_id == self._run_id]
        if rule is not None:
            where.append(table.c.rule == rule)
        return read_page(
            self._connect(),
            listing="alerts",
            table=table,
            columns=COLUMNS,
            time_column="time",
            where=where,
            limit=limit,
            cursor=cursor,
            convert=_record,
            start=start,
            end=end,
        )


def _record(row: Any) -> AlertRecord:
    alert = Alert(
        AlertRule(row.rule), Severity(row.severity), row.title, row.message, row.time,
        dict(row.data),
    )  # fmt: skip
    return AlertRecord(row.id, alert, tuple(row.channels), tuple(row.delivered), tuple(row.failed))
