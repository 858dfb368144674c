"""End to end: the real ``lootcapital serve --mode live --venue binance-usdm --live`` (real-money
live mode: ``--live`` plus ``LOOTCAPITAL_LIVE_CONFIRM=true``) in a subprocess, its production
URLs replaced by a fake Binance USDⓈ-M on loopback through the REST and websocket URL settings
(see :mod:`tests.e2e.test_live_serve` for the demo), seen over HTTP, over the WebSocket and at
the fake.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from adapters.clock import SimulatedClock
from tests.e2e.live_serve_helpers import TOKEN, Server, serving
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
BARS = 40
ARGS = ["serve", "--mode", "live", "--venue", "binance-usdm", "--live", "--symbols", *SYMBOLS]
ENV = {
    "LOOTCAPITAL_LIVE_CONFIRM": "true",
    "LOOTCAPITAL_STRATEGY_PARAMS": json.dumps({"fast": 3, "slow": 8}),
    "LOOTCAPITAL_HISTORY_DAYS": "0.5",
    "LOOTCAPITAL_VENUES__BINANCE_USDM__API_KEY": API_KEY,
    "LOOTCAPITAL_VENUES__BINANCE_USDM__API_SECRET": API_SECRET,
    "LOOTCAPITAL_VENUES__BINANCE_USDM__POLL_S": "0.05",
}
WS_WAIT_S = 20


@pytest.fixture
def fake() -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=SimulatedClock(T0 + 60_000), symbols=tuple(SYMBOLS)) as venue:
        venue.account.wallet = Decimal(100_000)  # more than the run's capital (initial_cash)
        yield venue


def _receive_until(ws: ClientConnection, done: Callable[[dict[str, Any]], bool]) -> dict:
    """The first WebSocket message for which ``done`` holds (others skipped)."""
    deadline = time.monotonic() + WS_WAIT_S
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
        if done(message):
            return message
    raise TimeoutError(f"no such message within {WS_WAIT_S} s")


def _reconciled(server: Server) -> dict:
    """``GET /venues``'s entry once the start's reconciliation is done."""
    deadline = time.monotonic() + WS_WAIT_S
    while time.monotonic() < deadline:
        (venue,) = server.client.get("/venues").json()
        if venue["last_reconciliation"] is not None:
            return venue
        time.sleep(0.05)
    raise TimeoutError("no reconciliation at start")


def test_serve_live_with_real_money_confirmed_trades_at_the_venues_configured_urls(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    with serving(tmp_path, fake, ARGS, ENV) as server:
        started, status = server.play(fake, SYMBOLS, T0 + BARS * M5 + 1, BARS)
        orders = server.client.get("/orders", params={"limit": 1000}).json()
        (venue,) = server.client.get("/venues").json()
    served = server.log.read_text()

    assert started["mode"] == "live" and status["mode"] == "live"
    assert status["stopped_reason"] is None
    assert venue["venue"] == "binance-usdm" and venue["drift"] == {}
    assert orders, "sma_cross(3, 8) crossed in 40 bars: it placed orders"
    assert {o["status"] for o in orders} == {"filled"}
    assert {o["id"] for o in orders} == set(fake.account.placed)
    assert set(fake.account.placed.values()) == {1}
    assert "Traceback" not in served, served


def test_a_drift_repaired_is_pushed_to_websocket_clients(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    no_history = ENV | {"LOOTCAPITAL_HISTORY_DAYS": "0"}  # no bar is needed
    with serving(tmp_path, fake, ARGS, no_history) as server:
        server.until(lambda s: s["running"])
        _reconciled(server)
        ws_url = f"ws://127.0.0.1:{server.port}/api/v1/ws?token={TOKEN}"
        with connect(ws_url) as ws:
            hand = fake.trade_by_hand("ETHUSDT", "BUY", "0.10")  # not the server's trade
            pushed = _receive_until(ws, lambda m: m["type"] == "reconciliation")
        (venue,) = server.client.get("/venues").json()
        positions = {p["symbol"]: p["qty"] for p in server.client.get("/positions").json()}

    # The server's clock is now, the fake's in 2025: the venue's trades are older than the
    # window of trades the reconciliation reads, so the position is what it repairs.
    assert pushed["data"]["kind"] == "unknown_position"
    assert pushed["data"]["venue"] == "binance-usdm" and pushed["data"]["symbol"] == "ETHUSDT"
    assert "0.1" in pushed["data"]["details"]
    assert venue["drift"] == {"unknown_position": 1}
    assert Decimal(positions["ETHUSDT"]) == Decimal("0.10")
    assert fake.account.placed == {hand: 1}  # the server sent no order
