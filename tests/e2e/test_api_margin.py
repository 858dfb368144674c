"""End to end on the sample paper server: positions with leverage, margin and liquidation
price, the balance breakdown, leverage changes and the funding ledger over HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.margin import liquidation_price
from lootcapital.bootstrap import Container
from tests.e2e.web_fixtures import sample_server

TOKEN = "e2e-margin-token-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Container]]:
    with sample_server(tmp_path_factory.mktemp("margin"), TOKEN) as running:
        yield running


@pytest.fixture
def client(server: tuple[str, Container]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server[0] + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as c:
        yield c


def _wait(read: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"nothing in {timeout} s")


def test_leverage_moves_the_liquidation_price_and_the_margin_of_a_position(
    client: httpx.Client, server: tuple[str, Container]
) -> None:
    container = server[1]
    brackets = container.service.engine.instruments["BTCUSDT"].brackets
    assert brackets is not None
    client.post("/engine/stop")
    position = _wait(
        lambda: (
            [p for p in client.get("/positions").json() if p["symbol"] == "BTCUSDT"]
            or (client.post("/engine/start") and None)
        )
    )[0]
    client.post("/engine/stop")

    changed = client.put("/positions/BTC/USDT:USDT/leverage", json={"leverage": 10})
    (after,) = [p for p in client.get("/positions").json() if p["symbol"] == "BTCUSDT"]
    balance = client.get("/balance").json()

    assert position["leverage"] == 1
    assert changed.status_code == 200 and changed.json() == {"symbol": "BTCUSDT", "leverage": 10}
    qty, entry = Decimal(after["qty"]), Decimal(after["entry_price"])
    expected = liquidation_price(
        brackets, qty=qty, entry_price=entry, wallet_balance=abs(qty) * entry / 10
    )
    assert expected is not None
    tick = container.service.engine.instruments["BTCUSDT"].tick_size
    assert abs(Decimal(after["liquidation_price"]) - expected) < tick
    assert after["leverage"] == 10
    assert abs(Decimal(after["initial_margin"]) - abs(qty) * entry / 10) < Decimal("0.01")
    in_use = sum(Decimal(p["initial_margin"]) for p in client.get("/positions").json())
    assert Decimal(balance["margin_in_use"]) == in_use
    assert Decimal(balance["available"]) == max(
        Decimal(0), Decimal(balance["margin_balance"]) - in_use
    )
    assert Decimal(balance["margin_balance"]) == Decimal(balance["wallet"]) + Decimal(
        balance["unrealized_pnl"]
    )
    assert container.service.run.state["venue"]["futures"]["leverage"]["BTCUSDT"] == 10


@pytest.mark.parametrize(
    ("symbol", "leverage", "status", "field"),
    [
        ("BTCUSDT", 21, 400, "leverage"),  # above the max_leverage setting (20)
        ("BTCUSDT", 0, 422, "leverage"),
        ("DOGEUSDT", 5, 404, "symbol"),
    ],
)
def test_a_bad_leverage_is_refused_naming_the_field(
    client: httpx.Client, symbol: str, leverage: int, status: int, field: str
) -> None:
    response = client.put(f"/positions/{symbol}/leverage", json={"leverage": leverage})

    assert response.status_code == status
    assert response.json()["field"].endswith(field)


def test_funding_payments_are_listed_and_add_up_to_the_balances_funding_paid(
    client: httpx.Client,
) -> None:
    client.post("/engine/start")
    payments = _wait(lambda: client.get("/funding").json(), timeout=60)
    client.post("/engine/stop")
    payments = client.get("/funding").json()
    balance = client.get("/balance").json()

    for p in payments:
        amount = Decimal(p["qty"]) * Decimal(p["mark"]) * Decimal(p["rate"])
        assert abs(Decimal(p["amount"]) - amount) < Decimal("0.00000001")
        assert p["time"] % (8 * 3_600_000) == 0
    assert sum(Decimal(p["amount"]) for p in payments) == Decimal(balance["funding_paid"])
    only_btc = client.get("/funding", params={"symbol": "BTCUSDT"}).json()
    assert only_btc == [p for p in payments if p["symbol"] == "BTCUSDT"]


def test_the_margin_gauges_follow_the_balance(
    client: httpx.Client, server: tuple[str, Container]
) -> None:
    client.post("/engine/stop")
    balance = client.get("/balance").json()
    text = httpx.get(server[0] + "/metrics").text

    def value(name: str) -> float:
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        assert match, name
        return float(match.group(1))

    assert value("lootcapital_funding_paid_total") == pytest.approx(
        float(balance["funding_paid"]), abs=1e-6
    )
    if balance["margin_ratio"] is not None:
        assert value("lootcapital_margin_ratio") == pytest.approx(balance["margin_ratio"])
    assert value("lootcapital_liquidations_total") == 0
