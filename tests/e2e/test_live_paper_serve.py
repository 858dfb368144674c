"""End to end: the real ``lootcapital serve --mode paper --feed binance-usdm`` in a subprocess,
paper trading the live feed of a fake Binance USDⓈ-M on loopback (real 5m bars streamed at high
speed), seen over HTTP.

The server keeps its own clock: it measures its offset to the fake's (``GET /fapi/v1/time``) at
start, then the fake streams bars faster than real time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from tests.e2e.live_serve_helpers import serving
from tests.fixtures.data import load_candles
from tests.venues.binance_fake import FakeBinanceUsdm

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
HISTORY_BARS = 144  # history_days 0.5
BARS = 40
ARGS = ["serve", "--mode", "paper", "--feed", "binance-usdm", "--symbols", *SYMBOLS]
ENV = {
    "LOOTCAPITAL_STRATEGY_PARAMS": json.dumps({"fast": 3, "slow": 8}),
    "LOOTCAPITAL_HISTORY_DAYS": "0.5",
    "LOOTCAPITAL_VENUES__BINANCE_USDM__POLL_S": "0.05",
}


@pytest.fixture
def fake() -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=SimulatedClock(T0 + 60_000), symbols=tuple(SYMBOLS)) as venue:
        yield venue


def test_serve_paper_trades_the_live_feeds_bars_and_shows_them_over_http(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    with serving(tmp_path, fake, ARGS, ENV) as server:
        client = server.client
        started, status = server.play(fake, SYMBOLS, T0 + BARS * M5 + 1, BARS)
        candles = client.get("/candles", params={"symbol": "BTCUSDT", "limit": 1000}).json()
        fills = client.get("/fills", params={"limit": 1000}).json()
    served = server.log.read_text()

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
