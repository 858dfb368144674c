"""The model registry's use cases (issue 7): artifacts in a :class:`~domain.ports.ModelStore`
(files), the registry in SQL (:class:`~domain.ports.ModelRepository`, through the unit of work),
kept consistent.

Every change writes the files first, then the rows in one transaction: a model is saved, or
activated, or rolled back, in the store (which checks the artifact's sha256 and library versions
before an activation), and only then recorded in SQL with who and when. A crash between the two
leaves the files ahead of SQL; :meth:`ModelRegistry.sync`, run at every server start, brings the
rows level with the files (models saved or activations changed by the CLI while the server was
down, model folders deleted by hand). Reads (list, get, compare) come from SQL only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from domain.errors import DomainError, ModelNotFound
from domain.ml.comparison import side_by_side
from domain.ports import (
    ActivationAction,
    Clock,
    ModelActivation,
    ModelMetadata,
    ModelStore,
    UnitOfWork,
)

logger = logging.getLogger(__name__)

SYNC = "sync"
"""Who (and the action) of an activation found in the store's files at start-up."""


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A stored model's metadata and the symbols on which it is the active model of its kind
    (empty when it is active nowhere)."""

    meta: ModelMetadata
    active_on: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """True when the model is active on at least one of its symbols."""
        return bool(self.active_on)


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What :meth:`ModelRegistry.sync` changed: model ids ``added`` to SQL (on disk only) and
    ``removed`` from it (gone from disk), the ``activations`` recorded to match the store's
    index, and the ids ``skipped`` because their files do not read."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    activations: tuple[ModelActivation, ...] = ()
    skipped: tuple[str, ...] = ()


class ModelRegistry:
    """Saves, lists, activates, rolls back and compares models; safe to call from several
    threads (changes are serialized: the store assumes one writer).

    Parameters
    ----------
    store:
        The model artifacts and their metadata (the authority on what is stored and active).
    uow_factory:
        Units of work whose ``models`` repository holds the registry rows.
    clock:
        The wall clock: when an activation happened (ms UTC).
    on_activate:
        Called with the symbols whose active model changed (an activation or a roll-back), after
        the change is stored: the server hands the new models to the running strategy.

    Raises (every method naming a model)
    ------
    ModelNotFound
        An unknown model id (404 over the API; field ``model_id``, or ``ids`` for compare).
    ModelMismatch
        Activating a model whose artifact's sha256 or library versions differ (409).
    NoEarlierModel
        A roll-back with nothing to roll back to (409).
    """

    def __init__(
        self,
        store: ModelStore,
        uow_factory: Callable[[], UnitOfWork],
        clock: Clock,
        on_activate: Callable[[tuple[str, ...]], None] | None = None,
    ) -> None:
        self._store = store
        self._uow = uow_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._on_activate = on_activate

    # -- changes: files first, then the rows ----------------------------------------------

    def save(self, model: object, meta: ModelMetadata) -> ModelMetadata:
        """Store ``model`` with ``meta`` (not activated) and its registry row; the metadata as
        stored (id and sha256 filled, JSON values: NaN as None). The training use case saves
        through this (:func:`service_layer.training.train_model`)."""
        with self._lock:
            saved = self._store.save(model, meta)
            stored = self._store.get(saved.model_id)  # the files' JSON form, as SQL will hold it
            with self._uow() as uow:
                uow.models.add(stored)
                uow.commit()
        return stored

    def activate(self, model_id: str, who: str) -> RegisteredModel:
        """Make ``model_id`` the active model of its kind on each of its symbols (checked by
        the store first), recorded as done by ``who``; activating the active model records
        nothing."""
        with self._lock:
            stored = self._store.get(model_id)
            self._catch_up([(stored.kind, symbol) for symbol in stored.symbols])
            meta = self._store.activate(model_id)
            done = self._record(meta, meta.symbols, who, "activate")
        self._activated(meta.symbols)
        return done

    def rollback(self, kind: str, symbol: str, who: str) -> RegisteredModel:
        """Re-activate the model of ``kind`` that was active on ``symbol`` before the current
        one (checked by the store first), recorded as done by ``who``; the model now active."""
        with self._lock:
            self._catch_up([(kind, symbol)])
            meta = self._store.rollback(kind, symbol)
            done = self._record(meta, (symbol,), who, "rollback")
        self._activated((symbol,))
        return done

    def _activated(self, symbols: tuple[str, ...]) -> None:
        if self._on_activate is not None:
            self._on_activate(tuple(symbols))

    def _catch_up(self, keys: Iterable[tuple[str, str]]) -> None:
        """Record (as ``sync``) the store's active models of ``keys`` (kind, symbol) that SQL
        does not know yet (the CLI activated them while the server ran), so that the change
        about to be made is recorded against the state it changes."""
        with self._uow() as uow:
            if self._sync_active(uow, keys, self._clock.now_ms()):
                uow.commit()

    def _record(
        self, meta: ModelMetadata, symbols: Iterable[str], who: str, action: ActivationAction
    ) -> RegisteredModel:
        """Record ``meta`` active on ``symbols`` where SQL says otherwise (its row added if
        the files had it and SQL did not)."""
        now = self._clock.now_ms()
        with self._uow() as uow:
            if uow.models.get(meta.model_id) is None:
                uow.models.add(meta)
            active = uow.models.active()
            for symbol in symbols:
                if active.get((meta.kind, symbol)) != meta.model_id:
                    activation = ModelActivation(meta.kind, symbol, meta.model_id, now, who, action)
                    uow.models.add_activation(activation)
            active = uow.models.active()
            uow.commit()
        return RegisteredModel(meta, _active_on(meta, active))

    # -- reads (SQL) ---------------------------------------------------------------------

    def get(self, model_id: str) -> RegisteredModel:
        """One model with where it is active."""
        with self._uow() as uow:
            meta = uow.models.get(model_id)
            active = uow.models.active()
        if meta is None:
            raise ModelNotFound(f"no model {model_id!r} in the registry", field="model_id")
        return RegisteredModel(meta, _active_on(meta, active))

    def list(self, kind: str | None = None, symbol: str | None = None) -> list[RegisteredModel]:
        """Models of ``kind`` on ``symbol`` (each when given), newest first."""
        with self._uow() as uow:
            metas = uow.models.list(kind, symbol)
            active = uow.models.active()
        return [RegisteredModel(m, _active_on(m, active)) for m in metas]

    def activations(self, model_id: str, limit: int = 100) -> list[ModelActivation]:
        """The activations of ``model_id`` (by hand, roll-backs and syncs), newest first."""
        with self._uow() as uow:
            return uow.models.activations(model_id, limit)

    def compare(self, model_ids: Sequence[str]) -> dict[str, dict[str, object]]:
        """``{metric: {model_id: value}}``: the models' metrics flattened to dotted paths
        (``holdout.log_loss``), side by side, None where a model lacks one; models in the
        given order (a repeated id once)."""
        with self._uow() as uow:
            metas = {model_id: uow.models.get(model_id) for model_id in model_ids}
        for model_id, meta in metas.items():
            if meta is None:
                raise ModelNotFound(f"no model {model_id!r} in the registry", field="ids")
        return side_by_side({mid: meta.metrics for mid, meta in metas.items() if meta})

    # -- start-up --------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """Bring the SQL rows level with the store's files: add the models stored on disk only,
        remove the rows of models no longer on disk, and record (as ``sync``) the store's active
        model of each kind and symbol where SQL says otherwise. A model whose files do not read
        is skipped (logged) and its row left as it is."""
        with self._lock:
            on_disk, skipped = self._readable()
            now = self._clock.now_ms()
            with self._uow() as uow:
                stored = uow.models.ids()
                added = sorted(set(on_disk) - stored)
                removed = sorted(stored - set(on_disk) - set(skipped))
                for model_id in added:
                    uow.models.add(on_disk[model_id])
                for model_id in removed:
                    uow.models.remove(model_id)
                keys = {(m.kind, s) for m in on_disk.values() for s in m.symbols}
                recorded = self._sync_active(uow, keys | set(uow.models.active()), now)
                uow.commit()
        report = SyncReport(tuple(added), tuple(removed), tuple(recorded), tuple(skipped))
        if added or removed or recorded:
            logger.info(
                "model registry synced with the files: %d added, %d removed, %d activations",
                len(added), len(removed), len(recorded),
            )  # fmt: skip
        return report

    def _readable(self) -> tuple[dict[str, ModelMetadata], list[str]]:
        """The metadata of every stored model that reads, and the ids of those that do not."""
        on_disk: dict[str, ModelMetadata] = {}
        skipped: list[str] = []
        for model_id in self._store.ids():
            try:
                on_disk[model_id] = self._store.get(model_id)
            except DomainError as exc:
                logger.warning("model %s left out of the registry: %s", model_id, exc)
                skipped.append(model_id)
        return on_disk, skipped

    def _sync_active(
        self, uow: UnitOfWork, keys: Iterable[tuple[str, str]], now: int
    ) -> list[ModelActivation]:
        """Record the store's active model of each ``(kind, symbol)`` of ``keys`` where SQL
        says otherwise; the activations recorded."""
        sql_active = uow.models.active()
        recorded = []
        for kind, symbol in sorted(set(keys)):
            try:
                current = self._store.active(kind, symbol)
            except DomainError as exc:  # its files went or do not read: leave SQL as it is
                logger.warning("active %s model of %s not synced: %s", kind, symbol, exc)
                continue
            model_id = None if current is None else current.model_id
            if sql_active.get((kind, symbol)) != model_id:
                activation = ModelActivation(kind, symbol, model_id, now, SYNC, "sync")
                uow.models.add_activation(activation)
                recorded.append(activation)
        return recorded


def _active_on(meta: ModelMetadata, active: dict[tuple[str, str], str]) -> tuple[str, ...]:
    return tuple(s for s in meta.symbols if active.get((meta.kind, s)) == meta.model_id)
