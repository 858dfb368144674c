"""End to end: the real ``lootcapital serve --mode live --venue binance-usdm --demo`` in a
subprocess against a fake Binance USDⓈ-M on loopback, its account seen over HTTP: the balance
is the venue's, and a leverage change is the venue's to accept or refuse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from adapters.clock import SimulatedClock
from tests.e2e.test_live_serve import _until
from tests.integration.paper_harness import free_port
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC
SYMBOLS = ["BTCUSDT", "SOLUSDT"]  # SOLUSDT: at most 100x in its first bracket
TOKEN = "e2e-token-0123456789abcdef"


@pytest.fixture
def fake() -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=SimulatedClock(T0 + 60_000), symbols=tuple(SYMBOLS)) as venue:
        venue.account.wallet = Decimal(54_321)
        yield venue


def _serve(tmp_path: Path, fake: FakeBinanceUsdm, port: int) -> subprocess.Popen[bytes]:
    sample = tmp_path / "sample"
    sample.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOTCAPITAL_")}
    env.update(
        LOOTCAPITAL_DATA_DIR=str(tmp_path / "data"),
        LOOTCAPITAL_SAMPLE_DIR=str(sample),
        LOOTCAPITAL_API_TOKEN=TOKEN,
        LOOTCAPITAL_PORT=str(port),
        LOOTCAPITAL_LOG_LEVEL="WARNING",
        LOOTCAPITAL_STRATEGY="sma_cross",
        LOOTCAPITAL_HISTORY_DAYS="0",
        LOOTCAPITAL_MAX_LEVERAGE="125",
        LOOTCAPITAL_VENUES__BINANCE_USDM__REST_URL=fake.rest_url,
        LOOTCAPITAL_VENUES__BINANCE_USDM__WS_URL=fake.ws_url,
        LOOTCAPITAL_VENUES__BINANCE_USDM__API_KEY=API_KEY,
        LOOTCAPITAL_VENUES__BINANCE_USDM__API_SECRET=API_SECRET,
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


def test_live_balance_and_leverage_over_http_are_the_venues(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _serve(tmp_path, fake, port)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers) as client:
            _until(client, proc, lambda s: s["running"], log)
            balance = client.get("/balance")
            refused = client.put("/positions/SOLUSDT/leverage", json={"leverage": 110})
            accepted = client.put("/positions/SOLUSDT/leverage", json={"leverage": 5})
    finally:
        proc.terminate()
        proc.wait(timeout=15)

    assert balance.status_code == 200, balance.text
    assert Decimal(balance.json()["wallet"]) == Decimal(54_321)
    assert Decimal(balance.json()["available"]) == Decimal(54_321)
    assert refused.status_code == 400, refused.text
    assert refused.json()["field"] == "leverage"
    assert "Leverage 110 is not valid" in refused.json()["detail"]
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["leverage"] == 5
    assert fake.account.positions["SOLUSDT"].leverage == 5
