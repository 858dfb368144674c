"""The machinery the venue execution clients share: an asyncio event loop on a thread of its
own, which the synchronous engine calls into and waits on (:class:`ExecutionLoop`); a private
stream kept open with backoff (:func:`keep_watching`); the submit → acknowledgement latencies
of its orders (:class:`LatencyRecorder`); and the client's counters added to the venue's status
(:func:`with_client_activity`).

None of it knows a venue's wire format: the venue packages
(:mod:`adapters.venues.binance_usdm`, :mod:`adapters.venues.mexc`) pass in their connections,
their request paths and their log lines.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import ccxt

from domain.errors import TransientVenueError, VenueError
from domain.venues import ORDER_LATENCY_BOUNDS_S, LatencyHistogram, VenueStatus

T = TypeVar("T")


class ExecutionLoop:
    """An event loop running on a daemon thread, owned by one execution client: every call of
    the client runs a coroutine there and waits for its answer, so all of the client's state
    changes on that one thread.

    Parameters
    ----------
    venue:
        The venue's name, for the errors.
    thread_name:
        The loop thread's name.
    limit_s:
        How long (seconds) :meth:`run` waits for an answer.
    close_connections:
        Closes the client's connections; awaited on the loop by :meth:`stop`, after the
        spawned tasks are canceled.
    """

    def __init__(
        self,
        venue: str,
        *,
        thread_name: str,
        limit_s: float,
        close_connections: Callable[[], Awaitable[None]],
    ) -> None:
        self.venue = venue
        self.limit_s = limit_s
        self._thread_name = thread_name
        self._close_connections = close_connections
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, opening: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start the loop on its thread and run ``opening()`` there; when that fails, stop
        again (:meth:`stop`) and raise what it raised.

        Raises
        ------
        TransientVenueError
            ``opening()`` did not end within ``limit_s``.
        BaseException
            Whatever ``opening()`` raised.
        """
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=self._thread_name, daemon=True
        )
        self._thread.start()
        try:
            self.run(opening())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Cancel the spawned tasks, close the connections, cancel every other task on the
        loop (e.g. ccxt's reconnections waiting out their backoff), then stop and close the
        loop and join its thread; nothing when not started."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self.run(self._shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result.

        Raises
        ------
        RuntimeError
            The loop is not started (``coroutine`` is closed unrun).
        TransientVenueError
            No answer within ``limit_s`` (the coroutine is canceled).
        """
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError(f"the {self.venue} execution client is not started")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout=self.limit_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TransientVenueError(
                f"{self.venue} did not answer within {self.limit_s:.0f} s"
            ) from None

    def call(self, function: Callable[[], T]) -> T:
        """``function()`` called on the loop's thread; raises as :meth:`run`."""
        return self.run(_called(function))

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` as a background task, canceled by :meth:`stop`; call it on the
        loop's thread."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_connections()
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)


async def _called(function: Callable[[], T]) -> T:
    return function()


async def keep_watching(
    watch: Callable[[], Awaitable[object]],
    *,
    backoff_s: float,
    max_backoff_s: float,
    on_lost: Callable[[Exception], None],
) -> None:
    """Await ``watch()`` again and again, forever (until canceled). When it fails with a ccxt
    error or a :class:`~domain.errors.VenueError`, ``on_lost`` is told and the next try waits
    ``backoff_s`` seconds, doubled after each failure in a row up to ``max_backoff_s``."""
    delay = backoff_s
    while True:
        try:
            await watch()
        except (ccxt.BaseError, VenueError) as exc:
            on_lost(exc)
            await asyncio.sleep(delay)
            delay = min(2 * delay, max_backoff_s)
        else:
            delay = backoff_s


class LatencyRecorder:
    """Latencies (seconds) counted in buckets (:data:`ORDER_LATENCY_BOUNDS_S` unless
    ``bounds`` are given): observed on one thread, read whole on any other (under a lock)."""

    def __init__(self, bounds: tuple[float, ...] = ORDER_LATENCY_BOUNDS_S) -> None:
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum_s = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Count one latency of ``seconds`` (a negative one, from a clock step, counts 0)."""
        seconds = max(0.0, seconds)
        with self._lock:
            self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
            self._sum_s += seconds

    def snapshot(self) -> LatencyHistogram:
        """The latencies counted so far."""
        with self._lock:
            return LatencyHistogram(self._bounds, tuple(self._counts), self._sum_s)


def with_client_activity(
    status: VenueStatus,
    *,
    responses: Mapping[tuple[str, int], int],
    lost_answers: Mapping[bool, int],
    lost_paths: tuple[str, str],
    stream_opens: int,
    user_events: Mapping[str, int],
    order_latency: LatencyHistogram,
) -> VenueStatus:
    """``status`` with an execution client's counters added: its REST ``responses`` (by
    ``(path, HTTP status)``) to ``requests`` as ``"<path> <status>"``, its submissions whose
    answer was lost (by whether the order was a conditional one) as ``"<path> unknown"``
    (``lost_paths``: the plain order's path, then the conditional order's), its private
    stream's reopenings (``stream_opens`` less the first) as ``reconnects["user-data"]``, what
    its user-data stream brought that it absorbed (``user_events``, by kind) and its orders'
    submit → acknowledgement latencies (``order_latency``). The counters are copied whole
    first, so they may change on another thread meanwhile."""
    requests = Counter(status.requests)
    for (path, code), n in dict(responses).items():
        requests[f"{path} {code}"] += n
    order_path, conditional_path = lost_paths
    for conditional, n in dict(lost_answers).items():
        requests[f"{conditional_path if conditional else order_path} unknown"] += n
    reconnects = dict(status.reconnects) | {"user-data": max(0, stream_opens - 1)}
    return replace(
        status,
        requests=dict(sorted(requests.items())),
        reconnects=reconnects,
        user_events=dict(user_events),
        order_latency=order_latency,
    )
