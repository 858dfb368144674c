"""The model registry in SQL (:class:`~domain.ports.ModelRepository`): one row per stored
model mirroring its :class:`~domain.ports.ModelMetadata`, its symbols, and the activation
history. Shared by every run: the repository ignores the unit of work's run."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from adapters.storage.sql.paging import check_limit
from adapters.storage.sql.statements import write
from adapters.storage.sql.tables import ModelActivationRow, ModelRow, ModelSymbolRow
from domain.ports import ModelActivation, ModelMetadata

MODELS: sa.Table = ModelRow.__table__  # type: ignore[attr-defined]
MODEL_SYMBOLS: sa.Table = ModelSymbolRow.__table__  # type: ignore[attr-defined]
ACTIVATIONS: sa.Table = ModelActivationRow.__table__  # type: ignore[attr-defined]

_LATEST = sa.select(ACTIVATIONS.c.kind, ACTIVATIONS.c.symbol, ACTIVATIONS.c.model_id).where(
    ACTIVATIONS.c.id.in_(
        sa.select(sa.func.max(ACTIVATIONS.c.id)).group_by(ACTIVATIONS.c.kind, ACTIVATIONS.c.symbol)
    )
)
"""The latest activation of each kind and symbol."""


class SqlModelRepository:
    """The registry's rows over the unit of work's connection (never commits).

    Parameters
    ----------
    connect:
        Returns the unit of work's connection, inside its transaction.
    """

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect

    def add(self, meta: ModelMetadata) -> None:
        """Store ``meta`` and its symbols (replacing a stored row of the same id).

        Raises
        ------
        ValueError
            If the metadata holds what JSON cannot (NaN, infinity).
        """
        connection = self._connect()
        write(connection, MODELS, _values(meta), ("model_id",))
        connection.execute(MODEL_SYMBOLS.delete().where(MODEL_SYMBOLS.c.model_id == meta.model_id))
        connection.execute(
            MODEL_SYMBOLS.insert(), [{"model_id": meta.model_id, "symbol": s} for s in meta.symbols]
        )

    def get(self, model_id: str) -> ModelMetadata | None:
        """The metadata of ``model_id``, None when it has no row."""
        row = self._connect().execute(sa.select(MODELS).where(MODELS.c.model_id == model_id))
        found = row.first()
        return None if found is None else _meta(found)

    def ids(self) -> set[str]:
        """Every stored model id."""
        return set(self._connect().execute(sa.select(MODELS.c.model_id)).scalars())

    def remove(self, model_id: str) -> None:
        """Delete the row of ``model_id`` and its symbols (the activations stay)."""
        connection = self._connect()
        connection.execute(MODEL_SYMBOLS.delete().where(MODEL_SYMBOLS.c.model_id == model_id))
        connection.execute(MODELS.delete().where(MODELS.c.model_id == model_id))

    def list(self, kind: str | None = None, symbol: str | None = None) -> list[ModelMetadata]:
        """Models of ``kind`` on ``symbol`` (each when given), newest first (``created_ms``,
        then id)."""
        stmt = sa.select(MODELS).order_by(MODELS.c.created_ms.desc(), MODELS.c.model_id.desc())
        if kind is not None:
            stmt = stmt.where(MODELS.c.kind == kind)
        if symbol is not None:
            chosen = sa.select(MODEL_SYMBOLS.c.model_id).where(MODEL_SYMBOLS.c.symbol == symbol)
            stmt = stmt.where(MODELS.c.model_id.in_(chosen))
        return [_meta(row) for row in self._connect().execute(stmt)]

    def add_activation(self, activation: ModelActivation) -> None:
        """Append ``activation`` to the history."""
        values = {
            "kind": activation.kind, "symbol": activation.symbol,
            "model_id": activation.model_id, "time": activation.time, "who": activation.who,
            "action": activation.action,
        }  # fmt: skip
        self._connect().execute(ACTIVATIONS.insert(), values)

    def active(self) -> dict[tuple[str, str], str]:
        """``{(kind, symbol): model_id}`` of the latest activation of each kind and symbol
        that names a model."""
        rows = self._connect().execute(_LATEST)
        return {(r.kind, r.symbol): r.model_id for r in rows if r.model_id is not None}

    def activations(
        self, model_id: str | None = None, limit: int = 100
    ) -> builtins.list[ModelActivation]:
        """The latest ``limit`` activations (of ``model_id`` when given), newest first.

        Raises
        ------
        ConfigError
            ``limit < 1`` (field ``limit``).
        """
        check_limit(limit)
        stmt = sa.select(ACTIVATIONS).order_by(ACTIVATIONS.c.id.desc()).limit(limit)
        if model_id is not None:
            stmt = stmt.where(ACTIVATIONS.c.model_id == model_id)
        return [
            ModelActivation(r.kind, r.symbol, r.model_id, r.time, r.who, r.action)
            for r in self._connect().execute(stmt)
        ]


def _values(meta: ModelMetadata) -> dict[str, Any]:
    return {
        "model_id": meta.model_id, "kind": meta.kind, "algo": meta.algo,
        "symbols": list(meta.symbols), "timeframe": meta.timeframe,
        "feature_set": meta.feature_set, "feature_names": list(meta.feature_names),
        "label": dict(meta.label), "train_start_ms": meta.train_start_ms,
        "train_end_ms": meta.train_end_ms, "created_ms": meta.created_ms,
        "metrics": dict(meta.metrics), "versions": dict(meta.versions),
        "params": dict(meta.params), "sha256": meta.sha256,
    }  # fmt: skip


def _meta(row: Any) -> ModelMetadata:
    return ModelMetadata(
        model_id=row.model_id,
        kind=row.kind,
        algo=row.algo,
        symbols=tuple(row.symbols),
        timeframe=row.timeframe,
        feature_set=row.feature_set,
        feature_names=tuple(row.feature_names),
        label=dict(row.label),
        train_start_ms=row.train_start_ms,
        train_end_ms=row.train_end_ms,
        created_ms=row.created_ms,
        metrics=dict(row.metrics),
        versions=dict(row.versions),
        params=dict(row.params),
        sha256=row.sha256,
    )
