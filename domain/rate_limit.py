"""A venue's request budget (spec 001 Property 30: "for any 1-minute window, the total number
of API requests must not exceed 1200"): a sliding window over request weights in market time.

Pure: the caller gives the time (ms UTC, from its Clock) and waits the delay it is told before
sending (queueing the request), then records it. A venue adapter puts every REST call through
one budget per venue and account; the retries after a venue's own rate-limit answer back off
exponentially in the adapter (tenacity), outside this window.
"""

from __future__ import annotations

from collections import deque

WINDOW_MS = 60_000
LIMIT = 1_200


class RequestWindow:
    """At most ``limit`` request weight in any window of ``window_ms`` (the requests sent at
    times in ``(t − window_ms, t]``).

    Raises
    ------
    ValueError
        On a ``limit`` or ``window_ms`` below 1.
    """

    def __init__(self, limit: int = LIMIT, window_ms: int = WINDOW_MS) -> None:
        if limit < 1 or window_ms < 1:
            raise ValueError(f"limit and window_ms must be >= 1, were {limit}, {window_ms}")
        self.limit, self.window_ms = limit, window_ms
        self._sent: deque[tuple[int, int]] = deque()  # (time, weight), oldest first
        self._used = 0

    def used(self, now: int) -> int:
        """The weight sent in the window ending at ``now`` (ms UTC)."""
        self._expire(now)
        return self._used

    def delay(self, now: int, weight: int = 1) -> int:
        """Milliseconds from ``now`` until a request of ``weight`` fits the window (0: send it
        now): until enough of the oldest requests have left it.

        Raises
        ------
        ValueError
            On a ``weight`` below 1 or above the limit (it could never be sent).
        """
        self._check(weight)
        over = self.used(now) + weight - self.limit
        if over <= 0:
            return 0
        for time, sent in self._sent:
            over -= sent
            if over <= 0:
                return time + self.window_ms - now
        raise AssertionError("unreachable: the window holds at most the limit")

    def record(self, now: int, weight: int = 1) -> None:
        """Count a request of ``weight`` sent at ``now`` (ms UTC, not before the last one).

        Raises
        ------
        ValueError
            When it does not fit the window now (the caller did not wait :meth:`delay`), when
            ``now`` is before the last request, or on a bad ``weight``.
        """
        if self._sent and now < self._sent[-1][0]:
            raise ValueError(f"request at {now} before the last one at {self._sent[-1][0]}")
        wait = self.delay(now, weight)
        if wait:
            raise ValueError(f"over {self.limit} per {self.window_ms} ms: wait {wait} ms first")
        self._sent.append((now, weight))
        self._used += weight

    def _expire(self, now: int) -> None:
        sent = self._sent
        while sent and sent[0][0] <= now - self.window_ms:
            self._used -= sent.popleft()[1]

    def _check(self, weight: int) -> None:
        if not 1 <= weight <= self.limit:
            raise ValueError(f"weight must be in [1, {self.limit}], was {weight}")
