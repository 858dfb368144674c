"""Bodies of the model registry's routes (``/api/v1/models…``) and of the WebSocket's
``training`` messages. Times are int ms UTC; metrics are the training report's (fractions,
log loss in nats, counts), an undefined one null."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import SymbolIn
from domain.ports import ModelActivation
from service_layer.model_registry import RegisteredModel
from service_layer.training_jobs import TrainingJob

ModelKindName = Literal["trend", "mean_reversion"]
AlgoName = Literal["hgb", "rf", "xgb"]
ParamValue = int | float | bool | str | None
MODEL_ID_PATTERN = r"^\w[\w.+-]*$"
"""A model id: letters, digits, ``_.+-`` (``trend-BTCUSDT-hgb-20250101T000000-1a2b3c4d``)."""


class ModelOut(BaseModel):
    """A stored model's metadata: what it predicts (``kind``, ``label``) with which algorithm
    and hyper-parameters, on which symbols and bars, the training window (``train_end_ms``: the
    end of the last bar a training label read; a backtest may use the model from there on),
    the holdout metrics beside the majority baseline's, the library versions its artifact needs
    and the artifact's sha256. ``active``: the active model of its kind on ``active_on`` (some
    or all of its symbols)."""

    model_id: str
    kind: str
    algo: str
    symbols: list[str]
    timeframe: str
    feature_set: str
    feature_names: list[str]
    label: dict[str, Any]
    train_start_ms: int
    train_end_ms: int
    created_ms: int
    metrics: dict[str, Any]
    versions: dict[str, str]
    params: dict[str, Any]
    sha256: str
    active: bool
    active_on: list[str]


class ModelActivationOut(BaseModel):
    """``model_id`` became the active model of ``kind`` on ``symbol`` at ``time`` by ``who``
    (``api``, ``cli``, ``sync``: found in the files at start-up) through ``action``; a null
    ``model_id``: none was active any more."""

    kind: str
    symbol: str
    model_id: str | None
    time: int
    who: str
    action: Literal["activate", "rollback", "sync"]


class ModelDetailOut(ModelOut):
    """A stored model's metadata and its activations, newest first."""

    activations: list[ModelActivationOut]


class ModelRollbackIn(BaseModel):
    """The model kind and symbol whose previously active model becomes active again."""

    model_config = ConfigDict(extra="forbid")

    kind: ModelKindName
    symbol: SymbolIn


class ModelMetricOut(BaseModel):
    """One metric (a dotted path into the metrics, e.g. ``holdout.log_loss``) of each compared
    model, in the order of ``model_ids``; null where a model lacks it."""

    name: str
    values: list[int | float | None]


class ModelComparisonOut(BaseModel):
    """The numeric metrics of ``model_ids`` side by side (the verdict's text and flags are in
    each model's ``metrics``)."""

    model_ids: list[str]
    metrics: list[ModelMetricOut]


class ModelTrainIn(BaseModel):
    """What to train: a ``kind`` model (``trend``: is the close 4 hours on above this close;
    ``mean_reversion``: does the price revert toward its 20-bar mean within 12 bars) on the last
    ``days`` days of ``symbol``'s stored 5m bars, with ``algo`` (``hgb``
    HistGradientBoosting, ``rf`` RandomForest, ``xgb`` XGBoost), ``folds`` purged walk-forward
    folds and the algorithm's hyper-parameters ``params`` over its defaults (e.g.
    ``{"max_iter": 100}``)."""

    model_config = ConfigDict(extra="forbid")

    kind: ModelKindName
    symbol: SymbolIn
    days: int = Field(default=90, ge=1, le=3650)
    algo: AlgoName = "hgb"
    folds: int = Field(default=5, ge=1, le=20)
    params: dict[Annotated[str, Field(min_length=1, max_length=64)], ParamValue] = Field(
        default_factory=dict, max_length=32
    )


class TrainingJobOut(BaseModel):
    """A training job: ``running`` with ``progress`` (0 to 1) and ``message`` saying what it
    does, then ``done`` (``model_id`` of the saved model, not activated; ``metrics`` and
    ``baseline``: holdout scores; ``verdict``: does it beat the baseline) or ``failed``
    (``error``). The WebSocket pushes this body as ``training`` messages at every step."""

    job_id: str
    status: Literal["running", "done", "failed"]
    kind: str
    symbol: str
    algo: str
    days: int
    progress: float = Field(ge=0, le=1)
    message: str
    started_ms: int
    updated_ms: int
    finished_ms: int | None
    model_id: str | None
    metrics: dict[str, Any] | None
    baseline: dict[str, Any] | None
    verdict: str | None
    error: str | None


def model_out(model: RegisteredModel) -> ModelOut:
    """The body of one registered model."""
    return ModelOut(**_fields(model))


def model_detail_out(model: RegisteredModel, activations: list[ModelActivation]) -> ModelDetailOut:
    """The body of one registered model with its activations."""
    history = [activation_out(a) for a in activations]
    return ModelDetailOut(**_fields(model), activations=history)


def activation_out(activation: ModelActivation) -> ModelActivationOut:
    """The body of one activation."""
    a = activation
    return ModelActivationOut(
        kind=a.kind, symbol=a.symbol, model_id=a.model_id, time=a.time, who=a.who, action=a.action
    )


def comparison_out(model_ids: list[str], table: dict[str, dict[str, object]]) -> ModelComparisonOut:
    """The numeric rows of :meth:`ModelRegistry.compare`'s table (booleans, text and lists
    are left out)."""
    rows = [
        ModelMetricOut(name=name, values=[values.get(mid) for mid in model_ids])  # type: ignore[misc]
        for name, values in table.items()
        if all(_numeric(v) for v in values.values())
    ]
    return ModelComparisonOut(model_ids=model_ids, metrics=rows)


def training_job_out(job: TrainingJob) -> TrainingJobOut:
    """The body of a training job's state."""
    return TrainingJobOut(
        job_id=job.job_id, status=job.status, kind=job.kind, symbol=job.symbol, algo=job.algo,
        days=job.days, progress=job.progress, message=job.message, started_ms=job.started_ms,
        updated_ms=job.updated_ms, finished_ms=job.finished_ms, model_id=job.model_id,
        metrics=_plain(job.metrics), baseline=_plain(job.baseline), verdict=job.verdict,
        error=job.error,
    )  # fmt: skip


def _fields(model: RegisteredModel) -> dict[str, Any]:
    m = model.meta
    return {
        "model_id": m.model_id, "kind": m.kind, "algo": m.algo, "symbols": list(m.symbols),
        "timeframe": m.timeframe, "feature_set": m.feature_set,
        "feature_names": list(m.feature_names), "label": _plain(m.label),
        "train_start_ms": m.train_start_ms, "train_end_ms": m.train_end_ms,
        "created_ms": m.created_ms, "metrics": _plain(m.metrics),
        "versions": {k: str(v) for k, v in m.versions.items()}, "params": _plain(m.params),
        "sha256": m.sha256, "active": model.active, "active_on": list(model.active_on),
    }  # fmt: skip


def _numeric(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _plain(value: Any) -> Any:
    """``value`` with JSON's types only: NaN and ±inf → None, numpy scalars → numbers."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
