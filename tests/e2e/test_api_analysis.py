"""``GET /api/v1/analysis/{symbol}`` on a real server replaying the shipped sample: the
pipeline's snapshot of a traded symbol at its last bar or at a given time, in either symbol
spelling, with errors naming the input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from domain.analysis import snapshot
from lootcapital.bootstrap import Container
from tests.e2e.web_fixtures import sample_server

TOKEN = "analysis-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Container]]:
    with (
        sample_server(tmp_path_factory.mktemp("analysis"), TOKEN) as (url, container),
        httpx.Client(base_url=url, headers=HEADERS, timeout=10) as client,
    ):
        deadline = time.monotonic() + 60
        while container.service.status().candles_processed < 450:
            assert time.monotonic() < deadline, "the replay did not get going"
            time.sleep(0.1)
        container.service.stop()
        yield client, container


def test_the_snapshot_of_a_traded_symbol_is_the_pipelines_at_its_last_bar(
    served: tuple[httpx.Client, Container],
) -> None:
    client, container = served

    response = client.get("/api/v1/analysis/BTCUSDT")

    assert response.status_code == 200, response.text
    body = response.json()
    expected = snapshot(container.service.recent_candles("BTCUSDT"), "BTCUSDT")
    assert body["time"] == expected["time"] and body["price"] == expected["price"]
    assert body["timeframes"]["aligned"] == expected["timeframes"]["aligned"]
    assert body["signal"]["direction"] == expected["signal"]["direction"]
    assert [r["component"] for r in body["signal"]["reasons"]] == [
        "timeframes", "regime", "thresholds", "volume_profile",
    ]  # fmt: skip
    assert set(body["timeframes"]) >= {"5m", "15m", "1h", "4h", "aligned", "confidence"}


def test_the_snapshot_at_a_time_is_the_last_bar_closed_then_in_either_symbol_spelling(
    served: tuple[httpx.Client, Container],
) -> None:
    client, container = served
    first = int(container.service.recent_candles("BTCUSDT").open_time[0])
    close = first + 100 * 300_000  # bar 99's close
    at = datetime.fromtimestamp((close + 120_000) / 1000, tz=UTC).isoformat()  # 2 minutes on

    unified = client.get("/api/v1/analysis/BTC/USDT:USDT", params={"at": at})

    assert unified.status_code == 200, unified.text
    assert unified.json()["symbol"] == "BTCUSDT"
    assert unified.json()["time"] == close


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/api/v1/analysis/DOGEUSDT", {}, 404, "symbol"),
        ("/api/v1/analysis/BTCUSDT", {"at": "yesterday"}, 422, "at"),
        ("/api/v1/analysis/BTCUSDT", {"at": "2001-01-01"}, 422, "at"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    served: tuple[httpx.Client, Container], path: str, params: dict, status: int, field: str
) -> None:
    client, _ = served

    response = client.get(path, params=params)

    assert response.status_code == status, response.text
    assert response.json()["field"] == field
