"""Training a predictor (issue 7): the use case behind ``lootcapital ml train`` and the API's
background training (:mod:`service_layer.training_jobs`).

:func:`train_model` builds the samples of a model kind on the last days of a symbol's bars
(:func:`domain.ml.dataset.build_dataset`), holds out the last 20 % in time (never shuffled, the
label horizon purged before it), cross-validates on the rest by purged walk-forward folds (the
embargo is the label horizon), fits the calibrated model on the whole training part, scores it on
the holdout beside the majority baseline, and registers it in a :class:`~domain.ports.ModelStore`
or the registry (not activated). The registered model is the one scored: it never saw the holdout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError
from domain.ml.dataset import Dataset, build_dataset, score, verdict
from domain.ml.models import ALGOS, CalibratedTrees, ModelKind, build_model, label_for
from domain.ml.validation import (
    checked_fraction,
    checked_int,
    chronological_split,
    purged_walk_forward,
)
from domain.ports import ModelMetadata
from domain.timeframes import timeframe_ms


class ModelSaver(Protocol):
    """Where a trained model is registered: a :class:`~domain.ports.ModelStore`, or the
    registry of files and SQL rows (:class:`service_layer.model_registry.ModelRegistry`)."""

    def save(self, model: object, meta: ModelMetadata) -> ModelMetadata:
        """Store ``model`` with ``meta`` (not activated); ``meta`` with id and sha256 filled."""
        ...


Progress = Callable[[float, str], None]
"""Called with the fraction done (0 to 1) and what is happening, e.g. ``(0.3, "fold 2/5")``."""

IMPORTANCE_ROWS = 256
"""Held-out rows (evenly spaced) over which the global feature importances are averaged."""
_CV_KEYS = ("accuracy", "log_loss", "brier", "roc_auc", "ece")


@dataclass(frozen=True, slots=True)
class TrainingRequest:
    """What to train: a model ``kind`` on ``symbol``'s bars of ``timeframe`` over the last
    ``days`` days (default 90), with algorithm ``algo`` (a key of
    :data:`domain.ml.models.ALGOS`, default ``hgb``), ``holdout`` the fraction of samples held
    out at the end (default 0.2), ``n_splits`` walk-forward folds (default 5), ``calibration``
    ``"isotonic"`` or ``"sigmoid"``, ``fee`` per entry and exit in the trading metrics (a
    fraction of equity, default 0.0005, Binance's USDⓈ-M taker fee) and ``params`` the
    algorithm's hyper-parameters over its defaults.

    Raises
    ------
    ConfigError
        A bad value, the field named (``model`` for ``kind``).
    """

    kind: ModelKind
    symbol: str
    algo: str = "hgb"
    days: int = 90
    holdout: float = 0.2
    n_splits: int = 5
    calibration: str = "isotonic"
    timeframe: str = "5m"
    fee: float = 0.0005
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        label_for(self.kind)  # refuses an unknown kind
        object.__setattr__(self, "kind", ModelKind(self.kind))
        if not self.symbol:
            raise ConfigError("symbol must not be empty", field="symbol")
        if self.algo not in ALGOS:
            raise ConfigError(
                f"algo must be one of {', '.join(ALGOS)}, was {self.algo!r}", field="algo"
            )
        checked_int("days", self.days, 1)
        checked_fraction("holdout", self.holdout, 0.0, 1.0, closed=False)
        checked_int("n_splits", self.n_splits, 1)
        checked_fraction("fee", self.fee, 0.0, 0.1)
        if self.calibration not in ("isotonic", "sigmoid"):
            raise ConfigError(
                f"calibration must be 'isotonic' or 'sigmoid', was {self.calibration!r}",
                field="calibration",
            )
        timeframe_ms(self.timeframe)

    def model(self, data: Dataset) -> CalibratedTrees:
        """An unfitted model of this request on ``data``'s features."""
        return build_model(
            self.algo,
            data.feature_set.names,
            embargo=data.horizon,
            calibration=self.calibration,
            **self.params,
        )


def train_model(
    candles: Candles,
    request: TrainingRequest,
    *,
    store: ModelSaver,
    created_ms: int,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train, score and register a model of ``request`` on ``candles`` (``request.symbol``'s
    bars, ``request.timeframe`` apart, oldest first); ``created_ms`` (ms UTC, from the caller's
    clock) is recorded in the metadata.

    Returns
    -------
    dict
        The report, JSON-ready: ``model_id``; ``model`` (kind, algo, symbol, feature set, label,
        calibration, hyper-parameters); ``window`` (ms UTC bounds and sizes of the training
        and holdout samples, the embargo in bars); ``metrics`` (holdout scores and
        ``trading``, :func:`domain.ml.dataset.score`); ``baseline``; ``verdict`` (does it beat
        the baseline); ``folds`` (per walk-forward fold: bounds and metrics); ``cv`` (mean fold
        scores); ``importances`` (feature → mean absolute occlusion contribution over held-out
        rows, largest first).

    Raises
    ------
    ConfigError
        Too few samples for the folds and the embargo, or bad hyper-parameters.
    DataError
        Too few usable samples, or labels of one class only in a training window.
    ModelMismatch
        As the store's ``save``.
    """
    tell = progress or _silent
    bar_ms = timeframe_ms(request.timeframe)
    tell(0.0, f"building {request.kind} samples of {request.symbol}")
    data = build_dataset(candles, request.kind, days=request.days, bar_ms=bar_ms)
    train, hold = chronological_split(len(data.y), request.holdout, embargo=data.horizon)
    folds = _cross_validate(data, train, request, tell)
    tell(0.8, f"fitting the {request.algo} model on {len(train):,} samples")
    model = request.model(data).fit(data.X[train], data.y[train])
    tell(0.9, f"scoring on {len(hold):,} held-out samples")
    prior = float(data.y[train].mean())
    proba = model.predict_proba(data.X[hold])
    metrics, baseline = score(
        data.y[hold], proba, data.returns[hold], kind=request.kind, prior=prior, fee=request.fee
    )
    sample = hold[np.linspace(0, len(hold) - 1, min(IMPORTANCE_ROWS, len(hold))).astype(int)]
    importances = dict(model.importances(data.X[sample]))
    window = _window(data, train, hold)
    cv = _mean_scores(folds)
    judged = verdict(metrics, baseline)
    meta = ModelMetadata(
        model_id="",
        kind=str(request.kind),
        algo=request.algo,
        symbols=(request.symbol,),
        timeframe=request.timeframe,
        feature_set=data.feature_set.key,
        feature_names=data.feature_set.names,
        label=_label(data),
        train_start_ms=window["train_start_ms"],
        train_end_ms=window["train_end_ms"],
        created_ms=created_ms,
        metrics={
            "holdout": metrics,
            "baseline": baseline,
            "beats_baseline": judged,
            "cv": cv,
            "window": window,
            "importances": dict(list(importances.items())[:10]),
        },
        versions=model.library_versions(),
        params={**model.params, "calibration": request.calibration},
    )
    tell(0.95, "saving the model")
    saved = store.save(model, meta)
    tell(1.0, f"saved {saved.model_id}")
    return {
        "model_id": saved.model_id,
        "model": {
            "kind": str(request.kind),
            "algo": request.algo,
            "symbol": request.symbol,
            "timeframe": request.timeframe,
            "feature_set": data.feature_set.key,
            "label": _label(data),
            "calibration": request.calibration,
            "params": dict(model.params),
        },
        "window": window,
        "metrics": metrics,
        "baseline": baseline,
        "verdict": judged,
        "folds": folds,
        "cv": cv,
        "importances": importances,
    }


def _silent(fraction: float, message: str) -> None:
    """The progress callback when none is given."""


def _cross_validate(
    data: Dataset, train: np.ndarray, request: TrainingRequest, tell: Progress
) -> list[dict[str, Any]]:
    """Fit and score a fresh model per purged walk-forward fold of the training samples."""
    out = []
    splits = purged_walk_forward(len(train), request.n_splits, embargo=data.horizon)
    for k, (fit_rows, test_rows) in enumerate(splits):
        tell(0.05 + 0.75 * k / len(splits), f"fold {k + 1}/{len(splits)}")
        fit_idx, test_idx = train[fit_rows], train[test_rows]
        model = request.model(data).fit(data.X[fit_idx], data.y[fit_idx])
        metrics, baseline = score(
            data.y[test_idx],
            model.predict_proba(data.X[test_idx]),
            data.returns[test_idx],
            kind=request.kind,
            prior=float(data.y[fit_idx].mean()),
            fee=request.fee,
        )
        out.append(
            {
                "fold": k + 1,
                "train_rows": len(fit_idx),
                "test_rows": len(test_idx),
                "train_start_ms": int(data.times[fit_idx[0]]),
                "train_end_ms": data.label_end_ms(int(fit_idx[-1])),
                "test_start_ms": int(data.times[test_idx[0]]),
                "test_end_ms": int(data.times[test_idx[-1]]) + data.bar_ms,
                "metrics": metrics,
                "baseline": baseline,
            }
        )
    return out


def _mean_scores(folds: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each of :data:`_CV_KEYS` averaged over the folds where it is defined (None if nowhere),
    and the baseline's log loss likewise."""
    out: dict[str, float | None] = {}
    for key in _CV_KEYS:
        values = [f["metrics"][key] for f in folds if f["metrics"][key] is not None]
        out[key] = float(np.mean(values)) if values else None
    out["baseline_log_loss"] = float(np.mean([f["baseline"]["log_loss"] for f in folds]))
    return out


def _window(data: Dataset, train: np.ndarray, hold: np.ndarray) -> dict[str, int]:
    """Time bounds (ms UTC) and sizes of the training and holdout samples. ``train_end_ms``
    is the end of the last bar a training label reads; ``holdout_end_ms`` the close of the
    last held-out bar."""
    return {
        "start_ms": int(data.times[0]),
        "train_start_ms": int(data.times[train[0]]),
        "train_end_ms": data.label_end_ms(int(train[-1])),
        "holdout_start_ms": int(data.times[hold[0]]),
        "holdout_end_ms": int(data.times[hold[-1]]) + data.bar_ms,
        "train_rows": len(train),
        "holdout_rows": len(hold),
        "embargo_bars": data.horizon,
    }


def _label(data: Dataset) -> dict[str, Any]:
    """The label's type and parameters, for the metadata."""
    return {"name": type(data.label).__name__, **dataclasses.asdict(data.label)}
