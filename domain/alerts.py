"""Alerts: facts worth telling a person now (a trade executed, a drawdown crossed, trading
halted, an ML predictor disabled, a venue gone, the engine stopped on an error), and what
became of their delivery.

Pure value objects. The rules that raise them live in :mod:`service_layer.alert_rules`, their
delivery in :mod:`service_layer.alerts`; the channels implement
:class:`~domain.ports.Notifier`. Times are int ms UTC (the market clock of the fact).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

AlertValue = str | int | float | bool | None
"""A value in an alert's ``data`` (JSON-friendly; money as a decimal string)."""


class AlertRule(StrEnum):
    """Which rule raised an alert (each has its own toggle in the settings)."""

    TRADE_EXECUTED = "trade_executed"
    PNL = "pnl"
    DRAWDOWN = "drawdown"
    RISK = "risk"
    ML_DISABLED = "ml_disabled"
    VENUE = "venue"
    HEALTH = "health"


class Severity(StrEnum):
    """How urgent an alert is: ``info`` (a trade), ``warning`` (a threshold, a breaker),
    ``critical`` (the engine or the venue is down)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: ``title`` is one short line (an e-mail's subject), ``message`` the text with
    its numbers, ``data`` the facts behind it (JSON-friendly values), ``time`` ms UTC.

    Raises
    ------
    ValueError
        When ``title`` is empty or ``time`` is negative.
    """

    rule: AlertRule
    severity: Severity
    title: str
    message: str
    time: int
    data: Mapping[str, AlertValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.title:
            raise ValueError("an alert needs a title")
        if self.time < 0:
            raise ValueError(f"alert time must be >= 0 ms, was {self.time}")


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A stored alert (``id`` assigned by the alert log) and its delivery: the ``channels`` it
    was sent to, those that took it (``delivered``) and those that refused it after every
    retry (``failed``); a channel in neither is still being tried."""

    id: int
    alert: Alert
    channels: tuple[str, ...] = ()
    delivered: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    @property
    def pending(self) -> tuple[str, ...]:
        """Channels whose delivery is not finished."""
        done = {*self.delivered, *self.failed}
        return tuple(c for c in self.channels if c not in done)


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """The alert of ``record`` fired and was stored: the event the WebSocket channel hands to
    the live clients (``{"type": "alert"}``)."""

    record: AlertRecord
