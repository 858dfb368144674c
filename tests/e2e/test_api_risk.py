"""End to end: the risk endpoints on a real uvicorn server replaying the real sample, driven over
HTTP and the WebSocket: the risk report, limit changes (validated, stored with who and when),
a manual halt that refuses API orders with the reason, resume, close-all with its confirmation,
and the risk metrics."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.sync.client import connect

from lootcapital.bootstrap import Container
from tests.e2e.web_fixtures import sample_server

TOKEN = "e2e-risk-token-0123456789"


@dataclass(frozen=True)
class Server:
    url: str
    container: Container


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with sample_server(tmp_path_factory.mktemp("e2e-risk"), TOKEN) as (url, container):
        yield Server(url, container)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as c:
        yield c


def wait_for(predicate, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def test_the_risk_report_shows_states_breakers_limits_and_metrics(client: httpx.Client) -> None:
    response = client.get("/risk")

    assert response.status_code == 200, response.text
    risk = response.json()
    assert risk["status"]["account_state"] == "active"
    assert {s["scope"] for s in risk["status"]["symbol_states"]} == {
        "BTCUSDT", "ETHUSDT", "SOLUSDT",
    }  # fmt: skip
    assert [b["breaker"] for b in risk["breakers"]] == [
        "daily_loss", "consecutive_losses", "volatility_spike", "unusual_volume",
        "max_open_positions", "max_leverage", "manual",
    ]  # fmt: skip
    assert not any(b["enabled"] for b in risk["breakers"][:-1])  # the settings' defaults
    assert risk["limits"]["daily_loss"] == {
        "enabled": False, "limit": "0.05", "close_all": False, "state": "reducing",
    }  # fmt: skip
    metrics = risk["metrics"]
    assert [v["confidence"] for v in metrics["equity_var"]] == [0.95, 0.99]
    assert float(metrics["equity"]) > 0
    assert 0 <= metrics["drawdown"]["current"] <= metrics["drawdown"]["max"] < 1
    assert metrics["margin_ratio"] is None


def test_the_risk_endpoints_need_the_token(server: Server) -> None:
    assert httpx.get(server.url + "/api/v1/risk").status_code == 401
    assert httpx.post(server.url + "/api/v1/risk/halt", json={"reason": "x"}).status_code == 401


def test_limits_change_is_validated_stored_with_who_and_when_and_shown(
    client: httpx.Client,
) -> None:
    changed = client.put(
        "/risk/limits",
        json={"daily_loss": {"enabled": True, "limit": "0.5"}, "max_open_positions": {"limit": 9}},
    )
    out_of_range = client.put("/risk/limits", json={"daily_loss": {"limit": "1.5"}})
    inconsistent = client.put(
        "/risk/limits", json={"sizing": {"risk_fraction": "0.05", "heat_fraction": "0.01"}}
    )
    typo = client.put("/risk/limits", json={"daily_loss": {"limt": "0.05"}})
    shown = client.get("/risk").json()["limits"]

    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["changed_by"] == "api" and isinstance(body["changed_time"], int)
    assert body["daily_loss"]["enabled"] is True and body["daily_loss"]["limit"] == "0.5"
    assert body["max_open_positions"] == {"enabled": False, "limit": 9}
    assert shown == body
    assert (out_of_range.status_code, out_of_range.json()["field"]) == (422, "daily_loss.limit")
    assert (inconsistent.status_code, inconsistent.json()["field"]) == (
        422, "sizing.heat_fraction",
    )  # fmt: skip
    assert "heat_fraction" in inconsistent.json()["detail"]
    assert (typo.status_code, typo.json()["field"]) == (422, "daily_loss.limt")
    client.put("/risk/limits", json={"daily_loss": {"enabled": False}})


def test_a_halt_refuses_api_orders_with_its_reason_until_resumed(
    server: Server, client: httpx.Client
) -> None:
    url = server.url.replace("http://", "ws://") + f"/api/v1/ws?token={TOKEN}"
    with connect(url) as ws:
        try:
            halted = client.post("/risk/halt", json={"reason": "e2e drill"})
            pushed = wait_for(lambda: _risk_message(ws))
            refused = client.post(
                "/orders",
                json={"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.002"},
            )
            stored = client.get(f"/orders/{refused.json()['order_id']}").json()
            events = client.get("/risk").json()["events"]
        finally:
            resumed = client.post("/risk/resume")
    accepted = client.post(
        "/orders", json={"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.002"}
    )

    assert halted.status_code == 200
    assert halted.json()["account_state"] == "halted"
    (hold,) = halted.json()["holds"]
    assert hold["breaker"] == "manual" and "e2e drill" in hold["reason"]
    assert pushed["data"]["to_state"] == "halted" and pushed["data"]["source"] == "manual"
    assert refused.status_code == 409
    assert refused.json()["error"] == "order_rejected"
    assert "trading is halted" in refused.json()["reason"]
    assert stored["status"] == "rejected" and "e2e drill" in stored["reject_reason"]
    assert events[0]["to_state"] == "halted" and events[0]["who"] == "api"
    assert resumed.json()["account_state"] == "active"
    # Passed by the gate now (the venue may still refuse it: the strategy may hold the margin).
    assert accepted.status_code == 201 or "risk gate" not in accepted.json()["detail"]


def _risk_message(ws) -> dict | None:  # type: ignore[no-untyped-def]
    try:
        message = json.loads(ws.recv(timeout=0.2))
    except TimeoutError:
        return None
    return message if message["type"] == "risk" else None


def test_close_all_needs_confirm_and_closes_every_position_reduce_only(
    client: httpx.Client,
) -> None:
    missing = client.post("/positions/close-all", json={})
    declined = client.post("/positions/close-all", json={"confirm": False})
    client.post(
        "/orders", json={"symbol": "ETHUSDT", "side": "buy", "type": "market", "qty": "0.05"}
    )
    client.post("/risk/halt", json={"reason": "hold the book still"})  # no new orders
    try:
        time.sleep(0.5)  # ten bars: the market orders sent before the halt have filled
        held = wait_for(lambda: {p["symbol"] for p in client.get("/positions").json()})
        closed = client.post("/positions/close-all", json={"confirm": True})  # halted or not
    finally:
        client.post("/risk/resume")

    assert (missing.status_code, missing.json()["field"]) == (422, "confirm")
    assert (declined.status_code, declined.json()["field"]) == (422, "confirm")
    assert "confirm must be true" in declined.json()["detail"]
    assert closed.status_code == 200, closed.text
    orders = closed.json()["orders"]
    assert {o["symbol"] for o in orders} == held
    assert all(o["reduce_only"] and o["type"] == "market" for o in orders)
    assert all(o["status"] in ("new", "filled") for o in orders)


def test_metrics_show_trading_states_drawdown_var_and_trips(
    server: Server, client: httpx.Client
) -> None:
    client.post("/risk/halt", json={"reason": "metrics"})
    client.post("/risk/resume")

    text = httpx.get(server.url + "/metrics").text

    def value(pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+-]+)", text)
        assert match, pattern
        return float(match.group(1))

    assert value(r'lootcapital_trading_state\{scope="account",state="active"\}') == 1.0
    assert value(r'lootcapital_trading_state\{scope="account",state="halted"\}') == 0.0
    assert value(r'lootcapital_trading_state\{scope="BTCUSDT",state="active"\}') == 1.0
    assert value(r'lootcapital_circuit_breaker_trips_total\{breaker="manual"\}') >= 1
    assert 0 <= value(r"lootcapital_drawdown_ratio") < 1
