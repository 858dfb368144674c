"""Request timing: an ASGI middleware observing each HTTP request's latency in a histogram.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``: that one proxies every
response body through a task group, which adds a hop to each request and, under load, could end
a streaming response (the panel's Server-Sent Events) right after its first chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestTimer:
    """Observes ``histogram{method, route, status}`` with the seconds from a request's arrival
    to the start of its response (the time to the first byte; a stream's later chunks are not
    counted). ``route`` is the matched route's template (:func:`route_template`)."""

    def __init__(
        self, app: ASGIApp, histogram: Histogram, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.app = app
        self.histogram = histogram
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time one HTTP request (other scopes pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                labels = (scope["method"], route_template(scope), str(message["status"]))
                self.histogram.labels(*labels).observe(self.clock() - started)
            await send(message)

        await self.app(scope, receive, timed_send)


def route_template(scope: dict[str, Any]) -> str:
    """The matched route as a template (``/api/v1/orders/{order_id}``): path parameters are put
    back as names so metric labels stay few; requests that matched no route share one label."""
    if scope.get("route") is None:
        return "unmatched"
    path: str = scope["path"]
    for name, value in scope.get("path_params", {}).items():
        head, sep, tail = path.rpartition(str(value))
        if sep:
            path = f"{head}{{{name}}}{tail}"
    return path
