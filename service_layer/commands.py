"""Commands for the engine's one owner: mutating calls run in order on the engine's thread.

While a run is going, the engine thread owns the engine: an API call that places or cancels an
order, or stops the run, is queued here and executed by that thread between bars (or while it
waits for the next bar), and the caller waits for the result. When no run is going, the caller
runs the command itself under the queue's lock, so there is never a second writer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

_TIMEOUT_S = 30.0


class CommandQueue:
    """Serializes commands with the engine thread (see the module docstring)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = (
            queue.SimpleQueue()
        )
        self.lock = threading.RLock()
        """Held while a command runs outside the owner thread, and while ownership changes."""
        self._owned = False

    def call(self, command: Callable[[], T]) -> T:
        """Run ``command`` on the owner thread when one runs, else here; returns its result or
        raises its exception."""
        with self.lock:
            if not self._owned or threading.current_thread().name == "engine":
                return command()
            future: Future[object] = Future()
            self._queue.put((command, future))
        return future.result(timeout=_TIMEOUT_S)  # type: ignore[return-value]

    def own(self) -> None:
        """Mark the calling thread as the owner (commands now queue for it)."""
        with self.lock:
            self._owned = True

    def release(self) -> None:
        """Run what is still queued and stop owning: later commands run in their caller."""
        with self.lock:
            self.run_pending()
            self._owned = False

    def run_pending(self) -> None:
        """Run every queued command now (owner thread)."""
        while not self._queue.empty():
            try:
                command, future = self._queue.get_nowait()
            except queue.Empty:
                return
            self._run(command, future)

    def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a command and run it (owner thread; the feed's sleep)."""
        try:
            command, future = self._queue.get(timeout=max(seconds, 0.0))
        except queue.Empty:
            return
        self._run(command, future)
        self.run_pending()

    @staticmethod
    def _run(command: Callable[[], object], future: Future[object]) -> None:
        try:
            future.set_result(command())
        except BaseException as exc:  # handed to the waiting caller, who re-raises it
            future.set_exception(exc)
