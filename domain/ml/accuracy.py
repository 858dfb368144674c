"""The live accuracy of a predictor (issue 7, spec 001 Property 14): the accuracy of the last
100 resolved predictions, whose labels resolve a horizon later in market time; below the minimum
(55 %) the predictor disables itself and raises an alert. Pure: the caller gives the realized
labels; times are int ms UTC, probabilities fractions in [0, 1]."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import DataError
from domain.ml.validation import as_probabilities, checked_fraction, checked_int

_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class AccuracyAlert:
    """The rolling accuracy fell below the minimum at ``time`` (ms UTC, the ``now_ms`` of the
    :meth:`RollingAccuracy.resolve` call): the predictor is disabled (Property 14)."""

    time: int
    accuracy: float
    window: int
    min_accuracy: float

    @property
    def message(self) -> str:
        """One line for the user."""
        return (
            f"ML predictor disabled: accuracy {self.accuracy:.1%} over the last {self.window} "
            f"resolved predictions is below {self.min_accuracy:.1%}"
        )


class RollingAccuracy:
    """Accuracy of the last ``window`` resolved predictions, with the pending ones.

    A prediction ``p`` made at ``time_ms`` resolves ``horizon_ms`` later in market time with the
    realized label the caller supplies, correct when ``(p > 0.5) == (label == 1)``. The first time
    the share correct among the last ``window`` (once that many resolved) is below
    ``min_accuracy``, the tracker is disabled and :meth:`resolve` returns one
    :class:`AccuracyAlert` (Property 14). It stays disabled (still counting): activating a new
    model starts a new tracker. :meth:`state` / :meth:`restore` carry pending predictions and the
    window through a restart; adding the last prediction's time again (a replayed bar) is
    ignored, so nothing is forgotten or counted twice.

    Raises
    ------
    ConfigError
        ``horizon_ms < 1``, ``window < 1`` or ``min_accuracy`` outside [0, 1].
    """

    def __init__(self, horizon_ms: int, *, window: int = 100, min_accuracy: float = 0.55) -> None:
        self.horizon_ms = checked_int("horizon_ms", horizon_ms, 1)
        self.window = checked_int("window", window, 1)
        self.min_accuracy = checked_fraction("min_accuracy", min_accuracy, 0.0, 1.0)
        self._pending: deque[tuple[int, float]] = deque()
        self._hits: deque[int] = deque()
        self._correct = 0
        self._disabled = False
        self._last_time: int | None = None
        self.resolved = 0  # predictions counted, ever
        self.dropped = 0  # predictions whose outcome was unknown when due

    @property
    def disabled(self) -> bool:
        """Whether the accuracy has fallen below the minimum since this tracker started."""
        return self._disabled

    @property
    def accuracy(self) -> float | None:
        """Share correct among the last ``window`` resolved (fewer at the start); ``None`` before
        the first resolves."""
        return self._correct / len(self._hits) if self._hits else None

    @property
    def pending(self) -> tuple[tuple[int, float], ...]:
        """The unresolved ``(time_ms, proba)`` predictions, oldest first."""
        return tuple(self._pending)

    def add(self, time_ms: int, proba: float) -> bool:
        """Record prediction ``proba`` made at ``time_ms`` (ms UTC); ``False`` when a prediction
        for this time is already recorded (a replayed bar: the first one counts).

        Raises
        ------
        DataError
            ``time_ms`` before the last prediction's, or ``proba`` invalid (Property 11).
        """
        if self._last_time is not None and time_ms <= self._last_time:
            if time_ms == self._last_time:
                return False
            raise DataError(f"prediction time {time_ms} is before the last one, {self._last_time}")
        self._pending.append((int(time_ms), float(as_probabilities([proba])[0])))
        self._last_time = int(time_ms)
        return True

    def due(self, now_ms: int) -> list[int]:
        """Times (ms UTC) of the pending predictions that resolve by ``now_ms``."""
        return [t for t, _ in self._pending if t + self.horizon_ms <= now_ms]

    def resolve(self, now_ms: int, label_of: Callable[[int], int | None]) -> list[AccuracyAlert]:
        """Resolve, oldest first, every pending prediction made at ``t`` with ``t + horizon_ms <=
        now_ms``; ``label_of(t)`` gives its realized label (0/1), or ``None`` when the outcome
        cannot be known (missing bars): that prediction is dropped uncounted, since a later
        call would not know it either. Returns the alert when this call disables the tracker.

        Raises
        ------
        DataError
            ``label_of`` returns something other than 0, 1 or ``None``.
        """
        alerts: list[AccuracyAlert] = []
        while self._pending and self._pending[0][0] + self.horizon_ms <= now_ms:
            time, proba = self._pending[0]
            label = label_of(time)
            if label is not None and label not in (0, 1):
                raise DataError(f"label for the prediction at {time} must be 0 or 1, was {label!r}")
            self._pending.popleft()
            if label is None:
                self.dropped += 1
                continue
            self._count(int((proba > 0.5) == (label == 1)))
            if not self._disabled and len(self._hits) == self.window:
                accuracy = self._correct / self.window
                if accuracy < self.min_accuracy:
                    self._disabled = True
                    alerts.append(AccuracyAlert(now_ms, accuracy, self.window, self.min_accuracy))
        return alerts

    def _count(self, hit: int) -> None:
        self._hits.append(hit)
        self._correct += hit
        if len(self._hits) > self.window:
            self._correct -= self._hits.popleft()
        self.resolved += 1

    def state(self) -> dict[str, Any]:
        """The path-dependent state, JSON-serializable (probabilities round-trip exactly)."""
        return {
            "version": _STATE_VERSION,
            "pending": [[t, p] for t, p in self._pending],
            "hits": list(self._hits),
            "disabled": self._disabled,
            "last_time": self._last_time,
            "resolved": self.resolved,
            "dropped": self.dropped,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (as returned by :meth:`state`) after a restart; the window keeps
        its last ``window`` outcomes under this tracker's configuration.

        Raises
        ------
        ValueError
            When ``state`` is of another version or malformed.
        """
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"rolling accuracy state version must be {_STATE_VERSION}: {state!r}")
        try:
            pending = [(int(t), float(p)) for t, p in state["pending"]]
            hits = [int(h) for h in state["hits"]][-self.window :]
            last = None if state["last_time"] is None else int(state["last_time"])
            counts, disabled = (int(state["resolved"]), int(state["dropped"])), state["disabled"]
            times = [t for t, _ in pending]
            as_probabilities([p for _, p in pending], tol=0.0)
        except (KeyError, TypeError, ValueError, DataError) as exc:
            raise ValueError(f"malformed rolling accuracy state: {exc!r}") from exc
        if times != sorted(set(times)) or (times and (last is None or times[-1] > last)):
            raise ValueError(f"pending times must ascend to last_time {last}, were {times}")
        if not set(hits) <= {0, 1} or not isinstance(disabled, bool):
            raise ValueError(f"hits must be 0/1 and disabled a bool: {hits}, {disabled!r}")
        self._pending, self._hits, self._correct = deque(pending), deque(hits), sum(hits)
        self._disabled, self._last_time = disabled, last
        self.resolved, self.dropped = counts
