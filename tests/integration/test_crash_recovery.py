"""A real ``lootcapital serve`` killed with SIGKILL at random moments of a replay and restarted
each time ends exactly where an uninterrupted run ends: the same orders (same client ids, same
final states), fills, trades, positions and equity curve, and no order twice.

Each case runs the CLI as a subprocess on a trimmed sample: once uninterrupted (the reference),
then on a second database seeded with the reference's run id (client ids derive from it, so both
runs' ids must match one for one) killed :data:`KILLS` times and restarted until the end of data.
Kill delays are random (seeded) and spread over the replay: each targets a random share of the
bars still to do, converted to seconds with the replay rate measured on the reference.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from domain.model import OrderType
from tests.integration.conftest import fresh_postgres_database
from tests.integration.paper_harness import (
    StoredRun,
    free_port,
    read_run,
    seed_run,
    trimmed_sample,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
BARS = 2400
TOTAL = BARS * len(SYMBOLS)
KILLS = 20
TOKEN = "test-token-0123456789"
SMA = ("sma_cross", {"fast": 10, "slow": 30})
TREND = ("trend_follow", {"trend_timeframe": "15m", "ema_fast": 8, "ema_slow": 21})


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trimmed_sample(tmp_path_factory.mktemp("sample"), SYMBOLS, bars=BARS)


@dataclass
class Serve:
    """Starts ``lootcapital serve`` processes on one data directory and database."""

    data_dir: Path
    sample: Path
    strategy: str
    params: dict[str, Any]
    database_url: str | None
    log: Path
    live: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'lootcapital.db').resolve()}"

    def spawn(self) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOTCAPITAL_")}
        env.update(
            LOOTCAPITAL_DATA_DIR=str(self.data_dir),
            LOOTCAPITAL_SAMPLE_DIR=str(self.sample),
            LOOTCAPITAL_SYMBOLS=json.dumps(SYMBOLS),
            LOOTCAPITAL_STRATEGY=self.strategy,
            LOOTCAPITAL_STRATEGY_PARAMS=json.dumps(self.params),
            LOOTCAPITAL_SPEED="10000000",
            LOOTCAPITAL_HISTORY_DAYS="0",  # every bar replayed: TOTAL counts them all
            LOOTCAPITAL_AUTOSTART="true",
            LOOTCAPITAL_API_TOKEN=TOKEN,
            LOOTCAPITAL_PORT=str(port),
            LOOTCAPITAL_LOG_LEVEL="WARNING",
        )
        if self.database_url is not None:
            env["LOOTCAPITAL_DATABASE_URL"] = self.database_url
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lootcapital.cli", "serve"],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.live.append(proc)
        return proc, port

    def status(self, proc: subprocess.Popen[bytes], port: int, timeout: float = 60.0) -> dict:
        """The process's ``GET /api/v1/status``, waiting until it answers."""
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return json.load(response)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.02)
        raise TimeoutError(f"serve did not answer in {timeout} s:\n{self.log_tail()}")

    def start(self, tries: int = 3) -> tuple[subprocess.Popen[bytes], int, dict]:
        """A new process and its first status answer (a new port when the last was taken)."""
        for attempt in range(tries):
            proc, port = self.spawn()
            try:
                return proc, port, self.status(proc, port)
            except RuntimeError:
                self.stop(proc, signal_kill=True)
                if attempt == tries - 1 or "address already in use" not in self.log_tail():
                    raise
        raise AssertionError("unreachable")

    def run_to_end(self, timeout: float = 120.0) -> tuple[float, int]:
        """Start a process, wait for the end of data, stop it. Returns the replay's seconds
        from the first answer to the end, and the bars already processed at the first answer."""
        proc, port, first = self.start()
        try:
            started = time.monotonic()
            status = first
            while status["running"]:
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"replay did not end in {timeout} s")
                time.sleep(0.05)
                status = self.status(proc, port)
            elapsed = time.monotonic() - started
            assert status["stopped_reason"] == "end of data", (status, self.log_tail())
            assert status["candles_processed"] == TOTAL
        finally:
            self.stop(proc, signal_kill=False)
        return elapsed, first["candles_processed"]

    def stop(self, proc: subprocess.Popen[bytes], *, signal_kill: bool) -> None:
        if signal_kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.live.remove(proc)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def close(self) -> None:
        for proc in list(self.live):
            self.stop(proc, signal_kill=True)


@dataclass(frozen=True, slots=True)
class Kill:
    """One SIGKILL: its number, the delay after the first status answer, and what the killed
    process had committed (bars processed, last bar open_time, orders not final)."""

    number: int
    delay_s: float
    candles_processed: int
    last_bar_time: int
    open_orders: int


def _kill_repeatedly(serve: Serve, rng: random.Random, rate: float) -> list[Kill]:
    kills = []
    for number in range(1, KILLS + 1):
        proc, _, first = serve.start()
        try:
            done = first["candles_processed"]
            # At most 0.45 of what is left at the reference's rate: a killed process up to
            # twice as fast (the machine's speed varies) is still killed before the end.
            share = rng.uniform(0.05, 0.9) / (KILLS - number + 2)
            delay = share * (TOTAL - done) / rate
            time.sleep(delay)
        finally:
            serve.stop(proc, signal_kill=True)
        stored = read_run(serve.url)
        run, working = stored.run, sum(not o.status.is_final for o in stored.orders)
        last = max(run.last_bar_time.values(), default=0)
        kills.append(Kill(number, delay, run.candles_processed, last, working))
    return kills


def _without_venue_id(orders: Sequence[Any]) -> list[Any]:
    return [replace(o, venue_order_id=None) for o in orders]


def _first_difference(
    what: str,
    expected: Sequence[Any],
    actual: Sequence[Any],
    time_of: Callable[[Any], int],
    kills: list[Kill],
) -> str | None:
    """A message naming the first differing item of two lists and the kill before it."""
    n = min(len(expected), len(actual))
    i = next((k for k in range(n) if expected[k] != actual[k]), n)
    if i == n == len(expected) == len(actual):
        return None
    want = expected[i] if i < len(expected) else None
    got = actual[i] if i < len(actual) else None
    at = min(time_of(x) for x in (want, got) if x is not None)
    before = [k for k in kills if k.last_bar_time <= at]
    kill = before[-1] if before else None
    return (
        f"{what}: {len(expected)} expected, {len(actual)} after kills; first difference at "
        f"#{i} (time {at}):\n  uninterrupted: {want}\n  killed:        {got}\n"
        f"  last kill before it: {kill}"
    )


def _compare(reference: StoredRun, killed: StoredRun, kills: list[Kill]) -> list[str]:
    checks = [
        ("orders", _without_venue_id(reference.orders), _without_venue_id(killed.orders),
         lambda o: o.created_time),
        ("fills", reference.fills, killed.fills, lambda f: f.time),
        ("trades", reference.trades, killed.trades, lambda t: t.exit_time),
        ("equity", reference.equity, killed.equity, lambda p: p.time),
        ("positions", reference.positions, killed.positions, lambda p: p.opened_time or 0),
    ]  # fmt: skip
    return [
        message
        for what, want, got, time_of in checks
        if (message := _first_difference(what, want, got, time_of, kills)) is not None
    ]


def _crash_recovery(
    tmp_path: Path,
    sample: Path,
    strategy: tuple[str, dict[str, Any]],
    urls: tuple[str | None, str | None],
    seed: int,
) -> None:
    name, params = strategy
    reference_serve = Serve(
        tmp_path / "reference", sample, name, params, urls[0], tmp_path / "reference.log"
    )
    killed_serve = Serve(
        tmp_path / "killed", sample, name, params, urls[1], tmp_path / "killed.log"
    )
    try:
        replay_s, done_at_answer = reference_serve.run_to_end()
        rate = (TOTAL - done_at_answer) / replay_s
        reference = read_run(reference_serve.url)

        seed_run(killed_serve.url, reference.run)
        kills = _kill_repeatedly(killed_serve, random.Random(seed), rate)
        killed_serve.run_to_end()
        killed = read_run(killed_serve.url)
    finally:
        reference_serve.close()
        killed_serve.close()

    assert len(reference.trades) > 10
    if any(o.type is not OrderType.MARKET for o in reference.orders):  # stops were in play
        assert any(k.open_orders for k in kills), kills
    assert all(0 < k.candles_processed < TOTAL for k in kills), kills
    assert len({k.candles_processed for k in kills}) > KILLS // 2, kills
    assert killed.run.id == reference.run.id
    assert killed.run.candles_processed == TOTAL
    assert killed.run.stopped_reason == "end of data"
    assert len({o.id for o in killed.orders}) == len(killed.orders) == len(reference.orders)
    assert len({f.id for f in killed.fills}) == len(killed.fills)
    assert len(killed.equity) == len({p.time for p in killed.equity}) == BARS
    problems = _compare(reference, killed, kills)
    assert not problems, "\n".join(problems) + "\nkills:\n" + "\n".join(map(str, kills))


@pytest.fixture
def postgres_urls() -> Iterator[tuple[str, str]]:
    """Two fresh, empty PostgreSQL databases: the reference's and the killed run's."""
    with fresh_postgres_database() as reference, fresh_postgres_database() as killed:
        yield reference, killed


@pytest.mark.parametrize(
    ("strategy", "seed"), [(SMA, 20251101), (TREND, 20251102)], ids=["sma_cross", "trend_follow"]
)
def test_sigkilled_serve_on_sqlite_ends_like_an_uninterrupted_run(
    tmp_path: Path, sample: Path, strategy: tuple[str, dict[str, Any]], seed: int
) -> None:
    _crash_recovery(tmp_path, sample, strategy, (None, None), seed)


@pytest.mark.postgres
def test_sigkilled_serve_on_postgresql_ends_like_an_uninterrupted_run(
    tmp_path: Path, sample: Path, postgres_urls: tuple[str, str]
) -> None:
    _crash_recovery(tmp_path, sample, SMA, postgres_urls, 20251103)
