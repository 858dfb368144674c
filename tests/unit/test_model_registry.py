"""The model registry service (service_layer/model_registry.py) over the in-memory unit of work
and the model store's real files: saves, activations and roll-backs write the files first and
then the rows with who and when; reads come from the rows; a start-up sync brings the rows level
with files the CLI changed; unknown ids and refused artifacts are errors that name them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adapters.models.filesystem import FilesystemModelStore
from domain.errors import ModelMismatch, ModelNotFound, NoEarlierModel
from domain.ports import ModelActivation, ModelMetadata
from service_layer.model_registry import ModelRegistry
from tests.fakes import InMemoryUnitOfWork, ManualClock, MemoryStore

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
DAY = 86_400_000
NOW = T0 + 40 * DAY


def meta(
    kind: str = "trend", symbols: tuple[str, ...] = ("BTCUSDT",), minute: int = 0, **metrics: float
) -> ModelMetadata:
    """Metadata of a model created ``minute`` minutes after ``T0 + 30 days``."""
    return ModelMetadata(
        model_id="",
        kind=kind,
        algo="hgb",
        symbols=symbols,
        timeframe="5m",
        feature_set="ml_core@v1",
        feature_names=("rsi", "adx"),
        label={"name": "TrendLabel", "horizon": 48},
        train_start_ms=T0,
        train_end_ms=T0 + 20 * DAY,
        created_ms=T0 + 30 * DAY + minute * 60_000,
        metrics={"holdout": {"accuracy": 0.5, "log_loss": 0.69, **metrics}, "beats_baseline": {}},
        versions={},  # nothing to check: the artifact is a plain dict
        params={"max_iter": 20},
    )


class World:
    """A registry over an in-memory database and a model store in ``tmp_path``."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = MemoryStore()
        self.files = FilesystemModelStore(tmp_path / "models")
        self.clock = ManualClock(NOW)
        self.registry = ModelRegistry(
            self.files, lambda: InMemoryUnitOfWork(self.db, "-"), self.clock
        )

    def save(
        self,
        kind: str = "trend",
        symbols: tuple[str, ...] = ("BTCUSDT",),
        minute: int = 0,
        **metrics: float,
    ) -> str:
        """Save a model (a plain dict: the store pickles any object) through the registry."""
        model = {"weights": [1.0, 2.0]}
        return self.registry.save(model, meta(kind, symbols, minute, **metrics)).model_id


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_saved_model_has_its_files_and_its_row_and_is_not_active(world: World) -> None:
    model_id = world.save()

    listed = world.registry.list()

    assert world.files.ids() == [model_id]
    assert [m.meta for m in listed] == [world.files.get(model_id)]
    assert listed[0].meta.sha256 and not listed[0].active
    assert world.db.activations == []


def test_the_list_is_newest_first_and_filters_by_kind_and_symbol(world: World) -> None:
    first = world.save("trend", ("BTCUSDT",), 0)
    second = world.save("mean_reversion", ("ETHUSDT",), 1)
    third = world.save("trend", ("BTCUSDT", "ETHUSDT"), 2)

    assert [m.meta.model_id for m in world.registry.list()] == [third, second, first]
    assert [m.meta.model_id for m in world.registry.list(kind="trend")] == [third, first]
    assert [m.meta.model_id for m in world.registry.list(symbol="ETHUSDT")] == [third, second]
    assert [m.meta.model_id for m in world.registry.list("trend", "SOLUSDT")] == []


def test_an_activation_is_recorded_with_who_and_when_once(world: World) -> None:
    model_id = world.save()

    activated = world.registry.activate(model_id, "api")
    world.clock.advance_to(NOW + 1_000)
    world.registry.activate(model_id, "api")  # already active: nothing new

    assert activated.active and activated.active_on == ("BTCUSDT",)
    assert world.files.active("trend", "BTCUSDT").model_id == model_id  # type: ignore[union-attr]
    assert world.registry.activations(model_id) == [
        ModelActivation("trend", "BTCUSDT", model_id, NOW, "api", "activate")
    ]


def test_activating_another_model_moves_the_active_flag(world: World) -> None:
    first, second = world.save(minute=0), world.save(minute=1)

    world.registry.activate(first, "api")
    world.registry.activate(second, "cli")

    flags = {m.meta.model_id: m.active for m in world.registry.list()}
    assert flags == {first: False, second: True}


def test_a_rollback_reactivates_the_previous_model_and_records_it(world: World) -> None:
    first, second = world.save(minute=0), world.save(minute=1)
    world.registry.activate(first, "api")
    world.registry.activate(second, "api")
    world.clock.advance_to(NOW + 5_000)

    back = world.registry.rollback("trend", "BTCUSDT", "api")

    assert back.meta.model_id == first and back.active
    assert world.files.active("trend", "BTCUSDT").model_id == first  # type: ignore[union-attr]
    assert world.registry.get(second).active is False
    latest = world.registry.activations(first)[0]
    assert (latest.action, latest.who, latest.time) == ("rollback", "api", NOW + 5_000)


def test_a_rollback_with_nothing_earlier_is_refused_and_changes_nothing(world: World) -> None:
    model_id = world.save()
    world.registry.activate(model_id, "api")

    with pytest.raises(NoEarlierModel, match="no earlier trend model of BTCUSDT"):
        world.registry.rollback("trend", "BTCUSDT", "api")

    assert world.registry.get(model_id).active
    assert len(world.db.activations) == 1


def test_unknown_ids_are_refused_naming_them(world: World) -> None:
    known = world.save()

    with pytest.raises(ModelNotFound, match="'nope'") as got:
        world.registry.get("nope")
    assert got.value.field == "model_id"
    with pytest.raises(ModelNotFound, match="'nope'"):
        world.registry.activate("nope", "api")
    with pytest.raises(ModelNotFound, match="'nope'") as compared:
        world.registry.compare([known, "nope"])
    assert compared.value.field == "ids"


def test_a_tampered_artifact_is_refused_with_the_stores_message_and_not_recorded(
    world: World,
) -> None:
    model_id = world.save()
    with (world.files.root / model_id / "model.joblib").open("ab") as f:
        f.write(b"\0")

    with pytest.raises(ModelMismatch, match=r"sha256 .* does not match the metadata's"):
        world.registry.activate(model_id, "api")

    assert world.db.activations == []
    assert not world.registry.get(model_id).active


def test_compare_lines_up_the_metrics_of_the_models_in_order(world: World) -> None:
    first, second = world.save(minute=0, brier=0.25), world.save(minute=1)

    table = world.registry.compare([second, first])

    assert table["holdout.accuracy"] == {second: 0.5, first: 0.5}
    assert list(table["holdout.brier"]) == [second, first]
    assert table["holdout.brier"] == {second: None, first: 0.25}


def test_sync_adds_what_the_cli_saved_and_activated_while_the_server_was_down(
    world: World,
) -> None:
    before = world.save(minute=0)
    world.registry.activate(before, "api")
    saved = world.files.save({"w": 1}, meta(minute=1))  # the CLI: files only
    world.files.activate(saved.model_id)

    report = world.registry.sync()

    assert report.added == (saved.model_id,) and report.removed == ()
    assert report.activations == (
        ModelActivation("trend", "BTCUSDT", saved.model_id, NOW, "sync", "sync"),
    )
    assert world.registry.get(saved.model_id).active
    assert not world.registry.get(before).active
    assert world.registry.sync() == dataclasses.replace(report, added=(), activations=())


def test_a_cli_activation_while_the_server_runs_is_caught_up_before_a_rollback(
    world: World,
) -> None:
    first, second = world.save(minute=0), world.save(minute=1)
    world.registry.activate(first, "api")
    world.files.activate(second)  # the CLI: files only

    back = world.registry.rollback("trend", "BTCUSDT", "api")

    assert back.meta.model_id == first
    assert [(a.model_id, a.who, a.action) for a in world.registry.activations(first)[:1]] == [
        (first, "api", "rollback")
    ]
    assert [(a.who, a.action) for a in world.registry.activations(second)] == [("sync", "sync")]


def test_sync_forgets_the_rows_of_models_deleted_from_disk(world: World) -> None:
    kept, gone = world.save(minute=0), world.save(minute=1)
    for path in (world.files.root / gone).iterdir():
        path.unlink()
    (world.files.root / gone).rmdir()

    report = world.registry.sync()

    assert report.removed == (gone,)
    assert [m.meta.model_id for m in world.registry.list()] == [kept]


def test_sync_skips_a_model_whose_metadata_does_not_read_and_keeps_its_row(
    world: World,
) -> None:
    model_id = world.save()
    (world.files.root / model_id / "metadata.json").write_text("{not json")

    report = world.registry.sync()

    assert report.skipped == (model_id,) and report.removed == ()
    assert world.registry.get(model_id).meta.model_id == model_id
