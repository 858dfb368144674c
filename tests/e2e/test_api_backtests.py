"""End to end: backtests over HTTP and the WebSocket on a real uvicorn server with the shipped
sample: one started from the API pushes its progress as ``backtest`` messages until done, its
result has the metrics, trades and equity of ``lootcapital backtest`` on the same bars, past
ones are listed newest first and page, two compare side by side, a second one while one runs is
a 409, bad input a 422 naming the field, and they outlive the server (a new app on the same
SQLite file reads them; one left running is failed at the next start). Periods are a few days
of 5m bars: each backtest takes about a second."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from adapters.storage.sql.backtest_repository import SqlBacktestStore
from adapters.storage.sql.unit_of_work import make_engine, make_session_factory
from domain.backtest_records import BacktestRecord
from lootcapital.bootstrap import bootstrap, build_app
from lootcapital.cli import main
from lootcapital.settings import Settings
from service_layer.backtest_jobs import INTERRUPTED
from tests.e2e.web_fixtures import live_server, sample_server

TOKEN = "e2e-backtests-token-0123456789"
DAY_MS = 86_400_000
START = 1_759_276_800_000  # 2025-10-01 00:00 UTC
BODY = {
    "strategy": "sma_cross",
    "params": {"fast": 5, "slow": 20},
    "symbols": ["BTCUSDT"],
    "start": START,
    "end": START + 3 * DAY_MS,
}
LONGER = {**BODY, "symbols": ["BTCUSDT", "ETHUSDT"], "end": START + 5 * DAY_MS}
"""Long enough (a second or two) for a second request to find it running."""
WAIT_S = 60.0


@dataclass(frozen=True)
class Served:
    url: str
    data_dir: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("e2e-backtests")
    with sample_server(data_dir, TOKEN) as (url, container):
        container.service.stop()  # the replay plays no part here
        yield Served(url, data_dir)


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=served.url + "/api/v1", headers=headers, timeout=30) as c:
        yield c


def _ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + f"/api/v1/ws?token={TOKEN}"


def _finished(client: httpx.Client, backtest_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        body = client.get(f"/backtests/{backtest_id}").json()
        if body["status"] != "running":
            return body
        assert time.monotonic() < deadline, f"backtest {backtest_id} still running"
        time.sleep(0.05)


@dataclass(frozen=True)
class Watched:
    accepted: httpx.Response
    refused: httpx.Response  # a second backtest while the first ran
    messages: list[dict[str, Any]]
    result: dict[str, Any]


@pytest.fixture(scope="module")
def watched(served: Served, client: httpx.Client) -> Watched:
    """A backtest started from the API, watched over the WebSocket to its end."""
    with connect(_ws_url(served.url)) as ws:
        accepted = client.post("/backtests", json=LONGER)
        refused = client.post("/backtests", json=BODY)
        assert accepted.status_code == 202, accepted.text
        backtest_id = accepted.json()["id"]
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + WAIT_S
        while not messages or messages[-1]["data"]["status"] == "running":
            assert time.monotonic() < deadline, "no end of the backtest over the WebSocket"
            message = json.loads(ws.recv(timeout=WAIT_S))
            if message["type"] == "backtest" and message["data"]["id"] == backtest_id:
                messages.append(message)
    return Watched(accepted, refused, messages, client.get(f"/backtests/{backtest_id}").json())


def _run(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/backtests", json=body)
    assert response.status_code == 202, response.text
    return _finished(client, response.json()["id"])


def test_a_backtest_pushes_its_progress_until_done(watched: Watched) -> None:
    progress = [m["data"]["progress"] for m in watched.messages]
    last = watched.messages[-1]["data"]

    assert watched.accepted.json()["status"] == "running"
    assert len(progress) >= 3
    assert progress == sorted(progress) and progress[0] == 0.0
    assert (last["status"], last["progress"], last["error"]) == ("done", 1.0, None)
    assert all(isinstance(m["ts"], int) for m in watched.messages)


def test_a_second_backtest_while_one_runs_is_refused(watched: Watched) -> None:
    assert watched.refused.status_code == 409
    assert watched.refused.json()["error"] == "backtest_running"


def test_the_result_has_the_metrics_and_trades_of_the_cli_on_the_same_bars(
    served: Served, client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(client, BODY)
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(served.data_dir))
    out = tmp_path / "cli.json"
    args = ["backtest", "--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=20",
            "--symbol", "BTCUSDT", "--start", "2025-10-01", "--end", "2025-10-04",
            "--json", str(out)]  # fmt: skip

    code = main(args)
    cli = json.loads(out.read_text())

    assert code == 0
    assert result["status"] == "done"
    assert result["metrics"] == cli["metrics"]
    assert result["trades"] == cli["trades"]
    assert [[p["time"], p["equity"]] for p in result["equity"]] == cli["equity"]
    assert result["header"] == cli["header"]


def test_the_result_has_equity_with_its_drawdown_at_every_bar(watched: Watched) -> None:
    result = watched.result
    points = result["equity"]
    equity = [float(p["equity"]) for p in points]
    worst = min(p["drawdown_pct"] for p in points)

    assert len(points) == 5 * 288  # 5 days of 5m bar closes
    assert all(p["drawdown_pct"] <= 0 for p in points)
    assert worst == pytest.approx(-result["metrics"]["max_drawdown_pct"], abs=1e-9)
    assert equity[-1] == pytest.approx(float(result["metrics"]["end_equity"]))
    assert len(result["trades"]) == result["metrics"]["trades"]
    assert result["header"]["symbols"] == LONGER["symbols"]


def test_past_backtests_are_listed_newest_first_and_page(
    watched: Watched, client: httpx.Client
) -> None:
    _run(client, {**BODY, "params": {"fast": 3, "slow": 12}})

    everything = client.get("/backtests", params={"limit": 100}).json()
    first = client.get("/backtests", params={"limit": 1})
    second = client.get("/backtests", params={"limit": 1, "cursor": first.headers["X-Next-Cursor"]})

    created = [b["created_ms"] for b in everything]
    assert created == sorted(created, reverse=True)
    assert everything[0]["request"]["params"] == {"fast": 3, "slow": 12}
    assert [b["id"] for b in first.json() + second.json()] == [b["id"] for b in everything[:2]]
    assert "equity" not in everything[0] and everything[0]["metrics"]["trades"] >= 0


def test_two_backtests_compare_side_by_side(watched: Watched, client: httpx.Client) -> None:
    other = _run(client, {**BODY, "params": {"fast": 8, "slow": 30}})
    ids = f"{watched.result['id']},{other['id']}"

    compared = client.get("/backtests/compare", params={"ids": ids})

    body = compared.json()
    rows = {m["name"]: m["values"] for m in body["metrics"]}
    assert compared.status_code == 200
    assert body["ids"] == ids.split(",")
    assert rows["trades"] == [watched.result["metrics"]["trades"], other["metrics"]["trades"]]
    assert rows["total_return_pct"][1] == other["metrics"]["total_return_pct"]


@pytest.mark.parametrize(
    ("ids", "status", "field"),
    [("0123456789abcdef,fedcba9876543210", 404, "ids"), ("0123456789abcdef", 422, "ids")],
)
def test_a_comparison_of_unknown_or_too_few_backtests_is_refused(
    client: httpx.Client, ids: str, status: int, field: str
) -> None:
    response = client.get("/backtests/compare", params={"ids": ids})

    assert response.status_code == status
    assert response.json()["field"] == field


def test_an_unknown_backtest_is_a_404(client: httpx.Client) -> None:
    response = client.get("/backtests/0123456789abcdef")

    assert response.status_code == 404
    assert response.json()["error"] == "backtest_not_found"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"strategy": "no_such_strategy"}, "strategy"),
        ({"params": {"fast": "quick"}}, "params.fast"),
        ({"params": {"no_such_param": 1}}, "params.no_such_param"),
        ({"symbols": []}, "symbols"),
        ({"symbols": ["DOGEUSDT"]}, "symbols"),
        ({"timeframe": "7x"}, "timeframe"),
        ({"start": START + 3 * DAY_MS, "end": START}, "end"),
        ({"start": START + 900 * DAY_MS, "end": START + 901 * DAY_MS}, "start"),
        ({"leverage": 500}, "leverage"),
        ({"fee": "1.5"}, "fee"),
        ({"cash": "-1"}, "cash"),
        ({"margin": "portfolio"}, "margin"),
        ({"speed": 3}, "speed"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: httpx.Client, change: dict[str, Any], field: str
) -> None:
    response = client.post("/backtests", json={**BODY, **change})

    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_backtests_outlive_the_server(served: Served, watched: Watched) -> None:
    sessions = make_session_factory(make_engine(f"sqlite:///{served.data_dir / 'lootcapital.db'}"))
    left = BacktestRecord(
        id="00000000000000aa", status="running", strategy="sma_cross", symbols=("BTCUSDT",),
        timeframe="5m", request=BODY, created_ms=1,
    )  # fmt: skip
    SqlBacktestStore(sessions).add(left)  # as a server killed in the middle leaves it
    settings = Settings(  # the run sample_server stored, not started
        data_dir=served.data_dir, api_token=TOKEN, autostart=False, strategy="sma_cross",
        strategy_params={"fast": 5, "slow": 20},
    )  # fmt: skip

    with (
        live_server(build_app(bootstrap(settings))) as url,
        httpx.Client(base_url=url + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}) as c,
    ):
        again = c.get(f"/backtests/{watched.result['id']}").json()
        interrupted = c.get(f"/backtests/{left.id}").json()

    assert again == watched.result
    assert (interrupted["status"], interrupted["error"]) == ("failed", INTERRUPTED)
