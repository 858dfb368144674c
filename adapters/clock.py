"""Clocks: the only place that reads the wall clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SystemClock:
    """Wall-clock time (UTC). ``advance_to`` does nothing: wall time moves by itself."""

    def now_ms(self) -> int:
        """Current time in ms UTC."""
        return time.time_ns() // 1_000_000

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        return datetime.now(UTC)

    def advance_to(self, ms: int) -> None:
        """No-op for the wall clock."""


class SimulatedClock:
    """A clock that only moves when told to (backtests and replays).

    Raises
    ------
    ValueError
        When asked to move backwards.
    """

    def __init__(self, start_ms: int = 0) -> None:
        self._ms = start_ms

    def now_ms(self) -> int:
        """The simulated time in ms UTC."""
        return self._ms

    def now(self) -> datetime:
        """The simulated time as a timezone-aware UTC datetime."""
        return datetime.fromtimestamp(self._ms / 1000, UTC)

    def advance_to(self, ms: int) -> None:
        """Jump to ``ms``; staying put is allowed, going back is not."""
        if ms < self._ms:
            raise ValueError(f"simulated clock cannot go back from {self._ms} to {ms}")
        self._ms = ms
