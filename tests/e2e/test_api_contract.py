"""The API contract as a bot author meets it: numbers at the instrument's precision, one set of
side names, ccxt symbols, errors that name the field, refused unknown parameters, time filters,
and a WebSocket that tells the whole story. A real uvicorn server on the shipped sample."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from websockets.sync.client import connect

from api.numbers import decimals
from lootcapital.bootstrap import Container, bootstrap, build_app
from lootcapital.settings import Settings
from lootcapital.simulation import candle_store
from tests.e2e.web_fixtures import live_server, sample_server

TOKEN = "contract-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass(frozen=True)
class Server:
    url: str
    container: Container

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + f"/api/v1/ws?token={TOKEN}"

    def places(self, symbol: str) -> tuple[int, int]:
        """(price decimals, qty decimals) of ``symbol``'s instrument."""
        instrument = self.container.service.engine.instruments[symbol]
        return decimals(instrument.tick_size), decimals(instrument.step_size)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with sample_server(tmp_path_factory.mktemp("contract"), TOKEN) as (url, container):
        yield Server(url, container)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", headers=AUTH, timeout=10) as c:
        yield c


def _places(text: str) -> int:
    """Decimal places written in ``text`` (a decimal string)."""
    assert re.fullmatch(r"-?\d+(\.\d+)?", text), text
    return len(text.split(".")[1]) if "." in text else 0


def _wait_for_trades(client: httpx.Client, count: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while True:
        trades = client.get("/trades", params={"limit": 1000}).json()
        if len(trades) >= count:
            return trades
        assert time.monotonic() < deadline, "the strategy closed too few trades"
        time.sleep(0.2)


def _receive(ws, predicate, timeout: float = 15.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if predicate(message):
            return message
    raise AssertionError(f"no matching message in {timeout} s")


def test_money_prices_and_quantities_are_strings_at_the_instruments_precision(
    server: Server, client: httpx.Client
) -> None:
    trades = _wait_for_trades(client, 3)
    status = client.get("/status").json()
    candles = client.get("/candles", params={"symbol": "BTCUSDT", "limit": 50}).json()
    fills = client.get("/fills", params={"limit": 50}).json()
    money = decimals(server.container.service.engine.ledger.account.money)

    assert _places(status["equity"]) == _places(status["cash"]) == money
    assert status["currency"] == "USDT"
    price_places, qty_places = server.places("BTCUSDT")
    for bar in candles:
        assert {_places(bar[k]) for k in ("open", "high", "low", "close")} == {price_places}
        assert _places(bar["volume"]) == qty_places
        assert bar["close_time"] - bar["open_time"] == 300_000
    for trade in trades:
        price, qty = server.places(trade["symbol"])
        assert _places(trade["entry_price"]) == _places(trade["exit_price"]) == price
        assert _places(trade["qty"]) == qty
        assert _places(trade["pnl"]) == _places(trade["fees"]) == money
        assert trade["fee_currency"] == "USDT"
    assert fills
    for fill in fills:
        assert _places(fill["price"]) == server.places(fill["symbol"])[0]
        assert _places(fill["fee"]) == money
        assert fill["fee_currency"] == "USDT"


def test_orders_and_fills_say_buy_or_sell_positions_and_trades_long_or_short(
    client: httpx.Client,
) -> None:
    trades = _wait_for_trades(client, 3)
    orders = client.get("/orders", params={"limit": 200}).json()
    fills = client.get("/fills", params={"limit": 200}).json()
    positions = client.get("/positions").json()

    assert {t["side"] for t in trades} <= {"long", "short"}
    assert {o["side"] for o in orders} <= {"buy", "sell"}
    assert {f["side"] for f in fills} <= {"buy", "sell"}
    assert {p["side"] for p in positions} <= {"long", "short"}
    assert {o["origin"] for o in orders} == {"strategy"}
    for position in positions:
        assert (position["side"] == "long") == (Decimal(position["qty"]) > 0)


def test_ccxt_unified_symbols_are_accepted(client: httpx.Client) -> None:
    venue = client.get("/candles", params={"symbol": "BTCUSDT", "limit": 3}).json()
    end = venue[-1]["open_time"]
    unified = client.get(
        "/candles", params={"symbol": "BTC/USDT:USDT", "limit": 3, "end": end}
    ).json()
    order = client.post(
        "/orders",
        json={"symbol": "ETH/USDT:USDT", "side": "buy", "type": "limit", "qty": "0.300",
              "price": "100.00", "client_order_id": "ccxt-symbol"},
    )  # fmt: skip
    inverse = client.get("/candles", params={"symbol": "BTC/USD:BTC"})

    assert unified == venue
    assert order.status_code == 201, order.text
    assert order.json()["symbol"] == "ETHUSDT"
    listed = client.get("/orders", params={"symbol": "ETH/USDT:USDT", "limit": 1000}).json()
    assert "ccxt-symbol" in {o["id"] for o in listed}
    assert {o["symbol"] for o in listed} == {"ETHUSDT"}
    assert inverse.status_code == 422
    assert inverse.json()["field"] == "symbol"


@pytest.mark.parametrize(
    ("send", "field", "words"),
    [
        (lambda c: c.post("/orders", json={"symbol": "BTCUSDT", "side": "buy", "type": "limit",
                                           "qty": "0.01"}), "price", "price is required"),
        (lambda c: c.post("/orders", json={"symbol": "BTCUSDT", "side": "buy", "type": "market",
                                           "qty": "0.01", "price": "5"}), "price", "only allowed"),
        (lambda c: c.post("/orders", content=b'{"symbol": "BTCUSDT", "side": ',
                          headers={"Content-Type": "application/json"}), "body", "malformed JSON"),
        (lambda c: c.get("/candles", params={"symbol": "BTCUSDT", "timeframe": "7x"}),
         "timeframe", "timeframe must look like"),
        (lambda c: c.get("/candles", params={"symbol": "BTCUSDT", "timeframe": "7m"}),
         "timeframe", "not a multiple"),
        (lambda c: c.get("/orders", params={"stauts": "open"}), "stauts", "unknown query"),
        (lambda c: c.get("/orders", params={"status": "opened"}), "status.0", "'open'"),
        (lambda c: c.get("/trades", params={"start": 10, "end": 5}), "end", "before start"),
    ],
)  # fmt: skip
def test_validation_errors_name_the_field(client: httpx.Client, send, field, words) -> None:  # type: ignore[no-untyped-def]
    response = send(client)

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["field"] == field
    assert words in body["detail"]
    assert body["errors"][0]["field"] == field


def test_orders_filter_by_status_symbol_and_time(client: httpx.Client) -> None:
    _wait_for_trades(client, 2)
    body = {"symbol": "SOLUSDT", "side": "buy", "type": "limit", "qty": "30", "price": "1.000"}
    resting = client.post("/orders", json=body | {"client_order_id": "filter-open"}).json()
    canceled = client.post("/orders", json=body | {"client_order_id": "filter-cancel"}).json()
    client.delete(f"/orders/{canceled['id']}")

    everything = client.get("/orders", params={"limit": 1000}).json()
    live = client.get("/orders", params={"status": "open", "limit": 1000}).json()
    filled = client.get("/orders", params={"status": "closed", "limit": 1000}).json()
    gone = client.get("/orders", params={"status": "canceled", "symbol": "SOLUSDT"}).json()
    first = min(o["created_time"] for o in everything)
    early = client.get("/orders", params={"start": first, "end": first, "limit": 1000}).json()

    assert resting["id"] in {o["id"] for o in live}
    assert all(o["status"] in {"pending_new", "new", "partially_filled", "pending_cancel"}
               for o in live)  # fmt: skip
    assert filled and {o["status"] for o in filled} == {"filled"}
    assert [o["id"] for o in gone] == ["filter-cancel"]
    assert early and all(o["created_time"] == first for o in early)
    assert len(early) < len(everything)


def test_listings_filter_by_start_and_end(client: httpx.Client) -> None:
    trades = _wait_for_trades(client, 4)
    cut = sorted(t["exit_time"] for t in trades)[len(trades) // 2]
    last = max(t["exit_time"] for t in trades)  # the engine goes on: bound every read

    late_trades = client.get("/trades", params={"start": cut, "end": last}).json()
    early_trades = client.get("/trades", params={"end": cut - 1, "limit": 1000}).json()
    fills = client.get("/fills", params={"start": cut, "limit": 1000}).json()
    signals = client.get("/signals", params={"end": cut, "limit": 1000}).json()
    equity = client.get("/equity", params={"start": cut, "end": cut + 3_600_000}).json()

    assert len(late_trades) + len(early_trades) == len(trades)
    assert late_trades and all(t["exit_time"] >= cut for t in late_trades)
    assert fills and all(f["time"] >= cut for f in fills)
    assert signals and all(s["time"] <= cut for s in signals)
    assert equity and all(cut <= p["time"] <= cut + 3_600_000 for p in equity)
    assert [p["time"] for p in equity] == sorted(p["time"] for p in equity)


def test_candles_and_equity_read_backwards_by_cursor(client: httpx.Client) -> None:
    first = client.get("/candles", params={"symbol": "BTCUSDT", "timeframe": "1h", "limit": 4})
    older = client.get(
        "/candles",
        params={"symbol": "BTCUSDT", "timeframe": "1h", "limit": 4,
                "cursor": first.headers["X-Next-Cursor"]},
    )  # fmt: skip
    end = first.json()[-1]["open_time"]  # the engine goes on: read the same range again
    both = client.get(
        "/candles", params={"symbol": "BTCUSDT", "timeframe": "1h", "limit": 8, "end": end}
    )
    newest = client.get("/equity", params={"limit": 5})
    before = client.get("/equity", params={"limit": 5, "cursor": newest.headers["X-Next-Cursor"]})

    assert [b["open_time"] for b in older.json() + first.json()] == [
        b["open_time"] for b in both.json()
    ]
    assert older.json()[-1]["open_time"] + 3_600_000 == first.json()[0]["open_time"]
    assert before.json()[-1]["time"] < newest.json()[0]["time"]


def test_an_order_is_found_by_its_client_order_id(client: httpx.Client) -> None:
    placed = client.post(
        "/orders",
        json={"symbol": "BTCUSDT", "side": "buy", "type": "limit", "qty": "0.200",
              "price": "1000.0", "client_order_id": "bot-42"},
    )  # fmt: skip
    found = client.get("/orders/by-client-id/bot-42")
    missing = client.get("/orders/by-client-id/nobody")

    assert placed.status_code == 201
    assert found.status_code == 200
    assert found.json()["client_order_id"] == "bot-42"
    assert found.json()["price"] == "1000.0"
    assert missing.status_code == 404
    assert missing.json()["error"] == "order_not_found"


def test_websocket_positions_carry_mark_and_unrealized_pnl(
    server: Server, client: httpx.Client
) -> None:
    with connect(server.ws_url) as ws:
        client.post(
            "/orders",
            json={"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.003",
                  "client_order_id": "ws-position"},
        )  # fmt: skip
        message = _receive(
            ws, lambda m: m["type"] == "position" and m["data"]["symbol"] == "BTCUSDT"
        )

    data = message["data"]
    assert data["mark_price"] is not None
    qty = Decimal(data["qty"])
    expected = (Decimal(data["mark_price"]) - Decimal(data["entry_price"])) * qty
    # The entry shown is the average entry rounded to the tick: half a tick per unit apart.
    tick = server.container.service.engine.instruments["BTCUSDT"].tick_size
    assert abs(Decimal(data["unrealized_pnl"]) - expected) <= tick / 2 * abs(qty)
    assert data["side"] in {"long", "short", "flat"}


def test_websocket_pushes_the_status_on_stop_and_start(
    server: Server, client: httpx.Client
) -> None:
    with connect(server.ws_url) as ws:
        client.post("/engine/stop")
        stopped = _receive(ws, lambda m: m["type"] == "status")
        client.post("/engine/start")
        started = _receive(ws, lambda m: m["type"] == "status")
    rest = client.get("/status").json()

    assert stopped["data"].keys() == rest.keys()
    assert stopped["data"]["running"] is False
    assert stopped["data"]["stopped_reason"] == "stopped by user"
    assert started["data"]["running"] is True
    assert started["data"]["stopped_reason"] is None


def test_openapi_declares_typed_bodies_and_error_statuses(server: Server) -> None:
    schema = httpx.get(server.url + "/openapi.json").json()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            ok = next(c for c in operation["responses"] if c.startswith("2"))
            content = operation["responses"][ok]["content"]["application/json"]["schema"]
            assert content != {}, f"{method} {path} answers an untyped body"
            assert "422" in operation["responses"], f"{method} {path}"
            if path != "/api/v1/healthz":
                error = operation["responses"]["401"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorOut"}


def test_a_replay_counts_the_whole_run_and_start_at_the_end_is_a_409(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        data_dir=tmp_path, api_token=TOKEN, speed=10_000_000, autostart=False,
        strategy="sma_cross", strategy_params={"fast": 5, "slow": 20}, history_days=0,
        symbols=["BTCUSDT"],
    )  # fmt: skip
    first = bootstrap(settings)
    first.service.start()
    while first.service.status().candles_processed < 1_000:
        time.sleep(0.01)
    first.service.stop()
    processed = first.service.status().candles_processed
    restarted = bootstrap(settings)
    store = candle_store(settings)
    total = sum(len(store.read(settings.exchange, s, settings.timeframe)) for s in settings.symbols)

    assert restarted.service.status().candles_processed == processed
    with (
        live_server(build_app(restarted)) as url,
        connect(url.replace("http://", "ws://") + f"/api/v1/ws?token={TOKEN}") as ws,
    ):
        assert httpx.post(f"{url}/api/v1/engine/start", headers=AUTH).status_code == 200
        ended = _receive(
            ws, lambda m: m["type"] == "status" and not m["data"]["running"], timeout=180
        )
        again = httpx.post(f"{url}/api/v1/engine/start", headers=AUTH)
        status = httpx.get(f"{url}/api/v1/status", headers=AUTH).json()
        with httpx.Client(base_url=url) as browser:
            browser.post("/login", data={"token": TOKEN})
            panel = browser.post("/ui/engine/start")

    assert ended["data"]["stopped_reason"] == "end of data"
    assert again.status_code == 409
    assert again.json()["error"] == "end_of_data"
    assert "end of data" in panel.text
    assert "Engine started." not in panel.text
    assert status["running"] is False
    assert status["stopped_reason"] == "end of data"
    assert status["candles_processed"] == ended["data"]["candles_processed"]
    assert status["candles_processed"] == total > processed
    served = bootstrap(settings.model_copy(update={"autostart": True}))
    with live_server(build_app(served)) as url:  # a finished replay still serves its results
        after = httpx.get(f"{url}/api/v1/status", headers=AUTH).json()
    assert after["running"] is False
    assert after["candles_processed"] == total
