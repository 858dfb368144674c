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
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from adapters.clock import SimulatedClock
from tests.e2e.live_serve_helpers import serving
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
BARS = 40
ARGS = ["serve", "--mode", "live", "--venue", "binance-usdm", "--demo", "--symbols", *SYMBOLS]
ENV = {
    "LOOTCAPITAL_STRATEGY_PARAMS": json.dumps({"fast": 3, "slow": 8}),
    "LOOTCAPITAL_HISTORY_DAYS": "0.5",
    "LOOTCAPITAL_VENUES__BINANCE_USDM__API_KEY": API_KEY,
    "LOOTCAPITAL_VENUES__BINANCE_USDM__API_SECRET": API_SECRET,
    "LOOTCAPITAL_VENUES__BINANCE_USDM__POLL_S": "0.05",
}


@pytest.fixture
def fake() -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=SimulatedClock(T0 + 60_000), symbols=tuple(SYMBOLS)) as venue:
        venue.account.wallet = Decimal(100_000)  # more than the run's capital (initial_cash)
        yield venue


def test_serve_live_on_the_demo_places_the_strategys_orders_at_the_venue_seen_over_http(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    with serving(tmp_path, fake, ARGS, ENV) as server:
        client = server.client
        started, status = server.play(fake, SYMBOLS, T0 + BARS * M5 + 1, BARS)
        orders = client.get("/orders", params={"limit": 1000}).json()
        venues = client.get("/venues").json()
        answers = [
            client.get(path).text
            for path in ("/status", "/orders", "/fills", "/venues", "/balance", "/alerts")
        ]
        metrics = httpx.get(f"http://127.0.0.1:{server.port}/metrics").text
    served = server.log.read_text()
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
