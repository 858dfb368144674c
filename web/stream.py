"""Server-Sent Events for the panel's pages: engine events in, re-rendered panels out.

Each hub message marks the panels it changes as dirty; a dirty panel is re-rendered and sent as
an SSE event named after it (its data is the panel's HTML, which the htmx SSE extension swaps
into the element with the matching ``sse-swap``). A panel is sent at most once per
:data:`MIN_INTERVAL_S`, its last state always last: a 30 000× replay produces hundreds of events a
second and the page needs only the latest picture. Equity points are not throttled: each becomes
an ``equity`` event with JSON data ``{"time": ms, "equity": float}`` that the chart appends; when
the hub reports lost messages, a ``resync`` event tells the chart to reload its series.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Iterable

from starlette.concurrency import run_in_threadpool

from api.hub import EventHub
from service_layer.trading import TradingService
from web.views import DASHBOARD_PANELS, PANELS, render_panel

MIN_INTERVAL_S = 0.5
"""Shortest time between two sends of one panel (at most 2 per second)."""
KEEPALIVE_S = 15.0
"""A comment line is sent after this long without any event, so proxies keep the stream open."""
POLL_S = 1.0
"""Longest wait before checking again whether the client has gone."""
RETRY_MS = 2_000
"""How long the browser waits before reconnecting a dropped stream."""
MAX_DRAIN = 1_000
"""Most hub messages handled in one step (more wait for the next)."""

PANELS_BY_MESSAGE: dict[str, tuple[str, ...]] = {
    "candle": ("status", "positions", "balance"),  # new marks move unrealized PnL and margin
    "equity": ("status",),
    "status": ("status",),
    "position": ("positions", "balance"),
    "fill": ("positions", "trades", "balance"),
    "order": ("orders",),
    "signal": ("signals",),
    "risk": ("risk", "alerts"),  # a trading-state change or a risk alert
    "alert": ("alert_log",),  # an alert fired (its delivery shows at the next refresh)
    "lagged": tuple(PANELS),  # messages were lost: refresh everything
}
"""Panels to re-render per hub message type (a stream sends only those of its page)."""

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def sse_event(event: str, data: str) -> str:
    """One SSE event: ``event: <name>`` then one ``data:`` line per line of ``data``.

    SSE splits fields on CR, LF and CRLF alike and joins ``data:`` lines with LF, so multi-line
    HTML arrives whole.
    """
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return f"event: {event}\n{lines}\n"


def equity_event(data: dict) -> str:
    """The chart's ``equity`` event for a hub equity message's ``data``."""
    point = {"time": int(data["time"]), "equity": float(data["equity"])}
    return sse_event("equity", json.dumps(point, separators=(",", ":")))


def _chart_event(message: dict) -> str:
    """An equity point for the chart, or (messages were lost) ``resync``: reload the series."""
    if message["type"] == "lagged":
        return sse_event("resync", "{}")
    return equity_event(message["data"])


class PanelThrottle:
    """Which dirty panels may be sent now, at most one send per panel per ``interval_s``."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._dirty: set[str] = set()
        self._last: dict[str, float] = {}

    def mark(self, names: Iterable[str]) -> None:
        """Note that ``names`` changed."""
        self._dirty.update(names)

    def take_due(self, now: float) -> list[str]:
        """The dirty panels whose interval has passed at ``now`` (seconds); they are clean
        afterwards and their interval restarts."""
        due = [
            n for n in self._dirty if now - self._last.get(n, -self.interval_s) >= self.interval_s
        ]
        for name in due:
            self._dirty.discard(name)
            self._last[name] = now
        return sorted(due)

    def wait_s(self, now: float) -> float | None:
        """Seconds until the next dirty panel is due (None when none is dirty)."""
        if not self._dirty:
            return None
        due = min(self._last.get(n, -self.interval_s) + self.interval_s for n in self._dirty)
        return max(0.0, due - now)


async def _next_messages(queue: asyncio.Queue[dict], timeout_s: float) -> list[dict]:
    """What is queued, else the messages that come within ``timeout_s`` (waits for the first,
    then takes what is there)."""
    messages: list[dict] = []
    if queue.empty():
        if timeout_s <= 0:
            return messages
        try:
            messages.append(await asyncio.wait_for(queue.get(), timeout_s))
        except TimeoutError:
            return messages
    while len(messages) < MAX_DRAIN and not queue.empty():
        messages.append(queue.get_nowait())
    return messages


async def event_stream(
    service: TradingService,
    hub: EventHub,
    is_disconnected: Callable[[], Awaitable[bool]],
    *,
    panels: Collection[str] = DASHBOARD_PANELS,
    chart: bool = True,
    min_interval_s: float = MIN_INTERVAL_S,
    keepalive_s: float = KEEPALIVE_S,
    monotonic: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[str, None]:
    """A page's SSE stream of ``panels`` (names in :data:`~web.views.PANELS`), until
    ``is_disconnected()`` says the client has gone; with ``chart``, also the equity points
    (a page without the chart goes without them).

    It opens with every panel (a reconnecting page catches up on what it missed), then sends
    the panels that hub messages change and the equity points as they come.
    """
    wanted = frozenset(panels)
    throttle = PanelThrottle(min_interval_s)
    throttle.mark(wanted)
    with hub.subscribe() as queue:
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        last_sent = monotonic()
        while not await is_disconnected():
            now = monotonic()
            chunks = [
                sse_event(name, await run_in_threadpool(render_panel, name, service))
                for name in throttle.take_due(now)
            ]
            if chunks:
                yield "".join(chunks)
                last_sent = now
            elif now - last_sent >= keepalive_s:
                yield ": keep-alive\n\n"
                last_sent = now
            waits = [POLL_S, keepalive_s - (now - last_sent), throttle.wait_s(now)]
            messages = await _next_messages(queue, max(0.0, min(w for w in waits if w is not None)))
            points = [
                _chart_event(m) for m in messages if chart and m["type"] in ("equity", "lagged")
            ]
            if points:
                yield "".join(points)
                last_sent = monotonic()
            for message in messages:
                changed = PANELS_BY_MESSAGE.get(message["type"], ())
                throttle.mark(name for name in changed if name in wanted)
