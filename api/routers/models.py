"""The ML model registry: list, read, compare, activate and roll back stored models; train one
in the background and follow the job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.deps import RegistryDep, SymbolQuery, TrainingDep, invalid
from api.errors import error_responses
from api.model_schemas import (
    MODEL_ID_PATTERN,
    ModelComparisonOut,
    ModelDetailOut,
    ModelKindName,
    ModelOut,
    ModelRollbackIn,
    ModelTrainIn,
    TrainingJobOut,
    comparison_out,
    model_detail_out,
    model_out,
    training_job_out,
)
from domain.errors import ConfigError

router = APIRouter(tags=["models"])

WHO = "api"
"""Who an activation made through the API is recorded as: the bearer token names no person."""
MAX_COMPARED = 10
"""The most models one comparison takes."""
_FIELDS = {"model": "kind", "n_splits": "folds"}
"""The training request's field names → the body's, for errors."""


ModelIdPath = Annotated[
    str, Path(min_length=1, max_length=200, pattern=MODEL_ID_PATTERN, description="A model id")
]


@router.get("/models", responses=error_responses(401, 422))
def list_models(
    registry: RegistryDep,
    kind: Annotated[ModelKindName | None, Query(description="only models of this kind")] = None,
    symbol: SymbolQuery = None,
) -> list[ModelOut]:
    """The stored models (of ``kind`` on ``symbol``, each when given), newest first, each with
    its metadata, holdout metrics and whether it is the active model of its kind."""
    return [model_out(m) for m in registry.list(kind, symbol)]


@router.get("/models/compare", responses=error_responses(401, 404, 422))
def compare_models(
    registry: RegistryDep,
    ids: Annotated[
        str,
        Query(
            min_length=1,
            max_length=2000,
            pattern=r"^\w[\w.+-]*(,\w[\w.+-]*)*$",
            description=f"Model ids separated by commas (at most {MAX_COMPARED})",
        ),
    ],
) -> ModelComparisonOut:
    """The numeric metrics of the models ``ids`` side by side (holdout and baseline scores,
    trading metrics, cross-validation means, training window sizes, importances). 404 naming
    an unknown id."""
    model_ids = list(dict.fromkeys(ids.split(",")))
    if len(model_ids) > MAX_COMPARED:
        message = f"at most {MAX_COMPARED} models at a time, was {len(model_ids)}"
        raise invalid("query", "ids", message, ids)
    return comparison_out(model_ids, registry.compare(model_ids))


@router.post(
    "/models/train",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 404, 409, 422),
)
def train_model(body: ModelTrainIn, training: TrainingDep) -> TrainingJobOut:
    """Start training a model on the server's stored 5m bars, in the background (one job at a
    time: 409 ``training_running`` while another runs; 404 for a symbol without stored bars).
    The answer is the job; follow it at ``GET /models/train/{job_id}`` or over the WebSocket
    (``training`` messages). The model is saved when done, not activated."""
    try:
        job = training.start(
            kind=body.kind,
            symbol=body.symbol,
            days=body.days,
            algo=body.algo,
            folds=body.folds,
            params=body.params,
        )
    except ConfigError as exc:
        name = _FIELDS.get(exc.field or "", exc.field or "body")
        raise invalid("body", name, exc.message, None) from None
    return training_job_out(job)


@router.get("/models/train/{job_id}", responses=error_responses(401, 404, 422))
def get_training_job(
    job_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")],
    training: TrainingDep,
) -> TrainingJobOut:
    """A training job's state: progress while it runs, the model id and holdout metrics when
    done, the error when failed. 404 for an unknown job (jobs are kept while the server runs)."""
    return training_job_out(training.get(job_id))


@router.post("/models/rollback", responses=error_responses(400, 401, 404, 409, 422))
def rollback_model(body: ModelRollbackIn, registry: RegistryDep) -> ModelOut:
    """Re-activate the model of ``kind`` that was active on ``symbol`` before the current one
    (checked first as an activation is); recorded with who and when. 409
    ``no_earlier_model`` when there is none, ``model_mismatch`` when it no longer loads."""
    return model_out(registry.rollback(body.kind, body.symbol, WHO))


@router.get("/models/{model_id}", responses=error_responses(401, 404, 422))
def get_model(model_id: ModelIdPath, registry: RegistryDep) -> ModelDetailOut:
    """One stored model's metadata and its activations (who and when), newest first."""
    model = registry.get(model_id)
    return model_detail_out(model, registry.activations(model_id))


@router.post("/models/{model_id}/activate", responses=error_responses(401, 404, 409, 422))
def activate_model(model_id: ModelIdPath, registry: RegistryDep) -> ModelOut:
    """Make the model the active one of its kind on each of its symbols, after checking that
    its artifact's sha256 and the library versions it was saved with match (409
    ``model_mismatch`` with the reason otherwise); recorded with who and when. Activating the
    active model changes nothing."""
    return model_out(registry.activate(model_id, WHO))
