"""The model registry in plain files: :class:`FilesystemModelStore` implements
:class:`domain.ports.ModelStore`.

Layout under ``root`` (``<data_dir>/models`` in the server)::

    <model_id>/model.joblib      the fitted model, pickled by joblib
    <model_id>/metadata.json     ModelMetadata as JSON, with the artifact's sha256
    index.json                   {"active": {"trend/BTCUSDT": id},
                                  "history": {"trend/BTCUSDT": [ids]}}

``history`` lists a kind and symbol's activations, oldest first, the active one last; a
roll-back drops the last and re-activates the one before. A model folder is written under a
temporary name and renamed into place, and the index is replaced atomically (``os.replace``),
so a failed write leaves the registry as it was. One writer at a time is assumed (the CLI, or
the server's one training task).

Loading refuses, with :class:`~domain.errors.ModelMismatch`, an artifact whose sha256 differs
from the metadata's (checked before unpickling: a pickle runs code) and a model saved with other
library versions than the running ones: exact versions for every library recorded, the
``major.minor`` for Python (a patch release does not change pickles).
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib

from domain.errors import ConfigError, ModelMismatch, ModelNotFound, NoEarlierModel
from domain.ml.comparison import side_by_side
from domain.ports import ModelMetadata

ARTIFACT = "model.joblib"
METADATA = "metadata.json"
INDEX = "index.json"
_SAFE_ID = re.compile(r"^\w[\w.+-]*$")


def installed_version(name: str) -> str | None:
    """The running version of distribution ``name`` (``python``: the interpreter's
    ``major.minor.micro``), None when it is not installed."""
    if name == "python":
        return platform.python_version()
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def version_mismatches(recorded: Mapping[str, str]) -> list[str]:
    """One phrase per library whose running version differs from ``recorded`` (Python compared
    on ``major.minor``); empty when all match."""
    out = []
    for name, saved in sorted(recorded.items()):
        running = installed_version(name)
        if name == "python":
            same = running is not None and running.split(".")[:2] == str(saved).split(".")[:2]
        else:
            same = running == saved
        if not same:
            out.append(f"{name} {saved} (running {running or 'not installed'})")
    return out


def sha256_of(path: Path) -> str:
    """Hex SHA-256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plain(value: Any) -> Any:
    """``value`` with JSON's types only: mappings → dicts, sequences → lists, numpy scalars →
    Python numbers, NaN and ±inf → None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _to_json(meta: ModelMetadata) -> dict[str, Any]:
    return plain(dataclasses.asdict(meta))


def _from_json(data: Mapping[str, Any], source: Path) -> ModelMetadata:
    try:
        return ModelMetadata(**data)
    except (TypeError, ConfigError) as exc:
        raise ModelMismatch(f"{source}: not valid model metadata ({exc})") from None


def _key(kind: str, symbol: str) -> str:
    return f"{kind}/{symbol}"


class FilesystemModelStore:
    """Model artifacts (joblib) and their JSON metadata under ``root`` (created on first save).

    Raises (every method)
    ------
    ModelNotFound
        An unknown model id (field ``model_id``; a ``ConfigError``).
    NoEarlierModel
        Nothing to roll back to (field ``model``; a ``ConfigError``).
    ModelMismatch
        A model that fails its sha256 or library-version check, or unreadable metadata.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- storing and loading ---------------------------------------------------------------

    def save(self, model: object, meta: ModelMetadata) -> ModelMetadata:
        """Pickle ``model`` and write ``meta`` with the id and the artifact's sha256 filled.

        The id is ``<kind>-<symbols>-<algo>-<created UTC, YYYYmmddTHHMMSS>-<sha256[:8]>``.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=self.root))
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from other readers
        try:
            joblib.dump(model, staging / ARTIFACT)
            digest = sha256_of(staging / ARTIFACT)
            created = datetime.fromtimestamp(meta.created_ms / 1000, UTC)
            stamp = created.strftime("%Y%m%dT%H%M%S")
            model_id = f"{meta.kind}-{'+'.join(meta.symbols)}-{meta.algo}-{stamp}-{digest[:8]}"
            stored = dataclasses.replace(meta, model_id=model_id, sha256=digest)
            (staging / METADATA).write_text(json.dumps(_to_json(stored), indent=2) + "\n")
            target = self.root / model_id
            if target.exists():
                raise ConfigError(f"model {model_id} is already stored", field="model_id")
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        return stored

    def get(self, model_id: str) -> ModelMetadata:
        """The metadata of ``model_id``."""
        path = self._folder(model_id) / METADATA
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelMismatch(f"{path}: not valid JSON ({exc})") from None
        return _from_json(data, path)

    def verify(self, model_id: str) -> ModelMetadata:
        """The metadata of ``model_id`` once its artifact's sha256 and its library versions
        match; ``ModelMismatch`` naming the difference otherwise."""
        meta = self.get(model_id)
        artifact = self._folder(model_id) / ARTIFACT
        if not artifact.is_file():
            raise ModelMismatch(f"model {model_id}: artifact {artifact} is missing")
        digest = sha256_of(artifact)
        if digest != meta.sha256:
            raise ModelMismatch(
                f"model {model_id}: artifact sha256 {digest} does not match the metadata's "
                f"{meta.sha256} (the file was changed or is corrupt); retrain or restore it"
            )
        differ = version_mismatches(meta.versions)
        if differ:
            raise ModelMismatch(
                f"model {model_id} was saved with library versions that differ from the running "
                f"ones: {'; '.join(differ)}; retrain it under the running versions"
            )
        return meta

    def load(self, model_id: str) -> tuple[object, ModelMetadata]:
        """The model and its metadata, after :meth:`verify`."""
        meta = self.verify(model_id)
        return joblib.load(self._folder(model_id) / ARTIFACT), meta

    def ids(self) -> builtins.list[str]:
        """The ids of every stored model folder (with a metadata file), sorted; a folder being
        written (``.saving-…``) is not one."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and _SAFE_ID.match(p.name) and (p / METADATA).is_file()
        )

    def list(
        self, kind: str | None = None, symbol: str | None = None
    ) -> builtins.list[ModelMetadata]:
        """Stored models of ``kind`` on ``symbol`` (each when given), oldest first (by
        ``created_ms``, then id)."""
        metas = [self.get(model_id) for model_id in self.ids()]
        chosen = [
            m
            for m in metas
            if (kind is None or m.kind == kind) and (symbol is None or symbol in m.symbols)
        ]
        return sorted(chosen, key=lambda m: (m.created_ms, m.model_id))

    # -- activation ------------------------------------------------------------------------

    def active(self, kind: str, symbol: str) -> ModelMetadata | None:
        """The active model of ``kind`` on ``symbol``, None when there is none."""
        model_id = self._index()["active"].get(_key(kind, symbol))
        return None if model_id is None else self.get(model_id)

    def active_ids(self) -> dict[str, str]:
        """``{"<kind>/<symbol>": model_id}`` of every active model."""
        return dict(self._index()["active"])

    def activate(self, model_id: str) -> ModelMetadata:
        """Make ``model_id`` the active model of its kind on each of its symbols (after
        :meth:`verify`); activating the active model changes nothing."""
        meta = self.verify(model_id)
        index = self._index()
        for symbol in meta.symbols:
            key = _key(meta.kind, symbol)
            if index["active"].get(key) != model_id:
                index["active"][key] = model_id
                index["history"].setdefault(key, []).append(model_id)
        self._write_index(index)
        return meta

    def rollback(self, kind: str, symbol: str) -> ModelMetadata:
        """Re-activate the model active before the current one of ``kind`` on ``symbol`` (it is
        verified first; the index is unchanged if that fails)."""
        index = self._index()
        key = _key(kind, symbol)
        history = index["history"].get(key, [])
        if len(history) < 2:
            raise NoEarlierModel(
                f"no earlier {kind} model of {symbol} to roll back to "
                f"({'none' if not history else history[-1]} is active)",
                field="model",
            )
        previous = history[-2]
        meta = self.verify(previous)
        index["history"][key] = history[:-1]
        index["active"][key] = previous
        self._write_index(index)
        return meta

    def compare(self, model_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{metric: {model_id: value}}`` over the union of the models' flattened metrics
        (dotted paths), in first-seen order; None where a model lacks one."""
        return side_by_side({model_id: self.get(model_id).metrics for model_id in model_ids})

    # -- files -----------------------------------------------------------------------------

    def _folder(self, model_id: str) -> Path:
        folder = self.root / model_id
        if not _SAFE_ID.match(model_id) or not (folder / METADATA).is_file():
            raise ModelNotFound(f"no model {model_id!r} in {self.root}", field="model_id")
        return folder

    def _index(self) -> dict[str, dict[str, Any]]:
        path = self.root / INDEX
        if not path.is_file():
            return {"active": {}, "history": {}}
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelMismatch(f"{path}: not valid JSON ({exc})") from None
        return {"active": dict(data.get("active", {})), "history": dict(data.get("history", {}))}

    def _write_index(self, index: Mapping[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".json", dir=self.root)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(index, f, indent=2, sort_keys=True)
                f.write("\n")
            os.replace(tmp, self.root / INDEX)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
