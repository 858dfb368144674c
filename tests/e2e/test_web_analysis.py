"""The panel's adaptive-pipeline page (``/analysis``) end to end: a real uvicorn server wired by
``bootstrap`` on the sample, run with the ``adaptive`` strategy until every symbol has a week of
bars and two positions are open, then stopped; the page and its partials are checked against
``GET /api/v1/analysis/{symbol}`` and the domain's own functions on the same bars. A second
server runs ``sma_cross``, a strategy without an adaptive pipeline. One test drives Chromium
over the DevTools protocol to check that the charts render without a console error."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.deps import SESSION_COOKIE, session_value
from domain.allocation import portfolio_metrics
from domain.correlation import correlation_at
from lootcapital.bootstrap import Container, bootstrap, build_app
from lootcapital.settings import Settings
from tests.e2e.devtools import CHROMIUM, DevTools, chromium_page
from tests.e2e.html_elements import by_attr, elements
from tests.e2e.web_fixtures import live_server, sample_server

TOKEN = "e2e-analysis-page-token-0123"
WAIT_S = 120.0
BARS_WANTED = 7_000
"""Bars processed (all symbols) before the checks: over 2,300 a symbol, so a week of hourly
returns in common (the correlation's minimum) and a warm pipeline."""
HELD = {"BTCUSDT": "0.01", "ETHUSDT": "0.2"}
"""Positions the API opens so the diversification ratio has something to measure."""
PARTIALS = [
    "/ui/analysis/symbol/BTCUSDT",
    "/ui/analysis/symbol/BTCUSDT/chart.json",
    "/ui/analysis/portfolio",
    "/ui/analysis/features",
    "/ui/stream?page=analysis",
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Container]]:
    """An ``adaptive`` paper server, run as fast as it goes until :data:`BARS_WANTED` bars,
    then holding :data:`HELD` bought through the API; stopped for the tests."""
    data_dir: Path = tmp_path_factory.mktemp("analysis-page")
    settings = Settings(  # from the first bar: the pipeline's history from its first regime
        data_dir=data_dir, api_token=TOKEN, speed=10_000_000.0, autostart=False, history_days=0
    )
    container = bootstrap(settings)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        live_server(build_app(container)) as url,
        httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=10.0) as api,
    ):
        _run_until(api, BARS_WANTED)
        for symbol, qty in HELD.items():
            order = {"symbol": symbol, "side": "buy", "type": "market", "qty": qty}
            assert api.post("/orders", json=order).status_code == 201
        _run_until(api, api.get("/status").json()["candles_processed"] + len(HELD))
        held = {p["symbol"] for p in api.get("/positions").json()}
        assert held >= set(HELD), f"the orders did not fill: {held}"
        yield url, container


def _run_until(api: httpx.Client, bars: int) -> None:
    """Run the engine until it has processed ``bars`` bars, then stop it."""
    api.post("/engine/start")
    deadline = time.monotonic() + WAIT_S
    while api.get("/status").json()["candles_processed"] < bars:
        assert time.monotonic() < deadline, f"the engine processed fewer than {bars} bars"
        time.sleep(0.02)
    assert api.post("/engine/stop").json()["running"] is False


@pytest.fixture
def base_url(served: tuple[str, Container]) -> str:
    return served[0]


@pytest.fixture
def service(served: tuple[str, Container]) -> Any:
    return served[1].service


@pytest.fixture
def browser(base_url: str) -> Iterator[httpx.Client]:
    """A client logged in through the form, as a browser is."""
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        response = client.post("/login", data={"token": TOKEN})
        assert response.status_code == 303
        client.cookies.set(SESSION_COOKIE, response.cookies[SESSION_COOKIE])
        yield client


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base_url + "/api/v1", headers=headers, timeout=10.0) as client:
        yield client


@pytest.fixture
def symbols(service: Any) -> tuple[str, ...]:
    return service.status().symbols


# -- the page and its access ---------------------------------------------------------------------


def test_the_page_without_a_session_shows_the_login_form(base_url: str) -> None:
    response = httpx.get(base_url + "/analysis", timeout=10)

    assert response.status_code == 200
    assert 'action="/login"' in response.text
    assert "pipeline-symbol" not in response.text


@pytest.mark.parametrize("path", PARTIALS)
def test_the_partials_and_the_chart_refuse_requests_without_the_session_cookie(
    base_url: str, path: str
) -> None:
    response = httpx.get(base_url + path, timeout=10)

    assert response.status_code == 401


def test_the_page_has_a_section_a_chart_and_live_partials_per_traded_symbol(
    browser: httpx.Client, symbols: tuple[str, ...]
) -> None:
    response = browser.get("/analysis")

    assert response.status_code == 200
    html = response.text
    assert 'sse-connect="/ui/stream?page=analysis"' in html
    assert 'href="/analysis" aria-current="page"' in html
    assert "/static/vendor/lightweight-charts.standalone.production.js" in html
    assert 'id="no-pipeline"' not in html
    for symbol in symbols:
        assert f'id="sym-{symbol}"' in html
        assert f'data-src="/ui/analysis/symbol/{symbol}/chart.json"' in html
        assert f'hx-get="/ui/analysis/symbol/{symbol}"' in html
    for name in ("portfolio", "features"):
        assert f'hx-get="/ui/analysis/{name}"' in html
    assert html.count('hx-trigger="load, analysis-refresh from:body"') == len(symbols) + 2


def test_the_other_pages_link_to_the_pipeline_page(browser: httpx.Client) -> None:
    for page in ("/", "/control"):
        assert 'href="/analysis"' in browser.get(page).text


@pytest.mark.parametrize(
    "path",
    [
        "vendor/lightweight-charts.standalone.production.js",
        "vendor/lightweight-charts.LICENSE",
        "analysis.js",
        "analysis.css",
    ],
)
def test_the_page_assets_are_served_locally(base_url: str, path: str) -> None:
    response = httpx.get(f"{base_url}/static/{path}", timeout=10)

    assert response.status_code == 200
    assert len(response.content) > 1_000


def test_the_stream_of_the_page_sends_the_engine_status(browser: httpx.Client) -> None:
    with browser.stream("GET", "/ui/stream", params={"page": "analysis"}) as response:
        assert response.status_code == 200
        names = []
        for line in response.iter_lines():
            if line.startswith("event:"):
                names.append(line.removeprefix("event:").strip())
                break

    assert names == ["status"]


# -- per symbol: the same figures as GET /api/v1/analysis/{symbol} --------------------------------


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
def test_the_symbol_partial_shows_what_the_analysis_api_says_about_the_same_bars(
    browser: httpx.Client, api: httpx.Client, symbol: str
) -> None:
    expected = api.get(f"/analysis/{symbol}").json()

    response = browser.get(f"/ui/analysis/symbol/{symbol}")

    assert response.status_code == 200
    figures = by_attr(response.text, "data-key")
    value = {key: element["attrs"].get("data-value") for key, element in figures.items()}
    assert int(value["time"]) == expected["time"]
    assert float(value["price"]) == expected["price"]
    regime = expected["regime"]
    assert value["regime.current"] == regime["current"]
    assert value["regime.candidate"] == regime["candidate"]
    assert value["regime.since"] == (None if regime["since"] is None else str(regime["since"]))
    for key in ("volatility_percentile", "multiplier", "adx", "rvol"):
        assert float(value[f"thresholds.{key}"]) == expected["thresholds"][key], key
    for key in ("poc", "vah", "val", "bin_width", "total_volume"):
        assert float(value[f"volume_profile.{key}"]) == expected["volume_profile"][key], key
        assert figures[f"volume_profile.{key}"]["text"].strip() not in ("", "—")
    rows = by_attr(response.text, "data-timeframe")
    assert list(rows) == ["5m", "15m", "1h", "4h"]
    for tf, row in rows.items():
        api_row, attrs = expected["timeframes"][tf], row["attrs"]
        assert attrs["data-trend"] == api_row["trend"]
        assert attrs["data-volume-trend"] == api_row["volume_trend"]
        assert float(attrs["data-momentum"]) == api_row["momentum"]
        assert float(attrs["data-volatility"]) == api_row["volatility"]
        assert api_row["trend"].lower() in row["text"]
    (summary,) = by_attr(response.text, "data-aligned").values()
    assert int(summary["attrs"]["data-aligned"]) == expected["timeframes"]["aligned"]
    assert summary["attrs"]["data-direction"] == expected["timeframes"]["direction"]
    assert float(summary["attrs"]["data-confidence"]) == expected["timeframes"]["confidence"]
    reasons = by_attr(response.text, "data-component")
    assert list(reasons) == [r["component"] for r in expected["signal"]["reasons"]]
    for reason in expected["signal"]["reasons"]:
        assert reason["message"] in reasons[reason["component"]]["text"]
    stored = api.get("/pipeline/events", params={"symbol": symbol, "limit": 10}).json()
    shown = [e for e in elements(response.text) if "data-kind" in e["attrs"]]
    assert stored and [int(e["attrs"]["data-time"]) for e in shown] == [e["time"] for e in stored]
    assert all(s["message"] in e["text"] for s, e in zip(stored, shown, strict=True))


def test_an_untraded_symbol_is_not_found(browser: httpx.Client) -> None:
    assert browser.get("/ui/analysis/symbol/DOGEUSDT").status_code == 404
    assert browser.get("/ui/analysis/symbol/DOGEUSDT/chart.json").status_code == 404


def test_the_chart_json_has_the_last_bars_ohlcv_in_seconds_and_the_three_levels(
    browser: httpx.Client, api: httpx.Client, service: Any
) -> None:
    candles = service.recent_candles("BTCUSDT")
    expected = api.get("/analysis/BTCUSDT").json()

    response = browser.get("/ui/analysis/symbol/BTCUSDT/chart.json")

    assert response.status_code == 200
    chart = response.json()
    bars = chart["bars"]
    assert len(bars) == min(500, len(candles))
    last = len(candles) - 1
    assert bars[-1] == {
        "time": int(candles.open_time[last]) // 1000,
        "open": float(candles.open[last]),
        "high": float(candles.high[last]),
        "low": float(candles.low[last]),
        "close": float(candles.close[last]),
        "volume": float(candles.volume[last]),
    }
    assert [b["time"] for b in bars] == sorted({b["time"] for b in bars})
    assert bars[-1]["close"] == expected["price"]
    profile = expected["volume_profile"]
    assert chart["levels"] == {k: profile[k] for k in ("poc", "vah", "val")}
    assert chart["precision"] >= 2


# -- the portfolio ------------------------------------------------------------------------------


def test_the_portfolio_shows_pnl_per_symbol_the_correlation_matrix_and_the_diversification(
    browser: httpx.Client, service: Any, symbols: tuple[str, ...]
) -> None:
    views = service.positions()
    histories = {s: service.recent_candles(s) for s in symbols}
    time_ms = max(int(c.open_time[-1]) for c in histories.values()) + 300_000
    correlation = correlation_at(histories, symbols, time_ms)
    trades = service.trades(limit=10_000).items
    expected = portfolio_metrics(
        equity=service.status().equity,
        positions={v.position.symbol: v.position for v in views},
        marks={v.position.symbol: v.mark_price for v in views},
        trades=trades,
        stops={v.position.symbol: v.position.entry_price for v in views},  # risk not shown
        correlation=correlation,
    )

    response = browser.get("/ui/analysis/portfolio")

    assert response.status_code == 200
    rows = by_attr(response.text, "data-symbol")
    assert [s for s in rows if s != "total"][: len(symbols)] == list(symbols)
    for symbol in symbols:
        assert Decimal(rows[symbol]["attrs"]["data-total"]) == expected.per_symbol_pnl.get(
            symbol, Decimal(0)
        )
    for view in views:
        row = rows[view.position.symbol]["attrs"]
        assert Decimal(row["data-unrealized"]) == view.unrealized_pnl
    assert Decimal(rows["total"]["attrs"]["data-total"]) == expected.total_pnl
    cells = [e for e in elements(response.text) if "data-with" in e["attrs"]]
    assert len(cells) == len(symbols) ** 2
    assert correlation.observations >= 168
    for i, a in enumerate(symbols):
        for j, b in enumerate(symbols):
            cell = cells[i * len(symbols) + j]
            assert cell["attrs"]["data-with"] == b
            assert float(cell["attrs"]["data-value"]) == correlation.get(a, b)
            if a == b:
                assert cell["text"].strip() == "1.00"
    ratio = by_attr(response.text, "data-key")["diversification_ratio"]["attrs"]
    assert float(ratio["data-value"]) == pytest.approx(expected.diversification_ratio, rel=1e-12)
    assert expected.diversification_ratio > 1.0  # two positions, correlation below 1


# -- the features -------------------------------------------------------------------------------


def test_the_feature_panel_lists_each_feature_of_each_symbol_with_its_state(
    browser: httpx.Client, service: Any
) -> None:
    views = service.pipeline_view()

    response = browser.get("/ui/analysis/features")

    assert response.status_code == 200
    assert views, "the adaptive strategy shows its pipeline"
    cells = [e["attrs"] for e in elements(response.text) if "data-feature" in e["attrs"]]
    shown = {(a["data-feature"], a["data-state"], a["data-failures"]) for a in cells}
    assert len(cells) == sum(len(v.features) for v in views)
    for view in views:
        for name, state in view.features.items():
            assert (name, state, str(view.failures.get(name, 0))) in shown
        assert f'<tr data-symbol="{view.symbol}">' in response.text
    assert {a["data-state"] for a in cells} <= {"on", "off", "failed"}


# -- a strategy without a pipeline ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sma_cross(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A logged-in client of a paper server running ``sma_cross``."""
    with (
        sample_server(tmp_path_factory.mktemp("analysis-sma"), TOKEN) as (url, _),
        httpx.Client(base_url=url, timeout=10.0) as client,
    ):
        client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        yield client


def test_a_strategy_without_a_pipeline_gets_a_clear_message_not_an_error(
    sma_cross: httpx.Client,
) -> None:
    page = sma_cross.get("/analysis")
    features = sma_cross.get("/ui/analysis/features")
    symbol = sma_cross.get("/ui/analysis/symbol/BTCUSDT")

    assert page.status_code == 200
    assert 'id="no-pipeline"' in page.text
    assert "has no adaptive pipeline" in page.text and "sma_cross" in page.text
    assert features.status_code == 200
    assert "The strategy sma_cross has no adaptive pipeline" in features.text
    assert "data-feature" not in features.text
    assert symbol.status_code == 200


# -- in a browser -------------------------------------------------------------------------------


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs Chromium (Debian package: chromium; `make test` installs it)",
)
def test_the_charts_render_in_a_browser_without_a_console_error(
    base_url: str, symbols: tuple[str, ...], tmp_path: Path
) -> None:
    with chromium_page(tmp_path / "chromium", width=1400, height=2400) as page:
        state, problems = _load_the_page(page, base_url, len(symbols))

    assert [c["symbol"] for c in state["charts"]] == list(symbols)
    for chart in state["charts"]:
        assert chart["canvases"] > 0, chart
        assert chart["bars"] == "500", chart
        assert chart["levels"] == "poc vah val", chart
    assert state["views"] == len(symbols)
    assert state["features"] > 0
    assert problems == []


def _load_the_page(page: DevTools, base_url: str, count: int) -> tuple[dict[str, Any], list[str]]:
    """Give ``page`` the session cookie, open ``/analysis`` and wait for its charts: what
    :func:`_wait_for_charts` saw and the page's :meth:`~DevTools.problems`."""
    for domain in ("Page", "Runtime", "Log", "Network"):
        page.send(f"{domain}.enable")
    cookie = {"name": SESSION_COOKIE, "value": session_value(TOKEN), "url": base_url}
    page.send("Network.setCookie", **cookie, httpOnly=True, sameSite="Strict")
    page.send("Page.navigate", url=base_url + "/analysis")
    return _wait_for_charts(page, count), page.problems()


CHART_STATE = """JSON.stringify({
  charts: Array.from(document.querySelectorAll('.lwc-chart')).map(function (e) {
    return {symbol: e.dataset.symbol, bars: e.dataset.bars || null,
            levels: e.dataset.levels || null, canvases: e.querySelectorAll('canvas').length};
  }),
  views: document.querySelectorAll('.pipeline-view').length,
  features: document.querySelectorAll('#pipeline-features [data-feature]').length,
})"""


def _wait_for_charts(page: DevTools, count: int) -> dict[str, Any]:
    """The page's charts and partials once every chart has drawn its bars and every symbol's
    partial has loaded (or what there is after 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        raw = page.evaluate(CHART_STATE)
        state = json.loads(raw) if raw else {"charts": [], "views": 0, "features": 0}
        charts = state["charts"]
        done = len(charts) == count and all(c["bars"] for c in charts)
        if (done and state["views"] == count and state["features"]) or (
            time.monotonic() > deadline
        ):
            return state
        time.sleep(0.2)


def test_the_pipelines_history_lists_threshold_adjustments_and_regime_changes(
    served: tuple[str, Container],
) -> None:
    url, _ = served
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)

    response = client.get("/api/v1/pipeline/events", params={"symbol": "BTCUSDT", "limit": 1000})

    assert response.status_code == 200, response.text
    events = response.json()
    assert events and all(e["symbol"] == "BTCUSDT" for e in events)
    assert [e["time"] for e in events] == sorted((e["time"] for e in events), reverse=True)
    regimes = [e for e in events if e["kind"] == "regime"][::-1]
    assert regimes[0]["values"]["from"] is None  # the first regime confirmed
    assert all(a["values"]["to"] == b["values"]["from"] for a, b in itertools.pairwise(regimes))
    adjustments = [e for e in events if e["kind"] == "thresholds"][::-1]
    assert all(
        a["values"]["new_adx"] == b["values"]["old_adx"] for a, b in itertools.pairwise(adjustments)
    )
    assert all(
        e["message"].startswith("BTCUSDT thresholds ADX")
        and 0 <= e["values"]["volatility_pct"] <= 100
        for e in adjustments
    )
    only = client.get("/api/v1/pipeline/events", params={"kind": "regime", "limit": 1000}).json()
    assert {e["kind"] for e in only} == {"regime"}
    assert {e["symbol"] for e in only} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    bad = client.get("/api/v1/pipeline/events", params={"kind": "mood"})
    assert bad.status_code == 422 and "kind" in bad.text
    client.close()
