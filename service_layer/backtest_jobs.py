"""Backtests in the background (issue 10, "Backtests from the panel"): one at a time, in its own
thread, its progress published on the message bus (the WebSocket's ``backtest`` messages), its
record stored when it starts and when it ends, so that past backtests outlive the server.

A request is checked and its bars read before the job starts (a bad one is refused at once,
the field named); the run then backtests exactly as the CLI does
(:func:`lootcapital.simulation.backtest`, wired in by the composition root as ``prepare``).
The job's state is a :class:`BacktestJob` snapshot, replaced (and published) as the backtest's
clock moves: ``running`` with the fraction done, then ``done`` or ``failed`` with the error.
A ``done`` record is stored with its view (what the panel shows of the result, built by the
``summarize`` the composition root gives), so that showing it never parses the whole result.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from domain.backtest_records import BacktestRecord, BacktestStatus, BacktestStore
from domain.candles import Candles
from domain.errors import BacktestBusy, BacktestNotFound, ConfigError, DomainError, UnknownSymbol
from domain.ports import Clock, Page

logger = logging.getLogger(__name__)

MAX_COMPARED = 10
"""The most backtests one comparison takes."""
INTERRUPTED = "interrupted: the server stopped while it ran"
"""The error of a backtest the server was stopped in the middle of (found at the next start)."""
CANCELLED = "cancelled: the server shut down"

Progress = Callable[[float], None]
"""Told the fraction of the backtest's period done (0 to 1)."""
Run = Callable[[Progress], Mapping[str, Any]]
"""Backtests a prepared request; the result document: ``metrics`` and the ``result`` keys
(see :mod:`domain.backtest_records`)."""
Summarize = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""Builds a done backtest's view from its result (see :mod:`domain.backtest_records`)."""
Spawn = Callable[[Callable[[], None]], None]
"""Runs a job's work in the background (a thread by default; tests may run it inline)."""
BarReader = Callable[[str, str, int | None, int | None], Candles]
"""Reads the candle store's bars of a symbol at a timeframe from a start (first bar's open, ms
UTC) to an end (exclusive), None for no bound, as a backtest of them reads them; raises
``DomainError`` (field ``symbol``) when none are stored."""


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """What to backtest, as the CLI's ``lootcapital backtest`` options: ``strategy`` with
    ``params`` (name → value, as ``--param``) on the stored bars of ``symbols`` at
    ``timeframe``, from ``start_ms`` (first bar's open, ms UTC) to ``end_ms`` (exclusive);
    starting ``cash`` (quote currency), taker ``fee`` (fraction of notional), ``slippage_bps``
    (basis points), ``leverage`` (x) and ``margin`` mode (``isolated``, ``cross``). None takes
    the server's setting (the first bar, after the last bar for the dates)."""

    strategy: str
    symbols: tuple[str, ...]
    params: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    timeframe: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    cash: Decimal | None = None
    fee: Decimal | None = None
    slippage_bps: Decimal | None = None
    leverage: int | None = None
    margin: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as stored: decimals as strings, the rest as is."""
        out = dataclasses.asdict(self)
        out["symbols"] = list(self.symbols)
        out["params"] = dict(self.params)
        for name in ("cash", "fee", "slippage_bps"):
            value = out[name]
            out[name] = None if value is None else str(value)
        return out


Prepare = Callable[[BacktestRequest], tuple[str, Run]]
"""Checks a request and reads its bars; returns the timeframe it runs at and the run.
Raises ``DomainError`` naming the field when it cannot run."""


@dataclass(frozen=True, slots=True)
class BacktestJob:
    """A backtest job's state at ``updated_ms`` (ms UTC, wall clock): ``progress`` the fraction
    of its period done (0 to 1); ``error`` once ``failed``."""

    id: str
    status: BacktestStatus
    progress: float
    started_ms: int
    updated_ms: int
    finished_ms: int | None = None
    error: str | None = None


class BacktestCancelled(Exception):
    """Raised inside a job's progress callback to end it early (the server shuts down)."""


def _thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="backtest", daemon=True).start()


class BacktestJobs:
    """Starts backtests, one at a time, and answers the stored ones.

    Parameters
    ----------
    store:
        Where backtests are kept.
    prepare:
        Checks a request and reads its bars (:data:`Prepare`).
    publish:
        Publishes events (the message bus): every new :class:`BacktestJob` state.
    clock:
        The wall clock (job times).
    spawn:
        Runs a job's work in the background; a daemon thread by default.
    summarize:
        Builds a done backtest's view, stored with it (:data:`Summarize`); None stores none
        (then whoever shows a result builds what it shows from the whole result).
    bars:
        Reads the stored bars a backtest ran on again (:meth:`bars`); None: they cannot be.
    """

    def __init__(
        self,
        *,
        store: BacktestStore,
        prepare: Prepare,
        publish: Callable[[Sequence[object]], None],
        clock: Clock,
        spawn: Spawn = _thread,
        summarize: Summarize | None = None,
        bars: BarReader | None = None,
    ) -> None:
        self._store = store
        self._prepare = prepare
        self._publish = publish
        self._clock = clock
        self._spawn = spawn
        self._summarize = summarize
        self._bars = bars
        self._lock = threading.Lock()
        self._running: BacktestJob | None = None
        self._cancel = threading.Event()
        self._idle = threading.Event()
        self._idle.set()

    def recover(self) -> int:
        """Mark the backtests a stopped server left ``running`` as failed
        (:data:`INTERRUPTED`); how many there were. Call once at start-up."""
        return self._store.fail_running(INTERRUPTED, self._clock.now_ms())

    def start(self, request: BacktestRequest) -> BacktestJob:
        """Check ``request``, read its bars and start backtesting it in the background; the
        job as it starts (``running``, progress 0), its record stored.

        Raises
        ------
        DomainError
            A bad request (``ConfigError``, ``UnknownSymbol``…), the field named.
        BacktestBusy
            Another backtest is running.
        """
        with self._lock:
            self._refuse_if_busy()  # before reading the bars, which a busy answer would waste
        timeframe, run = self._prepare(request)
        now = self._clock.now_ms()
        job = BacktestJob(uuid.uuid4().hex[:16], "running", 0.0, now, now)
        with self._lock:
            self._refuse_if_busy()
            self._running = job
            self._idle.clear()
        record = BacktestRecord(
            id=job.id, status="running", strategy=request.strategy, symbols=request.symbols,
            timeframe=timeframe, request=request.to_json(), created_ms=now,
        )  # fmt: skip
        try:
            self._store.add(record)
        except Exception:
            self._end()
            raise
        self._publish([job])
        self._spawn(lambda: self._work(record, run))
        return job

    def get(self, backtest_id: str) -> BacktestRecord:
        """The record of ``backtest_id`` with its result.

        Raises
        ------
        BacktestNotFound
            (field ``id``) No backtest has that id.
        """
        record = self._store.get(backtest_id)
        if record is None:
            raise _not_found(backtest_id)
        return record

    def view(self, backtest_id: str) -> BacktestRecord:
        """The record of ``backtest_id`` as the panel shows it: with its view, without its
        result; a done one stored without a view (before revision 0009) with its result, and
        its view, built now, stored for the next time.

        Raises
        ------
        BacktestNotFound
            (field ``id``) No backtest has that id.
        """
        record = self._store.get(backtest_id, result=False)
        if record is None:
            raise _not_found(backtest_id)
        return self._with_view(record)

    def bars(self, record: BacktestRecord, symbol: str) -> Candles:
        """The stored bars ``record`` ran on for ``symbol``, read again as it read them when it
        started: at its timeframe, from its request's ``start_ms`` to its ``end_ms``.

        Raises
        ------
        UnknownSymbol
            (field ``symbol``) ``record`` did not backtest ``symbol``.
        ConfigError
            (field ``symbol``) These jobs were given no bar reader.
        DomainError
            The reader's refusal (no bars of ``symbol`` stored).
        """
        if symbol not in record.symbols:
            raise UnknownSymbol(f"backtest {record.id} did not trade {symbol!r}", field="symbol")
        if self._bars is None:
            raise ConfigError("the bars of past backtests cannot be read here", field="symbol")
        start, end = record.request.get("start_ms"), record.request.get("end_ms")
        return self._bars(symbol, record.timeframe, start, end)

    def trades(self, backtest_id: str) -> list[dict[str, Any]]:
        """The trades of ``backtest_id``'s result (the ``--json`` document's; empty before it
        is done), read without the rest of the result.

        Raises
        ------
        BacktestNotFound
            (field ``id``) No backtest has that id.
        """
        trades = self._store.trades(backtest_id)
        if trades is None:
            raise _not_found(backtest_id)
        return trades

    def running(self) -> BacktestJob | None:
        """The job running now, None when none is."""
        with self._lock:
            return self._running

    def page(self, *, limit: int, cursor: str | None = None) -> Page[BacktestRecord]:
        """Past and running backtests without their results, newest first (``cursor``: the
        next older page)."""
        return self._store.page(limit=limit, cursor=cursor)

    def compare(self, ids: Sequence[str]) -> list[BacktestRecord]:
        """The records of ``ids`` (duplicates dropped) as :meth:`view` reads them: with their
        views, not their results (but where no view is stored), in that order.

        Raises
        ------
        ConfigError
            (field ``ids``) Fewer than two ids or more than :data:`MAX_COMPARED`.
        BacktestNotFound
            (field ``ids``) An id no backtest has.
        """
        wanted = list(dict.fromkeys(ids))
        if not 2 <= len(wanted) <= MAX_COMPARED:
            raise ConfigError(
                f"compare 2 to {MAX_COMPARED} backtests, was {len(wanted)}", field="ids"
            )
        found = self._store.get_many(wanted, result=False)
        missing = [i for i in wanted if i not in {r.id for r in found}]
        if missing:
            raise BacktestNotFound(f"no backtest {', '.join(missing)}", field="ids")
        return [self._with_view(r) for r in found]

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Ask a running backtest, and any started later, to stop at its next step and wait up
        to ``timeout_s`` seconds for it; True when none runs any more."""
        self._cancel.set()
        return self._idle.wait(timeout_s)

    def _with_view(self, record: BacktestRecord) -> BacktestRecord:
        """``record`` (read without its result) as shown: as is when it has a view or is not
        done; else read again with its result, its view built and stored when it can be."""
        if record.status != "done" or record.view is not None:
            return record
        full = self._store.get(record.id) or record
        view = None if full.result is None else self._view_of(full.id, full.result)
        if view is None:
            return full
        shown = dataclasses.replace(full, view=view)
        try:
            self._store.add(shown)
        except Exception:  # the view is built again next time
            logger.exception("the view of backtest %s could not be stored", record.id)
        return dataclasses.replace(shown, result=None)

    def _view_of(self, backtest_id: str, result: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The view of a done backtest's ``result``; None without ``summarize``, or when it
        fails (logged: the result is kept all the same, and shown from itself)."""
        if self._summarize is None:
            return None
        try:
            return self._summarize(result)
        except Exception:
            logger.exception("the view of backtest %s could not be built", backtest_id)
            return None

    # -- the job's thread --------------------------------------------------------------------

    def _work(self, record: BacktestRecord, run: Run) -> None:
        try:
            document = run(self._step)
        except BacktestCancelled:
            self._finish(record, error=CANCELLED)
        except DomainError as exc:
            self._finish(record, error=exc.message)
        except Exception as exc:  # a bug or a library's failure: the record says it, the log too
            logger.exception("backtest %s failed", record.id)
            self._finish(record, error=f"{type(exc).__name__}: {exc}")
        else:
            result = {k: v for k, v in document.items() if k != "metrics"}
            view = self._view_of(record.id, result)
            self._finish(record, metrics=document["metrics"], result=result, view=view)

    def _step(self, fraction: float) -> None:
        """The progress callback: publish the job's new state (or end it when cancelled)."""
        if self._cancel.is_set():
            raise BacktestCancelled
        with self._lock:
            job = self._running
            if job is None:
                return
            job = dataclasses.replace(
                job, progress=min(max(float(fraction), 0.0), 1.0), updated_ms=self._clock.now_ms()
            )
            self._running = job
        self._publish([job])

    def _finish(self, record: BacktestRecord, **outcome: Any) -> None:
        now = self._clock.now_ms()
        status: BacktestStatus = "failed" if outcome.get("error") else "done"
        try:
            self._store.add(dataclasses.replace(record, status=status, finished_ms=now, **outcome))
        except Exception as exc:  # a result storage refuses must not leave the job running
            logger.exception("backtest %s could not be stored", record.id)
            status, outcome = "failed", {"error": f"not stored: {type(exc).__name__}: {exc}"}
        with self._lock:
            job = self._running
        assert job is not None
        ended = dataclasses.replace(
            job,
            status=status,
            progress=1.0 if status == "done" else job.progress,
            updated_ms=now,
            finished_ms=now,
            error=outcome.get("error"),
        )
        self._publish([ended])
        self._end()

    def _end(self) -> None:
        with self._lock:
            self._running = None
        self._idle.set()

    def _refuse_if_busy(self) -> None:
        job = self._running
        if job is not None:
            raise BacktestBusy(
                f"backtest {job.id} is running ({job.progress:.0%}); one runs at a time"
            )


def _not_found(backtest_id: str) -> BacktestNotFound:
    """The refusal of an id no backtest has (field ``id``)."""
    return BacktestNotFound(f"no backtest {backtest_id!r}", field="id")
