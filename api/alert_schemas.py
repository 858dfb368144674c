"""The alert log's body (``GET /api/v1/alerts``) and the WebSocket's ``alert`` message."""

from __future__ import annotations

from pydantic import BaseModel

from domain.alerts import AlertRecord, AlertRule, AlertValue, Severity


class AlertOut(BaseModel):
    """An alert as it fired (``time`` ms UTC, market clock; ``data`` the facts behind it, money
    as decimal strings, fractions as numbers) and its delivery: the ``channels`` it was sent
    to, those that took it (``delivered``) and those that refused it after every retry
    (``failed``); a channel in neither is still being tried."""

    id: int
    time: int
    rule: AlertRule
    severity: Severity
    title: str
    message: str
    data: dict[str, AlertValue]
    channels: list[str]
    delivered: list[str]
    failed: list[str]


def alert_out(record: AlertRecord) -> AlertOut:
    """The body of ``record``."""
    alert = record.alert
    return AlertOut(
        id=record.id,
        time=alert.time,
        rule=alert.rule,
        severity=alert.severity,
        title=alert.title,
        message=alert.message,
        data=dict(alert.data),
        channels=list(record.channels),
        delivered=list(record.delivered),
        failed=list(record.failed),
    )
