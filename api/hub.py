"""Bridges bus events from the engine thread to asyncio subscribers (WebSocket, SSE).

Each subscriber gets a bounded queue; a subscriber too slow to keep up loses what is queued
for it rather than slowing the engine: when its queue is full, the queue is emptied and one
``{"type": "lagged"}`` message goes in before the new message, so the client resyncs once
(reloads what it shows) and still gets every message from then on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

QUEUE_SIZE = 2_000


class EventHub:
    """Fan-out of WebSocket-shaped messages to asyncio queues.

    Call :meth:`attach` from the event loop at start-up; :meth:`handle` is a bus handler that
    may run in any thread. ``render`` builds an event's message (None: not pushed), e.g.
    :class:`api.messages.WsMessages`. ``queue_size`` (>= 2) bounds each subscriber's queue.

    Raises
    ------
    ValueError
        When ``queue_size`` is below 2 (the lagged message and the new one must both fit).
    """

    def __init__(
        self, render: Callable[[object], dict[str, Any] | None], queue_size: int = QUEUE_SIZE
    ) -> None:
        if queue_size < 2:
            raise ValueError(f"queue_size must be >= 2, was {queue_size}")
        self._render = render
        self._queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[dict]] = set()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver messages on ``loop``."""
        self._loop = loop

    @property
    def clients(self) -> int:
        """Number of current subscribers."""
        return len(self._queues)

    def handle(self, event: object) -> None:
        """Bus handler: convert ``event`` and queue it for every subscriber (nothing to do
        while there is none)."""
        loop = self._loop
        if not self._queues or loop is None or loop.is_closed():
            return
        message = self._render(event)
        if message is None:
            return
        loop.call_soon_threadsafe(self._deliver, message)

    def _deliver(self, message: dict) -> None:
        for queue in list(self._queues):
            if queue.full():
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"type": "lagged", "ts": message["ts"], "data": {}})
            queue.put_nowait(message)

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[dict]]:
        """A queue of messages for the duration of the ``with`` block."""
        queue: asyncio.Queue[dict] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
