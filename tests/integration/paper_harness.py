"""Helpers to run the real paper-trading stack (bootstrap, SQLite, replay feed) in tests."""

from __future__ import annotations

import gzip
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from adapters.storage.sql.migrations import upgrade_to_head
from adapters.storage.sql.unit_of_work import SqlUnitOfWork, make_engine, make_session_factory
from domain.funding import FundingPayment
from domain.model import EquityPoint, Fill, Order, OrderStatus, Position, Trade
from domain.pipeline_events import PipelineEvent
from domain.ports import Page, RunState, UnitOfWork
from lootcapital.bootstrap import Container, bootstrap
from lootcapital.futures import beside
from lootcapital.settings import Settings
from lootcapital.simulation import backtest, load_candles, read_funding_feeds
from tests.fixtures.data import sample_dir

EXCHANGE_INFO = "binance_usdm_exchange_info_20251030.json"
T = TypeVar("T")


def trimmed_sample(target: Path, symbols: list[str], bars: int) -> Path:
    """A sample folder holding the first ``bars`` real 5m bars of each symbol."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(sample_dir() / EXCHANGE_INFO, target / EXCHANGE_INFO)
    for symbol in symbols:
        name = f"binance_usdm_{symbol}_5m.csv.gz"
        with gzip.open(sample_dir() / name, "rt") as src:
            lines = [next(src) for _ in range(bars + 1)]
        with gzip.open(target / name, "wt") as dst:
            dst.writelines(lines)
    return target


def paper_settings(data_dir: Path, sample: Path, symbols: list[str], **extra: object) -> Settings:
    """Settings for a fast, non-autostarting paper run on ``sample``, replaying from its first
    bar (no history), as the backtest it is compared with trades from it."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "sample_dir": sample,
        "symbols": symbols,
        "api_token": "test-token-0123456789",
        "speed": 10_000_000.0,
        "autostart": False,
        "history_days": 0,
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


def run_until(container: Container, *, candles: int | None = None, timeout: float = 60.0) -> None:
    """Wait until the engine stopped (end of data) or processed ``candles`` bars, then stop."""
    service = container.service
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = service.status()
        if not status.running or (candles is not None and status.candles_processed >= candles):
            break
        time.sleep(0.01)
    else:
        raise TimeoutError(f"paper run did not finish in {timeout} s")
    service.stop()


def start(settings: Settings) -> Container:
    """Bootstrap and start the engine."""
    container = bootstrap(settings)
    container.service.start()
    return container


def every(read: Callable[..., Page[T]], **filters: object) -> list[T]:
    """Every item of a paginated listing (``read(limit=, cursor=, **filters)``), newest first."""
    items: list[T] = []
    cursor = None
    while True:
        page = read(limit=1000, cursor=cursor, **filters)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class StoredRun:
    """Everything a paper run committed: orders by ``(created_time, id)``, fills by
    ``(time, id)``, trades by ``(exit_time, id)``, positions by symbol, equity and funding
    payments oldest first."""

    run: RunState
    orders: list[Order]
    fills: list[Fill]
    trades: list[Trade]
    positions: list[Position]
    equity: list[EquityPoint]
    fundings: list[FundingPayment]
    pipeline: list[PipelineEvent]


def read_run(url: str, mode: str = "paper") -> StoredRun:
    """Read the latest ``mode`` run and all its rows from the database at ``url``."""
    engine = make_engine(url)
    try:
        sessions = make_session_factory(engine)
        with SqlUnitOfWork(sessions, "-") as uow:
            run = uow.runs.latest(mode)
        if run is None:
            raise LookupError(f"no {mode} run stored at {url}")
        with SqlUnitOfWork(sessions, run.id) as uow:
            return StoredRun(
                run=run,
                orders=sorted(every(uow.orders.page), key=lambda o: (o.created_time, o.id)),
                fills=sorted(every(uow.fills.page), key=lambda f: (f.time, f.id)),
                trades=sorted(every(uow.trades.page), key=lambda t: (t.exit_time, t.id)),
                positions=sorted(uow.positions.list(), key=lambda p: p.symbol),
                equity=uow.equity.list(limit=2**31 - 1)[::-1],
                fundings=uow.funding.list(),
                pipeline=sorted(every(uow.pipeline.page), key=pipeline_key),
            )
    finally:
        engine.dispose()


def seed_run(url: str, reference: RunState) -> None:
    """Migrate the database at ``url`` and store a fresh run with ``reference``'s id, settings
    and start (what a first start stores), so a run there gets the same client order ids."""
    upgrade_to_head(url)
    fresh = RunState(
        id=reference.id,
        mode=reference.mode,
        strategy=reference.strategy,
        params=reference.params,
        symbols=reference.symbols,
        timeframe=reference.timeframe,
        started_time=reference.started_time,
        initial_cash=reference.initial_cash,
        cash=reference.initial_cash,
        last_bar_time={},
    )
    engine = make_engine(url)
    try:
        with SqlUnitOfWork(make_session_factory(engine), fresh.id) as uow:
            uow.runs.upsert(fresh)
            uow.commit()
    finally:
        engine.dispose()


def trade_key(t: Trade) -> tuple:
    """Every field of a trade but its id (which derives from the run's id)."""
    return (
        t.symbol, t.side, t.qty, t.entry_time, t.entry_price, t.exit_time, t.exit_price,
        t.pnl, t.fees, t.exit_reason,
    )  # fmt: skip


def pipeline_key(event: PipelineEvent) -> tuple:
    """The order pipeline events are compared in: by time, symbol and kind."""
    return (event.time, event.symbol, event.kind)


def backtest_run(
    settings: Settings, data: list[Path]
) -> tuple[list[Trade], list[FundingPayment], list[PipelineEvent]]:
    """The backtest's trades, funding payments and pipeline events of ``settings``'
    strategy, params and costs on the kline files ``data`` (one per symbol, in
    ``settings.symbols`` order), funded from the funding files beside them as the CLI's
    backtest is, before the data ends (the backtest closes open positions at the last close;
    paper keeps them open)."""
    candles = load_candles(
        settings, data=data, symbols=settings.symbols, timeframe="5m", start_ms=None, end_ms=None
    )
    result = backtest(
        settings,
        strategy=settings.strategy,
        params={k: str(v) for k, v in settings.strategy_params.items()},
        candles=candles,
        timeframe="5m",
        cash=settings.initial_cash,
        fee=settings.fee_taker,
        slippage_bps=settings.slippage_bps,
        funding=read_funding_feeds(
            {s: beside(path, "funding") for s, path in zip(settings.symbols, data, strict=True)}
        ),
    )
    end = max(int(c.open_time[-1]) for c in candles.values()) + 300_000
    trades = [t for t in result.trades if t.exit_time < end]
    events = sorted(result.pipeline_events, key=pipeline_key)
    return trades, [p for p in result.fundings if p.time_ms < end], events


class SimulatedCrash(BaseException):
    """Ends the engine thread as a kill would: no ``Exception`` handler, no clean finish."""


@dataclass
class CrashPlan:
    """When the engine thread dies: at the first unit-of-work commit after ``after_commits``
    commits that matches ``mode``.

    ``"stored-not-sent"``: right after a commit that stored new orders as ``pending_new``
    (before they reach the venue). ``"uncommitted"``: instead of a commit (the bar is lost).
    """

    after_commits: int
    mode: str = "stored-not-sent"
    commits: int = 0
    fired: threading.Event = field(default_factory=threading.Event)


class _CrashingUnitOfWork:
    def __init__(self, inner: Any, plan: CrashPlan) -> None:
        self._inner = inner
        self._plan = plan
        self._stored_new = False
        orders = inner.orders
        upsert = orders.upsert

        def watched(order: Order) -> None:
            self._stored_new |= order.status is OrderStatus.PENDING_NEW
            upsert(order)

        orders.upsert = watched

    def __enter__(self) -> _CrashingUnitOfWork:
        self._inner.__enter__()
        self._stored_new = False
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def commit(self) -> None:
        plan = self._plan
        plan.commits += 1
        due = plan.commits > plan.after_commits and not plan.fired.is_set()
        if due and plan.mode == "uncommitted":
            plan.fired.set()
            raise SimulatedCrash("killed before the commit")
        self._inner.commit()
        if due and plan.mode == "stored-not-sent" and self._stored_new:
            plan.fired.set()
            raise SimulatedCrash("killed after storing orders, before sending them")


def crash_during_run(container: Container, plan: CrashPlan) -> None:
    """Make ``container``'s engine thread die as planned once started (call before start).

    Its feed, venue and kernel are then abandoned as a killed process's would be; what was
    committed stays. Swallow :class:`SimulatedCrash` in ``threading.excepthook`` to keep the
    test's output clean.
    """
    service = container.service
    original: Callable[[], UnitOfWork] = service.writer_factory

    def crashing() -> UnitOfWork:
        return _CrashingUnitOfWork(original(), plan)  # type: ignore[return-value]

    service.writer_factory = crashing


def wait_stopped(container: Container, timeout: float = 60.0) -> None:
    """Wait until ``container``'s engine thread has ended (however it ended)."""
    deadline = time.monotonic() + timeout
    while container.service.status().running:
        if time.monotonic() > deadline:
            raise TimeoutError(f"engine still running after {timeout} s")
        time.sleep(0.01)
