"""Background training (service_layer/training_jobs.py) on the real BTCUSDT sample: a job
publishes its progress and ends ``done`` with the saved (not active) model's id and holdout
scores, or ``failed`` with the error; one job runs at a time; bad requests are refused before
a job starts, naming the field. The jobs' work runs when the test says (no threads, no
sleeps)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.models.filesystem import FilesystemModelStore
from domain.candles import Candles
from domain.errors import ConfigError, TrainingBusy, TrainingJobNotFound, UnknownSymbol
from service_layer.model_registry import ModelRegistry
from service_layer.training_jobs import TrainingJob, TrainingJobs
from tests.fakes import InMemoryUnitOfWork, ManualClock, MemoryStore
from tests.fixtures.data import load_sample_candles

SMALL: dict[str, Any] = {
    "kind": "trend",
    "symbol": "BTCUSDT",
    "days": 3,
    "folds": 2,
    "params": {"max_iter": 20},
}
"""A job of well under a second."""


def stored_bars(symbol: str, timeframe: str) -> Candles:
    if symbol != "BTCUSDT" or timeframe != "5m":
        raise UnknownSymbol(f"no candles stored for {symbol} {timeframe}", field="symbol")
    return load_sample_candles("BTCUSDT")


class Jobs:
    """Training jobs whose work waits in ``pending`` until the test runs it."""

    def __init__(self, tmp_path: Path) -> None:
        self.pending: list[Callable[[], None]] = []
        self.published: list[TrainingJob] = []
        db = MemoryStore()
        self.registry = ModelRegistry(
            FilesystemModelStore(tmp_path / "models"),
            lambda: InMemoryUnitOfWork(db, "-"),
            ManualClock(1_767_225_600_000),
        )
        self.jobs = TrainingJobs(
            candles=stored_bars,
            registry=self.registry,
            publish=lambda events: self.published.extend(events),  # type: ignore[arg-type]
            clock=ManualClock(1_767_225_600_000),
            spawn=self.pending.append,
            threads=1,  # the test machine's cores are shared
        )

    def run_pending(self) -> None:
        while self.pending:
            self.pending.pop(0)()


@pytest.fixture
def jobs(tmp_path: Path) -> Jobs:
    return Jobs(tmp_path)


def test_a_job_publishes_its_progress_and_ends_done_with_the_saved_model(jobs: Jobs) -> None:
    started = jobs.jobs.start(**SMALL)

    jobs.run_pending()

    done = jobs.jobs.get(started.job_id)
    assert (started.status, started.progress) == ("running", 0.0)
    assert done.status == "done" and done.progress == 1.0 and done.error is None
    assert done.model_id is not None and done.model_id.startswith("trend-BTCUSDT-hgb-")
    assert {"accuracy", "log_loss", "brier"} <= set(done.metrics or {})
    assert "log_loss" in (done.baseline or {}) and "baseline" in (done.verdict or "")
    progress = [j.progress for j in jobs.published]
    assert progress == sorted(progress) and len(progress) > 5
    assert [j.status for j in jobs.published].count("running") == len(progress) - 1
    assert jobs.published[-1] == done
    saved = jobs.registry.get(done.model_id)
    assert not saved.active and saved.meta.symbols == ("BTCUSDT",)


def test_a_second_job_is_refused_while_one_runs_and_accepted_after(jobs: Jobs) -> None:
    first = jobs.jobs.start(**SMALL)

    with pytest.raises(TrainingBusy, match=f"training job {first.job_id} .* is running"):
        jobs.jobs.start(**SMALL)
    jobs.run_pending()
    second = jobs.jobs.start(**{**SMALL, "algo": "rf", "params": {"n_estimators": 10}})

    assert second.status == "running" and second.job_id != first.job_id


def test_a_job_that_fails_says_why(jobs: Jobs) -> None:
    job = jobs.jobs.start(**{**SMALL, "days": 1, "folds": 20})

    jobs.run_pending()

    failed = jobs.jobs.get(job.job_id)
    assert failed.status == "failed" and failed.model_id is None
    assert failed.error and failed.finished_ms is not None
    assert jobs.registry.list() == []


def test_a_job_asked_to_stop_ends_failed_as_cancelled(jobs: Jobs) -> None:
    job = jobs.jobs.start(**SMALL)

    stopped = jobs.jobs.shutdown(timeout_s=0)
    jobs.run_pending()

    assert stopped is False  # it had not run yet
    assert jobs.jobs.get(job.job_id).error == "cancelled: the server shut down"
    assert jobs.jobs.shutdown(timeout_s=0) is True


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "momentum"}, "model"),
        ({"algo": "svm"}, "algo"),
        ({"days": 0}, "days"),
        ({"params": {"max_itr": 20}}, "params"),
        ({"params": {"embargo": 3}}, "params"),
    ],
)
def test_a_bad_request_is_refused_before_a_job_starts_naming_the_field(
    jobs: Jobs, changes: dict, field: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        jobs.jobs.start(**{**SMALL, **changes})

    assert refused.value.field == field
    assert jobs.pending == [] and jobs.published == []


def test_a_symbol_without_stored_bars_and_an_unknown_job_are_not_found(jobs: Jobs) -> None:
    with pytest.raises(UnknownSymbol, match="DOGEUSDT"):
        jobs.jobs.start(**{**SMALL, "symbol": "DOGEUSDT"})
    with pytest.raises(TrainingJobNotFound, match="'abc'"):
        jobs.jobs.get("abc")


def test_recent_lists_the_latest_jobs_newest_first_the_running_one_included(jobs: Jobs) -> None:
    first = jobs.jobs.start(**SMALL)
    jobs.run_pending()
    second = jobs.jobs.start(**SMALL)

    recent = jobs.jobs.recent(limit=5)

    assert [j.job_id for j in recent] == [second.job_id, first.job_id]
    assert [j.status for j in recent] == ["running", "done"]
    assert [j.job_id for j in jobs.jobs.recent(limit=1)] == [second.job_id]
