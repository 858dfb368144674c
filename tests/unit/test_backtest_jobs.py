"""The background backtests (:class:`service_layer.backtest_jobs.BacktestJobs`) with an in-memory
store, a fake run and an inline or manual spawn: the record stored as the job starts and ends,
its states published, one job at a time, failures and cancellation recorded, a stopped server's
jobs failed at the next start, comparisons checked; a done backtest's view (what the panel
shows) stored with it and read without its result, or built from the result and stored when a
record has none."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from domain.backtest_records import BacktestRecord
from domain.errors import BacktestBusy, BacktestNotFound, ConfigError
from domain.ports import Page
from service_layer.backtest_jobs import (
    CANCELLED,
    INTERRUPTED,
    BacktestJob,
    BacktestJobs,
    BacktestRequest,
    Progress,
    Run,
    Summarize,
)

REQUEST = BacktestRequest(strategy="sma_cross", symbols=("BTCUSDT",), params={"fast": 5})
DOCUMENT = {"metrics": {"trades": 3, "sharpe": 1.5}, "trades": [], "equity": [[1, "10.00"]]}


class MemoryStore:
    """The :class:`~domain.backtest_records.BacktestStore` port in a dict, newest last."""

    def __init__(self) -> None:
        self.records: dict[str, BacktestRecord] = {}

    def add(self, record: BacktestRecord) -> None:
        self.records[record.id] = record

    def get(self, backtest_id: str, *, result: bool = True) -> BacktestRecord | None:
        found = self.get_many([backtest_id], result=result)
        return found[0] if found else None

    def get_many(self, ids: Sequence[str], *, result: bool = True) -> list[BacktestRecord]:
        found = [self.records[i] for i in ids if i in self.records]
        return found if result else [dataclasses.replace(r, result=None) for r in found]

    def trades(self, backtest_id: str) -> list[dict[str, Any]] | None:
        record = self.records.get(backtest_id)
        return None if record is None else list((record.result or {}).get("trades", []))

    def page(self, *, limit: int, cursor: str | None = None) -> Page[BacktestRecord]:
        return Page(list(self.records.values())[::-1][:limit], None)

    def fail_running(self, error: str, finished_ms: int) -> int:
        running = [r for r in self.records.values() if r.status == "running"]
        for r in running:
            self.add(dataclasses.replace(r, status="failed", error=error, finished_ms=finished_ms))
        return len(running)


class TickingClock:
    """A wall clock that moves 1 ms each time it is read."""

    def __init__(self) -> None:
        self.ms = 1_000

    def now_ms(self) -> int:
        self.ms += 1
        return self.ms


class Deferred:
    """A spawn that keeps the job's work until :meth:`run` (the job stays running)."""

    def __init__(self) -> None:
        self.work: list[Callable[[], None]] = []

    def __call__(self, work: Callable[[], None]) -> None:
        self.work.append(work)

    def run(self) -> None:
        self.work.pop(0)()


def _prepare(run: Run) -> Callable[[BacktestRequest], tuple[str, Run]]:
    def prepare(request: BacktestRequest) -> tuple[str, Run]:
        if request.strategy == "bad":
            raise ConfigError("unknown strategy 'bad'", field="strategy")
        return "5m", run

    return prepare


def _steps(progress: Progress) -> dict[str, Any]:
    for fraction in (0.25, 0.5, 1.0):
        progress(fraction)
    return DOCUMENT


def _view(result: Mapping[str, Any]) -> dict[str, Any]:
    """A summarize: how many trades and equity points the result has."""
    return {"trades": len(result["trades"]), "points": len(result["equity"])}


VIEW = {"trades": 0, "points": 1}
"""The view :func:`_view` makes of :data:`DOCUMENT`."""


def _jobs(
    run: Run = _steps,
    spawn: Callable[[Callable[[], None]], None] = lambda work: work(),
    store: MemoryStore | None = None,
    summarize: Summarize | None = _view,
) -> tuple[BacktestJobs, MemoryStore, list[object]]:
    store, published = store or MemoryStore(), []
    jobs = BacktestJobs(
        store=store, prepare=_prepare(run), publish=published.extend, clock=TickingClock(),
        spawn=spawn, summarize=summarize,
    )  # fmt: skip
    return jobs, store, published


def test_a_finished_backtest_is_stored_with_its_metrics_and_result() -> None:
    jobs, store, _ = _jobs()

    job = jobs.start(REQUEST)

    record = store.records[job.id]
    assert (record.status, record.strategy, record.timeframe) == ("done", "sma_cross", "5m")
    assert record.metrics == DOCUMENT["metrics"]
    assert record.result == {"trades": [], "equity": [[1, "10.00"]]}
    assert record.request["params"] == {"fast": 5} and record.finished_ms > record.created_ms
    assert record.view == VIEW
    assert jobs.running() is None


def test_a_backtest_is_shown_from_its_view_without_its_result() -> None:
    jobs, store, _ = _jobs()
    job = jobs.start(REQUEST)

    shown = jobs.view(job.id)

    assert (shown.status, shown.metrics, shown.view) == ("done", DOCUMENT["metrics"], VIEW)
    assert shown.result is None
    assert jobs.get(job.id).result == store.records[job.id].result  # the API's: everything


def test_a_backtest_stored_without_a_view_is_shown_with_one_built_and_stored() -> None:
    old, store, _ = _jobs(summarize=None)  # a server from before the views
    job = old.start(REQUEST)
    assert store.records[job.id].view is None
    jobs, _, _ = _jobs(store=store)

    shown = jobs.view(job.id)

    assert shown.view == VIEW and shown.result is None
    assert store.records[job.id].view == VIEW
    assert store.records[job.id].result == {"trades": [], "equity": [[1, "10.00"]]}


def test_without_a_summarize_a_backtest_is_shown_with_its_result() -> None:
    jobs, _, _ = _jobs(summarize=None)
    job = jobs.start(REQUEST)

    shown = jobs.view(job.id)

    assert shown.view is None
    assert shown.result == {"trades": [], "equity": [[1, "10.00"]]}


def test_a_view_that_cannot_be_built_leaves_the_backtest_done_with_its_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(result: Mapping[str, Any]) -> dict[str, Any]:
        raise KeyError("closes")

    jobs, store, published = _jobs(summarize=broken)

    with caplog.at_level(logging.ERROR):
        job = jobs.start(REQUEST)

    record = store.records[job.id]
    assert (record.status, record.view) == ("done", None)
    assert record.result == {"trades": [], "equity": [[1, "10.00"]]}
    assert jobs.view(job.id).result == record.result
    assert "could not be built" in caplog.text
    last = published[-1]
    assert isinstance(last, BacktestJob) and last.status == "done"


def test_a_running_backtest_is_shown_as_it_is() -> None:
    jobs, _, _ = _jobs(spawn=Deferred())
    job = jobs.start(REQUEST)

    shown = jobs.view(job.id)

    assert (shown.status, shown.view, shown.result) == ("running", None, None)


def test_each_step_is_published_from_zero_to_done() -> None:
    jobs, _, published = _jobs()

    jobs.start(REQUEST)

    states = [(j.status, j.progress) for j in published if isinstance(j, BacktestJob)]
    assert states == [
        ("running", 0.0), ("running", 0.25), ("running", 0.5), ("running", 1.0), ("done", 1.0)
    ]  # fmt: skip


def test_the_record_is_stored_running_while_the_job_runs() -> None:
    spawn = Deferred()
    jobs, store, _ = _jobs(spawn=spawn)

    job = jobs.start(REQUEST)

    assert store.records[job.id].status == "running"
    assert jobs.running() == job


def test_a_second_backtest_while_one_runs_is_refused_and_stores_nothing() -> None:
    spawn = Deferred()
    jobs, store, _ = _jobs(spawn=spawn)
    jobs.start(REQUEST)

    with pytest.raises(BacktestBusy, match="one runs at a time"):
        jobs.start(REQUEST)
    assert len(store.records) == 1


def test_a_refused_request_starts_nothing() -> None:
    jobs, store, published = _jobs()

    with pytest.raises(ConfigError) as refused:
        jobs.start(dataclasses.replace(REQUEST, strategy="bad"))

    assert refused.value.field == "strategy"
    assert store.records == {} and published == [] and jobs.running() is None


def test_a_run_that_fails_is_stored_failed_with_its_error() -> None:
    def broken(progress: Progress) -> dict[str, Any]:
        progress(0.1)
        raise RuntimeError("disk full")

    jobs, store, published = _jobs(run=broken)

    job = jobs.start(REQUEST)

    assert store.records[job.id].status == "failed"
    assert store.records[job.id].error == "RuntimeError: disk full"
    last = published[-1]
    assert isinstance(last, BacktestJob)
    assert (last.status, last.progress, last.error) == ("failed", 0.1, "RuntimeError: disk full")
    assert jobs.running() is None


def test_a_shutdown_cancels_the_running_backtest_at_its_next_step() -> None:
    spawn = Deferred()
    jobs, store, _ = _jobs(spawn=spawn)
    job = jobs.start(REQUEST)

    finished = jobs.shutdown(timeout_s=0.0)
    spawn.run()

    assert finished is False  # it had not reached a step yet
    assert (store.records[job.id].status, store.records[job.id].error) == ("failed", CANCELLED)
    assert jobs.shutdown(timeout_s=0.0) is True


def test_backtests_a_stopped_server_left_running_are_failed_at_start() -> None:
    spawn = Deferred()
    jobs, store, _ = _jobs(spawn=spawn)
    job = jobs.start(REQUEST)
    restarted, _, _ = _jobs(store=store)  # the next server, on the same storage

    failed = restarted.recover()

    assert failed == 1
    assert (store.records[job.id].status, store.records[job.id].error) == ("failed", INTERRUPTED)


def test_a_comparison_needs_two_to_ten_known_backtests() -> None:
    jobs, _, _ = _jobs()
    first, second = jobs.start(REQUEST), jobs.start(REQUEST)

    compared = jobs.compare([second.id, first.id, second.id])

    assert [r.id for r in compared] == [second.id, first.id]
    assert [(r.view, r.result) for r in compared] == [(VIEW, None), (VIEW, None)]
    with pytest.raises(ConfigError, match="compare 2 to 10"):
        jobs.compare([first.id])
    with pytest.raises(BacktestNotFound) as unknown:
        jobs.compare([first.id, "feedfacefeedface"])
    assert unknown.value.field == "ids"


def test_an_unknown_backtest_is_not_found() -> None:
    jobs, _, _ = _jobs()

    with pytest.raises(BacktestNotFound) as unknown:
        jobs.get("feedfacefeedface")
    with pytest.raises(BacktestNotFound) as not_shown:
        jobs.view("feedfacefeedface")

    assert unknown.value.field == not_shown.value.field == "id"


def test_a_record_refuses_a_failure_without_its_error() -> None:
    with pytest.raises(ValueError, match="needs its error"):
        BacktestRecord(
            id="a", status="failed", strategy="sma_cross", symbols=(), timeframe="5m",
            request={}, created_ms=1, finished_ms=2,
        )  # fmt: skip
