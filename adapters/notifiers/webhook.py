"""Alerts POSTed as JSON to a webhook: the alert's fields, or Slack's or Discord's message shape.

Slack's incoming webhooks take ``{"text": ...}`` (``*bold*``), Discord's ``{"content": ...}``
(``**bold**``, at most 2000 characters). The URL often holds the webhook's token, so it never
appears in an error message or a log line.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx

from domain.alerts import AlertRecord
from domain.errors import PermanentDeliveryError, TransientDeliveryError

WebhookFormat = Literal["json", "slack", "discord"]
DISCORD_LIMIT = 2000
"""The most characters a Discord message's ``content`` may hold."""
_RETRIED_STATUSES = {408, 425, 429}
"""4xx answers that a retry may get past (timeout, too early, rate limit)."""


class _HideUrl(logging.Filter):
    """Writes ``<webhook URL>`` for ``url`` in httpx's log records (httpx logs each request's
    URL at INFO, and a Slack or Discord webhook's URL holds its token)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                "<webhook URL>" if str(arg) == self.url else arg for arg in record.args
            )
        return True


def _hide_in_httpx_logs(url: str) -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HideUrl) and f.url == url for f in logger.filters):
        logger.addFilter(_HideUrl(url))


def webhook_payload(record: AlertRecord, format: WebhookFormat) -> dict[str, Any]:
    """The JSON body for ``record`` in ``format``.

    ``json``: ``{"id", "rule", "severity", "title", "message", "time", "data"}`` (``time`` ms
    UTC); ``slack``: ``{"text": "*[SEVERITY] title*\\nmessage"}``; ``discord``:
    ``{"content": "**[SEVERITY] title**\\nmessage"}``, cut to 2000 characters.
    """
    alert = record.alert
    if format == "slack":
        return {"text": f"*[{alert.severity.upper()}] {alert.title}*\n{alert.message}"}
    if format == "discord":
        content = f"**[{alert.severity.upper()}] {alert.title}**\n{alert.message}"
        return {"content": content[:DISCORD_LIMIT]}
    return {
        "id": record.id,
        "rule": alert.rule.value,
        "severity": alert.severity.value,
        "title": alert.title,
        "message": alert.message,
        "time": alert.time,
        "data": dict(alert.data),
    }


class WebhookNotifier:
    """POSTs each alert to ``url`` in ``format`` (see :func:`webhook_payload`).

    A 2xx answer delivers it. Connection failures, timeouts (``timeout_s``), 408, 425, 429 and
    5xx raise :class:`~domain.errors.TransientDeliveryError`; any other answer
    :class:`~domain.errors.PermanentDeliveryError`. ``transport`` replaces httpx's network
    transport (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        format: WebhookFormat = "json",
        name: str = "webhook",
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.format = format
        self._url = url
        self._timeout = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        _hide_in_httpx_logs(str(httpx.URL(url)))

    async def send(self, record: AlertRecord) -> None:
        """POST the alert once (on one client, made at the first call: the dispatcher's one
        event loop makes every call)."""
        body = webhook_payload(record, self.format)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
        try:
            response = await self._client.post(self._url, json=body)
        except httpx.TransportError as exc:  # the exception's text may hold the URL
            raise TransientDeliveryError(f"{self.name}: {type(exc).__name__}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        message = f"{self.name}: answered HTTP {status}"
        if status >= 500 or status in _RETRIED_STATUSES:
            raise TransientDeliveryError(message)
        raise PermanentDeliveryError(message)
