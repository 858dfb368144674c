"""End to end: the first minutes of a newcomer (issue 10). ``make run``'s own command, with
every default (the shipped sample replayed at the default speed after ``history_days`` of
history, the default strategy and symbols, a generated API token), run as a subprocess; only
the data folder and the port differ. Within 2 minutes of the start the price chart has at least
a week of 5m bars of every symbol, and the strategy has made its first decision."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from api.deps import SESSION_COOKIE, session_value
from lootcapital.settings import Settings
from tests.integration.paper_harness import free_port

pytestmark = pytest.mark.slow

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
FIRST_MINUTES_S = 120.0
"""The promise: what a newcomer sees within 2 minutes of ``make run``."""
WEEK_S = 7 * 24 * 3600
BAR_S = 300


def run_command() -> list[str]:
    """The Makefile's ``run`` recipe as a command line, ``$(BIN)/lootcapital`` being this
    Python's ``-m lootcapital.cli``.

    Raises:
        AssertionError: the recipe is not one ``$(BIN)/lootcapital`` command line.
    """
    lines = (REPO_ROOT / "Makefile").read_text().splitlines()
    recipe = lines[lines.index("run: install") + 1].split()
    assert recipe[0] == "$(BIN)/lootcapital", f"make run is no longer lootcapital: {recipe}"
    return [sys.executable, "-m", "lootcapital.cli", *recipe[1:]]


def poll(what: str, started: float, proc: subprocess.Popen[bytes], get: Callable[[], T]) -> T:
    """``get()`` until it is truthy, at most :data:`FIRST_MINUTES_S` after ``started``
    (``time.monotonic()``); transport errors count as not yet.

    Raises:
        AssertionError: the server exited, or ``what`` did not come in time.
    """
    while time.monotonic() - started < FIRST_MINUTES_S:
        assert proc.poll() is None, f"serve exited with {proc.returncode}"
        try:
            if value := get():
                return value
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {FIRST_MINUTES_S:.0f} s of make run")


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes], float]]:
    """``make run``'s command started now with no ``LOOTCAPITAL_`` variable but its data
    folder under ``tmp_path`` and a free port; a client of it with the generated token as
    session cookie and bearer, the process and its start (``time.monotonic()``)."""
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LOOTCAPITAL_")}
    environ.update(LOOTCAPITAL_DATA_DIR=str(data), LOOTCAPITAL_PORT=str(port))
    started = time.monotonic()
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            run_command(), cwd=REPO_ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=log
        )
    try:
        token_file = data / "api_token"
        token = poll("API token", started, proc, lambda: token_file.exists() and token_file)
        secret = token.read_text().strip()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {secret}"},
            cookies={SESSION_COOKIE: session_value(secret)},
            timeout=10.0,
        ) as client:
            yield client, proc, started
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_make_run_shows_a_week_of_bars_and_first_decisions_within_two_minutes(
    make_run: tuple[httpx.Client, subprocess.Popen[bytes], float],
) -> None:
    client, proc, started = make_run

    def chart(symbol: str) -> dict | None:
        response = client.get("/ui/chart/data", params={"symbol": symbol, "timeframe": "5m"})
        body = response.json() if response.status_code == 200 else None
        return body if body and body["bars"] else None

    def decisions() -> list:
        signals = client.get("/api/v1/signals", params={"limit": 1})
        orders = client.get("/api/v1/orders", params={"limit": 1})
        return [*signals.raise_for_status().json(), *orders.raise_for_status().json()]

    for symbol in Settings.model_fields["symbols"].get_default(call_default_factory=True):
        bars = poll(f"chart of {symbol}", started, proc, lambda s=symbol: chart(s))["bars"]
        span = bars[-1]["time"] - bars[0]["time"] + BAR_S
        assert span >= WEEK_S, f"{symbol}: the chart spans {span / 86400:.2f} days"
        assert len(bars) >= WEEK_S // BAR_S, f"{symbol}: {len(bars)} bars"
    assert poll("signal or order", started, proc, decisions)
