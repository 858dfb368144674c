"""A client generated from ``/openapi.json`` with ``openapi-python-client`` calls every route of a
real uvicorn server, and gets typed models back.

The client is generated once per module (about a second) into a temporary package. Each route
is called once, in an order that lets the later calls see data (an order to get and cancel,
fills, trades, signals); then one test per route checks that the parsed response is the model
the schema names for it, with every field the server sent declared, and that its values are
the ones the call asked for.
"""

from __future__ import annotations

import importlib
import itertools
import json
import pkgutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_python_client.strings import ClassName, PythonIdentifier

from tests.e2e.web_fixtures import sample_server

TOKEN = "generated-client-token-0123456789"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
PACKAGE = "lootcapital_generated_client"
PREFIX = "field_"
"""openapi-python-client's default ``field_prefix``: it names classes and modules with it."""
WAIT_S = 30.0

Route = tuple[str, str]
"""``(METHOD, path template)`` as the OpenAPI schema lists it: ``("GET", "/api/v1/orders")``."""


@dataclass(frozen=True)
class Generated:
    """The generated package, the schema it came from and a client holding the token."""

    package: ModuleType
    schema: dict[str, Any]
    client: Any  # the generated AuthenticatedClient
    endpoints: dict[str, ModuleType]  # endpoint module by name (the snake-cased operationId)

    def endpoint(self, route: Route) -> ModuleType:
        """The generated module of ``route`` (it has ``sync_detailed``)."""
        operation_id = self.schema["paths"][route[1]][route[0].lower()]["operationId"]
        return self.endpoints[PythonIdentifier(operation_id, PREFIX)]

    def call(self, route: Route, *args: object, **kwargs: object) -> Any:
        """Call ``route`` through the generated client; its ``Response`` (with ``.parsed``)."""
        return self.endpoint(route).sync_detailed(*args, client=self.client, **kwargs)

    def body_model(self, route: Route) -> type:
        """The generated class of ``route``'s JSON request body."""
        operation = self.schema["paths"][route[1]][route[0].lower()]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return self.model(ref.rsplit("/", 1)[1])

    def model(self, component: str) -> type:
        """The generated class of the schema component ``component``."""
        models = importlib.import_module(f"{self.package.__name__}.models")
        found: type = getattr(models, ClassName(component, PREFIX))
        return found


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A paper server on the sample (:func:`sample_server`)."""
    with sample_server(tmp_path_factory.mktemp("generated"), TOKEN) as (url, _):
        yield url


@pytest.fixture(scope="module")
def generated(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    """Generate the client from the server's ``/openapi.json`` and import it."""
    work = tmp_path_factory.mktemp("client")
    schema = httpx.get(base_url + "/openapi.json", timeout=10).json()
    (work / "openapi.json").write_text(json.dumps(schema))
    (work / "config.json").write_text(json.dumps({"post_hooks": []}))  # no ruff run on it
    command = [
        sys.executable, "-m", "openapi_python_client", "generate",
        "--path", str(work / "openapi.json"), "--output-path", str(work / PACKAGE),
        "--meta", "none", "--config", str(work / "config.json"),
        "--fail-on-warning",  # a route the generator cannot read is skipped with a warning
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"openapi-python-client failed:\n{done.stdout}\n{done.stderr}"
    sys.path.insert(0, str(work))
    try:
        package = importlib.import_module(PACKAGE)
        api = importlib.import_module(f"{PACKAGE}.api")
        endpoints = {
            info.name.rsplit(".", 1)[1]: importlib.import_module(info.name)
            for info in pkgutil.walk_packages(api.__path__, f"{PACKAGE}.api.")
            if not info.ispkg
        }
        client = package.AuthenticatedClient(
            base_url=base_url, token=TOKEN, raise_on_unexpected_status=True, timeout=10.0
        )
        yield Generated(package, schema, client, endpoints)
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


HEALTH = ("GET", "/api/v1/healthz")
STATUS = ("GET", "/api/v1/status")
START = ("POST", "/api/v1/engine/start")
STOP = ("POST", "/api/v1/engine/stop")
CANDLES = ("GET", "/api/v1/candles")
PLACE = ("POST", "/api/v1/orders")
ORDERS = ("GET", "/api/v1/orders")
ORDER = ("GET", "/api/v1/orders/{order_id}")
BY_CLIENT_ID = ("GET", "/api/v1/orders/by-client-id/{client_order_id}")
CANCEL = ("DELETE", "/api/v1/orders/{order_id}")
MODIFY = ("PATCH", "/api/v1/orders/{order_id}")
PLACE_BRACKET = ("POST", "/api/v1/orders/bracket")
BRACKET = ("GET", "/api/v1/orders/bracket/{entry_id}")
FILLS = ("GET", "/api/v1/fills")
POSITIONS = ("GET", "/api/v1/positions")
TRADES = ("GET", "/api/v1/trades")
EQUITY = ("GET", "/api/v1/equity")
SIGNALS = ("GET", "/api/v1/signals")
RISK = ("GET", "/api/v1/risk")
RISK_LIMITS = ("PUT", "/api/v1/risk/limits")
HALT = ("POST", "/api/v1/risk/halt")
RESUME = ("POST", "/api/v1/risk/resume")
CLOSE_ALL = ("POST", "/api/v1/positions/close-all")
BALANCE = ("GET", "/api/v1/balance")
LEVERAGE = ("PUT", "/api/v1/positions/{symbol}/leverage")
FUNDING = ("GET", "/api/v1/funding")
ANALYSIS = ("GET", "/api/v1/analysis/{symbol}")
PIPELINE_EVENTS = ("GET", "/api/v1/pipeline/events")
MODELS = ("GET", "/api/v1/models")
MODEL = ("GET", "/api/v1/models/{model_id}")
ACTIVATE_MODEL = ("POST", "/api/v1/models/{model_id}/activate")
ROLLBACK_MODEL = ("POST", "/api/v1/models/rollback")
COMPARE_MODELS = ("GET", "/api/v1/models/compare")
TRAIN_MODEL = ("POST", "/api/v1/models/train")
TRAINING_JOB = ("GET", "/api/v1/models/train/{job_id}")
ATTRIBUTION = ("GET", "/api/v1/analytics/attribution")
START_BACKTEST = ("POST", "/api/v1/backtests")
BACKTESTS = ("GET", "/api/v1/backtests")
BACKTEST = ("GET", "/api/v1/backtests/{backtest_id}")
COMPARE_BACKTESTS = ("GET", "/api/v1/backtests/compare")
BACKTEST_BODY = {
    "strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "symbols": ["BTCUSDT"],
    "start": 1_759_276_800_000, "end": 1_759_363_200_000,  # 2025-10-01, one day
}  # fmt: skip
ALERTS = ("GET", "/api/v1/alerts")
VENUES = ("GET", "/api/v1/venues")

PLACED_ID = "generated-client-1"
PLACED_QTY = Decimal("0.002")
FILLED_ID = "generated-client-filled"
BRACKET_ID = "generated-client-bracket"
MODIFIED_QTY = Decimal("0.003")
TRAIN = {"kind": "trend", "symbol": "BTCUSDT", "days": 3, "folds": 2, "params": {"max_iter": 20}}
"""A training of well under a second on the sample."""


def _wait_for(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ready():
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def exchanged(base_url: str, generated: Generated) -> dict[Route, Any]:
    """Every route called once through the generated client: its ``Response`` by route.

    The steps chain on the raw JSON (``Response.content``), not on the parsed models, so that
    every route is called even while some responses are untyped.
    """
    raw = httpx.Client(
        base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    calls: dict[Route, Any] = {}
    calls[HEALTH] = generated.call(HEALTH)
    calls[STATUS] = generated.call(STATUS)
    calls[CANDLES] = generated.call(CANDLES, symbol="BTCUSDT", limit=3)
    last_close = Decimal(str(json.loads(calls[CANDLES].content)[-1]["close"]))
    body = generated.body_model(PLACE).from_dict(
        {
            "symbol": "BTCUSDT",
            "side": "buy",
            "type": "limit",
            "qty": str(PLACED_QTY),
            "price": str((last_close / 2).quantize(Decimal("0.1"))),  # far below: stays open
            "client_order_id": PLACED_ID,
        }
    )
    calls[PLACE] = generated.call(PLACE, body=body)
    order_id = json.loads(calls[PLACE].content)["id"]
    calls[ORDERS] = generated.call(ORDERS, limit=100)
    calls[ORDER] = generated.call(ORDER, order_id)
    calls[BY_CLIENT_ID] = generated.call(BY_CLIENT_ID, PLACED_ID)
    change = generated.body_model(MODIFY).from_dict({"qty": str(MODIFIED_QTY)})
    calls[MODIFY] = generated.call(MODIFY, order_id, body=change)
    calls[CANCEL] = generated.call(CANCEL, order_id)
    entry = (last_close / 2).quantize(Decimal("0.1"))  # far below: the entry stays open
    bracket = generated.body_model(PLACE_BRACKET).from_dict(
        {
            "symbol": "BTCUSDT",
            "side": "buy",
            "type": "limit",
            "qty": str(PLACED_QTY),
            "price": str(entry),
            "stop_loss": {"stop_price": str(entry - 1000)},
            "take_profit": {"stop_price": str(entry + 1000)},
            "client_order_id": BRACKET_ID,
        }
    )
    calls[PLACE_BRACKET] = generated.call(PLACE_BRACKET, body=bracket)
    calls[BRACKET] = generated.call(BRACKET, BRACKET_ID)
    raw.delete(f"/orders/{BRACKET_ID}")
    # A fill, a position, a closed trade, signals and equity for the listings (set up over raw
    # HTTP; the strategy trades too).
    market = {"symbol": "SOLUSDT", "side": "buy", "type": "market", "qty": "1"}
    filled = _buy_when_margin_allows(raw, market)
    _wait_for("fill", lambda: bool(raw.get("/fills", params={"order_id": filled}).json()))
    for listing in ("positions", "trades", "signals", "equity", "funding"):
        _wait_for(listing, lambda path=listing: bool(raw.get(f"/{path}").json()))
    calls[STOP] = generated.call(STOP)  # the listings hold still from here on
    calls[FILLS] = generated.call(FILLS, order_id=filled)
    calls[POSITIONS] = generated.call(POSITIONS)
    calls[TRADES] = generated.call(TRADES, limit=10)
    calls[EQUITY] = generated.call(EQUITY, limit=10)
    calls[SIGNALS] = generated.call(SIGNALS, limit=10)
    _wait_for("alert", lambda: bool(raw.get("/alerts", params={"rule": "trade_executed"}).json()))
    trade_rule = generated.model("AlertRule")("trade_executed")
    calls[ALERTS] = generated.call(ALERTS, rule=trade_rule, limit=10)
    calls[VENUES] = generated.call(VENUES)
    calls[BALANCE] = generated.call(BALANCE)
    leverage = generated.body_model(LEVERAGE).from_dict({"leverage": 3})
    calls[LEVERAGE] = generated.call(LEVERAGE, "ETHUSDT", body=leverage)
    calls[FUNDING] = generated.call(FUNDING, symbol="BTCUSDT")
    calls[ANALYSIS] = generated.call(ANALYSIS, "BTCUSDT")
    calls[PIPELINE_EVENTS] = generated.call(PIPELINE_EVENTS, symbol="BTCUSDT", limit=10)
    calls[ATTRIBUTION] = generated.call(ATTRIBUTION, by=generated.model("Dimension")("symbol"))
    _call_model_routes(generated, raw, calls)
    _call_backtest_routes(generated, raw, calls)
    calls[RISK] = generated.call(RISK)
    limits = generated.body_model(RISK_LIMITS).from_dict({"max_open_positions": {"limit": 7}})
    calls[RISK_LIMITS] = generated.call(RISK_LIMITS, body=limits)
    halt = generated.body_model(HALT).from_dict({"reason": "generated client"})
    calls[HALT] = generated.call(HALT, body=halt)
    calls[RESUME] = generated.call(RESUME)
    confirmed = generated.body_model(CLOSE_ALL).from_dict({"confirm": True})
    calls[CLOSE_ALL] = generated.call(CLOSE_ALL, body=confirmed)
    calls[START] = generated.call(START)
    raw.close()
    return calls


def _call_model_routes(generated: Generated, raw: httpx.Client, calls: dict[Route, Any]) -> None:
    """Train two models (hgb through the generated client, rf over raw HTTP), then read, list,
    activate the first, activate the second (raw), roll back to the first and compare them."""
    body = generated.body_model(TRAIN_MODEL).from_dict(TRAIN)
    calls[TRAIN_MODEL] = generated.call(TRAIN_MODEL, body=body)
    job_id = json.loads(calls[TRAIN_MODEL].content)["job_id"]
    _wait_for("training", lambda: raw.get(f"/models/train/{job_id}").json()["status"] != "running")
    calls[TRAINING_JOB] = generated.call(TRAINING_JOB, job_id)
    first = json.loads(calls[TRAINING_JOB].content)["model_id"]
    other = raw.post("/models/train", json={**TRAIN, "algo": "rf", "params": {"n_estimators": 10}})
    other_job = other.json()["job_id"]
    _wait_for("training", lambda: raw.get(f"/models/train/{other_job}").json()["status"] == "done")
    second = raw.get(f"/models/train/{other_job}").json()["model_id"]
    calls[MODELS] = generated.call(MODELS, symbol="BTCUSDT")
    calls[MODEL] = generated.call(MODEL, first)
    calls[ACTIVATE_MODEL] = generated.call(ACTIVATE_MODEL, first)
    raw.post(f"/models/{second}/activate")
    back = generated.body_model(ROLLBACK_MODEL).from_dict({"kind": "trend", "symbol": "BTCUSDT"})
    calls[ROLLBACK_MODEL] = generated.call(ROLLBACK_MODEL, body=back)
    calls[COMPARE_MODELS] = generated.call(COMPARE_MODELS, ids=f"{first},{second}")


def _call_backtest_routes(generated: Generated, raw: httpx.Client, calls: dict[Route, Any]) -> None:
    """Run two backtests (one through the generated client, one over raw HTTP, each waited
    for), then list, read and compare them."""
    body = generated.body_model(START_BACKTEST).from_dict(BACKTEST_BODY)
    calls[START_BACKTEST] = generated.call(START_BACKTEST, body=body)
    first = json.loads(calls[START_BACKTEST].content)["id"]
    _wait_for("backtest", lambda: raw.get(f"/backtests/{first}").json()["status"] == "done")
    other = raw.post("/backtests", json={**BACKTEST_BODY, "params": {"fast": 8, "slow": 30}})
    second = other.json()["id"]
    _wait_for("backtest", lambda: raw.get(f"/backtests/{second}").json()["status"] == "done")
    calls[BACKTESTS] = generated.call(BACKTESTS, limit=10)
    calls[BACKTEST] = generated.call(BACKTEST, first)
    calls[COMPARE_BACKTESTS] = generated.call(COMPARE_BACKTESTS, ids=f"{first},{second}")


def _buy_when_margin_allows(raw: httpx.Client, market: dict[str, str]) -> str:
    """Place ``market`` under a fresh client id until the venue accepts it; its id.

    sma_cross puts the whole equity up as margin while it holds its positions, so a buy is
    refused (409) until the strategy is flat or short on the symbol, which its crossings
    bring within seconds at the replay's speed. A refused order keeps its client id (a
    repeat would return it, refused), hence a new id per try."""
    deadline = time.monotonic() + WAIT_S
    for attempt in itertools.count():
        client_id = f"{FILLED_ID}-{attempt}"
        response = raw.post("/orders", json={**market, "client_order_id": client_id})
        if response.status_code == 201:
            return client_id
        assert response.status_code == 409, response.text
        assert time.monotonic() < deadline, f"no buy accepted within {WAIT_S} s: {response.text}"
        time.sleep(0.1)
    raise AssertionError("unreachable")


def _dec(value: object) -> Decimal:
    return Decimal(str(value))


def _check_health(parsed: Any) -> None:
    assert parsed.status == "ok"


def _check_status(parsed: Any) -> None:
    assert parsed.mode == "paper"
    assert parsed.symbols == SYMBOLS
    assert parsed.strategy == "sma_cross"


def _check_started(parsed: Any) -> None:
    assert parsed.running is True


def _check_stopped(parsed: Any) -> None:
    assert parsed.running is False
    assert parsed.stopped_reason == "stopped by user"


def _check_candles(parsed: Any) -> None:
    assert len(parsed) == 3
    times = [c.open_time for c in parsed]
    assert times == sorted(times)
    assert all(_dec(c.low) <= _dec(c.high) for c in parsed)


def _check_placed(parsed: Any) -> None:
    assert (parsed.symbol, parsed.side, _dec(parsed.qty)) == ("BTCUSDT", "buy", PLACED_QTY)
    assert parsed.type_ == "limit"
    assert parsed.client_order_id == PLACED_ID
    assert parsed.status == "new"


def _check_orders(parsed: Any) -> None:
    assert PLACED_ID in [o.client_order_id for o in parsed]


def _check_order(parsed: Any) -> None:
    assert parsed.client_order_id == PLACED_ID
    assert (parsed.symbol, parsed.side, _dec(parsed.qty)) == ("BTCUSDT", "buy", PLACED_QTY)


def _check_by_client_id(parsed: Any) -> None:
    assert parsed.client_order_id == PLACED_ID
    assert (parsed.symbol, parsed.type_, parsed.status) == ("BTCUSDT", "limit", "new")


def _check_modified(parsed: Any) -> None:
    assert parsed.client_order_id == PLACED_ID
    assert (_dec(parsed.qty), parsed.status) == (MODIFIED_QTY, "new")


def _check_bracket(parsed: Any) -> None:
    assert parsed.entry.client_order_id == BRACKET_ID
    assert (parsed.entry.type_, parsed.entry.status) == ("limit", "new")
    assert parsed.stop_loss is None and parsed.take_profit is None  # placed once it fills


def _check_canceled(parsed: Any) -> None:
    assert parsed.client_order_id == PLACED_ID
    assert parsed.status == "canceled"


def _check_fills(parsed: Any) -> None:
    assert parsed
    assert len({f.order_id for f in parsed}) == 1
    assert all(f.order_id.startswith(FILLED_ID) for f in parsed)
    assert all((f.symbol, f.side) == ("SOLUSDT", "buy") for f in parsed)
    assert sum(_dec(f.qty) for f in parsed) == 1
    assert all(_dec(f.price) > 0 and _dec(f.fee) >= 0 for f in parsed)


def _check_positions(parsed: Any) -> None:
    assert parsed
    assert all(p.symbol in SYMBOLS and _dec(p.qty) != 0 for p in parsed)


def _check_trades(parsed: Any) -> None:
    assert parsed
    assert all(t.symbol in SYMBOLS and t.side in ("long", "short") for t in parsed)
    assert all(t.entry_time <= t.exit_time for t in parsed)


def _check_equity(parsed: Any) -> None:
    assert parsed
    assert all(isinstance(p.time, int) and _dec(p.equity) > 0 for p in parsed)


def _check_signals(parsed: Any) -> None:
    assert parsed
    assert all(s.symbol in SYMBOLS and 0 <= float(s.confidence) <= 1 for s in parsed)


def _check_balance(parsed: Any) -> None:
    assert parsed.currency == "USDT"
    assert _dec(parsed.margin_balance) == _dec(parsed.wallet) + _dec(parsed.unrealized_pnl)


def _check_leverage(parsed: Any) -> None:
    assert (parsed.symbol, parsed.leverage) == ("ETHUSDT", 3)


def _check_funding(parsed: Any) -> None:
    assert all(p.symbol == "BTCUSDT" and p.time % (8 * 3_600_000) == 0 for p in parsed)


def _check_analysis(parsed: Any) -> None:
    assert parsed.symbol == "BTCUSDT"
    assert 0 <= parsed.thresholds.volatility_percentile <= 100
    assert parsed.timeframes.aligned in range(5) and parsed.signal.reasons


def _check_attribution(parsed: Any) -> None:
    assert parsed.by == "symbol" and parsed.currency == "USDT"
    assert parsed.trades > 0 and sum(g.trades for g in parsed.groups) == parsed.trades
    assert {g.key for g in parsed.groups} <= set(SYMBOLS)
    assert sum(_dec(g.pnl) for g in parsed.groups) == _dec(parsed.pnl)


def _check_pipeline_events(parsed: Any) -> None:
    assert parsed == []  # sma_cross has no adaptive pipeline: nothing to report


def _check_training_started(parsed: Any) -> None:
    assert (parsed.status, parsed.progress) == ("running", 0.0)
    assert (parsed.kind, parsed.symbol, parsed.algo, parsed.days) == ("trend", "BTCUSDT", "hgb", 3)


def _check_training_job(parsed: Any) -> None:
    assert (parsed.status, parsed.progress, parsed.error) == ("done", 1.0, None)
    assert parsed.model_id.startswith("trend-BTCUSDT-hgb-")
    assert 0 <= parsed.metrics["accuracy"] <= 1


def _check_models(parsed: Any) -> None:
    assert [m.algo for m in parsed] == ["rf", "hgb"]  # newest first
    assert all(m.kind == "trend" and m.symbols == ["BTCUSDT"] for m in parsed)
    assert not any(m.active for m in parsed)  # listed before the activations


def _check_model(parsed: Any) -> None:
    assert (parsed.kind, parsed.algo, parsed.active) == ("trend", "hgb", False)
    assert len(parsed.sha256) == 64 and parsed.activations == []


def _check_model_activated(parsed: Any) -> None:
    assert (parsed.algo, parsed.active, parsed.active_on) == ("hgb", True, ["BTCUSDT"])


def _check_model_rolled_back(parsed: Any) -> None:
    assert (parsed.algo, parsed.active, parsed.active_on) == ("hgb", True, ["BTCUSDT"])


def _check_models_compared(parsed: Any) -> None:
    assert len(parsed.model_ids) == 2
    assert "holdout.log_loss" in [row.name for row in parsed.metrics]
    assert all(len(row.values) == 2 for row in parsed.metrics)


def _check_alerts(parsed: Any) -> None:
    assert parsed
    assert all(a.rule == "trade_executed" and a.data["symbol"] in SYMBOLS for a in parsed)
    assert all("websocket" in a.channels for a in parsed)


def _check_venues(parsed: Any) -> None:
    assert parsed == []  # a replay of stored bars: the simulated venue has no connection


def _check_backtest_started(parsed: Any) -> None:
    assert (parsed.status, parsed.progress, parsed.error) == ("running", 0.0, None)


def _check_backtests(parsed: Any) -> None:
    assert [b.request["params"]["fast"] for b in parsed] == [8, 5]  # newest first
    assert all(b.status == "done" and b.symbols == ["BTCUSDT"] for b in parsed)


def _check_backtest(parsed: Any) -> None:
    assert (parsed.status, parsed.strategy, parsed.timeframe) == ("done", "sma_cross", "5m")
    assert len(parsed.equity) == 288 and len(parsed.trades) == parsed.metrics["trades"]
    assert all(p.drawdown_pct <= 0 for p in parsed.equity)


def _check_backtests_compared(parsed: Any) -> None:
    assert len(parsed.ids) == 2 and len(parsed.backtests) == 2
    assert all(len(row.values) == 2 for row in parsed.metrics)


def _check_risk(parsed: Any) -> None:
    assert parsed.status.account_state == "active"
    assert len(parsed.breakers) == 7
    assert [v.confidence for v in parsed.metrics.equity_var] == [0.95, 0.99]


def _check_limits(parsed: Any) -> None:
    assert parsed.max_open_positions.limit == 7
    assert parsed.changed_by == "api"


def _check_halted(parsed: Any) -> None:
    assert parsed.account_state == "halted"
    assert "generated client" in parsed.holds[0].reason


def _check_resumed(parsed: Any) -> None:
    assert parsed.account_state == "active"


def _check_closed(parsed: Any) -> None:
    assert parsed.orders
    assert all(o.reduce_only and o.type_ == "market" for o in parsed.orders)


CHECKS: dict[Route, Callable[[Any], None]] = {
    HEALTH: _check_health,
    STATUS: _check_status,
    START: _check_started,
    STOP: _check_stopped,
    CANDLES: _check_candles,
    PLACE: _check_placed,
    ORDERS: _check_orders,
    ORDER: _check_order,
    BY_CLIENT_ID: _check_by_client_id,
    CANCEL: _check_canceled,
    MODIFY: _check_modified,
    PLACE_BRACKET: _check_bracket,
    BRACKET: _check_bracket,
    FILLS: _check_fills,
    POSITIONS: _check_positions,
    TRADES: _check_trades,
    EQUITY: _check_equity,
    SIGNALS: _check_signals,
    RISK: _check_risk,
    RISK_LIMITS: _check_limits,
    HALT: _check_halted,
    RESUME: _check_resumed,
    CLOSE_ALL: _check_closed,
    BALANCE: _check_balance,
    LEVERAGE: _check_leverage,
    FUNDING: _check_funding,
    ANALYSIS: _check_analysis,
    PIPELINE_EVENTS: _check_pipeline_events,
    ATTRIBUTION: _check_attribution,
    TRAIN_MODEL: _check_training_started,
    TRAINING_JOB: _check_training_job,
    MODELS: _check_models,
    MODEL: _check_model,
    ACTIVATE_MODEL: _check_model_activated,
    ROLLBACK_MODEL: _check_model_rolled_back,
    COMPARE_MODELS: _check_models_compared,
    START_BACKTEST: _check_backtest_started,
    BACKTESTS: _check_backtests,
    BACKTEST: _check_backtest,
    COMPARE_BACKTESTS: _check_backtests_compared,
    ALERTS: _check_alerts,
    VENUES: _check_venues,
}
"""What each route's parsed response must say; one entry for every route of the schema."""


def _schema_routes(schema: dict[str, Any]) -> set[Route]:
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }


def _response_component(schema: dict[str, Any], route: Route) -> tuple[str | None, bool, Any]:
    """The schema component that ``route``'s success response names (``None`` when the
    response schema is inline), whether the response is a list of it, and the schema."""
    responses = schema["paths"][route[1]][route[0].lower()]["responses"]
    code = min(c for c in responses if c.startswith("2"))
    body = responses[code]["content"]["application/json"]["schema"]
    many = body.get("type") == "array"
    ref = (body.get("items", {}) if many else body).get("$ref")
    return (ref.rsplit("/", 1)[1] if ref else None), many, body


def test_the_generated_client_has_a_function_for_every_route(generated: Generated) -> None:
    routes = _schema_routes(generated.schema)

    missing = [r for r in routes if not hasattr(generated.endpoint(r), "sync_detailed")]

    assert routes
    assert not missing
    assert len(generated.endpoints) == len(routes)


def test_every_route_of_the_schema_is_called_by_these_tests(generated: Generated) -> None:
    assert _schema_routes(generated.schema) == set(CHECKS)


@pytest.mark.parametrize("route", list(CHECKS), ids=lambda r: f"{r[0]} {r[1]}")
def test_a_route_round_trips_to_its_typed_model(
    generated: Generated, exchanged: dict[Route, Any], route: Route
) -> None:
    response = exchanged[route]
    component, many, inline = _response_component(generated.schema, route)

    assert 200 <= response.status_code < 300, response.content
    assert component is not None, (
        f"{route[0]} {route[1]} declares no response model (its success schema is inline: "
        f"{inline}); the generated client can only return untyped data for it"
    )
    model = generated.model(component)
    items = response.parsed if many else [response.parsed]
    assert isinstance(items, list)
    assert all(isinstance(item, model) for item in items), type(response.parsed)
    undeclared = [sorted(getattr(item, "additional_properties", {})) for item in items]
    assert not any(undeclared), f"fields the model does not declare: {undeclared}"
    CHECKS[route](response.parsed)
