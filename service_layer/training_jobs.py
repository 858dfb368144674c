"""Background training (issue 7): one training job at a time, in its own thread, its progress
published on the message bus (the WebSocket's ``training`` messages) and kept for
``GET /api/v1/models/train/{job_id}``.

A job trains with :func:`service_layer.training.train_model` on the bars of the candle store and
saves the model into the registry, not activated. Its state is a :class:`TrainingJob` snapshot,
replaced (and published) at every step: ``running`` with the fraction done and what is happening,
then ``done`` with the model id and the holdout scores, or ``failed`` with the error. Jobs live
in memory for the life of the server (the latest :data:`KEEP` of them).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from domain.candles import Candles
from domain.errors import ConfigError, DomainError, TrainingBusy, TrainingJobNotFound
from domain.ports import Clock

if TYPE_CHECKING:
    from service_layer.training import ModelSaver, TrainingRequest

logger = logging.getLogger(__name__)

KEEP = 50
"""Finished jobs kept (the oldest is forgotten first)."""

JobStatus = Literal["running", "done", "failed"]
CandleReader = Callable[[str, str], Candles]
"""``(symbol, timeframe)`` → the stored bars, oldest first; ``UnknownSymbol`` when none."""
Spawn = Callable[[Callable[[], None]], None]
"""Runs a job's work in the background (a thread by default; tests may run it inline)."""


@dataclass(frozen=True, slots=True)
class TrainingJob:
    """A training job's state at ``updated_ms`` (ms UTC, wall clock).

    ``progress`` is the fraction done (0 to 1) and ``message`` what is happening; once ``done``,
    ``model_id`` names the saved model and ``metrics`` / ``baseline`` are the holdout scores of
    the model and of the majority baseline, ``verdict`` says whether it beats it; once
    ``failed``, ``error`` says why.
    """

    job_id: str
    kind: str
    symbol: str
    algo: str
    days: int
    status: JobStatus
    progress: float
    message: str
    started_ms: int
    updated_ms: int
    finished_ms: int | None = None
    model_id: str | None = None
    metrics: Mapping[str, Any] | None = None
    baseline: Mapping[str, Any] | None = None
    verdict: str | None = None
    error: str | None = None


class TrainingCancelled(Exception):
    """Raised inside a job's progress callback to end it early (the server shuts down)."""


def _thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="training", daemon=True).start()


class TrainingJobs:
    """Starts training jobs, one at a time, and answers their state.

    Parameters
    ----------
    candles:
        Reads a symbol's stored bars (the server's candle store).
    registry:
        Where the trained model is saved (not activated).
    publish:
        Publishes events (the message bus): every new :class:`TrainingJob` state.
    clock:
        The wall clock (job times, the model's creation time).
    spawn:
        Runs a job's work in the background; a daemon thread by default.
    threads:
        The most threads a job's native thread pools (OpenMP, BLAS) use; None: the libraries'
        default (one per core). Fewer leave cores to the engine: OpenMP threads that must
        share a busy core spin and run many times slower than one thread.
    """

    def __init__(
        self,
        *,
        candles: CandleReader,
        registry: ModelSaver,
        publish: Callable[[Sequence[object]], None],
        clock: Clock,
        spawn: Spawn = _thread,
        threads: int | None = None,
    ) -> None:
        self._candles = candles
        self._registry = registry
        self._publish = publish
        self._clock = clock
        self._spawn = spawn
        self._threads = threads
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainingJob] = {}
        self._running: str | None = None
        self._cancel = threading.Event()
        self._idle = threading.Event()
        self._idle.set()

    def start(
        self,
        *,
        kind: str,
        symbol: str,
        days: int,
        algo: str = "hgb",
        folds: int = 5,
        params: Mapping[str, Any] | None = None,
    ) -> TrainingJob:
        """Start training a ``kind`` model of ``algo`` on ``symbol``'s last ``days`` days of
        5m bars with ``folds`` walk-forward folds and hyper-parameters ``params``; the job as
        it starts (``running``, progress 0).

        Raises
        ------
        ConfigError
            A bad value, the field named (``params`` for a parameter the algorithm does not
            take).
        UnknownSymbol
            No 5m bars of ``symbol`` in the candle store.
        TrainingBusy
            Another job is running.
        """
        # scikit-learn loads with the first training, not at every server start (0.7 s).
        from domain.ml.models import build_model
        from service_layer.training import TrainingRequest

        params_in = dict(params or {})
        request = TrainingRequest(
            kind=kind,  # type: ignore[arg-type]
            symbol=symbol,
            algo=algo,
            days=days,
            n_splits=folds,
            params=params_in,
        )
        try:  # refuses a parameter the algorithm does not take now, not after the job started
            build_model(
                request.algo, ("probe",), embargo=0, calibration=request.calibration, **params_in
            )
        except TypeError as exc:  # a parameter that is also one of build_model's own
            raise ConfigError(f"params: {exc}", field="params") from None
        with self._lock:
            self._refuse_if_busy()  # before reading the bars, which a busy answer would waste
        bars = self._candles(request.symbol, request.timeframe)
        now = self._clock.now_ms()
        with self._lock:
            self._refuse_if_busy()
            job = TrainingJob(
                job_id=uuid.uuid4().hex[:16], kind=str(request.kind), symbol=request.symbol,
                algo=request.algo, days=request.days, status="running", progress=0.0,
                message="queued", started_ms=now, updated_ms=now,
            )  # fmt: skip
            self._store(job)
            self._running = job.job_id
            self._idle.clear()
        self._publish([job])
        self._spawn(lambda: self._run(job.job_id, bars, request))
        return job

    def get(self, job_id: str) -> TrainingJob:
        """The state of ``job_id``; ``TrainingJobNotFound`` (field ``job_id``) when unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise TrainingJobNotFound(f"no training job {job_id!r}", field="job_id")
        return job

    def recent(self, limit: int = 10) -> list[TrainingJob]:
        """The latest ``limit`` jobs (kept ones, the running one among them), newest first."""
        with self._lock:
            jobs = list(self._jobs.values())
        return jobs[::-1][:limit]

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Ask a running job, and any started later, to stop at its next step and wait up to
        ``timeout_s`` seconds for it; True when no job runs any more."""
        self._cancel.set()
        return self._idle.wait(timeout_s)

    # -- the job's thread --------------------------------------------------------------------

    def _run(self, job_id: str, bars: Candles, request: TrainingRequest) -> None:
        from threadpoolctl import threadpool_limits

        from service_layer.training import train_model

        created_ms = self._clock.now_ms()
        progress = functools.partial(self._step, job_id)
        try:
            with threadpool_limits(limits=self._threads):  # this thread's pools only
                report = train_model(
                    bars, request, store=self._registry, created_ms=created_ms, progress=progress
                )
        except TrainingCancelled:
            self._finish(job_id, status="failed", error="cancelled: the server shut down")
        except DomainError as exc:
            self._finish(job_id, status="failed", error=exc.message)
        except Exception as exc:  # a bug or a library's failure: the job says it, the log shows it
            logger.exception("training job %s failed", job_id)
            self._finish(job_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            self._finish(
                job_id,
                status="done",
                model_id=report["model_id"],
                metrics=report["metrics"],
                baseline=report["baseline"],
                verdict=report["verdict"]["summary"],
            )

    def _step(self, job_id: str, fraction: float, message: str) -> None:
        """The progress callback: publish the job's new state (or end it when cancelled)."""
        if self._cancel.is_set():
            raise TrainingCancelled
        self._update(job_id, progress=min(max(float(fraction), 0.0), 1.0), message=message)

    def _finish(self, job_id: str, **changes: Any) -> None:
        now = self._clock.now_ms()
        message = "done" if changes["status"] == "done" else "failed"
        self._update(job_id, finished_ms=now, message=message, last=True, **changes)

    def _update(self, job_id: str, *, last: bool = False, **changes: Any) -> None:
        with self._lock:
            job = dataclasses.replace(
                self._jobs[job_id], updated_ms=self._clock.now_ms(), **changes
            )
            if job.status == "done":
                job = dataclasses.replace(job, progress=1.0)
            self._jobs[job_id] = job
            if last:
                self._running = None
        self._publish([job])
        if last:
            self._idle.set()

    # -- bookkeeping -----------------------------------------------------------------------

    def _refuse_if_busy(self) -> None:
        if self._running is None:
            return
        job = self._jobs[self._running]
        raise TrainingBusy(
            f"training job {job.job_id} ({job.kind} {job.symbol}) is running "
            f"({job.progress:.0%}: {job.message}); one job runs at a time"
        )

    def _store(self, job: TrainingJob) -> None:
        self._jobs[job.job_id] = job
        while len(self._jobs) > KEEP:
            oldest = next(j for j in self._jobs if j != self._running)
            del self._jobs[oldest]
