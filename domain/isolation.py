"""Isolation of the adaptive pipeline's features from each other's failures (issue 6, "Robustness";
spec 001, "Error Handling" and Property 26 "Feature independence").

:meth:`FeatureGuard.call` runs a feature's code; when it raises, the caller gets its ``fallback``
(the previous thresholds or profile, an UNCERTAIN regime, a neutral 0.5 probability...) and the
pipeline goes on. The failure is queued as a :class:`FeatureFailure` for the caller to log and count
in ``lootcapital_feature_errors_total{feature}`` (this module does no I/O). After
``max_consecutive_failures`` failures in a row (3 by default) the feature disables itself: it is not
called again and returns the fallback until :meth:`FeatureGuard.reset` or a restart. A success
resets the count of consecutive failures.

Choices:

* **What is isolated**: every :class:`Exception` from feature code (``ArithmeticError``,
  ``ValueError``, ``KeyError``, ``IndexError``, domain errors...) except :class:`MemoryError`.
  ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit`` (not ``Exception`` subclasses) and
  ``MemoryError`` propagate: a guard must not hide that the process is being stopped or is out of
  memory, where going on with a fallback would only fail later, further from the cause.
* **Disabled does not survive a restart**: the issue says a feature "disables itself until
  restarted", so a new guard starts with every configured feature on and there is no
  ``state()``/``restore()``: failure counts are process health, not strategy state. So a paper run
  killed and restarted while a feature is failing counts afresh, and matches an uninterrupted run
  only when no feature fails (the expected case).
* **Time** is market time passed by the caller (``time_ms``, ms UTC); the guard reads no clock.
* Calls to a disabled or configured-off feature are not failures: they queue no event.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

from domain.errors import ConfigError

T = TypeVar("T")

DEFAULT_MAX_CONSECUTIVE_FAILURES = 3
PIPELINE_FEATURES = (
    "thresholds",
    "timeframes",
    "volume_profile",
    "regime",
    "ml",
    "exits",
    "portfolio",
)
"""The adaptive pipeline's features, each with its own ``enabled`` toggle."""


class FeatureState(StrEnum):
    """A feature's state as the API shows it: ``on`` (running), ``off`` (disabled by
    configuration, never called) or ``failed`` (disabled by itself until reset or restart)."""

    ON = "on"
    OFF = "off"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FeatureStatus:
    """Snapshot of one feature for the API and the control panel; times are market ms UTC."""

    state: FeatureState
    consecutive_failures: int
    """Failures since the last success or reset."""
    total_failures: int
    """Failures since the guard was created (:meth:`FeatureGuard.reset` keeps them)."""
    last_error: str | None
    """``"ExceptionType: message"`` of the latest failure; None if it never failed."""
    last_error_time: int | None
    """Time of the latest failure; None if it never failed."""
    disabled_since: int | None
    """Time of the failure that disabled the feature; None unless ``failed``."""


@dataclass(frozen=True, slots=True)
class FeatureFailure:
    """One failure of a feature's code, for the caller to log and count; time in market ms UTC."""

    feature: str
    """The feature's name: the ``feature`` label of ``lootcapital_feature_errors_total``."""
    time: int
    error: str
    """``"ExceptionType: message"``."""
    where: str
    """``"file:line in function"`` of the innermost frame that raised, for the log."""
    consecutive: int
    """Consecutive failures of this feature, this one included."""
    disabled: bool
    """True when this failure disabled the feature."""


class FeatureGuard:
    """Runs named features so that one failing feature cannot stop or change the others.

    Parameters
    ----------
    features:
        Feature name → ``enabled`` toggle from the configuration.
    max_consecutive_failures:
        Failures in a row after which a feature disables itself, >= 1.

    Raises
    ------
    ConfigError
        ``max_consecutive_failures`` not an integer >= 1 (field ``max_consecutive_failures``), an
        empty feature name (field ``features``), or an ``enabled`` that is not a bool (field
        ``<name>.enabled``).
    """

    def __init__(
        self,
        features: Mapping[str, bool],
        *,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
    ) -> None:
        limit = max_consecutive_failures
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(
                f"max_consecutive_failures must be an integer >= 1, was {limit!r}",
                field="max_consecutive_failures",
            )
        for name, enabled in features.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(
                    f"feature names must be non-empty, was {name!r}", field="features"
                )
            if not isinstance(enabled, bool):
                raise ConfigError(
                    f"{name}.enabled must be true or false, was {enabled!r}",
                    field=f"{name}.enabled",
                )
        self.max_consecutive_failures = limit
        self._status = {
            name: FeatureStatus(FeatureState.ON if on else FeatureState.OFF, 0, 0, None, None, None)
            for name, on in features.items()
        }
        self._events: list[FeatureFailure] = []

    def call(self, name: str, fn: Callable[..., T], *args: object, fallback: T, time_ms: int) -> T:
        """Run ``fn(*args)`` for feature ``name``, or return ``fallback`` if it is off or fails.

        Parameters
        ----------
        name:
            A feature given to the constructor.
        fn, args:
            The feature's code and its positional arguments (bind keywords with a lambda or
            :func:`functools.partial`).
        fallback:
            Returned when the feature is off by configuration, disabled, or raises.
        time_ms:
            Market time of the call, ms UTC, recorded with a failure.

        Returns
        -------
        ``fn(*args)``, or ``fallback``. A failure also queues a :class:`FeatureFailure`.

        Raises
        ------
        ConfigError
            ``name`` is not a known feature (field ``feature``).
        BaseException
            ``MemoryError`` and whatever is not an ``Exception`` (``KeyboardInterrupt``,
            ``SystemExit``...) propagate from ``fn`` unchanged, with nothing recorded.
        """
        status = self._get(name)
        if status.state is not FeatureState.ON:
            return fallback
        try:
            result = fn(*args)
        except MemoryError:
            raise
        except Exception as exc:  # isolating feature failures is this class's job
            self._fail(name, status, exc, time_ms)
            return fallback
        if status.consecutive_failures:
            self._status[name] = replace(status, consecutive_failures=0)
        return result

    def is_active(self, name: str) -> bool:
        """Whether ``call`` would run the feature's code (on, not disabled); lets a caller skip
        preparing inputs for a feature that will not run.

        Raises
        ------
        ConfigError
            ``name`` is not a known feature (field ``feature``).
        """
        return self._get(name).state is FeatureState.ON

    def status(self) -> dict[str, FeatureStatus]:
        """Every feature's :class:`FeatureStatus`, by name, in the constructor's order."""
        return dict(self._status)

    def drain_events(self) -> list[FeatureFailure]:
        """The failures queued since the last drain, oldest first; the queue is emptied."""
        events, self._events = self._events, []
        return events

    def reset(self, name: str | None = None) -> None:
        """Re-enable a failed feature (``name``) or all of them (None), as a restart would.

        Consecutive counts and ``disabled_since`` are cleared; ``total_failures`` and the last
        error are kept as history, and features off by configuration stay off.

        Raises
        ------
        ConfigError
            ``name`` is not a known feature (field ``feature``).
        """
        for key in self._status if name is None else [name]:
            status = self._get(key)
            state = FeatureState.OFF if status.state is FeatureState.OFF else FeatureState.ON
            self._status[key] = replace(
                status, state=state, consecutive_failures=0, disabled_since=None
            )

    def _get(self, name: str) -> FeatureStatus:
        try:
            return self._status[name]
        except KeyError:
            known = ", ".join(self._status) or "none"
            raise ConfigError(
                f"unknown feature {name!r}; known: {known}", field="feature"
            ) from None

    def _fail(self, name: str, status: FeatureStatus, exc: Exception, time_ms: int) -> None:
        consecutive = status.consecutive_failures + 1
        disabled = consecutive >= self.max_consecutive_failures
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self._status[name] = replace(
            status,
            state=FeatureState.FAILED if disabled else FeatureState.ON,
            consecutive_failures=consecutive,
            total_failures=status.total_failures + 1,
            last_error=error,
            last_error_time=time_ms,
            disabled_since=time_ms if disabled else None,
        )
        self._events.append(
            FeatureFailure(name, time_ms, error, _where(exc), consecutive, disabled)
        )


def _where(exc: BaseException) -> str:
    """``"file:line in function"`` of the frame that raised ``exc``, or ``"unknown"``."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    last = frames[-1]
    return f"{last.filename}:{last.lineno} in {last.name}"
