"""The AI signal page's strategy calls (``/ai``, ``/ui/ai/strategy``) end to end, with the
defaults ``make run`` uses: a real uvicorn server wired by ``bootstrap`` runs the ``adaptive``
strategy with ML off on the shipped sample (BTCUSDT, ETHUSDT, SOLUSDT, 14 days of history)
until it has stored a dozen calls, some of them older than the 4-hour outcome horizon, then
stops. Each symbol's latest call, the last 10 calls and their outcomes are checked against the
stored signals (``GET /api/v1/signals``) and bars (``GET /api/v1/candles``); Chromium loads
the page at a phone's width."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.deps import SESSION_COOKIE, session_value
from lootcapital.bootstrap import bootstrap, build_app
from lootcapital.settings import Settings
from tests.e2e.devtools import CHROMIUM, chromium_page
from tests.e2e.html_elements import elements, inside, with_class
from tests.e2e.web_fixtures import live_server

TOKEN = "e2e-ai-strategy-token-0123456789"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
CALLS = 12
"""Strategy calls the replay runs for (the list shows 10)."""
WAIT_S = 120.0
M5, H4 = 300_000, 4 * 3_600_000
ACTIONS = {"long": "buy", "short": "sell", "flat": "hold"}


def _calls(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """The stored signals that are strategy calls (not only a failed feature's report),
    newest first, with the failed features' reasons left out."""
    out = []
    for signal in api.get("/signals", params={"limit": 1000, **params}).json():
        reasons = [r for r in signal["reasons"] if r["component"] != "isolation"]
        if reasons:
            out.append(signal | {"reasons": reasons})
    return out


def _action(signal: dict[str, Any]) -> str:
    if any(r["component"] == "exits" for r in signal["reasons"]):
        return "close" if signal["direction"] == "flat" else "keep"
    return ACTIONS[signal["direction"]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server of the module docstring, stopped once it has :data:`CALLS` calls and one of
    the latest 10 is at least 4 hours old."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("ai-strategy"),
        api_token=TOKEN,
        speed=10_000_000.0,
        autostart=False,
    )
    assert settings.strategy == "adaptive" and not settings.strategy_params.get("ml")
    container = bootstrap(settings)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        live_server(build_app(container)) as url,
        httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=10.0) as api,
    ):
        api.post("/engine/start")
        deadline = time.monotonic() + WAIT_S
        while True:
            status = api.get("/status").json()
            calls = _calls(api)
            if len(calls) >= CALLS and calls[9]["time"] + H4 <= status["clock_time"]:
                break
            assert status["running"], "the data ended before enough strategy calls"
            assert time.monotonic() < deadline, f"{len(calls)} strategy calls in {WAIT_S} s"
            time.sleep(0.05)
        assert api.post("/engine/stop").json()["running"] is False
        yield url


@pytest.fixture
def browser(served: str) -> Iterator[httpx.Client]:
    """A client with the session cookie, as a logged-in browser."""
    with httpx.Client(base_url=served, timeout=10.0) as client:
        client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        yield client


@pytest.fixture
def api(served: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=served + "/api/v1", headers=headers, timeout=10.0) as client:
        yield client


def _reasons(found: list[dict[str, Any]], element: dict[str, Any]) -> list[tuple[str, str]]:
    """The (component, message) pairs listed inside ``element``."""
    return [
        (e["attrs"]["data-component"], e["text"].removeprefix(e["attrs"]["data-component"]).strip())
        for e in inside(found, element)
        if e["tag"] == "li" and "data-component" in e["attrs"]
    ]


def _classed(found: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The elements of ``found`` whose ``class`` list has ``name``."""
    return [e for e in found if name in (e["attrs"].get("class") or "").split()]


def _close(api: httpx.Client, symbol: str, close_time: int) -> float | None:
    """The close of ``symbol``'s bar closing at ``close_time``, from ``GET /candles``."""
    bars = api.get(
        "/candles", params={"symbol": symbol, "start": close_time - M5, "end": close_time - M5}
    ).json()
    return float(bars[0]["close"]) if bars else None


def test_the_partial_needs_the_session_cookie(served: str) -> None:
    assert httpx.get(served + "/ui/ai/strategy", timeout=10).status_code == 401


def test_without_ml_the_page_puts_the_strategy_calls_first(browser: httpx.Client) -> None:
    html = browser.get("/ai").text

    assert 'id="no-ml"' in html and "adaptive" in html
    assert 'hx-get="/ui/ai/strategy"' in html
    assert html.index('id="ai-strategy"') < html.index('id="ai-symbols"')


def test_each_symbol_shows_the_strategys_latest_call_and_entry_decision_with_their_reasons(
    browser: httpx.Client, api: httpx.Client
) -> None:
    calls = {s: _calls(api, symbol=s) for s in SYMBOLS}
    latest = {s: c[0] for s, c in calls.items()}
    entries = {
        s: [c for c in found if _action(c) in ACTIONS.values()] for s, found in calls.items()
    }
    clock = api.get("/status").json()["clock_time"]

    response = browser.get("/ui/ai/strategy")

    assert response.status_code == 200
    with_entry = 0
    found = elements(response.text)
    cards = {e["attrs"]["data-symbol"]: e for e in with_class(response.text, "strategy-card")}
    assert list(cards) == SYMBOLS
    for symbol, signal in latest.items():
        (call,) = _classed(inside(found, cards[symbol]), "strategy-call")
        attrs = call["attrs"]
        assert int(attrs["data-time"]) == signal["time"]
        assert attrs["data-direction"] == signal["direction"]
        assert float(attrs["data-confidence"]) == signal["confidence"]
        assert attrs["data-action"] == _action(signal)
        assert _reasons(found, call) == [(r["component"], r["message"]) for r in signal["reasons"]]
        if signal["time"] < clock:
            assert "no decision since" in call["text"]
        shown = _classed(inside(found, cards[symbol]), "strategy-entry")
        if _action(signal) in ACTIONS.values() or not entries[symbol]:
            assert shown == []
            continue
        (entry,) = shown
        decision = entries[symbol][0]
        assert int(entry["attrs"]["data-time"]) == decision["time"]
        assert entry["attrs"]["data-action"] == _action(decision)
        assert float(entry["attrs"]["data-confidence"]) == decision["confidence"]
        assert _reasons(found, entry) == [
            (r["component"], r["message"]) for r in decision["reasons"]
        ]
        with_entry += 1
    assert with_entry >= 1


def test_the_list_shows_the_last_ten_calls_with_outcomes_from_the_stored_bars(
    browser: httpx.Client, api: httpx.Client
) -> None:
    expected = _calls(api)[:10]
    clock = api.get("/status").json()["clock_time"]

    response = browser.get("/ui/ai/strategy")

    found = elements(response.text)
    rows, explained = _classed(found, "strategy-signal"), _classed(found, "strategy-explain")
    assert len(rows) == len(explained) == 10
    components = {r["component"] for s in expected for r in s["reasons"]}
    assert {"timeframes", "regime", "thresholds", "volume_profile", "exits"} <= components
    judged = 0
    for row, explain, signal in zip(rows, explained, expected, strict=True):
        attrs = row["attrs"]
        assert (int(attrs["data-time"]), attrs["data-symbol"]) == (signal["time"], signal["symbol"])
        assert attrs["data-direction"] == signal["direction"]
        assert float(attrs["data-confidence"]) == signal["confidence"]
        assert attrs["data-action"] == _action(signal)
        assert _reasons(found, explain) == [
            (r["component"], r["message"]) for r in signal["reasons"]
        ]
        entry = _close(api, signal["symbol"], signal["time"])
        assert entry is not None and float(attrs["data-entry"]) == entry
        if signal["time"] + H4 > clock:
            assert attrs["data-outcome"] == "pending"
            continue
        exit_ = _close(api, signal["symbol"], signal["time"] + H4)
        assert exit_ is not None and float(attrs["data-exit"]) == exit_
        assert float(attrs["data-move"]) == pytest.approx(exit_ / entry - 1, rel=1e-12)
        verdict = {
            "buy": "right" if exit_ > entry else "wrong",
            "sell": "right" if exit_ < entry else "wrong",
        }.get(attrs["data-action"], "hold")
        assert attrs["data-outcome"] == verdict
        judged += 1
    assert judged >= 1
    (tally,) = with_class(response.text, "ai-tally")
    outcomes = [r["attrs"]["data-outcome"] for r in rows]
    for status in ("right", "wrong", "pending", "hold"):
        assert int(tally["attrs"][f"data-{status}"]) == outcomes.count(status)


PAGE_STATE = """JSON.stringify({
  cards: document.querySelectorAll('#ai-strategy .strategy-card .strategy-call').length,
  rows: document.querySelectorAll('#ai-strategy tr.strategy-signal').length,
  overflow: document.documentElement.scrollWidth - window.innerWidth,
})"""


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs Chromium (Debian package: chromium; `make test` installs it)",
)
def test_the_strategy_calls_render_in_a_browser_at_a_phones_width(
    served: str, tmp_path: Path
) -> None:
    with chromium_page(tmp_path / "chromium") as page:
        page.send(
            "Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2,
            mobile=True,
        )  # fmt: skip
        cookie = {"name": SESSION_COOKIE, "value": session_value(TOKEN), "url": served}
        page.send("Network.setCookie", **cookie, httpOnly=True, sameSite="Strict")
        page.send("Page.navigate", url=served + "/ai")
        deadline = time.monotonic() + WAIT_S
        state: dict[str, Any] = {}
        while not (state and state["cards"] == len(SYMBOLS) and state["rows"] == 10):
            assert time.monotonic() < deadline, f"the strategy calls did not load: {state}"
            time.sleep(0.1)
            raw = page.evaluate(PAGE_STATE)
            state = json.loads(raw) if raw else {}
        problems = page.problems()

    assert state["overflow"] <= 0
    assert problems == []
