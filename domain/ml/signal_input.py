"""The ML probability as an input of a strategy's signals (issue 7, "Predictor in the engine").

:class:`MLInput` keeps, per symbol, the model in effect and its
:class:`~domain.ml.predictor.MLPredictor` (live accuracy, pending predictions), and the bars
its features and its walk-forward fits read. A model comes from one of two places:

* the **registry**: the composition root loads the active model of each symbol and hands it
  over with :meth:`MLInput.use` (or the reason it could not: ML is then off for the symbol and
  the rest of the strategy runs on);
* **walk-forward** fits inside the run (``train_days > 0``): at the first prediction at or
  after each ``retrain_ms`` boundary of market time (weekly by default, boundaries at
  multiples of ``retrain_ms`` since the epoch), the model is fitted on the ``train_days``
  days of bars closed by the boundary (:func:`fit_model`). Backtest and paper fit at
  the same boundaries on the same bars, and the fit is deterministic, so both give the same
  predictions; a fitted model never saw a bar after the one it predicts.

A prediction at the bar close ``t`` reads the features of the last :attr:`MLInput.tail_bars`
bars closed by ``t`` (the same fixed window in the batch and incremental forms, longer than
every feature's warm-up) and resolves ``horizon_ms`` later with the label of the model's kind:
for a trend model, 1 when the close then is above the close at ``t``; for a mean-reversion
model, :class:`~domain.ml.labels.MeanReversionLabel` computed from the closes held (the mean's
``period`` bars to ``t``, the ``horizon`` bars after it). Keys are bar close times (ms UTC).

How a prediction acts on an entry (:func:`with_prediction`, Properties 11–13): the model's
P(the signal's direction is right) ``p`` sets the signal's confidence multiplier ``2p`` (1 at a
coin toss); :func:`~domain.ml.predictor.adjust_signal` lifts it to at least 1 above ``high``
(Property 12) and halves the size or filters the signal below ``low`` (Property 13). The
signal's confidence becomes ``min(1, confidence × multiplier)`` (the portfolio manager's input)
and the signal carries an ``ml`` reason: the prediction's one-line explanation, the rule
applied, the model id, and the probability and the top feature contributions as values.

Pure: no I/O, no clock; errors come back as reasons for the caller to report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError, DomainError
from domain.ml.accuracy import AccuracyAlert
from domain.ml.dataset import build_dataset
from domain.ml.features import DAY_MS, FeatureSet, compute_features, warmup_bars
from domain.ml.labels import MeanReversionLabel
from domain.ml.models import ModelKind, Predictor, build_model, label_for
from domain.ml.predictor import MLPredictor, MLRules, Prediction, adjust_signal
from domain.model import Direction, Reason, Signal
from domain.pipeline_events import ML as ML_DISABLED
from domain.pipeline_events import ML_ERROR, PipelineEvent

WEEK_MS = 7 * DAY_MS
ML = "ml"
"""The component name of the ML reasons."""
TAIL_MARGIN = 1_024
"""Bars read before the longest warm-up: the exponential features (RSI, MACD) forget their
start by then, to far below a float's precision."""
_VERSION = 1


@dataclass(frozen=True, slots=True)
class ActiveModel:
    """A fitted ``model`` in effect on one symbol: its registry ``model_id`` (a walk-forward
    fit's is ``wf-<symbol>-<fit time>``), the ``feature_set`` of its columns and
    ``trained_until`` (ms UTC, the exclusive end of the last bar a training label read)."""

    model: Predictor
    model_id: str
    feature_set: FeatureSet
    trained_until: int


@dataclass(frozen=True, slots=True)
class ModelSpan:
    """``model_id`` made ``predictions`` predictions on ``symbol`` from ``first`` to ``last``
    (bar close times, ms UTC): which model acted when."""

    symbol: str
    model_id: str
    first: int
    last: int
    predictions: int


Trainer = Callable[[str, Candles, int], ActiveModel]
"""``(symbol, bars, fit_time)`` → a model fitted on ``bars`` (all closed by ``fit_time``, ms
UTC); raises :class:`~domain.errors.DomainError` when they are too few."""


def fit_model(
    days: int, *, algo: str = "hgb", bar_ms: int = 300_000, kind: str = ModelKind.TREND
) -> Trainer:
    """A :data:`Trainer` fitting model ``kind`` with ``algo`` on the last ``days`` days of the
    bars it is given (:func:`~domain.ml.dataset.build_dataset`: labels that would read past
    the last bar are dropped), with the training defaults (isotonic calibration over purged
    folds, embargo = the label horizon, ``random_state`` 0: the same bars give the same model).

    Raises
    ------
    ConfigError
        Unknown ``algo`` or ``kind``, ``days < 1``.
    """

    def fit(symbol: str, bars: Candles, fit_time: int) -> ActiveModel:
        data = build_dataset(bars, kind, days=days, bar_ms=bar_ms)
        model = build_model(algo, data.feature_set.names, embargo=data.horizon)
        model.fit(data.X, data.y)
        return ActiveModel(model, f"wf-{symbol}-{fit_time}", data.feature_set, fit_time)

    if days < 1:
        raise ConfigError(f"days must be >= 1, was {days}", field="days")
    label_for(kind)  # an unknown kind fails now, not at the first fit
    build_model(algo, ("x",))  # so does an unknown algo
    return fit


class MLInput:
    """Per-symbol ML predictions for a strategy (see the module docstring).

    Parameters
    ----------
    rules:
        Thresholds, horizon and accuracy window (:class:`~domain.ml.predictor.MLRules`; its
        defaults when None).
    tf_ms:
        The bars' length (ms).
    trainer:
        Walk-forward fits (None: models come from :meth:`use`).
    train_days:
        The days of bars a walk-forward fit reads (ignored without ``trainer``).
    retrain_ms:
        The walk-forward schedule (ms of market time between fits).
    kind:
        What the models predict (:class:`~domain.ml.models.ModelKind`), which sets the label
        a prediction resolves with: ``trend`` (the default) or ``mean_reversion`` (its default
        :class:`~domain.ml.labels.MeanReversionLabel`, whose horizon ``rules.horizon_ms`` must
        equal in bars).

    Raises
    ------
    ConfigError
        An unknown ``kind`` (field ``model``), or a mean-reversion ``rules.horizon_ms`` other
        than the label's horizon × ``tf_ms`` (field ``horizon_ms``).
    """

    def __init__(
        self,
        rules: MLRules | None = None,
        *,
        tf_ms: int,
        trainer: Trainer | None = None,
        train_days: int = 90,
        retrain_ms: int = WEEK_MS,
        kind: ModelKind | str = ModelKind.TREND,
    ) -> None:
        self.rules = rules or MLRules()
        self.tf_ms = tf_ms
        label = label_for(kind)
        self.kind = ModelKind(kind)
        self._reversion = label if isinstance(label, MeanReversionLabel) else None
        if self._reversion is not None and self.rules.horizon_ms != label.horizon * tf_ms:
            raise ConfigError(
                f"horizon_ms must be the mean-reversion label's {label.horizon} bars of "
                f"{tf_ms} ms, was {self.rules.horizon_ms}",
                field="horizon_ms",
            )
        self.trainer = trainer
        self.train_days = train_days
        self.retrain_ms = retrain_ms
        self._bars: dict[str, Candles] = {}
        self._models: dict[str, ActiveModel | None] = {}
        self._predictors: dict[str, MLPredictor] = {}
        self._why: dict[str, str] = {}  # why ML does not act on a symbol
        self._fitted_at: dict[str, int] = {}  # the boundary of the walk-forward model in use
        self._restored: dict[str, Mapping[str, Any]] = {}  # predictor states awaiting a model
        self._spans: list[ModelSpan] = []
        self._events: list[PipelineEvent] = []

    # -- models ------------------------------------------------------------------------------
    @property
    def tail_bars(self) -> int:
        """Bars a prediction's features read (the longest warm-up plus :data:`TAIL_MARGIN`)."""
        return warmup_bars(bar_ms=self.tf_ms) + TAIL_MARGIN

    @property
    def keep_bars(self) -> int:
        """Bars kept per symbol: a prediction's window, or a walk-forward fit's with the
        warm-up before it and a schedule's period after."""
        keep = self.tail_bars
        if self.trainer is not None:
            keep += (self.train_days * DAY_MS + self.retrain_ms) // self.tf_ms
        return keep

    def use(self, symbol: str, model: ActiveModel | None, error: str | None = None) -> None:
        """Put ``model`` in effect on ``symbol`` (None: ML off there, ``error`` saying why);
        its accuracy starts afresh, unless a restored state of the same model id waits. The
        model already in effect (same id) keeps its accuracy and pending predictions."""
        current = self._predictors.get(symbol)
        if model is not None and current is not None and current.model_id == model.model_id:
            return
        self._models[symbol] = model
        if model is None:
            self._why[symbol] = error or "no model"
            self._predictors.pop(symbol, None)
            return
        self._why.pop(symbol, None)
        predictor = MLPredictor(model.model, model_id=model.model_id, rules=self.rules)
        waiting = self._restored.pop(symbol, None)
        if waiting is not None:
            predictor.restore(waiting)
        self._predictors[symbol] = predictor

    def status(self, symbol: str) -> str | None:
        """None while ML acts on ``symbol``; else why not (no model, a failed fit, the
        accuracy below the minimum, features that failed at the last prediction)."""
        predictor = self._predictors.get(symbol)
        if predictor is None:
            if self.trainer is not None and symbol not in self._why:
                return "waiting for the first walk-forward fit"
            return self._why.get(symbol, "no model")
        return predictor.disabled_reason or self._why.get(symbol)

    def spans(self) -> list[ModelSpan]:
        """Which model predicted on which symbol when, in order of first prediction."""
        return sorted(self._spans, key=lambda s: (s.first, s.symbol))

    # -- bars --------------------------------------------------------------------------------
    def take(self, symbol: str, bars: Candles) -> None:
        """Append ``symbol``'s newly closed ``bars`` (after every bar taken before), keeping
        :attr:`keep_bars` of the bars before them (a block's decisions read back from each of
        its bars)."""
        held = self._bars.get(symbol)
        if held is None or not len(held):
            self._bars[symbol] = bars
            return
        old = len(held) - self.keep_bars
        self._bars[symbol] = (held.slice(old, len(held)) if old > 0 else held).concat(bars)

    def _closed_by(self, symbol: str, time: int) -> Candles:
        bars = self._bars.get(symbol)
        if bars is None:
            return Candles.empty()
        return bars.between(None, time - self.tf_ms + 1)

    def _reverted_at(self, symbol: str, time: int) -> int | None:
        """The mean-reversion label (0/1) of ``symbol``'s bar closing at ``time`` (ms UTC),
        from the closes held: the label's ``period`` bars to it and ``horizon`` bars after
        (:meth:`MeanReversionLabel.compute` on that slice gives bar ``t`` the value it has on
        the whole series). None when a bar of the slice is missing or the close sits at its
        mean (no gap to revert)."""
        label, bars = self._reversion, self._bars.get(symbol)
        assert label is not None
        if bars is None:
            return None
        i = int(np.searchsorted(bars.open_time, time - self.tf_ms))
        lo, hi = i - label.period + 1, i + label.horizon + 1
        if lo < 0 or hi > len(bars) or bars.open_time[i] != time - self.tf_ms:
            return None
        if int(bars.open_time[hi - 1] - bars.open_time[lo]) != (hi - 1 - lo) * self.tf_ms:
            return None  # a gap: the label would read other bars than it was trained on
        value = float(label.compute(bars.close[lo:hi])[label.period - 1])
        return None if np.isnan(value) else int(value)

    def _close_at(self, symbol: str, time: int) -> float | None:
        bars = self._bars.get(symbol)
        if bars is None or not len(bars):
            return None
        key = time - self.tf_ms
        i = int(np.searchsorted(bars.open_time, key))
        return float(bars.close[i]) if i < len(bars) and bars.open_time[i] == key else None

    # -- predictions -------------------------------------------------------------------------
    def resolve(self, time: int) -> list[tuple[str, AccuracyAlert]]:
        """Resolve every symbol's predictions whose horizon has passed by ``time`` (a bar
        close, ms UTC); the alerts of the predictors this disabled (Property 14)."""
        alerts = []
        for symbol, predictor in self._predictors.items():
            alert = predictor.resolve(
                symbol,
                time,
                lambda t, s=symbol: self._close_at(s, t),  # type: ignore[misc]
                label_at=None
                if self._reversion is None
                else lambda t, s=symbol: self._reverted_at(s, t),  # type: ignore[misc]
            )
            if alert is not None:
                alerts.append((symbol, alert))
                self._events.append(
                    PipelineEvent(
                        alert.time, symbol, ML_DISABLED,
                        {"model_id": predictor.model_id, "accuracy": alert.accuracy,
                         "min_accuracy": alert.min_accuracy, "window": alert.window},
                    )
                )  # fmt: skip
        return alerts

    def drain_events(self) -> list[PipelineEvent]:
        """What happened since the last call, as pipeline events: each predictor that
        disabled itself (kind ``ml``, at the resolution that did it) and each prediction that
        failed and was taken as 0.5 (kind ``ml_error``), for the run to store and log."""
        events, self._events = self._events, []
        return events

    def predict(self, symbol: str, time: int) -> Prediction | None:
        """The prediction for ``symbol``'s bar closing at ``time`` (ms UTC), None when ML does
        not act there (:meth:`status` says why). A walk-forward fit due by ``time`` runs
        first."""
        if self.trainer is not None:
            self._refit(symbol, time)
        predictor = self._predictors.get(symbol)
        model = self._models.get(symbol)
        if predictor is None or model is None or not predictor.enabled:
            return None
        tail = self._closed_by(symbol, time)
        tail = tail.slice(max(0, len(tail) - self.tail_bars), len(tail))
        if not len(tail) or int(tail.open_time[-1]) != time - self.tf_ms:
            return None  # the bar itself is missing: nothing to read
        try:
            row = compute_features(tail, model.feature_set, bar_ms=self.tf_ms).values[-1]
        except DomainError as exc:
            self._why[symbol] = why = f"features failed: {exc}"
            self._events.append(
                PipelineEvent(time, symbol, ML_ERROR, {"model_id": model.model_id, "error": why})
            )
            return None
        self._why.pop(symbol, None)
        prediction = predictor.predict(symbol, time, row)
        self._note(symbol, model.model_id, time)
        if prediction is not None and prediction.error is not None:
            values = {"model_id": model.model_id, "error": prediction.error}
            self._events.append(PipelineEvent(time, symbol, ML_ERROR, values))
        return prediction

    def adjust(self, signal: Signal, enter: bool, size_factor: float) -> tuple[Signal, bool, float]:
        """``(signal, enter, size_factor)`` of an entry signal after the prediction for its
        symbol's bar (:meth:`predict`, :func:`with_prediction`)."""
        prediction = self.predict(signal.symbol, signal.time)
        off = None if prediction is not None else self.status(signal.symbol)
        return with_prediction(signal, enter, size_factor, prediction, off, self.rules)

    def _refit(self, symbol: str, time: int) -> None:
        boundary = time // self.retrain_ms * self.retrain_ms
        if self._fitted_at.get(symbol) == boundary:
            return
        self._fitted_at[symbol] = boundary
        assert self.trainer is not None
        try:
            model = self.trainer(symbol, self._closed_by(symbol, boundary), boundary)
        except DomainError as exc:
            self.use(symbol, None, f"walk-forward fit at {boundary} failed: {exc}")
            return
        self.use(symbol, model)

    def _note(self, symbol: str, model_id: str, time: int) -> None:
        spans = self._spans
        for k in range(len(spans) - 1, -1, -1):
            span = spans[k]
            if span.symbol == symbol:
                if span.model_id == model_id:
                    spans[k] = ModelSpan(symbol, model_id, span.first, time, span.predictions + 1)
                    return
                break
        spans.append(ModelSpan(symbol, model_id, time, time, 1))

    # -- persistence -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The path-dependent state (JSON): per symbol the model id and its predictor's
        state; the model spans."""
        return {
            "version": _VERSION,
            "symbols": {
                s: {
                    "model_id": p.model_id,
                    "predictor": p.state(),
                }
                for s, p in self._predictors.items()
            },
            "spans": [[s.symbol, s.model_id, s.first, s.last, s.predictions] for s in self._spans],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state`: a registry model handed over again (:meth:`use`) with
        the same id takes its accuracy and pending predictions back; so does a walk-forward
        model, fitted again at the next prediction on the bars closed by its boundary (the
        strategy's warm-up holds them): the same bars, the same model, the same id.

        Raises
        ------
        ValueError
            When ``state`` is of another version or malformed.
        """
        if state.get("version") != _VERSION:
            raise ValueError(f"ML input state version must be {_VERSION}, was {state!r}")
        try:
            for symbol, entry in state["symbols"].items():
                predictor = self._predictors.get(symbol)
                if predictor is not None and predictor.model_id == entry["model_id"]:
                    predictor.restore(entry["predictor"])
                else:
                    self._restored[symbol] = entry["predictor"]
            self._spans = [ModelSpan(str(a), str(b), int(c), int(d), int(e))
                           for a, b, c, d, e in state["spans"]]  # fmt: skip
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed ML input state: {exc!r}") from exc


def with_prediction(
    signal: Signal,
    enter: bool,
    size_factor: float,
    prediction: Prediction | None,
    off_reason: str | None,
    rules: MLRules,
) -> tuple[Signal, bool, float]:
    """``(signal, enter, size_factor)`` of an entry after ``prediction`` (None: ML did not
    act, ``off_reason`` says why, and nothing changes but a reason saying so).

    ``size_factor`` is a fraction of the normal size (>= 0).
    """
    if prediction is None:
        why = Reason(ML, f"ML off: {off_reason or 'no prediction'}", {})
        return dataclasses.replace(signal, reasons=(*signal.reasons, why)), enter, size_factor
    side = "long" if signal.direction is Direction.LONG else "short"
    p = prediction.for_direction(side)
    adjusted = adjust_signal(p, 2.0 * p, size_factor, rules)
    values = {"probability_up": prediction.probability, "probability_signal": p}
    values |= {f"contribution.{c.feature}": c.contribution for c in prediction.contributions}
    model = f" [{prediction.model_id}]" if prediction.model_id else ""
    error = f" ({prediction.error})" if prediction.error else ""
    reason = Reason(ML, f"{prediction.text}{error}; {adjusted.reason}{model}", values)
    confidence = min(1.0, signal.confidence * adjusted.multiplier)
    signal = dataclasses.replace(
        signal,
        confidence=0.0 if adjusted.filtered else confidence,
        direction=Direction.FLAT if adjusted.filtered else signal.direction,
        reasons=(*signal.reasons, reason),
    )
    return signal, enter and not adjusted.filtered, adjusted.size_factor
