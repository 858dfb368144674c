"""Parity trade for trade: backtest ≡ paper replay ≡ paper replay stopped, crashed and
restarted (the check the long parity tests run on each data set and strategy).

The restarted replay is a chain on one data directory, its database seeded with the
uninterrupted replay's run id (so client order ids, fills and trades match one for one): a
clean ``stop()`` at a random bar, then an engine thread that dies right after committing new
orders as ``pending_new`` (before they are sent), then one that dies instead of committing a
bar, then a run to the end of the data.
"""

from __future__ import annotations

import gzip
import random
from dataclasses import replace
from pathlib import Path

from domain.model import OrderStatus
from lootcapital.bootstrap import bootstrap
from lootcapital.settings import Settings
from tests.integration.paper_harness import (
    CrashPlan,
    backtest_run,
    crash_during_run,
    paper_settings,
    read_run,
    run_until,
    seed_run,
    start,
    trade_key,
    wait_stopped,
)


def bar_times(data: Path, symbols: list[str]) -> int:
    """Bar times in the data (the union over the symbols' 5m files)."""
    times: set[str] = set()
    for symbol in symbols:
        with gzip.open(data / f"binance_usdm_{symbol}_5m.csv.gz", "rt") as lines:
            next(lines)
            times.update(line.split(",", 1)[0] for line in lines)
    return len(times)


def _restarted(
    settings: Settings, rng: random.Random, candles: int, times: int, timeout: float
) -> None:
    """Replay ``settings`` to the end through a clean stop and two crashes (module doc)."""
    first = start(settings)
    run_until(first, candles=int(candles * rng.uniform(0.1, 0.35)), timeout=timeout)
    assert first.service.status().stopped_reason == "stopped by user"

    for mode, share in (("stored-not-sent", (0.1, 0.3)), ("uncommitted", (0.05, 0.2))):
        crashing = bootstrap(settings)
        plan = CrashPlan(after_commits=int(times * rng.uniform(*share)), mode=mode)
        crash_during_run(crashing, plan)
        crashing.service.start()
        wait_stopped(crashing, timeout=timeout)
        assert plan.fired.is_set(), f"the {mode} crash did not happen before the end"
        if mode == "stored-not-sent":
            stored = read_run(settings.database).orders
            assert any(o.status is OrderStatus.PENDING_NEW for o in stored)

    last = start(settings)
    run_until(last, timeout=timeout)
    assert last.service.status().stopped_reason == "end of data"


def assert_parity(
    tmp_path: Path,
    data: Path,
    symbols: list[str],
    strategy: str,
    *,
    seed: int,
    timeout: float,
    min_trades: int = 20,
    min_fundings: int = 20,
    params: dict[str, object] | None = None,
) -> None:
    """The backtest of ``strategy`` (with ``params``) on the 5m files of ``symbols`` in
    ``data`` trades as its paper replay, which stores what a replay stopped, crashed and
    restarted stores (trades, fills, orders, positions, equity, funding and the pipeline's
    events)."""
    settings = paper_settings(
        tmp_path / "paper", data, symbols, strategy=strategy, strategy_params=params or {}
    )
    files = [data / f"binance_usdm_{s}_5m.csv.gz" for s in symbols]
    times = bar_times(data, symbols)

    expected, fundings, events = backtest_run(settings, files)
    container = start(settings)
    run_until(container, timeout=timeout)
    status = container.service.status()
    assert status.stopped_reason == "end of data"
    paper = read_run(settings.database)

    restarted_settings = settings.model_copy(update={"data_dir": tmp_path / "restarted"})
    seed_run(restarted_settings.database, paper.run)
    _restarted(restarted_settings, random.Random(seed), status.candles_processed, times, timeout)
    restarted = read_run(restarted_settings.database)

    assert len(expected) > min_trades
    assert sorted(map(trade_key, paper.trades)) == sorted(map(trade_key, expected))
    assert paper.fundings == sorted(fundings, key=lambda p: (p.time_ms, p.symbol))
    assert len(fundings) > min_fundings
    assert paper.pipeline == events
    assert restarted.fundings == paper.fundings
    assert restarted.pipeline == paper.pipeline
    assert restarted.run.id == paper.run.id
    assert restarted.run.candles_processed == status.candles_processed
    assert restarted.trades == paper.trades
    assert restarted.fills == paper.fills
    strip = [replace(o, venue_order_id=None) for o in paper.orders]
    assert [replace(o, venue_order_id=None) for o in restarted.orders] == strip
    assert restarted.positions == paper.positions
    assert restarted.equity == paper.equity
    assert len(paper.equity) == times
