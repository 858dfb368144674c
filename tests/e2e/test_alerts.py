"""Alerts end to end on a real uvicorn paper server: the strategy's trades and a halt by hand
fire alerts that reach a WebSocket client, a real local webhook (Slack's shape) and the alert
log (``GET /api/v1/alerts``, the control centre's panel, ``/metrics``), while an e-mail channel
whose SMTP server is down fails after its retries without holding up the engine."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from lootcapital.bootstrap import Container
from tests.e2e.web_fixtures import sample_server
from tests.integration.alert_receivers import WebhookReceiver, free_port, webhook_receiver

TOKEN = "alerts-e2e-token-0123456789"
WAIT_S = 30.0


@dataclass(frozen=True)
class Server:
    url: str
    container: Container
    hook: WebhookReceiver

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + f"/api/v1/ws?token={TOKEN}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The sample server with a Slack-shaped webhook to a local receiver and e-mail to a port
    where no SMTP server listens (two fast tries)."""
    env = {
        "LOOTCAPITAL_ALERTS__EMAIL__ENABLED": "true",
        "LOOTCAPITAL_ALERTS__EMAIL__HOST": "127.0.0.1",
        "LOOTCAPITAL_ALERTS__EMAIL__PORT": str(free_port()),
        "LOOTCAPITAL_ALERTS__EMAIL__TO": "trader@lootcapital.test",
        "LOOTCAPITAL_ALERTS__EMAIL__RULES": '["risk", "health"]',
        "LOOTCAPITAL_ALERTS__ATTEMPTS": "2",
        "LOOTCAPITAL_ALERTS__BACKOFF_S": "0.01",
        "LOOTCAPITAL_ALERTS__WEBHOOK__FORMAT": "slack",
    }
    with webhook_receiver() as hook, pytest.MonkeyPatch.context() as patch:
        for name, value in {**env, "LOOTCAPITAL_ALERTS__WEBHOOK__URL": hook.url}.items():
            patch.setenv(name, value)
        with sample_server(tmp_path_factory.mktemp("alerts"), TOKEN) as (url, container):
            yield Server(url, container, hook)


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=10) as client:
        yield client


def _until(what: str, read: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (found := read()):
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
        time.sleep(0.1)
    return found


def _alerts(api: httpx.Client, **params: object) -> list[dict[str, Any]]:
    response = api.get("/alerts", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_trade_alert_reaches_a_websocket_client(server: Server) -> None:
    with connect(server.ws_url) as ws:
        deadline = time.monotonic() + WAIT_S
        while True:
            message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if message["type"] == "alert" and message["data"]["rule"] == "trade_executed":
                break

    alert = message["data"]
    assert isinstance(message["ts"], int)
    assert alert["rule"] == "trade_executed" and alert["severity"] == "info"
    assert re.fullmatch(r"(BUY|SELL) [0-9.]+ (BTC|ETH|SOL)USDT at [0-9.]+", alert["title"])
    assert alert["channels"] == ["websocket", "webhook"]  # e-mail takes risk and health only
    assert alert["id"] > 0 and alert["data"]["symbol"] in ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def test_the_alert_log_lists_trade_alerts_with_their_delivery_and_pages(
    server: Server, api: httpx.Client
) -> None:
    delivered = _until(
        "delivered trade alert",
        lambda: [a for a in _alerts(api, rule="trade_executed") if a["delivered"]],
    )
    _until("two alerts", lambda: len(_alerts(api)) >= 2)
    first = api.get("/alerts", params={"limit": 1})
    older = api.get("/alerts", params={"limit": 1, "cursor": first.headers["X-Next-Cursor"]})

    assert set(delivered[-1]["delivered"]) == {"websocket", "webhook"}
    assert first.status_code == older.status_code == 200
    assert first.json()[0]["id"] > older.json()[0]["id"]
    texts = [b["text"] for b in server.hook.bodies]
    assert f"*[INFO] {delivered[-1]['title']}*\n{delivered[-1]['message']}" in texts
    assert api.get("/alerts", params={"rule": "nonsense"}).status_code == 422


@pytest.fixture(scope="module")
def halted(api: httpx.Client) -> tuple[dict[str, Any], int]:
    """Halt and resume by hand; the halt's alert once its delivery is done, and the bars
    processed before the halt."""
    before = api.get("/status").json()["candles_processed"]
    assert api.post("/risk/halt", json={"reason": "alerts e2e"}).status_code == 200
    assert api.post("/risk/resume").status_code == 200
    halts = _until(
        "halt alert with its delivery done",
        lambda: [a for a in _alerts(api, rule="risk") if a["failed"]],
    )
    return halts[0], before


def test_a_halt_is_alerted_and_a_dead_smtp_server_fails_without_stopping_the_engine(
    server: Server, api: httpx.Client, halted: tuple[dict[str, Any], int]
) -> None:
    halt, before = halted

    status = _until(
        "bars processed after the halt",
        lambda: (s := api.get("/status").json())["candles_processed"] > before and s,
    )

    assert halt["title"] == "Trading halted on account (by hand)"
    assert "alerts e2e" in halt["message"]
    assert (halt["channels"], halt["delivered"], halt["failed"]) == (
        ["websocket", "webhook", "email"], ["websocket", "webhook"], ["email"]
    )  # fmt: skip
    assert status["running"] is True
    assert any(b["text"].startswith("*[CRITICAL] Trading halted") for b in server.hook.bodies)


def test_metrics_count_alert_deliveries_by_channel_and_result(
    server: Server, halted: tuple[dict[str, Any], int]
) -> None:
    text = httpx.get(server.url + "/metrics", timeout=10).text

    for channel, result in (("webhook", "delivered"), ("email", "retried"), ("email", "failed")):
        line = f'lootcapital_alerts_total{{channel="{channel}",result="{result}"}} '
        assert re.search(re.escape(line) + "[1-9]", text), (channel, result)


def test_the_control_centre_shows_the_alert_log(server: Server, api: httpx.Client) -> None:
    _until("an alert", lambda: _alerts(api))
    browser = httpx.Client(base_url=server.url, timeout=10)
    assert browser.post("/login", data={"token": TOKEN}).status_code in (200, 303)

    page = browser.get("/control").text
    log = browser.get("/ui/alert_log")

    assert 'hx-get="/ui/alert_log"' in page and 'sse-swap="alert_log"' in page
    assert log.status_code == 200
    assert 'data-rule="trade_executed"' in log.text
    assert 'data-channel="webhook" data-result="delivered"' in log.text
    assert httpx.get(server.url + "/ui/alert_log").status_code == 401
    browser.close()
