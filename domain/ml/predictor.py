"""The ML predictor as the engine uses it (issue 7, spec 001 "ML Predictor", Properties 11–14).

:class:`MLPredictor` holds one trained model (any :class:`~domain.ml.models.Predictor`, or
``None`` when none could be loaded: ML is then off and the rest runs on), gives each symbol's
bar a :class:`Prediction` (P(up) in [0, 1], the top 5 feature contributions and a one-line
text), tracks its live accuracy and disables itself below the minimum. :func:`adjust_signal`
applies a prediction to a signal: above ``high`` the confidence multiplier is at least 1
(Property 12), below ``low`` the size is halved or the signal filtered (Property 13).

Accuracy (Property 14) is kept per symbol, by :class:`~domain.ml.accuracy.RollingAccuracy`, as
its times must ascend and the symbols' bars share times; the first symbol whose last ``window``
resolved predictions fall below ``min_accuracy`` disables the predictor as a whole (the model is
the suspect), until :meth:`MLPredictor.enable` activates a new one. A prediction at time ``t``
resolves ``horizon_ms`` later in market time: label 1 when the close keyed ``t + horizon_ms``
is above the close keyed ``t`` (:class:`~domain.ml.labels.TrendLabel`), or the label the caller
computes for another model kind (:class:`~domain.ml.labels.MeanReversionLabel`). Times are int
ms UTC, all keys of one convention (e.g. the open time of the bar whose close the features
read).

Pure: no I/O, no clock, no logging; an error of the model is returned in the prediction for the
caller to log.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from domain.errors import ConfigError, DataError
from domain.ml.accuracy import AccuracyAlert, RollingAccuracy
from domain.ml.explanations import explanation_text, side_of
from domain.ml.features import HOUR_MS
from domain.ml.models import Contribution, Predictor
from domain.ml.validation import as_probabilities, checked_fraction, checked_int

_STATE_VERSION = 1
TOP_FEATURES = 5


@dataclass(frozen=True, slots=True)
class MLRules:
    """How predictions act on signals and when the predictor disables itself.

    ``high`` / ``low``: P(signal's direction) above ``high`` lifts the confidence multiplier to
    at least 1, below ``low`` applies ``low_action`` (``"halve"`` the size or ``"filter"`` the
    signal); ``0 <= low <= high <= 1``. ``horizon_ms``: when a prediction's label resolves
    (4 h). ``window`` / ``min_accuracy``: the rolling accuracy of Property 14 (100, 0.55).

    Raises
    ------
    ConfigError
        A value out of range, naming its field.
    """

    high: float = 0.7
    low: float = 0.3
    low_action: str = "halve"
    horizon_ms: int = 4 * HOUR_MS
    window: int = 100
    min_accuracy: float = 0.55

    def __post_init__(self) -> None:
        checked_fraction("high", self.high, 0.0, 1.0)
        checked_fraction("low", self.low, 0.0, self.high)
        if self.low_action not in ("halve", "filter"):
            raise ConfigError(
                f"low_action must be 'halve' or 'filter', was {self.low_action!r}",
                field="low_action",
            )
        checked_int("horizon_ms", self.horizon_ms, 1)
        checked_int("window", self.window, 1)
        checked_fraction("min_accuracy", self.min_accuracy, 0.0, 1.0)


def checked_probability(p: float) -> tuple[float, str | None]:
    """``p`` as a probability in [0, 1] (Property 11) and ``None``, or ``0.5`` and the error
    when ``p`` is NaN, ±inf, not a number or outside [0, 1] beyond rounding (1e-9, clipped)."""
    try:
        return float(as_probabilities([p])[0]), None
    except (DataError, TypeError, ValueError) as exc:
        return 0.5, f"invalid probability {p!r}: {exc}"


def direction_probability(p_up: float, direction: str) -> float:
    """P(the signal's ``direction`` is right) from P(up): ``p_up`` for ``"long"``, ``1 −
    p_up`` for ``"short"``.

    Raises
    ------
    DataError
        Another direction.
    """
    if direction == "long":
        return p_up
    if direction == "short":
        return 1.0 - p_up
    raise DataError(f"direction must be 'long' or 'short', was {direction!r}")


class Adjustment(NamedTuple):
    """A signal after an ML prediction: its confidence ``multiplier`` and ``size_factor``
    (>= 0), whether it is ``filtered`` out, and the ``reason`` in one line."""

    multiplier: float
    size_factor: float
    filtered: bool
    reason: str


def adjust_signal(
    probability: float, multiplier: float, size_factor: float, rules: MLRules = MLRules()
) -> Adjustment:
    """Apply P(the signal's direction is right) ``probability`` to a signal (Properties 12, 13).

    ``p > high``: multiplier ``max(multiplier, 1)``; ``p < low``: size × 0.5, or filtered when
    ``rules.low_action == "filter"``; otherwise unchanged. An invalid ``p`` (NaN, outside
    [0, 1]) counts as 0.5 and the reason says so (Property 11).

    Raises
    ------
    DataError
        ``multiplier`` or ``size_factor`` negative or not finite.
    """
    for name, value in (("multiplier", multiplier), ("size_factor", size_factor)):
        if not math.isfinite(value) or value < 0:
            raise DataError(f"{name} must be a finite number >= 0, was {value!r}")
    p, error = checked_probability(probability)
    head = f"ML {p:.2f}" if error is None else f"ML error ({error}), taken as 0.50"
    if p > rules.high:
        lifted = max(multiplier, 1.0)
        text = f"{head} > {rules.high:g}: confidence multiplier {multiplier:.3g} -> {lifted:.3g}"
        return Adjustment(lifted, size_factor, False, text)
    if p < rules.low:
        if rules.low_action == "filter":
            return Adjustment(multiplier, size_factor, True, f"{head} < {rules.low:g}: filtered")
        halved = size_factor * 0.5
        text = f"{head} < {rules.low:g}: size {size_factor:.3g} -> {halved:.3g}"
        return Adjustment(multiplier, halved, False, text)
    return Adjustment(multiplier, size_factor, False, f"{head}: unchanged")


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's view of ``symbol``'s bar at ``time`` (ms UTC): ``probability`` = P(up) in
    [0, 1], the ``contributions`` of the top features to it (largest first, probability
    units), a one-line ``text``, and ``error`` (``None``, or why ``probability`` is the
    neutral 0.5 or the contributions are missing: for the caller to log)."""

    symbol: str
    time: int
    probability: float
    contributions: tuple[Contribution, ...]
    text: str
    error: str | None = None
    model_id: str = ""

    def for_direction(self, direction: str) -> float:
        """P(a ``"long"`` / ``"short"`` signal is right), see :func:`direction_probability`."""
        return direction_probability(self.probability, direction)


class MLPredictor:
    """Predictions of one model for several symbols, with the model's live accuracy.

    Parameters
    ----------
    model:
        A fitted model, or ``None``: ML is off (:attr:`enabled` false, :meth:`predict` gives
        ``None``) until :meth:`enable`.
    model_id:
        The registry id of ``model``: the state records it, so a state of another model is
        not restored onto this one.
    rules:
        Thresholds, horizon and accuracy window.
    load_error:
        Why ``model`` is ``None`` (shown by :attr:`disabled_reason`).
    """

    def __init__(
        self,
        model: Predictor | None,
        *,
        model_id: str = "",
        rules: MLRules = MLRules(),
        load_error: str | None = None,
    ) -> None:
        self.rules = rules
        self.enable(model, model_id=model_id, load_error=load_error)

    def enable(
        self, model: Predictor | None, *, model_id: str = "", load_error: str | None = None
    ) -> None:
        """Activate ``model`` (a new one re-enables a disabled predictor): accuracy, pending
        predictions and last predictions start afresh, as they were the old model's."""
        self.model, self.model_id = model, model_id
        self._load_error = load_error if model is None else None
        self._trackers: dict[str, RollingAccuracy] = {}
        self._last: dict[str, Prediction] = {}
        self._alert: AccuracyAlert | None = None

    @property
    def enabled(self) -> bool:
        """Whether a model is loaded and its accuracy has not fallen below the minimum."""
        return self.model is not None and self._alert is None

    @property
    def disabled_reason(self) -> str | None:
        """Why :attr:`enabled` is false, or ``None``."""
        if self.model is None:
            return self._load_error or "no model loaded"
        return None if self._alert is None else self._alert.message

    def accuracy(self, symbol: str) -> float | None:
        """Share correct of ``symbol``'s last ``window`` resolved predictions, or ``None``."""
        tracker = self._trackers.get(symbol)
        return None if tracker is None else tracker.accuracy

    def pending(self, symbol: str) -> tuple[tuple[int, float], ...]:
        """``symbol``'s unresolved ``(time_ms, P(up))`` predictions, oldest first."""
        tracker = self._trackers.get(symbol)
        return () if tracker is None else tracker.pending

    def last(self, symbol: str) -> Prediction | None:
        """The latest prediction for ``symbol`` since the model was enabled (not persisted)."""
        return self._last.get(symbol)

    def predict(self, symbol: str, time_ms: int, feature_row: np.ndarray) -> Prediction | None:
        """Predict P(up) for ``symbol``'s bar keyed ``time_ms`` from its ``feature_row``
        ``(k,)`` (the model's ``feature_names`` order, NaN allowed); ``None`` when disabled.

        A model error gives probability 0.5 with ``error`` set and is not counted in the
        accuracy; a failed explanation keeps the probability, with ``error`` set. A time
        already predicted (a replayed bar) returns a prediction but is counted once.

        Raises
        ------
        DataError
            ``time_ms`` before ``symbol``'s last prediction.
        """
        if not self.enabled:
            return None
        row = np.asarray(feature_row, dtype=np.float64)
        try:
            p, error = checked_probability(float(self.model.predict_proba(row)[0]))
        except Exception as exc:  # a broken model must not stop the engine: 0.5, reported
            p, error = 0.5, f"prediction failed: {type(exc).__name__}: {exc}"
        contributions: tuple[Contribution, ...] = ()
        if error is None:
            try:
                contributions = tuple(self.model.explain(row, top=TOP_FEATURES))
            except Exception as exc:  # the probability stands without its explanation
                error = f"explanation failed: {type(exc).__name__}: {exc}"
            tracker = self._trackers.get(symbol) or self._new_tracker(symbol)
            tracker.add(int(time_ms), p)
        text = explanation_text(side_of(p), contributions, probability=p)
        prediction = Prediction(symbol, int(time_ms), p, contributions, text, error, self.model_id)
        self._last[symbol] = prediction
        return prediction

    def resolve(
        self,
        symbol: str,
        latest_ms: int,
        close_at: Callable[[int], float | None],
        *,
        label_at: Callable[[int], int | None] | None = None,
    ) -> AccuracyAlert | None:
        """Resolve ``symbol``'s predictions keyed ``t <= latest_ms − horizon_ms`` (``latest_ms``
        the key of the latest closed bar): label 1 when ``close_at(t + horizon_ms) >
        close_at(t)`` (the trend label), or ``label_at(t)`` when given (another model kind's
        label, e.g. mean reversion, 0/1 resolved from bars up to ``t + horizon_ms``); a
        ``None`` close or label drops the prediction uncounted. Returns the alert when this
        call disables the predictor (Property 14); pending predictions still resolve while
        disabled."""
        tracker = self._trackers.get(symbol)
        if tracker is None:
            return None
        horizon = self.rules.horizon_ms

        def label_of(t: int) -> int | None:
            now, later = close_at(t), close_at(t + horizon)
            return None if now is None or later is None else int(later > now)

        alerts = tracker.resolve(int(latest_ms), label_of if label_at is None else label_at)
        if alerts and self._alert is None:
            self._alert = alerts[0]
            return alerts[0]
        return None

    def state(self) -> dict[str, Any]:
        """The path-dependent state, JSON-serializable: the model id and, per symbol, the
        pending predictions and the accuracy window (not the model, not the last
        predictions)."""
        return {
            "version": _STATE_VERSION,
            "model_id": self.model_id,
            "alert": None if self._alert is None else dataclasses.asdict(self._alert),
            "symbols": {s: t.state() for s, t in self._trackers.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> bool:
        """Continue from ``state`` (from :meth:`state`) after a restart; ``False`` (nothing
        restored) when it belongs to another model id, whose predictions are not this
        model's.

        Raises
        ------
        ValueError
            ``state`` of another version or malformed.
        """
        if state.get("version") != _STATE_VERSION or not isinstance(state.get("symbols"), dict):
            raise ValueError(f"ML predictor state version must be {_STATE_VERSION}: {state!r}")
        if state.get("model_id") != self.model_id:
            return False
        try:
            alert = None if state["alert"] is None else AccuracyAlert(**state["alert"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed ML predictor alert: {exc!r}") from exc
        trackers = {}
        for symbol, tracker_state in state["symbols"].items():
            trackers[symbol] = self._tracker()
            trackers[symbol].restore(tracker_state)
        self._trackers, self._alert = trackers, alert
        return True

    def _tracker(self) -> RollingAccuracy:
        r = self.rules
        return RollingAccuracy(r.horizon_ms, window=r.window, min_accuracy=r.min_accuracy)

    def _new_tracker(self, symbol: str) -> RollingAccuracy:
        self._trackers[symbol] = tracker = self._tracker()
        return tracker
