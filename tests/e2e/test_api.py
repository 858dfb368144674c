"""End to end: a real uvicorn server on the real sample, driven over HTTP and WebSocket."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from domain.model import OrderType, Side
from lootcapital.bootstrap import Container, bootstrap, build_app
from lootcapital.settings import Settings
from tests.e2e.web_fixtures import live_server, sample_server

TOKEN = "e2e-token-0123456789abcdef"


@dataclass(frozen=True)
class Server:
    url: str
    container: Container

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/api/v1/ws"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with sample_server(tmp_path_factory.mktemp("e2e"), TOKEN) as (url, container):
        yield Server(url, container)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url + "/api/v1",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ) as c:
        yield c


def _receive_until(ws, predicate, timeout: float = 15.0) -> list[dict]:  # type: ignore[no-untyped-def]
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        seen.append(message)
        if predicate(message):
            return seen
    raise AssertionError(f"no matching message in {timeout} s; saw {[m['type'] for m in seen]}")


def test_health_is_open_and_everything_else_needs_the_token(server: Server) -> None:
    assert httpx.get(server.url + "/api/v1/healthz").json() == {"status": "ok"}
    missing = httpx.get(server.url + "/api/v1/status")
    wrong = httpx.get(server.url + "/api/v1/status", headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"


def test_status_reports_the_running_paper_engine(client: httpx.Client) -> None:
    status = client.get("/status").json()

    assert status["mode"] == "paper"
    assert status["running"] is True
    assert status["symbols"] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert status["candles_processed"] > 0
    assert float(status["equity"]) > 0
    assert status["clock_time"] >= 1756771200000  # the sample starts 2025-09-02


def test_market_order_fills_and_is_pushed_over_the_websocket(
    server: Server, client: httpx.Client
) -> None:
    # The strategy puts all its equity up as margin: with the engine paused, the order goes
    # against its BTCUSDT position (an order that only reduces needs no margin), or buys on the
    # third of the equity a flat symbol leaves.
    assert client.post("/engine/stop").status_code == 200
    held = {p["symbol"]: Decimal(p["qty"]) for p in client.get("/positions").json()}
    side = "sell" if held.get("BTCUSDT", Decimal(0)) > 0 else "buy"
    with connect(f"{server.ws_url}?token={TOKEN}") as ws:
        created = client.post(
            "/orders",
            json={
                "symbol": "BTCUSDT",
                "side": side,
                "type": "market",
                "qty": "0.002",
                "client_order_id": "e2e-1",
            },
        )
        assert created.status_code == 201, created.text
        assert client.post("/engine/start").status_code == 200
        order = created.json()
        seen = _receive_until(
            ws, lambda m: m["type"] == "fill" and m["data"]["order_id"] == order["id"]
        )

    fill = seen[-1]["data"]
    stored = client.get(f"/orders/{order['id']}").json()
    assert order["status"] == "new"
    assert order["client_order_id"] == "e2e-1"
    assert {"candle", "order", "fill"} <= {m["type"] for m in seen}
    assert all(isinstance(m["ts"], int) for m in seen)
    assert stored["status"] == "filled"
    assert stored["avg_fill_price"] == fill["price"]
    assert fill["qty"] == "0.002"
    assert float(fill["fee"]) == pytest.approx(0.002 * float(fill["price"]) * 0.0005)


def test_metrics_move_with_candles_orders_and_fills(server: Server, client: httpx.Client) -> None:
    client.post(
        "/orders", json={"symbol": "ETHUSDT", "side": "buy", "type": "market", "qty": "0.05"}
    )
    time.sleep(1.0)
    text = httpx.get(server.url + "/metrics").text

    def value(pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)", text)
        assert match, pattern
        return float(match.group(1))

    assert value(r'lootcapital_candles_processed_total\{symbol="ETHUSDT",timeframe="5m"\}') > 0
    assert value(r'lootcapital_fills_total\{side="buy",symbol="ETHUSDT"\}') >= 1
    assert value(r"lootcapital_equity") > 0
    assert value(r"lootcapital_bar_processing_seconds_count") > 0
    assert 'route="/api/v1/orders"' in text
    assert "lootcapital_ws_clients" in text


def test_bad_orders_get_clear_errors(client: httpx.Client) -> None:
    negative = client.post(
        "/orders", json={"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "-1"}
    )
    no_price = client.post(
        "/orders", json={"symbol": "BTCUSDT", "side": "buy", "type": "limit", "qty": "0.01"}
    )
    unknown = client.post(
        "/orders", json={"symbol": "DOGEUSDT", "side": "buy", "type": "market", "qty": "10"}
    )
    off_step = client.post(
        "/orders", json={"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.0015"}
    )
    too_big = client.post(
        "/orders", json={"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "100"}
    )

    assert negative.status_code == 422
    assert negative.json()["field"] == "qty"
    assert no_price.status_code == 422
    assert no_price.json()["field"] == "price"
    assert no_price.json()["detail"] == "price: price is required for a limit order"
    assert unknown.status_code == 404
    assert "DOGEUSDT" in unknown.json()["detail"]
    assert off_step.status_code == 400
    assert off_step.json() == {
        "error": "invalid_order",
        "detail": "qty must be a multiple of 0.001, was 0.0015",
        "field": "qty",
    }
    assert too_big.status_code == 409
    refused = too_big.json()
    assert refused["error"] == "order_rejected"
    assert "initial margin" in refused["reason"] and "would exceed equity" in refused["reason"]
    stored = client.get(f"/orders/{refused['order_id']}").json()
    assert stored["status"] == "rejected"
    assert stored["reject_reason"] == refused["reason"]
    assert stored["origin"] == "api"


def test_limit_order_can_be_canceled_once(client: httpx.Client) -> None:
    last = client.get("/candles", params={"symbol": "BTCUSDT", "limit": 1}).json()[0]
    far_below = f"{round(float(last['close']) * 0.5, 1)}"
    order = client.post(
        "/orders",
        json={
            "symbol": "BTCUSDT",
            "side": "buy",
            "type": "limit",
            "qty": "0.002",
            "price": far_below,
        },
    ).json()

    first = client.delete(f"/orders/{order['id']}")
    second = client.delete(f"/orders/{order['id']}")
    missing = client.delete("/orders/does-not-exist")

    assert first.json()["status"] == "canceled"
    assert second.status_code == 409
    assert missing.status_code == 404


def test_candles_positions_trades_equity_endpoints(client: httpx.Client) -> None:
    hourly = client.get("/candles", params={"symbol": "SOLUSDT", "timeframe": "1h", "limit": 3})
    positions = client.get("/positions").json()
    trades = client.get("/trades").json()
    equity = client.get("/equity").json()

    bars = hourly.json()
    assert hourly.status_code == 200
    assert all(b["open_time"] % 3_600_000 == 0 for b in bars)
    assert all(Decimal(b["low"]) <= min(Decimal(b["open"]), Decimal(b["close"])) for b in bars)
    assert client.get("/candles", params={"symbol": "NOPE"}).status_code == 404
    assert isinstance(positions, list)
    assert isinstance(trades, list)
    assert len(equity) > 0
    assert equity == sorted(equity, key=lambda p: p["time"])


def test_websocket_refuses_a_missing_or_wrong_token_as_rest_does(server: Server) -> None:
    with pytest.raises(InvalidStatus) as missing, connect(server.ws_url):
        pass
    with pytest.raises(InvalidStatus) as wrong, connect(f"{server.ws_url}?token=nope"):
        pass
    rest = httpx.get(server.url + "/api/v1/status")

    assert missing.value.response.status_code == rest.status_code == 401
    assert wrong.value.response.status_code == 401
    assert json.loads(missing.value.response.body)["error"] == rest.json()["error"]
    assert wrong.value.response.headers["WWW-Authenticate"] == "Bearer"


def test_engine_stop_and_start(client: httpx.Client) -> None:
    stopped = client.post("/engine/stop").json()
    again = client.post("/engine/start")
    twice = client.post("/engine/start")

    assert stopped["running"] is False
    assert stopped["stopped_reason"] == "stopped by user"
    assert again.json()["running"] is True
    assert twice.status_code == 409


def test_page_renders(server: Server) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200
    assert "LootCapital" in page.text


def test_openapi_docs_are_served(server: Server) -> None:
    assert httpx.get(server.url + "/docs").status_code == 200
    assert "/api/v1/orders" in httpx.get(server.url + "/openapi.json").json()["paths"]


def test_websocket_accepts_the_panel_session_cookie(server: Server) -> None:
    login = httpx.post(server.url + "/login", data={"token": TOKEN})
    cookie = login.cookies.get("lootcapital_session")
    assert cookie

    with connect(
        server.ws_url, additional_headers={"Cookie": f"lootcapital_session={cookie}"}
    ) as ws:
        message = json.loads(ws.recv(timeout=10))

    assert message["type"] in {"candle", "signal", "order", "fill", "position", "equity", "alert"}
    assert cookie != TOKEN


@pytest.fixture(scope="module")
def idle_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client of a server whose engine never starts: a flat account, so an order's
    acceptance depends on nothing the strategy does meanwhile."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("idle"), api_token=TOKEN, autostart=False)
    with (
        live_server(build_app(bootstrap(settings))) as url,
        httpx.Client(
            base_url=url + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ) as c,
    ):
        yield c


def test_a_client_order_id_places_one_order_and_a_repeat_gets_it_back(
    idle_client: httpx.Client,
) -> None:
    client = idle_client
    body = {
        "symbol": "SOLUSDT",
        "side": "buy",
        "type": "market",
        "qty": "1",
        "client_order_id": "once-only",
    }
    first = client.post("/orders", json=body)
    again = client.post("/orders", json=body)
    other = client.post("/orders", json={**body, "qty": "2"})

    assert first.status_code == 201, first.text
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] == "once-only"
    assert again.json()["created_time"] == first.json()["created_time"]
    assert other.status_code == 409
    assert other.json() == {
        "error": "duplicate_order",
        "detail": "client_order_id 'once-only' is already used by an order with other terms: "
        "qty 2 (the order has 1)",
        "field": "client_order_id",
    }


def _read_all(client: httpx.Client, path: str, limit: int) -> tuple[list[dict], int]:
    """Every item of a paginated listing, following ``X-Next-Cursor``; and the page count."""
    items: list[dict] = []
    params: dict[str, object] = {"limit": limit}
    pages = 0
    while True:
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text
        items += response.json()
        pages += 1
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            return items, pages
        params = {"limit": limit, "cursor": cursor}


def test_cursor_pagination_reads_the_whole_history_once_in_order(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while len(client.get("/signals", params={"limit": 1000}).json()) < 12:
        assert time.monotonic() < deadline, "the engine made too few signals"
        time.sleep(0.2)
    client.post("/engine/stop")
    whole = client.get("/signals", params={"limit": 1000}).json()

    paged, pages = _read_all(client, "/signals", limit=5)

    assert pages >= 3
    assert paged == whole
    keys = [(s["time"], s["symbol"]) for s in paged]
    assert keys == sorted(keys, reverse=True)
    assert client.post("/engine/start").status_code == 200


def test_a_malformed_cursor_is_a_400_naming_the_cursor(client: httpx.Client) -> None:
    response = client.get("/orders", params={"cursor": "not-a-cursor"})

    assert response.status_code == 400
    assert response.json()["field"] == "cursor"


def test_an_order_is_found_by_id_after_a_restart(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, api_token=TOKEN, speed=6000.0, autostart=False,
        strategy="sma_cross", strategy_params={"fast": 5, "slow": 20},
    )  # fmt: skip
    first = bootstrap(settings)
    placed = first.service.desk.place_order(
        symbol="BTCUSDT", side=Side.BUY, type=OrderType.LIMIT, qty=Decimal("0.020"),
        price=Decimal("10000.0"), client_order_id="kept-across-restarts",
    )  # fmt: skip
    restarted = bootstrap(settings)
    with live_server(build_app(restarted)) as url:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        one = httpx.get(f"{url}/api/v1/orders/{placed.id}", headers=auth)
        listed = httpx.get(f"{url}/api/v1/orders", headers=auth).json()

    assert one.status_code == 200
    assert one.json()["status"] == "new"
    assert [o["id"] for o in listed] == [placed.id]
