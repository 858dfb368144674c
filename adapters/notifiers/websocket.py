"""Alerts pushed to the live clients: the WebSocket (``{"type": "alert"}``) and the panel."""

from __future__ import annotations

from collections.abc import Callable

from domain.alerts import AlertRaised, AlertRecord


class WebSocketNotifier:
    """Hands each alert to ``push`` as :class:`~domain.alerts.AlertRaised` (the composition
    root passes the event hub's handler, which queues it for every client without waiting)."""

    name = "websocket"

    def __init__(self, push: Callable[[object], None]) -> None:
        self._push = push

    async def send(self, record: AlertRecord) -> None:
        """Queue the alert for the clients connected now (none: nothing to do)."""
        self._push(AlertRaised(record))
