"""A small synchronous message bus: handlers subscribe to event types; publish calls them.

Handlers run in the publisher's thread, after the unit of work committed. A failing handler is
logged and does not stop the others (a broken WebSocket client must not stop trading).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

Handler = Callable[[object], None]


class MessageBus:
    """Fan-out of domain events to handlers, by event class (``object`` receives every event)."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}
        self._lock = threading.Lock()

    def subscribe(self, event_type: type, handler: Handler) -> Callable[[], None]:
        """Call ``handler(event)`` for each published event of ``event_type``; returns a
        function that unsubscribes."""
        with self._lock:
            self._handlers.setdefault(event_type, []).append(handler)

        def unsubscribe() -> None:
            with self._lock:
                self._handlers.get(event_type, []).remove(handler)

        return unsubscribe

    def publish(self, events: Iterable[object]) -> None:
        """Deliver ``events`` in order to their handlers."""
        for event in events:
            with self._lock:
                handlers = [*self._handlers.get(type(event), []), *self._handlers.get(object, [])]
            for handler in handlers:
                try:
                    handler(event)
                except Exception:
                    logger.exception("event handler %r failed on %s", handler, type(event).__name__)
