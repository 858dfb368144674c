"""End to end: the real ``lootcapital serve --mode paper --feed mexc`` in a subprocess, paper
trading the live feed of a fake MEXC futures on loopback (real 5m bars streamed at high speed,
with its funding rates and fair prices), no API key, seen over HTTP.

The server keeps its own clock: it measures its offset to the fake's (``GET
/api/v1/contract/ping``) at start, then the fake streams bars faster than real time; MEXC's
pushes carry no closed flag, so each bar is known closed when the next one's first update
arrives.
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
from tests.venues.mexc_fake_funding import FUNDING_HISTORY, FakeMexcFunding

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded
SYMBOL = "BTCUSDT"
CONTRACT = "BTC_USDT"
HISTORY_BARS = 144  # history_days 0.5
BARS = 40
ARGS = ["serve", "--mode", "paper", "--feed", "mexc", "--symbols", SYMBOL]


@pytest.fixture
def fake() -> Iterator[FakeMexcFunding]:
    with FakeMexcFunding(clock=SimulatedClock(T0 + 60_000), symbols=(CONTRACT,)) as venue:
        yield venue


def test_serve_paper_on_the_mexc_feed_trades_its_bars_and_shows_them_over_http(
    tmp_path: Path, fake: FakeMexcFunding
) -> None:
    env = {
        "LOOTCAPITAL_STRATEGY_PARAMS": json.dumps({"fast": 3, "slow": 8}),
        "LOOTCAPITAL_HISTORY_DAYS": "0.5",
        "LOOTCAPITAL_EXCHANGE": "mexc",
        "LOOTCAPITAL_VENUES__MEXC__REST_URL": fake.rest_url,
        "LOOTCAPITAL_VENUES__MEXC__WS_URL": fake.ws_url,
        "LOOTCAPITAL_VENUES__MEXC__POLL_S": "0.05",
    }
    with serving(tmp_path, fake, ARGS, env) as server:  # type: ignore[arg-type]
        client = server.client
        started = server.until(lambda s: s["running"])
        server.until(lambda _: {f"{CONTRACT}@Min5"} <= fake.subscribed())
        fake.play(T0 + BARS * M5 + 1, pause_s=0.005)
        status = server.until(lambda s: s["candles_processed"] == BARS)
        candles = client.get("/candles", params={"symbol": SYMBOL, "limit": 1000}).json()
        fills = client.get("/fills", params={"limit": 1000}).json()
    served = server.log.read_text()

    expected = load_candles("binance_usdm_BTCUSDT_5m.csv.gz").between(
        T0 - HISTORY_BARS * M5, T0 + BARS * M5
    )
    assert started["candles_processed"] == 0
    assert status["feed_venue"] == "mexc"
    assert status["stale_feeds"] == []
    assert status["stopped_reason"] is None
    np.testing.assert_array_equal([c["open_time"] for c in candles], expected.open_time)
    np.testing.assert_array_equal([float(c["close"]) for c in candles], expected.close)
    assert fills, "sma_cross(3, 8) crossed in 40 bars: it traded"
    assert fake.requests[(FUNDING_HISTORY, 200)] >= 1  # the venue's funding rates were read
    assert not [path for path, _ in fake.requests if path.startswith("/api/v1/private")]
    assert "Application shutdown complete." in served  # the feed let the engine stop
    assert "Traceback" not in served, served
