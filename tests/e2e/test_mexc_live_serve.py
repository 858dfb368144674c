"""End to end: the real ``lootcapital serve --mode live --venue mexc --live`` (real money:
``--live`` plus ``LOOTCAPITAL_LIVE_CONFIRM=true``) in a subprocess, its MEXC API key and secret
read from files readable by their owner alone (mode 600), its REST and websocket URLs pointed at
a fake MEXC futures on loopback (real 5m bars streamed at high speed, orders filled by its
book), seen over HTTP and at the fake.

It trades a few bars, so that the order-entry probe, orders, lookups, the account's websocket
login and the reconciliations are all signed; then neither the key, nor the secret, nor any
signature the fake received may be found in the server's log, the API's answers, the metrics or
any file of the data directory (the SQLite database, the stored bars).
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
from tests.venues.mexc_fake import API_KEY, API_SECRET
from tests.venues.mexc_fake_funding import FakeMexcFunding

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded
SYMBOL = "BTCUSDT"
CONTRACT = "BTC_USDT"
BARS = 40
ARGS = ["serve", "--mode", "live", "--venue", "mexc", "--live", "--symbols", SYMBOL]
ANSWERS = ("/status", "/venues", "/orders", "/positions", "/balance", "/fills", "/alerts")


@pytest.fixture
def fake() -> Iterator[FakeMexcFunding]:
    with FakeMexcFunding(clock=SimulatedClock(T0 + 60_000), symbols=(CONTRACT,)) as venue:
        venue.book.cash = Decimal(100_000)  # more than the run's capital (initial_cash)
        yield venue


def _key_files(folder: Path) -> dict[str, str]:
    """The key and the secret in files of mode 600 under ``folder``: the settings naming them."""
    folder.mkdir()
    key, secret = folder / "mexc.key", folder / "mexc.secret"
    key.write_text(API_KEY + "\n")
    secret.write_text(API_SECRET + "\n")
    key.chmod(0o600)
    secret.chmod(0o600)
    return {
        "LOOTCAPITAL_VENUES__MEXC__API_KEY_FILE": str(key),
        "LOOTCAPITAL_VENUES__MEXC__API_SECRET_FILE": str(secret),
    }


def _leaked(secrets: list[str], texts: dict[str, str], stored: dict[Path, bytes]) -> list[str]:
    """Where each of ``secrets`` is found: ``"<where>: <secret>"`` for each text (by name) and
    each file's bytes (by path) holding it."""
    found = [f"{name}: {s}" for name, text in texts.items() for s in secrets if s in text]
    found += [f"{f}: {s}" for f, data in stored.items() for s in secrets if s.encode() in data]
    return found


def test_serve_live_on_mexc_keeps_its_keys_and_signatures_out_of_logs_answers_metrics_and_data(
    tmp_path: Path, fake: FakeMexcFunding
) -> None:
    env = {
        "LOOTCAPITAL_LIVE_CONFIRM": "true",
        "LOOTCAPITAL_STRATEGY_PARAMS": json.dumps({"fast": 3, "slow": 8}),
        "LOOTCAPITAL_HISTORY_DAYS": "0.5",
        "LOOTCAPITAL_VENUES__MEXC__REST_URL": fake.rest_url,
        "LOOTCAPITAL_VENUES__MEXC__WS_URL": fake.ws_url,
        "LOOTCAPITAL_VENUES__MEXC__POLL_S": "0.05",
    } | _key_files(tmp_path / "keys")
    with serving(tmp_path, fake, ARGS, env) as server:  # type: ignore[arg-type]
        client = server.client
        started = server.until(lambda s: s["running"])
        server.until(lambda _: {f"{CONTRACT}@Min5"} <= fake.subscribed())
        fake.play(T0 + BARS * M5 + 1, pause_s=0.005)
        status = server.until(lambda s: s["candles_processed"] == BARS)
        orders = client.get("/orders", params={"limit": 1000}).json()
        texts = {path: client.get(path).text for path in ANSWERS}
        texts["/metrics"] = httpx.get(f"http://127.0.0.1:{server.port}/metrics").text
    texts["serve.log"] = server.log.read_text()
    data = tmp_path / "data"
    stored = {f: f.read_bytes() for f in data.rglob("*") if f.is_file()}
    signatures = sorted(set(fake.signatures) - {""})

    assert started["mode"] == "live" and status["mode"] == "live"
    assert status["stopped_reason"] is None
    assert orders, "sma_cross(3, 8) crossed in 40 bars: it placed orders"
    assert {o["status"] for o in orders} == {"filled"}
    assert {o["id"] for o in orders} == set(fake.book.submitted)
    assert fake.requests[("/api/v1/private/order/create", 200)] > len(orders)  # and the probe
    assert len(signatures) > len(orders)  # each order, the probe, the login, the lookups
    assert any(f.suffix == ".parquet" for f in stored) and data / "lootcapital.db" in stored
    assert "Application shutdown complete." in texts["serve.log"]
    assert "Traceback" not in texts["serve.log"], texts["serve.log"]
    assert _leaked([API_KEY, API_SECRET, *signatures], texts, stored) == []
