"""End to end: the real ``lootcapital serve --mode paper --feed binance-usdm`` in a subprocess,
paper trading the live feed of a fake Binance USDⓈ-M on loopback (real 5m bars streamed at high
speed), seen over HTTP.

The server keeps its own clock: it measures its offset to the fake's (``GET /fapi/v1/time``) at
start, then the fake streams bars faster than real time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from adapters.clock import SimulatedClock
from tests.e2e.test_live_serve import _until
from tests.fixtures.data import load_candles
from tests.integration.paper_harness import free_port
from tests.venues.binance_fake import FakeBinanceUsdm

REPO_ROOT = Path(__file__).resolve().parents[2]
M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
HISTORY_BARS = 144  # history_days 0.5
BARS = 40
TOKEN = "e2e-token-0123456789abcdef"


@pytest.fixture
def fake() -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=SimulatedClock(T0 + 60_000), symbols=tuple(SYMBOLS)) as venue:
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
        LOOTCAPITAL_VENUES__BINANCE_USDM__POLL_S="0.05",
    )
    command = ["serve", "--mode", "paper", "--feed", "binance-usdm", "--symbols", *SYMBOLS]
    with (tmp_path / "serve.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "lootcapital.cli", *command],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def test_serve_paper_trades_the_live_feeds_bars_and_shows_them_over_http(
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
            candles = client.get("/candles", params={"symbol": "BTCUSDT", "limit": 1000}).json()
            fills = client.get("/fills", params={"limit": 1000}).json()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    served = log.read_text()

    expected = load_candles("binance_usdm_BTCUSDT_5m.csv.gz").between(
        T0 - HISTORY_BARS * M5, T0 + BARS * M5
    )
    assert started["candles_processed"] == 0
    assert status["feed_venue"] == "binance-usdm"
    assert status["stale_feeds"] == []
    assert status["stopped_reason"] is None
    np.testing.assert_array_equal([c["open_time"] for c in candles], expected.open_time)
    np.testing.assert_array_equal([float(c["close"]) for c in candles], expected.close)
    assert fills, "sma_cross(3, 8) crossed in 40 bars: it traded"
    assert "Application shutdown complete." in served  # the feed let the engine stop
    assert "Traceback" not in served, served
