"""End to end: the real ``lootcapital serve --mode live --venue binance-usdm --demo`` in a
subprocess against a fake Binance USDⓈ-M on loopback, its account seen over HTTP: the balance
is the venue's, and a leverage change is the venue's to accept or refuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import SimulatedClock
from tests.e2e.live_serve_helpers import serving
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC
SYMBOLS = ["BTCUSDT", "SOLUSDT"]  # SOLUSDT: at most 100x in its first bracket
ARGS = ["serve", "--mode", "live", "--venue", "binance-usdm", "--demo", "--symbols", *SYMBOLS]
ENV = {
    "LOOTCAPITAL_HISTORY_DAYS": "0",
    "LOOTCAPITAL_MAX_LEVERAGE": "125",
    "LOOTCAPITAL_VENUES__BINANCE_USDM__API_KEY": API_KEY,
    "LOOTCAPITAL_VENUES__BINANCE_USDM__API_SECRET": API_SECRET,
}


@pytest.fixture
def fake() -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=SimulatedClock(T0 + 60_000), symbols=tuple(SYMBOLS)) as venue:
        venue.account.wallet = Decimal(54_321)
        yield venue


def test_live_balance_and_leverage_over_http_are_the_venues(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    with serving(tmp_path, fake, ARGS, ENV) as server:
        client = server.client
        server.until(lambda s: s["running"])
        balance = client.get("/balance")
        refused = client.put("/positions/SOLUSDT/leverage", json={"leverage": 110})
        accepted = client.put("/positions/SOLUSDT/leverage", json={"leverage": 5})

    assert balance.status_code == 200, balance.text
    assert Decimal(balance.json()["wallet"]) == Decimal(54_321)
    assert Decimal(balance.json()["available"]) == Decimal(54_321)
    assert refused.status_code == 400, refused.text
    assert refused.json()["field"] == "leverage"
    assert "Leverage 110 is not valid" in refused.json()["detail"]
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["leverage"] == 5
    assert fake.account.positions["SOLUSDT"].leverage == 5
