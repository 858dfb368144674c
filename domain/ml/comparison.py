"""Models' metrics side by side (the registry's ``compare``): nested metric mappings flattened to
dotted paths and lined up per model.

>>> side_by_side({"a": {"holdout": {"accuracy": 0.5}}, "b": {"cv": {"brier": 0.2}}})
{'holdout.accuracy': {'a': 0.5, 'b': None}, 'cv.brier': {'a': None, 'b': 0.2}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics as ``{"holdout.accuracy": 0.52, ...}``; lists are kept as values."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def side_by_side(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{metric: {model_id: value}}`` over the union of the flattened ``metrics`` of each model
    (``{model_id: metrics}``), metrics in first-seen order, models in the given order; None
    where a model lacks a metric."""
    flat = {model_id: flatten(m) for model_id, m in metrics.items()}
    names = dict.fromkeys(name for values in flat.values() for name in values)
    return {name: {mid: values.get(name) for mid, values in flat.items()} for name in names}
