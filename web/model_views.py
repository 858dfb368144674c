"""The AI signal page's model views (issue 7, "Registry"): the registry's models per symbol with
their holdout scores beside the majority baseline's and their global feature importances, the
training form and the training jobs.

Pure builders turn :class:`~service_layer.model_registry.RegisteredModel` and
:class:`~service_layer.training_jobs.TrainingJob` values into dicts for the templates; the
``*_context`` readers take the same :class:`~service_layer.model_registry.ModelRegistry` and
:class:`~service_layer.training_jobs.TrainingJobs` that ``/api/v1/models`` uses, so the page and
the API show the same models. Scores are the training report's (fractions, log loss in nats),
an undefined one None; importances are mean absolute contributions (fractions of probability).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from service_layer.model_registry import ModelRegistry, RegisteredModel
from service_layer.training_jobs import TrainingJob, TrainingJobs


class Metric(NamedTuple):
    """A holdout score the page compares with the baseline's: its ``key`` in the metrics, its
    ``label`` and whether a ``higher`` value is better."""

    key: str
    label: str
    higher: bool


METRICS = (
    Metric("accuracy", "Accuracy", higher=True),
    Metric("roc_auc", "ROC AUC", higher=True),
    Metric("log_loss", "Log loss", higher=False),
)
KINDS = ("trend", "mean_reversion")
ALGOS = ("hgb", "rf", "xgb")
JOBS_SHOWN = 5
"""Training jobs the page lists (the server keeps more; ``GET /api/v1/models/train/{id}``)."""
FORM_DEFAULTS = {"kind": "trend", "days": "90", "algo": "hgb", "folds": "5"}
"""The training form's first values: the API's defaults (``POST /api/v1/models/train``)."""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def metric_rows(holdout: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per :data:`METRICS` score: ``{"key", "label", "model", "baseline", "better"}``,
    the model's and the baseline's value (None where not stored: a constant prediction has no
    ROC AUC) and whether the model's is better (None when one is missing)."""
    rows = []
    for metric in METRICS:
        model, base = _number(holdout.get(metric.key)), _number(baseline.get(metric.key))
        better = None
        if model is not None and base is not None:
            better = model > base if metric.higher else model < base
        rows.append(
            {"key": metric.key, "label": metric.label, "model": model, "baseline": base,
             "better": better}
        )  # fmt: skip
    return rows


def importance_bars(importances: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The global feature importances as bars, largest first: ``{"feature", "value",
    "percent"}``, ``percent`` the bar's length (the largest is 100)."""
    items = [(str(k), v) for k, v in importances.items() if _number(v) is not None]
    items.sort(key=lambda kv: -float(kv[1]))
    top = max((float(v) for _, v in items), default=0.0)
    return [
        {
            "feature": feature,
            "value": float(value),
            "percent": float(value) / top * 100.0 if top > 0 else 0.0,
        }
        for feature, value in items
    ]


def model_row(model: RegisteredModel, symbol: str) -> dict[str, Any]:
    """What the page shows of ``model`` on ``symbol``: its metadata (``meta``), whether it is
    the ``active`` one there, its holdout ``metrics`` (:func:`metric_rows`), whether it
    ``beats`` the baseline's log loss (None if not stored) and its ``importances``
    (:func:`importance_bars`)."""
    metrics = model.meta.metrics
    holdout = metrics.get("holdout") or {}
    baseline = metrics.get("baseline") or {}
    beats = metrics.get("beats_baseline") or {}
    return {
        "meta": model.meta,
        "active": symbol in model.active_on,
        "metrics": metric_rows(holdout, baseline),
        "beats": beats.get("log_loss"),
        "verdict": beats.get("summary"),
        "importances": importance_bars(metrics.get("importances") or {}),
    }


def models_view(models: Sequence[RegisteredModel], symbols: Sequence[str]) -> list[dict[str, Any]]:
    """The ``models`` (newest first, as the registry lists them) grouped by symbol (the traded
    ``symbols`` first, then any other a model was trained on) and kind: ``[{"symbol", "kinds":
    [{"kind", "active_id", "models": [model_row, ...]}]}]``; a traded symbol without a model
    has an empty ``kinds``."""
    others = [s for m in models for s in m.meta.symbols if s not in symbols]
    groups = []
    for symbol in dict.fromkeys([*symbols, *others]):
        kinds = []
        for kind in dict.fromkeys([*KINDS, *(m.meta.kind for m in models)]):
            rows = [
                model_row(m, symbol)
                for m in models
                if m.meta.kind == kind and symbol in m.meta.symbols
            ]
            if rows:
                active = next((r["meta"].model_id for r in rows if r["active"]), None)
                kinds.append({"kind": kind, "active_id": active, "models": rows})
        groups.append({"symbol": symbol, "kinds": kinds})
    return groups


def job_view(job: TrainingJob) -> dict[str, Any]:
    """A training job as its card shows it: the ``job`` and its ``percent`` done, with the
    holdout ``metrics`` (:func:`metric_rows`) once done."""
    metrics = None
    if job.metrics is not None:
        metrics = metric_rows(job.metrics, job.baseline or {})
    return {"job": job, "percent": round(100.0 * job.progress), "metrics": metrics}


def train_form(
    symbols: Sequence[str],
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    done: str | None = None,
) -> dict[str, Any]:
    """The training form: the traded ``symbols`` to choose from, the model ``kinds`` and
    ``algos``, the ``values`` shown (:data:`FORM_DEFAULTS` and the first symbol where not
    given), the ``errors`` by field (``form`` for the whole request) and what was ``done``."""
    shown = dict(FORM_DEFAULTS) | {"symbol": symbols[0] if symbols else ""} | dict(values or {})
    return {
        "symbols": list(symbols),
        "kinds": KINDS,
        "algos": ALGOS,
        "values": shown,
        "errors": dict(errors or {}),
        "done": done,
    }


# -- readers --------------------------------------------------------------------------------------


def models_context(
    registry: ModelRegistry,
    symbols: Sequence[str],
    *,
    done: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """:func:`models_view` of every stored model, with what an activation or roll-back just
    ``done`` or the ``error`` that refused it."""
    models = registry.list()
    return {
        "groups": models_view(models, symbols),
        "count": len(models),
        "done": done,
        "error": error,
    }


def jobs_context(training: TrainingJobs) -> dict[str, Any]:
    """The latest :data:`JOBS_SHOWN` training jobs, newest first, as :func:`job_view`."""
    return {"jobs": [job_view(j) for j in training.recent(JOBS_SHOWN)]}
