"""Parity trade for trade on long data: backtest ≡ paper replay ≡ paper replay stopped, crashed
and restarted, for both strategies with their default parameters.

Data: the whole shipped sample (60 days, three symbols) always; two 305-day files of the shared
data folder (BTCUSDT and ETHUSDT 5m) under the ``slow`` marker. The restarted replay is a chain
on one data directory, its database seeded with the uninterrupted replay's run id (so client
order ids, fills and trades match one for one): a clean ``stop()`` at a random bar, then an
engine thread that dies right after committing new orders as ``pending_new`` (before they are
sent), then one that dies instead of committing a bar, then a run to the end of the data.
"""

from __future__ import annotations

import gzip
import random
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from domain.model import OrderStatus
from lootcapital.bootstrap import bootstrap
from lootcapital.settings import Settings
from tests.fixtures.data import sample_dir, shared_file
from tests.integration.paper_harness import (
    CrashPlan,
    SimulatedCrash,
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

STRATEGIES = ["sma_cross", "trend_follow"]
SAMPLE_SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
LONG_SYMBOLS = ["BTCUSDT", "ETHUSDT"]
TIMEOUT = 600.0
"""Seconds one replay may take (a 305-day paper replay takes 1.5 to 2.5 minutes)."""


@pytest.fixture
def quiet_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated crashes end engine threads silently; any other thread error still shows."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not isinstance(args.exc_value, SimulatedCrash):
            previous(args)

    monkeypatch.setattr(threading, "excepthook", hook)


def _bars(data: Path, symbols: list[str]) -> int:
    """Bar times in the data (the union over the symbols' files)."""
    times: set[str] = set()
    for symbol in symbols:
        with gzip.open(data / f"binance_usdm_{symbol}_5m.csv.gz", "rt") as lines:
            next(lines)
            times.update(line.split(",", 1)[0] for line in lines)
    return len(times)


def _on_dir(settings: Settings, data_dir: Path) -> Settings:
    """``settings`` on another data directory (and so another SQLite database)."""
    return settings.model_copy(update={"data_dir": data_dir})


def _restarted(settings: Settings, rng: random.Random, candles: int, bar_times: int) -> None:
    """Replay ``settings`` to the end through a clean stop and two crashes (see module doc)."""
    first = start(settings)
    run_until(first, candles=int(candles * rng.uniform(0.1, 0.35)), timeout=TIMEOUT)
    assert first.service.status().stopped_reason == "stopped by user"

    for mode, share in (("stored-not-sent", (0.1, 0.3)), ("uncommitted", (0.05, 0.2))):
        crashing = bootstrap(settings)
        plan = CrashPlan(after_commits=int(bar_times * rng.uniform(*share)), mode=mode)
        crash_during_run(crashing, plan)
        crashing.service.start()
        wait_stopped(crashing, timeout=TIMEOUT)
        assert plan.fired.is_set(), f"the {mode} crash did not happen before the end"
        if mode == "stored-not-sent":
            stored = read_run(settings.database).orders
            assert any(o.status is OrderStatus.PENDING_NEW for o in stored)

    last = start(settings)
    run_until(last, timeout=TIMEOUT)
    assert last.service.status().stopped_reason == "end of data"


def _parity(tmp_path: Path, data: Path, symbols: list[str], strategy: str, seed: int) -> None:
    settings = paper_settings(tmp_path / "paper", data, symbols, strategy=strategy)
    files = [data / f"binance_usdm_{s}_5m.csv.gz" for s in symbols]
    bar_times = _bars(data, symbols)

    expected, fundings = backtest_run(settings, files)
    container = start(settings)
    run_until(container, timeout=TIMEOUT)
    status = container.service.status()
    assert status.stopped_reason == "end of data"
    paper = read_run(settings.database)

    restarted_settings = _on_dir(settings, tmp_path / "restarted")
    seed_run(restarted_settings.database, paper.run)
    _restarted(restarted_settings, random.Random(seed), status.candles_processed, bar_times)
    restarted = read_run(restarted_settings.database)

    assert len(expected) > 20
    assert sorted(map(trade_key, paper.trades)) == sorted(map(trade_key, expected))
    assert paper.fundings == sorted(fundings, key=lambda p: (p.time_ms, p.symbol))
    assert len(fundings) > 20
    assert restarted.fundings == paper.fundings
    assert restarted.run.id == paper.run.id
    assert restarted.run.candles_processed == status.candles_processed
    assert restarted.trades == paper.trades
    assert restarted.fills == paper.fills
    strip = [replace(o, venue_order_id=None) for o in paper.orders]
    assert [replace(o, venue_order_id=None) for o in restarted.orders] == strip
    assert restarted.positions == paper.positions
    assert restarted.equity == paper.equity
    assert len(paper.equity) == bar_times


@pytest.mark.usefixtures("quiet_crashes")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shipped_sample_backtest_paper_and_restarted_paper_trade_alike(
    tmp_path: Path, strategy: str
) -> None:
    _parity(tmp_path, sample_dir(), SAMPLE_SYMBOLS, strategy, seed=60)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.usefixtures("quiet_crashes")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_305_days_backtest_paper_and_restarted_paper_trade_alike(
    tmp_path: Path, strategy: str
) -> None:
    data = shared_file("binance_usdm_BTCUSDT_5m.csv.gz").parent
    shared_file("binance_usdm_ETHUSDT_5m.csv.gz")
    _parity(tmp_path, data, LONG_SYMBOLS, strategy, seed=305)
