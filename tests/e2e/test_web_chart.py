"""The price chart page (``/chart``) and its data (``/ui/chart/data``) end to end.

A real uvicorn server wired by ``bootstrap`` on the shipped sample, with the strategy of
:func:`~tests.e2e.web_fixtures.sample_server` (``sma_cross`` 5/20: trades within seconds) at
leverage 5 (so positions have a liquidation price), replayed as fast as it goes until every
symbol has over a week of 5m bars, then stopped; a stop and a take-profit are placed on the
BTCUSDT position through the API. The chart's bars are checked against the sample's file and
:func:`domain.resample.resample`, its markers against ``GET /api/v1/trades``, its lines against
``GET /api/v1/positions`` and ``/orders``. A second server runs ``adaptive`` (volume profile on)
for the POC/VAH/VAL lines. The last tests run the engine again (live updates), one of them in
Chromium at 1280 px and at a phone's 390 px.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.marketdata.binance_csv import read_klines
from api.deps import SESSION_COOKIE, session_value
from domain.resample import resample
from domain.timeframes import timeframe_ms
from lootcapital.bootstrap import Container, bootstrap, build_app
from lootcapital.settings import SAMPLE_DIR, Settings
from tests.e2e.devtools import CHROMIUM, DevTools, chromium_page
from tests.e2e.web_fixtures import live_server

TOKEN = "e2e-price-chart-token-0123"
WAIT_S = 60.0
BARS_WANTED = 6_300
"""Bars processed (all symbols) before the checks: 2,100 a symbol, over a week of 5m bars."""
WEEK_MS = 7 * 86_400_000
PHONE_PX = 390
M5 = 300_000
TICK = Decimal("0.1")
"""BTCUSDT's tick size."""


def _run_until(api: httpx.Client, bars: int) -> None:
    """Run the engine until it has processed ``bars`` bars, then stop it."""
    api.post("/engine/start")
    deadline = time.monotonic() + WAIT_S
    while api.get("/status").json()["candles_processed"] < bars:
        assert time.monotonic() < deadline, f"the engine processed fewer than {bars} bars"
        time.sleep(0.02)
    assert api.post("/engine/stop").json()["running"] is False


def _exits(position: dict[str, Any]) -> list[dict[str, Any]]:
    """A reduce-only stop 5 % on the losing side of ``position``'s mark and a take-profit 5 %
    on its winning side."""
    sign = 1 if position["side"] == "long" else -1
    mark = Decimal(position["mark_price"])
    common = {"symbol": position["symbol"], "side": "sell" if sign > 0 else "buy"}
    common |= {"qty": position["qty"].lstrip("-"), "reduce_only": True}
    return [
        common | {"type": kind, "stop_price": str((mark * (1 + sign * move)).quantize(TICK))}
        for kind, move in (("stop", Decimal("-0.05")), ("take_profit", Decimal("0.05")))
    ]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Container]]:
    """The ``sma_cross`` server, run to :data:`BARS_WANTED` bars, stopped, its BTCUSDT position
    with a working stop and take-profit."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("chart"),
        api_token=TOKEN,
        speed=10_000_000.0,
        autostart=False,
        strategy="sma_cross",
        strategy_params={"fast": 5, "slow": 20},
        leverage=5,
    )
    container = bootstrap(settings)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        live_server(build_app(container)) as url,
        httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=10.0) as api,
    ):
        _run_until(api, BARS_WANTED)
        (position,) = [p for p in api.get("/positions").json() if p["symbol"] == "BTCUSDT"]
        for order in _exits(position):
            placed = api.post("/orders", json=order)
            assert placed.status_code == 201 and placed.json()["status"] == "new", placed.text
        yield url, container


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


def chart(browser: httpx.Client, symbol: str = "BTCUSDT", **params: Any) -> dict[str, Any]:
    response = browser.get("/ui/chart/data", params={"symbol": symbol} | params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    data: dict[str, Any] = response.json()
    return data


def as_rows(candles: Any) -> list[dict[str, float | int]]:
    """``candles`` as the chart's bars should be: open time in seconds, OHLCV as floats."""
    names = ("open", "high", "low", "close", "volume")
    return [
        {"time": int(candles.open_time[i]) // 1000}
        | {name: float(getattr(candles, name)[i]) for name in names}
        for i in range(len(candles))
    ]


# -- the page and its access ---------------------------------------------------------------------


def test_the_page_without_a_session_shows_the_login_form(base_url: str) -> None:
    response = httpx.get(base_url + "/chart", timeout=10)

    assert response.status_code == 200
    assert 'action="/login"' in response.text
    assert "price-chart" not in response.text


def test_the_data_refuses_requests_without_the_session_cookie(base_url: str) -> None:
    response = httpx.get(base_url + "/ui/chart/data", params={"symbol": "BTCUSDT"}, timeout=10)

    assert response.status_code == 401


def test_the_page_has_the_chart_the_pickers_and_the_vendored_script(
    browser: httpx.Client,
) -> None:
    response = browser.get("/chart")

    assert response.status_code == 200
    html = response.text
    assert 'href="/chart" aria-current="page"' in html
    assert 'sse-connect="/ui/stream?page=chart"' in html
    assert '<script src="/static/vendor/lightweight-charts.standalone.production.js"' in html
    assert '<script src="/static/chart.js"' in html and "/static/chart.css" in html
    assert 'data-src="/ui/chart/data?symbol=BTCUSDT&amp;timeframe=5m"' in html
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        assert f'<option value="{symbol}"' in html
    for tf in ("5m", "15m", "1h", "4h"):
        assert f'href="/chart/BTCUSDT?timeframe={tf}" data-timeframe="{tf}"' in html
    assert "cdn" not in html.lower()
    assert "TradingView Lightweight Charts, Copyright (c) 2023 TradingView, Inc." in html


def test_a_symbol_and_timeframe_of_the_path_are_the_ones_shown(browser: httpx.Client) -> None:
    response = browser.get("/chart/ETHUSDT", params={"timeframe": "4h"})

    assert response.status_code == 200
    assert '<option value="ETHUSDT" selected>' in response.text
    assert 'data-timeframe="4h" aria-current="page"' in response.text
    assert 'data-src="/ui/chart/data?symbol=ETHUSDT&amp;timeframe=4h"' in response.text


def test_the_other_pages_link_to_the_chart(browser: httpx.Client) -> None:
    for page in ("/", "/control", "/analysis", "/ai"):
        assert 'href="/chart"' in browser.get(page).text, page


@pytest.mark.parametrize(
    ("path", "params", "code", "field"),
    [
        ("/ui/chart/data", {"symbol": "BTCUSDT", "timeframe": "2h"}, 422, "timeframe"),
        ("/ui/chart/data", {"symbol": "DOGEUSDT"}, 404, "symbol"),
        ("/ui/chart/data", {"symbol": "not a symbol!"}, 404, "symbol"),
        ("/ui/chart/data", {}, 422, "symbol"),
        ("/ui/chart/data", {"symbol": "BTCUSDT", "since": "-1"}, 422, "since"),
        ("/chart", {"symbol": "DOGEUSDT"}, 404, "symbol"),
        ("/chart/BTCUSDT", {"timeframe": "1d"}, 422, "timeframe"),
    ],
)
def test_a_bad_timeframe_or_symbol_is_refused_naming_the_field(
    browser: httpx.Client, path: str, params: dict[str, str], code: int, field: str
) -> None:
    response = browser.get(path, params=params)

    assert response.status_code == code, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    "asset", ["vendor/lightweight-charts.standalone.production.js", "chart.js", "chart.css"]
)
def test_the_page_assets_are_served_locally(base_url: str, asset: str) -> None:
    response = httpx.get(f"{base_url}/static/{asset}", timeout=10)

    assert response.status_code == 200 and len(response.content) > 1_000


# -- bars ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["BTCUSDT", "SOLUSDT"])
def test_the_5m_bars_are_the_samples_bars_over_more_than_a_week(
    browser: httpx.Client, service: Any, symbol: str
) -> None:
    stored = read_klines(SAMPLE_DIR / f"binance_usdm_{symbol}_5m.csv.gz")

    data = chart(browser, symbol)

    bars = data["bars"]
    first, last = bars[0]["time"] * 1000, bars[-1]["time"] * 1000
    assert last - first >= WEEK_MS
    assert (data["first_time"], data["last_time"]) == (first, last)
    assert last == int(service.recent_candles(symbol).open_time[-1])
    assert bars == as_rows(stored.between(first, last + 1))
    assert data["tf_s"] == 300 and data["precision"] == {"BTCUSDT": 1, "SOLUSDT": 2}[symbol]


@pytest.mark.parametrize("timeframe", ["15m", "1h", "4h"])
def test_higher_timeframes_are_the_engines_bars_resampled(
    browser: httpx.Client, service: Any, timeframe: str
) -> None:
    expected = resample(service.recent_candles("ETHUSDT"), M5, timeframe_ms(timeframe))

    data = chart(browser, "ETHUSDT", timeframe=timeframe)

    assert len(data["bars"]) > 0
    assert data["bars"] == as_rows(expected)[-len(data["bars"]) :]
    assert data["last_time"] == int(expected.open_time[-1])
    assert data["tf_s"] == timeframe_ms(timeframe) // 1000


def test_the_bars_are_those_of_the_candles_api(browser: httpx.Client, api: httpx.Client) -> None:
    candles = api.get("/candles", params={"symbol": "BTCUSDT", "timeframe": "1h"}).json()

    bars = chart(browser, timeframe="1h")["bars"]

    n = min(len(bars), len(candles))  # the chart loads 14 days, the API pages 500 bars
    assert n >= 7 * 24
    assert [b["time"] * 1000 for b in bars[-n:]] == [c["open_time"] for c in candles[-n:]]
    assert [b["close"] for b in bars[-n:]] == [float(c["close"]) for c in candles[-n:]]


def test_since_gives_the_bar_opening_then_and_the_newer_ones(browser: httpx.Client) -> None:
    full = chart(browser, timeframe="15m")
    last = full["last_time"]

    same = chart(browser, timeframe="15m", since=last)
    three = chart(browser, timeframe="15m", since=last - 2 * 900_000)

    assert same["bars"] == full["bars"][-1:]
    assert three["bars"] == full["bars"][-3:]
    assert same["markers"] == full["markers"] and same["lines"] == full["lines"]


# -- markers and lines --------------------------------------------------------------------------


@pytest.mark.parametrize("timeframe", ["5m", "1h"])
def test_the_markers_are_the_stored_trades_entries_and_exits(
    browser: httpx.Client, api: httpx.Client, timeframe: str
) -> None:
    trades = api.get("/trades", params={"symbol": "BTCUSDT", "limit": 1000}).json()
    tf_s = timeframe_ms(timeframe) // 1000

    data = chart(browser, timeframe=timeframe)

    first, last = data["first_time"] // 1000, data["last_time"] // 1000
    expected = set()
    for t in trades:
        long = t["side"] == "long"
        for kind, side in (
            ("entry", "buy" if long else "sell"),
            ("exit", "sell" if long else "buy"),
        ):
            at = t[f"{kind}_time"]
            if first <= at // 1000 // tf_s * tf_s <= last:
                expected.add((t["id"], kind, at, float(t[f"{kind}_price"]), side))
    closed = {(m["trade"], m["kind"], m["at"], m["price"], m["side"]) for m in data["markers"]}
    closed -= {m for m in closed if m[0] is None}
    assert len(expected) > 100
    assert closed == expected
    assert all(m["time"] == m["at"] // 1000 // tf_s * tf_s for m in data["markers"])
    assert all(first <= m["time"] <= last for m in data["markers"])
    assert [m["time"] for m in data["markers"]] == sorted(m["time"] for m in data["markers"])


def test_the_open_position_is_marked_at_its_entry_fills(
    browser: httpx.Client, api: httpx.Client
) -> None:
    (position,) = [p for p in api.get("/positions").json() if p["symbol"] == "BTCUSDT"]

    markers = [m for m in chart(browser)["markers"] if m["trade"] is None]

    side = "buy" if position["side"] == "long" else "sell"
    assert markers and all(m["kind"] == "entry" and m["side"] == side for m in markers)
    assert markers[0]["at"] == position["opened_time"]


def test_the_lines_are_the_open_positions_entry_stop_take_profit_and_liquidation(
    browser: httpx.Client, api: httpx.Client
) -> None:
    (position,) = [p for p in api.get("/positions").json() if p["symbol"] == "BTCUSDT"]
    working = api.get("/orders", params={"symbol": "BTCUSDT", "status": "new"}).json()
    exits = {o["type"]: o for o in working if o["type"] in ("stop", "take_profit")}

    data = chart(browser, timeframe="4h")

    lines = {line["kind"]: line for line in data["lines"]}
    assert set(lines) == {"entry", "stop", "take_profit", "liquidation"}
    assert lines["entry"]["price"] == float(position["entry_price"])
    assert lines["liquidation"]["price"] == float(position["liquidation_price"])
    for kind in ("stop", "take_profit"):
        assert lines[kind]["price"] == float(exits[kind]["stop_price"])
        assert lines[kind]["order"] == exits[kind]["id"]
    assert data["position"]["side"] == position["side"]
    assert Decimal(data["position"]["entry"]) == Decimal(position["entry_price"])


def test_a_strategy_without_a_volume_profile_draws_no_levels(browser: httpx.Client) -> None:
    data = chart(browser)

    assert data["levels"] is None and data["profile"] is None


@pytest.fixture(scope="module")
def adaptive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Any]]:
    """A logged-in client and a REST client of an ``adaptive`` server (volume profile on), run
    to 1,200 bars (over a day a symbol: the profile's minimum) and stopped."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("chart-adaptive"),
        api_token=TOKEN,
        speed=10_000_000.0,
        autostart=False,
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        live_server(build_app(bootstrap(settings))) as url,
        httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=10.0) as api,
        httpx.Client(base_url=url, timeout=10.0) as web,
    ):
        _run_until(api, 1_200)
        web.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        yield web, api


def test_the_volume_profiles_levels_are_those_of_the_analysis_api(
    adaptive: tuple[httpx.Client, httpx.Client],
) -> None:
    web, api = adaptive
    profile = api.get("/analysis/BTCUSDT").json()["volume_profile"]

    data = chart(web, timeframe="1h")

    assert data["profile"] == "on"
    assert data["levels"] == {k: profile[k] for k in ("poc", "vah", "val")}
    assert data["levels"]["val"] <= data["levels"]["poc"] <= data["levels"]["vah"]


# -- live: the engine runs again -----------------------------------------------------------------


def test_bars_and_markers_after_the_chart_s_last_bar_come_with_since(
    browser: httpx.Client, api: httpx.Client, service: Any
) -> None:
    before = chart(browser)
    done = api.get("/status").json()["candles_processed"]

    _run_until(api, done + 300)
    newer = chart(browser, since=before["last_time"])

    candles = service.recent_candles("BTCUSDT")
    assert newer["bars"][0] == before["bars"][-1]
    assert len(newer["bars"]) >= 90
    assert newer["bars"] == as_rows(candles.between(before["last_time"], None))
    assert len(newer["markers"]) > len(before["markers"])


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs Chromium (Debian package: chromium; `make test` installs it)",
)
def test_the_chart_draws_at_1280_px_and_on_a_phone_and_follows_the_engine(
    browser: httpx.Client, api: httpx.Client, base_url: str, tmp_path: Path
) -> None:
    expected = chart(browser, "SOLUSDT", timeframe="15m")
    with chromium_page(tmp_path / "chromium", width=1280, height=900) as page:
        wide = _open_chart(page, base_url, "/chart/SOLUSDT?timeframe=15m")
        page.send("Emulation.setDeviceMetricsOverride", width=PHONE_PX, height=844,
                  deviceScaleFactor=3, mobile=True)  # fmt: skip
        phone = _open_chart(page, base_url, "/chart/SOLUSDT?timeframe=15m")
        done = api.get("/status").json()["candles_processed"]
        _run_until(api, done + 600)
        later = _wait_for(page, lambda s: s["lastTime"] and s["lastTime"] > phone["lastTime"])
        problems = page.problems()

    for drawn, width in ((wide, 1280), (phone, PHONE_PX)):
        assert drawn["canvases"] > 0 and drawn["width"] > 0 and drawn["height"] > 0, drawn
        assert drawn["width"] <= width and drawn["pageWidth"] <= width, drawn
        assert drawn["candles"] == len(expected["bars"]) == int(drawn["attrs"]["candles"])
        assert drawn["markers"] == len(expected["markers"]) == int(drawn["attrs"]["markers"])
        assert drawn["markers"] > 0
        lines = sorted(line["kind"] for line in expected["lines"])
        assert sorted(line["kind"] for line in drawn["lines"]) == lines
    assert wide["width"] > 1000
    assert later["candles"] > phone["candles"] and later["loads"] > phone["loads"]
    assert problems == []


CHART_STATE = """(function () {
  var el = document.getElementById('price-chart');
  var c = window.lootChart || {};
  var canvas = el ? el.querySelector('canvas') : null;
  var box = canvas ? canvas.getBoundingClientRect() : {width: 0, height: 0};
  return JSON.stringify({
    candles: c.candles || 0, markers: c.markers || 0, lines: c.lines || [],
    lastTime: c.lastTime || null, loads: c.loads || 0, old: !!window.chartTestOld,
    canvases: el ? el.querySelectorAll('canvas').length : 0,
    width: el ? el.getBoundingClientRect().width : 0, height: box.height,
    pageWidth: document.documentElement.scrollWidth,
    attrs: el ? {candles: el.dataset.candles, markers: el.dataset.markers} : {},
  });
})()"""


def _open_chart(page: DevTools, base_url: str, path: str) -> dict[str, Any]:
    """Open ``path`` with the session cookie and wait for the chart's first drawing there."""
    cookie = {"name": SESSION_COOKIE, "value": session_value(TOKEN), "url": base_url}
    page.send("Network.setCookie", **cookie, httpOnly=True, sameSite="Strict")
    page.evaluate("window.chartTestOld = true")  # the page being left
    page.send("Page.navigate", url=base_url + path)
    return _wait_for(page, lambda s: not s["old"] and s["candles"] > 0)


NOT_YET = {"candles": 0, "lastTime": None, "loads": 0, "old": True}
"""The state while the page is loading (no script runs yet)."""


def _wait_for(page: DevTools, done: Any, limit_s: float = 30.0) -> dict[str, Any]:
    """The chart's state once ``done(state)`` (fails after ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while True:
        raw = page.evaluate(CHART_STATE)
        state: dict[str, Any] = json.loads(raw) if raw else NOT_YET
        if done(state):
            return state
        assert time.monotonic() < deadline, f"the chart did not get there: {state}"
        time.sleep(0.1)
