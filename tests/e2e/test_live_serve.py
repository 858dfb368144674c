"""End to end: the real ``lootcapital serve --mode live --venue binance-usdm --demo`` in a
subprocess, its demo URLs and API key from the environment pointed at a fake Binance USDⓈ-M on
loopback (real 5m bars streamed at high speed, orders filled by its matching engine), seen over
HTTP and at the fake.

The server keeps its own clock: it measures its offset to the fake's (``GET /fapi/v1/time``) at
start and signs its requests with it, while the fake streams bars faster than real time (so a
signed request may be refused as too old, and is sent again after the offset is measured
anew: the fake refuses it before its matching engine sees it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from adapters.clock import SimulatedClock
from tests.integration.paper_harness import free_port
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

REPO_ROOT = Path(__file__).resolve().parents[2]
M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
BARS = 40
TOKEN = "e2e-token-0123456789abcdef"
STATUS_WAIT_S = 60  # a bound, not a speed: the subprocess imports ccxt and the app first


@pytest.fixture
def fake() -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=SimulatedClock(T0 + 60_000), symbols=tuple(SYMBOLS)) as venue:
        venue.account.wallet = Decimal(100_000)  # more than the run's capital (initial_cash)
        yield venue


def _serve(tmp_path: Path, fake: FakeBinanceUsdm, port: int) -> subprocess.Popen[bytes]:
    sample = tmp_path / "sample"  # no kline or funding file: nothing replayed, nothing funded
    sample.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOTCAPITAL_")}
    env.update(
        LOOTCAPITAL_DATA_DIR=str(tmp_path / "data"),
        LOOTCAPITAL_SAMPLE_DIR=str(sample),
        LOOTCAPITAL_API_TOKEN=TOKEN,
        LOOTCAPITAL_PORT=str(port),
        LOOTCAPITAL_LOG_LEVEL="WARNING",
        LOOTCAPITAL_STRATEGY="sma_cross",
        LOOTCAPITAL_STRATEGY_PARAMS=json.dumps({"fast": 3, "slow": 8}),
        LOOTCAPITAL_HISTORY_DAYS="0.5",
        LOOTCAPITAL_VENUES__BINANCE_USDM__REST_URL=fake.rest_url,
        LOOTCAPITAL_VENUES__BINANCE_USDM__WS_URL=fake.ws_url,
        LOOTCAPITAL_VENUES__BINANCE_USDM__API_KEY=API_KEY,
        LOOTCAPITAL_VENUES__BINANCE_USDM__API_SECRET=API_SECRET,
        LOOTCAPITAL_VENUES__BINANCE_USDM__POLL_S="0.05",
    )
    command = ["serve", "--mode", "live", "--venue", "binance-usdm", "--demo", "--symbols"]
    with (tmp_path / "serve.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "lootcapital.cli", *command, *SYMBOLS],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def _until(
    client: httpx.Client,
    proc: subprocess.Popen[bytes],
    done: Callable[[dict], bool],
    log: Path,
) -> dict:
    """Poll ``GET /status`` until ``done(status)``; fail with the server's log if it exits."""
    deadline = time.monotonic() + STATUS_WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            status = client.get("/status").json()
        except httpx.TransportError:
            status = None
        if status is not None and done(status):
            return status
        time.sleep(0.02)
    raise TimeoutError(f"no such status in {STATUS_WAIT_S} s:\n{log.read_text()[-3000:]}")


def test_serve_live_on_the_demo_places_the_strategys_orders_at_the_venue_seen_over_http(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _serve(tmp_path, fake, port)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers) as client:
            started = _until(client, proc, lambda s: s["running"], log)
            streams = {f"{s.lower()}@kline_5m" for s in SYMBOLS}
            _until(client, proc, lambda _: streams <= fake.subscribed(), log)
            fake.play(T0 + BARS * M5 + 1, pause_s=0.005)
            status = _until(
                client, proc, lambda s: s["candles_processed"] == BARS * len(SYMBOLS), log
            )
            orders = client.get("/orders", params={"limit": 1000}).json()
            venues = client.get("/venues").json()
            answers = [
                client.get(path).text
                for path in ("/status", "/orders", "/fills", "/venues", "/balance", "/alerts")
            ]
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    served = log.read_text()
    stored = b"".join(f.read_bytes() for f in (tmp_path / "data").rglob("*") if f.is_file())

    assert started["mode"] == "live" and status["mode"] == "live"
    assert status["stopped_reason"] is None
    assert orders, "sma_cross(3, 8) crossed in 40 bars: it placed orders"
    assert {o["status"] for o in orders} == {"filled"}
    assert {o["id"] for o in orders} == set(fake.account.placed)
    assert set(fake.account.placed.values()) == {1}  # each client id placed once
    assert [(v["venue"], v["drift"]) for v in venues] == [("binance-usdm", {})]
    assert venues[0]["last_reconciliation"] is not None  # at start, before the first bar
    assert {c.margin_type for c in fake.account.positions.values()} == {"ISOLATED"}
    assert "Application shutdown complete." in served
    assert "Traceback" not in served, served
    # Neither key nor a signature in the log, the API's answers, the metrics or the database.
    for text in (served, metrics, *answers):
        assert API_KEY not in text and API_SECRET not in text and "signature=" not in text
    assert API_KEY.encode() not in stored and API_SECRET.encode() not in stored
    assert b"signature=" not in stored
