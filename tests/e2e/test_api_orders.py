"""End to end: every order type, brackets, amendments and idempotent client ids over HTTP.

A real uvicorn server on the shipped sample, whose strategy (``sma_cross`` with SMAs longer than
the sample) never trades: the orders placed here are the only ones. The engine replays some bars
to have prices, then holds still, except where a test runs it to see orders fill.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from lootcapital.bootstrap import bootstrap, build_app
from lootcapital.settings import Settings
from tests.e2e.web_fixtures import live_server

TOKEN = "orders-e2e-token-0123456789"
BTC = "BTCUSDT"
WAIT_S = 30.0


@dataclass(frozen=True)
class Desk:
    """The server's API and the last close of BTCUSDT when the engine stopped."""

    client: httpx.Client
    mark: Decimal

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.client.post(path, json=body)

    def run_until(self, what: str, done: Any) -> None:
        """Run the engine until ``done()`` is true, then stop it."""
        assert self.client.post("/engine/start").status_code == 200
        deadline = time.monotonic() + WAIT_S
        try:
            while not done():
                assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
                time.sleep(0.05)
        finally:
            self.client.post("/engine/stop")


def _quiet_server(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        api_token=TOKEN,
        speed=6000.0,  # 20 bar times a second
        strategy="sma_cross",
        strategy_params={"fast": 20_000, "slow": 40_000},  # longer than the sample: no trade
        autostart=False,
    )


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    settings = _quiet_server(tmp_path_factory.mktemp("orders"))
    with (
        live_server(build_app(bootstrap(settings))) as url,
        httpx.Client(
            base_url=url + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ) as client,
    ):
        client.post("/engine/start")
        deadline = time.monotonic() + WAIT_S
        while client.get("/status").json()["candles_processed"] < 3 * 20:
            assert time.monotonic() < deadline, "the engine processed too few bars"
            time.sleep(0.05)
        client.post("/engine/stop")
        last = client.get("/candles", params={"symbol": BTC, "limit": 1}).json()[-1]
        yield Desk(client, Decimal(last["close"]))


def _order(**terms: object) -> dict[str, object]:
    return {"symbol": BTC, "side": "buy", "qty": "0.010", **terms}


# -- order types ----------------------------------------------------------------------------
def test_every_order_type_is_placed_and_read_back_with_its_terms(desk: Desk) -> None:
    far_below, far_above = desk.mark - 20_000, desk.mark + 20_000
    bodies = {
        "e2e-limit-gtc": _order(type="limit", price=str(far_below)),
        "e2e-limit-post": _order(type="limit", price=str(far_below), time_in_force="post_only"),
        "e2e-stop": _order(type="stop", stop_price=str(far_above), link_id="e2e-pair"),
        "e2e-tp": _order(
            type="take_profit", side="sell", stop_price=str(far_above), link_id="e2e-pair"
        ),
        "e2e-trail": _order(type="trailing_stop", side="sell", trailing_offset="250.5"),
    }

    placed = {cid: desk.post("/orders", {**b, "client_order_id": cid}) for cid, b in bodies.items()}

    assert {cid: r.status_code for cid, r in placed.items()} == dict.fromkeys(bodies, 201)
    read = {cid: desk.client.get(f"/orders/{cid}").json() for cid in bodies}
    assert {cid: o["type"] for cid, o in read.items()} == {
        "e2e-limit-gtc": "limit",
        "e2e-limit-post": "limit",
        "e2e-stop": "stop",
        "e2e-tp": "take_profit",
        "e2e-trail": "trailing_stop",
    }
    assert all(o["status"] == "new" and o["origin"] == "api" for o in read.values())
    assert read["e2e-limit-gtc"]["time_in_force"] == "gtc"
    assert read["e2e-limit-post"]["time_in_force"] == "post_only"
    assert Decimal(read["e2e-limit-post"]["price"]) == far_below
    assert Decimal(read["e2e-stop"]["stop_price"]) == far_above
    assert read["e2e-stop"]["link_id"] == read["e2e-tp"]["link_id"] == "e2e-pair"
    assert read["e2e-trail"]["trailing_offset"] == "250.5"
    assert Decimal(read["e2e-trail"]["stop_price"]) == desk.mark - Decimal("250.5")
    assert read["e2e-limit-gtc"]["reduce_only"] is False
    for cid in bodies:
        desk.client.delete(f"/orders/{cid}")


@pytest.mark.parametrize(
    ("terms", "field", "message"),
    [
        ({"type": "market", "time_in_force": "post_only"}, "time_in_force",
         "time_in_force post_only is only allowed on limit orders, not market"),
        ({"type": "stop", "stop_price": "1", "time_in_force": "ioc"}, "time_in_force",
         "time_in_force ioc is only allowed on market or limit orders, not stop"),
        ({"type": "take_profit", "stop_price": "1", "time_in_force": "fok"}, "time_in_force",
         "time_in_force fok is only allowed on market or limit orders, not take_profit"),
        ({"type": "trailing_stop"}, "trailing_offset",
         "trailing_offset is required for a trailing_stop order"),
        ({"type": "limit", "price": "1", "trailing_offset": "5"}, "trailing_offset",
         "trailing_offset is only allowed on trailing_stop orders, not limit"),
        ({"type": "stop"}, "stop_price", "stop_price is required for a stop order"),
        ({"type": "take_profit"}, "stop_price", "stop_price is required for a take_profit order"),
        ({"type": "limit", "price": "1", "stop_price": "1"}, "stop_price",
         "stop_price is only allowed on stop, take_profit or trailing_stop orders, not limit"),
        ({"type": "trailing_stop", "trailing_offset": "5", "price": "1"}, "price",
         "price is only allowed on limit orders, not trailing_stop"),
        ({"type": "market", "link_id": ""}, "link_id", "String should have at least 1 character"),
        ({"type": "iceberg"}, "type", None),
    ],
)  # fmt: skip
def test_terms_an_order_type_does_not_take_are_422_naming_the_field(
    desk: Desk, terms: dict[str, str], field: str, message: str | None
) -> None:
    response = desk.post("/orders", _order(**terms))

    body = response.json()
    assert response.status_code == 422
    assert body["field"] == field
    if message is not None:
        assert body["detail"] == f"{field}: {message}"


def test_a_reduce_only_order_on_a_flat_position_is_400_naming_reduce_only(desk: Desk) -> None:
    response = desk.post("/orders", _order(type="market", side="sell", reduce_only=True))

    assert response.status_code == 400
    assert response.json()["field"] == "reduce_only"


def test_a_ccxt_symbol_is_read_in_the_venue_spelling(desk: Desk) -> None:
    response = desk.post(
        "/orders",
        {**_order(type="limit", price=str(desk.mark - 20_000)), "symbol": "BTC/USDT:USDT"},
    )

    assert response.status_code == 201
    assert response.json()["symbol"] == BTC
    desk.client.delete(f"/orders/{response.json()['id']}")


# -- idempotency ----------------------------------------------------------------------------
def test_a_repeated_client_order_id_answers_200_with_the_first_order(desk: Desk) -> None:
    body = _order(type="limit", price=str(desk.mark - 20_000), client_order_id="e2e-again")

    first = desk.post("/orders", body)
    again = desk.post("/orders", body)
    other = desk.post("/orders", {**body, "price": str(desk.mark - 19_000)})

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    assert other.json()["error"] == "duplicate_order"
    assert other.json()["field"] == "client_order_id"
    listed = desk.client.get("/orders", params={"limit": 1000}).json()
    assert [o["id"] for o in listed].count("e2e-again") == 1
    desk.client.delete("/orders/e2e-again")


# -- amendments -----------------------------------------------------------------------------
def test_a_resting_limit_order_is_amended(desk: Desk) -> None:
    desk.post(
        "/orders", _order(type="limit", price=str(desk.mark - 20_000), client_order_id="e2e-m")
    )
    new_price = desk.mark - 15_000

    moved = desk.client.patch("/orders/e2e-m", json={"price": str(new_price), "qty": "0.020"})
    read = desk.client.get("/orders/e2e-m").json()

    assert moved.status_code == 200, moved.text
    assert Decimal(moved.json()["price"]) == new_price
    assert moved.json()["qty"] == "0.020"
    assert read == moved.json()
    desk.client.delete("/orders/e2e-m")


def test_amendments_that_cannot_apply_get_clear_errors(desk: Desk) -> None:
    desk.post(
        "/orders", _order(type="limit", price=str(desk.mark - 20_000), client_order_id="e2e-x")
    )

    off_tick = desk.client.patch("/orders/e2e-x", json={"price": "50000.05"})
    no_stop = desk.client.patch("/orders/e2e-x", json={"stop_price": "50000"})
    empty = desk.client.patch("/orders/e2e-x", json={})
    extra = desk.client.patch("/orders/e2e-x", json={"side": "sell"})
    unknown = desk.client.patch("/orders/no-such-order", json={"price": "50000"})
    desk.client.delete("/orders/e2e-x")
    final = desk.client.patch("/orders/e2e-x", json={"price": "50000"})

    assert (off_tick.status_code, off_tick.json()["field"]) == (400, "price")
    assert off_tick.json()["detail"] == "price must be a multiple of 0.10, was 50000.05"
    assert (no_stop.status_code, no_stop.json()["field"]) == (400, "stop_price")
    assert (empty.status_code, empty.json()["detail"]) == (
        422, "body: give at least one of qty, price, stop_price",
    )  # fmt: skip
    assert (extra.status_code, extra.json()["field"]) == (422, "side")
    assert unknown.status_code == 404
    assert final.status_code == 409
    assert final.json()["detail"] == (
        "order e2e-x is already canceled: it can no longer be modified"
    )


# -- brackets -------------------------------------------------------------------------------
def test_bracket_exits_on_the_wrong_side_are_400_naming_the_exit(desk: Desk) -> None:
    body = {
        "symbol": BTC, "side": "buy", "type": "limit", "qty": "0.010",
        "price": str(desk.mark - 1_000),
        "stop_loss": {"stop_price": str(desk.mark - 500)},  # above the limit price
        "take_profit": {"stop_price": str(desk.mark + 1_000)},
    }  # fmt: skip

    wrong = desk.post("/orders/bracket", body)
    no_price = desk.post("/orders/bracket", {**body, "price": None})
    no_exit = desk.post("/orders/bracket", {k: v for k, v in body.items() if k != "take_profit"})

    assert wrong.status_code == 400
    assert wrong.json()["field"] == "stop_loss.stop_price"
    assert (no_price.status_code, no_price.json()["field"]) == (422, "price")
    assert (no_exit.status_code, no_exit.json()["field"]) == (422, "take_profit")


def test_a_bracket_fills_and_its_stop_cancels_its_take_profit(desk: Desk) -> None:
    mark = desk.mark
    body = {
        "symbol": BTC, "side": "buy", "type": "market", "qty": "0.010",
        "stop_loss": {"stop_price": str(mark - 40)},
        "take_profit": {"stop_price": str(mark + 20_000)},
        "client_order_id": "e2e-bracket",
    }  # fmt: skip

    placed = desk.post("/orders/bracket", body)
    again = desk.post("/orders/bracket", body)

    def bracket() -> dict[str, Any]:
        return desk.client.get("/orders/bracket/e2e-bracket").json()

    def stopped_out() -> bool:
        stop = bracket()["stop_loss"]
        return stop is not None and stop["status"] == "filled"

    desk.run_until("stop-loss fill", stopped_out)
    done = bracket()
    entry, stop, target = done["entry"], done["stop_loss"], done["take_profit"]
    fill = Decimal(entry["avg_fill_price"])
    assert (placed.status_code, again.status_code) == (201, 200)
    assert placed.json()["entry"]["status"] == "new"
    assert placed.json()["stop_loss"] is None and placed.json()["take_profit"] is None
    assert entry["status"] == "filled"
    assert Decimal(stop["stop_price"]) == fill - 40
    assert Decimal(target["stop_price"]) == fill + 20_000
    assert stop["link_id"] == target["link_id"] == "e2e-bracket"
    assert stop["reduce_only"] and target["reduce_only"]
    assert target["status"] == "canceled"
    assert BTC not in [p["symbol"] for p in desk.client.get("/positions").json()]
    trades = desk.client.get("/trades", params={"symbol": BTC}).json()
    assert len(trades) == 1 and trades[0]["side"] == "long"


def test_the_openapi_schema_names_the_new_operations(desk: Desk) -> None:
    schema = httpx.get(desk.client.base_url.join("/openapi.json")).json()
    paths = schema["paths"]

    assert paths["/api/v1/orders"]["post"]["operationId"] == "place_order"
    assert set(paths["/api/v1/orders"]["post"]["responses"]) >= {"200", "201", "409", "422"}
    assert paths["/api/v1/orders/bracket"]["post"]["operationId"] == "place_bracket"
    assert paths["/api/v1/orders/{order_id}"]["patch"]["operationId"] == "modify_order"
    assert paths["/api/v1/orders/bracket/{entry_id}"]["get"]["operationId"] == "get_bracket"
    order_types = schema["components"]["schemas"]["OrderIn"]["properties"]["type"]["enum"]
    assert order_types == ["market", "limit", "stop", "take_profit", "trailing_stop"]
