"""The model registry's SQL rows on real SQLite and PostgreSQL (migration 0006): a model's
metadata round-trips, listings are newest first and filter by kind and symbol, the latest
activation of a kind and symbol is its active model, and the registry service keeps the rows
level with the model store's real files."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from adapters.models.filesystem import FilesystemModelStore
from adapters.storage.sql.unit_of_work import SqlUnitOfWork
from domain.ports import ModelActivation, ModelMetadata
from service_layer.model_registry import ModelRegistry
from tests.fakes import ManualClock

NewUow = Callable[..., SqlUnitOfWork]
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
DAY = 86_400_000


def meta(
    model_id: str, kind: str = "trend", symbols: tuple[str, ...] = ("BTCUSDT",), minute: int = 0
) -> ModelMetadata:
    return ModelMetadata(
        model_id=model_id,
        kind=kind,
        algo="xgb",
        symbols=symbols,
        timeframe="5m",
        feature_set="ml_core@v1",
        feature_names=("rsi", "adx", "hour"),
        label={"name": "TrendLabel", "horizon": 48},
        train_start_ms=T0,
        train_end_ms=T0 + 20 * DAY,
        created_ms=T0 + 30 * DAY + minute * 60_000,
        metrics={
            "holdout": {"accuracy": 0.53, "roc_auc": None, "trading": {"trades": 12}},
            "beats_baseline": {"log_loss": False, "summary": "does NOT beat the baseline"},
            "importances": {"rsi": 0.01},
        },
        versions={"python": "3.12.1", "scikit-learn": "1.5.2", "xgboost": "2.1.1"},
        params={"n_estimators": 30, "calibration": "isotonic", "max_depth": None},
        sha256="ab" * 32,
    )


def test_a_models_metadata_round_trips_and_lists_newest_first_by_kind_and_symbol(
    new_uow: NewUow,
) -> None:
    a = meta("a", "trend", ("BTCUSDT",), 0)
    b = meta("b", "mean_reversion", ("ETHUSDT",), 1)
    c = meta("c", "trend", ("BTCUSDT", "ETHUSDT"), 2)
    with new_uow() as uow:
        for each in (a, b, c):
            uow.models.add(each)
        uow.commit()

    with new_uow("another-run") as uow:  # the registry is shared by every run
        got = uow.models.get("a")
        every = uow.models.list()
        trend = uow.models.list(kind="trend")
        eth = uow.models.list(symbol="ETHUSDT")
        none = uow.models.list("mean_reversion", "BTCUSDT")
        ids = uow.models.ids()

    assert got == a
    assert [m.model_id for m in every] == ["c", "b", "a"]
    assert [m.model_id for m in trend] == ["c", "a"]
    assert [m.model_id for m in eth] == ["c", "b"]
    assert none == [] and ids == {"a", "b", "c"}


def test_a_model_stored_again_replaces_its_row_and_symbols_and_removal_drops_both(
    new_uow: NewUow,
) -> None:
    with new_uow() as uow:
        uow.models.add(meta("a", symbols=("BTCUSDT",)))
        uow.commit()
    moved = dataclasses.replace(meta("a"), symbols=("SOLUSDT",), sha256="cd" * 32)

    with new_uow() as uow:
        uow.models.add(moved)
        uow.commit()
    with new_uow() as uow:
        on_sol, on_btc = uow.models.list(symbol="SOLUSDT"), uow.models.list(symbol="BTCUSDT")
        uow.models.remove("a")
        uow.commit()
    with new_uow() as uow:
        after = uow.models.get("a"), uow.models.list(symbol="SOLUSDT")

    assert on_sol == [moved] and on_btc == []
    assert after == (None, [])


def test_the_latest_activation_of_a_kind_and_symbol_is_its_active_model(new_uow: NewUow) -> None:
    history = [
        ModelActivation("trend", "BTCUSDT", "a", T0, "api", "activate"),
        ModelActivation("trend", "BTCUSDT", "b", T0 + 1, "cli", "activate"),
        ModelActivation("trend", "ETHUSDT", "b", T0 + 2, "api", "activate"),
        ModelActivation("trend", "BTCUSDT", "a", T0 + 3, "api", "rollback"),
        ModelActivation("trend", "ETHUSDT", None, T0 + 4, "sync", "sync"),
    ]
    with new_uow() as uow:
        for each in history:
            uow.models.add_activation(each)
        uow.commit()

    with new_uow() as uow:
        active = uow.models.active()
        newest = uow.models.activations(limit=2)
        of_b = uow.models.activations("b")

    assert active == {("trend", "BTCUSDT"): "a"}
    assert newest == history[:2:-1]
    assert of_b == [history[2], history[1]]


def test_the_registry_keeps_the_rows_level_with_the_files(new_uow: NewUow, tmp_path: Path) -> None:
    files = FilesystemModelStore(tmp_path / "models")
    registry = ModelRegistry(files, new_uow, ManualClock(T0 + 40 * DAY))
    template = dataclasses.replace(meta(""), sha256="", versions={})
    first = registry.save({"w": 1}, template).model_id
    second = registry.save({"w": 2}, dataclasses.replace(template, created_ms=T0 + 31 * DAY))
    registry.activate(first, "api")
    registry.activate(second.model_id, "api")
    cli = files.save({"w": 3}, dataclasses.replace(template, created_ms=T0 + 32 * DAY))
    files.activate(cli.model_id)  # the CLI, while the server is down

    back = registry.rollback("trend", "BTCUSDT", "api")  # files first: back to `second`
    report = registry.sync()

    assert back.meta.model_id == second.model_id
    assert report.added == (cli.model_id,) and report.activations == ()
    listed = registry.list()
    assert [m.meta.model_id for m in listed] == [cli.model_id, second.model_id, first]
    assert [m.active for m in listed] == [False, True, False]
    assert listed[1].meta == files.get(second.model_id)
    assert [a.action for a in registry.activations(second.model_id)] == ["rollback", "activate"]
    assert [a.who for a in registry.activations(cli.model_id)] == ["sync"]  # caught up first
