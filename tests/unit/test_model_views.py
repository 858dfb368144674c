"""The AI signal page's model views (:mod:`web.model_views`) on models trained on the shipped
sample and saved in a real registry (files, in-memory SQL): scores beside the baseline's,
importances as bars, models grouped per symbol and kind with the active one marked, training
jobs as cards, and the training form."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.models.filesystem import FilesystemModelStore
from domain.candles import Candles
from domain.errors import UnknownSymbol
from service_layer.model_registry import ModelRegistry
from service_layer.training_jobs import TrainingJobs
from tests.fakes import InMemoryUnitOfWork, ManualClock, MemoryStore
from tests.fixtures.data import load_sample_candles
from web.model_views import (
    FORM_DEFAULTS,
    importance_bars,
    job_view,
    jobs_context,
    metric_rows,
    models_context,
    models_view,
    train_form,
)
from web.views import render

NOW = 1_767_225_600_000
SMALL: dict[str, Any] = {"kind": "trend", "days": 3, "folds": 2, "params": {"max_iter": 20}}
"""A job of well under a second on the sample."""


def stored_bars(symbol: str, timeframe: str) -> Candles:
    if timeframe != "5m":
        raise UnknownSymbol(f"no candles stored for {symbol} {timeframe}", field="symbol")
    return load_sample_candles(symbol)


class Trained:
    """A registry and the training jobs saving into it; jobs run when :meth:`run` says."""

    def __init__(self, root: Path) -> None:
        self.pending: list[Callable[[], None]] = []
        db = MemoryStore()
        self.registry = ModelRegistry(
            FilesystemModelStore(root / "models"),
            lambda: InMemoryUnitOfWork(db, "-"),
            ManualClock(NOW),
        )
        self.jobs = TrainingJobs(
            candles=stored_bars,
            registry=self.registry,
            publish=lambda events: None,
            clock=ManualClock(NOW),
            spawn=self.pending.append,
            threads=1,  # the test machine's cores are shared
        )

    def train(self, symbol: str, days: int = 3) -> str:
        """Train a small trend model on ``symbol``'s last ``days`` days; the finished job's id
        (the same bars and clock make the same model, under the same id)."""
        job = self.jobs.start(symbol=symbol, **(SMALL | {"days": days}))
        while self.pending:
            self.pending.pop(0)()
        return job.job_id


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Two BTCUSDT models (the first active) and one SOLUSDT model."""
    out = Trained(tmp_path_factory.mktemp("model-views"))
    first = out.jobs.get(out.train("BTCUSDT")).model_id
    out.train("BTCUSDT", days=4)
    out.train("SOLUSDT")
    assert first is not None
    out.registry.activate(first, "test")
    return out


# -- scores and importances ----------------------------------------------------------------------


def test_scores_are_compared_with_the_baselines_where_it_has_them(trained: Trained) -> None:
    model = trained.registry.list("trend", "BTCUSDT")[0]
    holdout, baseline = model.meta.metrics["holdout"], model.meta.metrics["baseline"]

    rows = metric_rows(holdout, baseline)

    assert [r["key"] for r in rows] == ["accuracy", "roc_auc", "log_loss"]
    accuracy, auc, loss = rows
    assert (accuracy["model"], accuracy["baseline"]) == (holdout["accuracy"], baseline["accuracy"])
    assert accuracy["better"] is (holdout["accuracy"] > baseline["accuracy"])
    assert (auc["model"], auc["baseline"], auc["better"]) == (holdout["roc_auc"], None, None)
    assert loss["better"] is (holdout["log_loss"] < baseline["log_loss"])


def test_a_score_that_is_not_stored_is_none_not_zero() -> None:
    rows = metric_rows({"accuracy": 0.6, "roc_auc": None}, {})

    assert [(r["model"], r["baseline"], r["better"]) for r in rows] == [
        (0.6, None, None), (None, None, None), (None, None, None),
    ]  # fmt: skip


def test_importances_are_bars_largest_first_the_largest_full_length(trained: Trained) -> None:
    importances = trained.registry.list("trend", "BTCUSDT")[0].meta.metrics["importances"]

    bars = importance_bars(importances)

    assert len(bars) == len(importances) == 10
    assert [(b["feature"], b["value"]) for b in bars] == sorted(
        importances.items(), key=lambda kv: -kv[1]
    )
    assert bars[0]["percent"] == 100.0
    assert [b["percent"] for b in bars] == pytest.approx(
        [100 * b["value"] / bars[0]["value"] for b in bars]
    )
    assert importance_bars({}) == [] and importance_bars({"x": 0.0})[0]["percent"] == 0.0


# -- models per symbol ---------------------------------------------------------------------------


def test_models_are_grouped_per_traded_symbol_then_others_with_the_active_one_marked(
    trained: Trained,
) -> None:
    models = trained.registry.list()
    active = next(m for m in models if m.active)

    groups = models_view(models, ["BTCUSDT", "ETHUSDT"])

    assert [g["symbol"] for g in groups] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    btc, eth, sol = groups
    ((kind,),) = [btc["kinds"]]
    assert kind["kind"] == "trend" and kind["active_id"] == active.meta.model_id
    ids = [m.meta.model_id for m in models if "BTCUSDT" in m.meta.symbols]
    assert [r["meta"].model_id for r in kind["models"]] == ids  # newest first, as listed
    assert [r["active"] for r in kind["models"]] == [m == active.meta.model_id for m in ids]
    assert eth["kinds"] == []
    assert sol["kinds"][0]["active_id"] is None and len(sol["kinds"][0]["models"]) == 1


def test_the_models_partial_shows_scores_importances_and_the_buttons(trained: Trained) -> None:
    context = models_context(trained.registry, ["BTCUSDT"], done="activated")
    active = next(m for m in trained.registry.list() if m.active).meta

    html = render("partials/ai_models.html", context)

    assert context["count"] == 3 and "activated" in html
    assert f'data-model-id="{active.model_id}" data-active="true"' in html
    assert html.count('data-active="false"') == 2
    assert html.count("/activate") == 2  # not on the active model
    assert html.count('hx-post="/ui/ai/models/rollback"') == 2  # per symbol and kind
    assert html.count('<li data-feature="') == 30
    top = max(active.metrics["importances"].items(), key=lambda kv: kv[1])
    assert f'data-feature="{top[0]}" data-value="{top[1]}"' in html
    assert f'data-model="{active.metrics["holdout"]["log_loss"]}"' in html


# -- training jobs and the form ------------------------------------------------------------------


def test_a_finished_job_shows_its_model_scores_and_verdict(trained: Trained) -> None:
    (job,) = trained.jobs.recent(limit=1)

    view = job_view(job)
    html = render("partials/ai_job.html", view)

    assert job.status == "done" and view["percent"] == 100
    assert view["metrics"] == metric_rows(job.metrics or {}, job.baseline or {})
    assert f'data-job-id="{job.job_id}"' in html and 'data-status="done"' in html
    assert f'<code data-key="model_id">{job.model_id}</code>' in html
    assert '<progress max="1" value="1.0"' in html
    assert [j["job"] for j in jobs_context(trained.jobs)["jobs"]] == trained.jobs.recent(5)


def test_the_form_starts_with_the_apis_defaults_and_keeps_what_was_typed() -> None:
    fresh = train_form(["BTCUSDT", "ETHUSDT"])
    typed = train_form(["BTCUSDT", "ETHUSDT"], {"symbol": "ETHUSDT", "days": "0"}, {"days": "bad"})

    html = render("partials/ai_train_form.html", typed)

    assert fresh["values"] == FORM_DEFAULTS | {"symbol": "BTCUSDT"}
    assert typed["values"]["symbol"] == "ETHUSDT" and typed["values"]["algo"] == "hgb"
    assert '<option value="ETHUSDT" selected>' in html
    assert 'data-field="days">bad<' in html and 'aria-invalid="true"' in html
