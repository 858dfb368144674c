"""The candlestick chart of a backtest's result (``/ui/backtests/{id}/chart?symbol=``) on a
real uvicorn server with the shipped sample: the stored bars the backtest ran on, read again
from the candle store, with an entry and an exit marker per trade on the bars holding their
fills; the session needed, refusals naming their field. And the chart's builder on more bars
than a chart draws (the team's data): resampled to a longer timeframe, the markers with them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from api.deps import SESSION_COOKIE, session_value
from domain.timeframes import timeframe_ms
from tests.e2e.web_fixtures import sample_server
from tests.fixtures.data import load_candles, load_sample_candles
from web.backtest_views import MAX_BARS, candle_chart

TOKEN = "e2e-backtest-chart-token-0123456789"
START = 1_759_276_800_000  # 2025-10-01 00:00 UTC
DAY_MS = 86_400_000
BODY = {"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "symbols": ["BTCUSDT"],
        "start": START, "end": START + 2 * DAY_MS}  # fmt: skip
WAIT_S = 60.0


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sample_server(tmp_path_factory.mktemp("e2e-backtest-chart"), TOKEN) as (url, container):
        container.service.stop()
        yield url


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[httpx.Client]:
    """A client with the session cookie, as a logged-in browser."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        yield client


@pytest.fixture(scope="module")
def api(base_url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base_url + "/api/v1", headers=headers, timeout=30.0) as client:
        yield client


def _run(api: httpx.Client, **change: Any) -> dict[str, Any]:
    response = api.post("/backtests", json={**BODY, **change})
    assert response.status_code == 202, response.text
    backtest_id = response.json()["id"]
    deadline = time.monotonic() + WAIT_S
    while (body := api.get(f"/backtests/{backtest_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, f"backtest {backtest_id} still running"
        time.sleep(0.05)
    assert body["status"] == "done", body
    return body


@pytest.fixture(scope="module")
def backtest(api: httpx.Client) -> dict[str, Any]:
    """Two days of BTCUSDT 5m bars with ``sma_cross(5, 20)``, done."""
    return _run(api)


def _bar_of(times_s: np.ndarray, at_ms: int) -> int:
    """Open (s) of the bar among ``times_s`` holding a fill at ``at_ms``."""
    return int(times_s[np.searchsorted(times_s, at_ms // 1000, side="right") - 1])


def test_the_chart_has_the_stored_bars_the_backtest_ran_on(
    browser: httpx.Client, backtest: dict[str, Any]
) -> None:
    response = browser.get(f"/ui/backtests/{backtest['id']}/chart", params={"symbol": "BTCUSDT"})

    assert response.status_code == 200
    chart = response.json()
    stored = load_sample_candles("BTCUSDT").between(START, START + 2 * DAY_MS)
    assert (chart["symbol"], chart["timeframe"], chart["tf_s"]) == ("BTCUSDT", "5m", 300)
    assert [b["time"] for b in chart["bars"]] == (stored.open_time // 1000).tolist()
    assert [b["close"] for b in chart["bars"]] == stored.close.tolist()
    assert [b["volume"] for b in chart["bars"]] == stored.volume.tolist()
    assert (chart["first_time"], chart["last_time"]) == (START, START + 2 * DAY_MS - 300_000)
    assert chart["precision"] == 1  # BTCUSDT's tick: 0.1


def test_each_trade_has_an_entry_and_an_exit_marker_on_the_bars_of_its_fills(
    browser: httpx.Client, backtest: dict[str, Any]
) -> None:
    chart = browser.get(
        f"/ui/backtests/{backtest['id']}/chart", params={"symbol": "BTCUSDT"}
    ).json()

    trades = backtest["trades"]
    times = np.array([b["time"] for b in chart["bars"]])
    entries = [m for m in chart["markers"] if m["kind"] == "entry"]
    exits = [m for m in chart["markers"] if m["kind"] == "exit"]
    assert chart["trades"] == len(trades) > 0
    assert len(entries) == len(exits) == len(trades)
    for number, trade in enumerate(trades, start=1):
        (entry,) = [m for m in entries if m["trade"] == number]
        (exit_,) = [m for m in exits if m["trade"] == number]
        assert entry["price"] == float(trade["entry_price"])
        assert entry["time"] == _bar_of(times, trade["entry_time"])
        assert entry["side"] == ("buy" if trade["side"] == "long" else "sell")
        assert exit_["price"] == float(trade["exit_price"])
        assert exit_["time"] == _bar_of(times, trade["exit_time"])
        assert (exit_["reason"], exit_["pnl"]) == (trade["exit_reason"], trade["pnl"])
    order = [(m["time"], m["at"]) for m in chart["markers"]]
    assert order == sorted(order)


def test_a_15m_backtest_draws_its_15m_bars(browser: httpx.Client, api: httpx.Client) -> None:
    backtest = _run(api, timeframe="15m", symbols=["ETHUSDT"])

    chart = browser.get(
        f"/ui/backtests/{backtest['id']}/chart", params={"symbol": "ETHUSDT"}
    ).json()

    times = [b["time"] for b in chart["bars"]]
    assert (chart["timeframe"], chart["tf_s"], len(times)) == ("15m", 900, 2 * 96)
    assert set(np.diff(times).tolist()) == {900}
    assert len(chart["markers"]) == 2 * len(backtest["trades"])


def test_the_chart_needs_the_session(base_url: str, backtest: dict[str, Any]) -> None:
    url = f"{base_url}/ui/backtests/{backtest['id']}/chart?symbol=BTCUSDT"

    assert httpx.get(url).status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("{id}/chart", {"symbol": "ETHUSDT"}, 404, "symbol"),  # not in this backtest
        ("{id}/chart", {"symbol": "not a symbol"}, 404, "symbol"),
        ("{id}/chart", {}, 422, "symbol"),
        ("{id}/chart", {"symbol": ""}, 422, "symbol"),
        ("0123456789abcdef/chart", {"symbol": "BTCUSDT"}, 404, "id"),
        ("NOT-AN-ID/chart", {"symbol": "BTCUSDT"}, 422, "backtest_id"),
    ],
)
def test_a_refused_chart_names_its_field(
    browser: httpx.Client,
    backtest: dict[str, Any],
    path: str,
    params: dict[str, str],
    status: int,
    field: str,
) -> None:
    response = browser.get("/ui/backtests/" + path.format(id=backtest["id"]), params=params)

    assert response.status_code == status, response.text
    assert response.json()["field"] == field


def test_more_bars_than_a_chart_draws_are_resampled_with_their_markers() -> None:
    bars = load_candles("binance_usdm_BNBUSDT_5m.csv.gz").slice(0, MAX_BARS + 5_000)
    t = bars.open_time
    trades = [
        {"symbol": "BNBUSDT", "side": "long", "entry_time": int(t[100]) + 300_000,
         "entry_price": "300.10", "exit_time": int(t[9_000]), "exit_price": "310.20",
         "exit_reason": "stop", "pnl": "10.00"},
        {"symbol": "ETHUSDT", "side": "short", "entry_time": int(t[50]), "entry_price": "1.0",
         "exit_time": int(t[60]), "exit_price": "1.0", "exit_reason": "signal", "pnl": "0"},
    ]  # fmt: skip

    chart = candle_chart("BNBUSDT", bars, "5m", trades)

    quarter = timeframe_ms("15m") // 1000
    times = [b["time"] for b in chart["bars"]]
    assert (chart["timeframe"], chart["backtest_timeframe"]) == ("15m", "5m")
    assert chart["tf_s"] == quarter
    assert len(times) <= MAX_BARS and set(np.diff(times).tolist()) == {quarter}
    entry, exit_ = chart["markers"]
    assert entry["time"] == (int(t[100]) + 300_000) // 1000 // quarter * quarter
    assert exit_["time"] == int(t[9_000]) // 1000 // quarter * quarter
    assert (entry["trade"], exit_["reason"], chart["trades"]) == (1, "stop", 1)
    assert chart["precision"] == 2  # the trades' prices' decimals
