"""End to end: the backtests page (``/backtests``) on a real uvicorn server with the shipped
sample: the page and its partials need the session, the form starts a backtest through the
API's checks (a refusal next to its field), the result shows the API's metrics with the chart
data of its equity, drawdown and trades, past backtests are listed and compare side by side;
in headless Chromium, a backtest run from the form moves its bar with the WebSocket's pushes to
its result with every chart drawn, two ticked backtests compare with their curves overlaid,
and the page fits desktop and phone widths. Backtests are two days of 5m bars."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.deps import SESSION_COOKIE, session_value
from tests.e2e.devtools import CHROMIUM, DevTools, chromium_page
from tests.e2e.web_fixtures import sample_server

TOKEN = "e2e-backtests-page-token-0123456789"
START = 1_759_276_800_000  # 2025-10-01 00:00 UTC
DAY_MS = 86_400_000
BODY = {"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "symbols": ["BTCUSDT"],
        "start": START, "end": START + 2 * DAY_MS}  # fmt: skip
FORM = {"strategy": "sma_cross", "param.fast": "5", "param.slow": "20", "symbols": "ETHUSDT",
        "timeframe": "15m", "start": "2025-10-01", "end": "2025-10-03"}  # fmt: skip
WAIT_S = 60.0
PARTIALS = ["/ui/backtests/list", "/ui/backtests/params?strategy=adaptive", "/ui/backtests/job"]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sample_server(tmp_path_factory.mktemp("e2e-backtests-page"), TOKEN) as (url, container):
        container.service.stop()
        yield url


@pytest.fixture
def browser(base_url: str) -> Iterator[httpx.Client]:
    """A client with the session cookie, as a logged-in browser."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        yield client


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base_url + "/api/v1", headers=headers, timeout=30.0) as client:
        yield client


def _done(api: httpx.Client, backtest_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while (body := api.get(f"/backtests/{backtest_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, f"backtest {backtest_id} still running"
        time.sleep(0.05)
    return body


def _run(api: httpx.Client, **change: Any) -> dict[str, Any]:
    response = api.post("/backtests", json={**BODY, **change})
    assert response.status_code == 202, response.text
    return _done(api, response.json()["id"])


def _chart_data(html: str, kind: str) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" class="{kind}">(.*?)</script>', html)
    assert found is not None, f"no {kind} in the partial"
    return json.loads(found.group(1))


def test_the_page_without_a_session_shows_the_login_form(base_url: str) -> None:
    response = httpx.get(base_url + "/backtests")

    assert response.status_code == 200
    assert 'name="token"' in response.text and "bt-form" not in response.text


@pytest.mark.parametrize("path", PARTIALS)
def test_the_partials_need_the_session(base_url: str, path: str) -> None:
    assert httpx.get(base_url + path).status_code == 401


def test_the_page_has_the_form_and_every_page_links_to_it(browser: httpx.Client) -> None:
    page = browser.get("/backtests")
    dashboard = browser.get("/")

    assert page.status_code == 200
    for part in ('id="bt-form"', 'name="strategy"', 'name="param.fast"', 'name="symbols"',
                 'id="bt-job"', 'hx-get="/ui/backtests/list"', "backtest_charts.js"):  # fmt: skip
        assert part in page.text, part
    assert 'href="/backtests"' in dashboard.text


def test_the_parameters_follow_the_strategy(browser: httpx.Client) -> None:
    adaptive = browser.get("/ui/backtests/params", params={"strategy": "adaptive"})
    unknown = browser.get("/ui/backtests/params", params={"strategy": "nope"})

    assert 'name="param.ml"' in adaptive.text and 'name="param.fast"' not in adaptive.text
    assert "takes no parameter" in unknown.text


def test_a_refused_form_shows_the_reason_next_to_its_field(browser: httpx.Client) -> None:
    bad_param = browser.post("/ui/backtests", data={**FORM, "param.fast": "quick"})
    bad_day = browser.post("/ui/backtests", data={**FORM, "start": "1st of May"})
    no_symbol = browser.post(
        "/ui/backtests", data={k: v for k, v in FORM.items() if k != "symbols"}
    )

    assert 'data-field="params.fast"' in bad_param.text and "must be int" in bad_param.text
    assert 'data-field="start"' in bad_day.text
    assert 'data-field="symbols"' in no_symbol.text
    assert "hx-swap-oob" not in bad_param.text + bad_day.text + no_symbol.text


def test_the_form_starts_a_backtest_as_the_api_runs_it(
    browser: httpx.Client, api: httpx.Client
) -> None:
    started = browser.post("/ui/backtests", data=FORM)

    found = re.search(r'data-job-id="([0-9a-f]+)"', started.text)
    assert found is not None and 'hx-swap-oob="innerHTML"' in started.text
    result = _done(api, found.group(1))
    assert result["status"] == "done"
    assert (result["strategy"], result["symbols"], result["timeframe"]) == (
        "sma_cross", ["ETHUSDT"], "15m"
    )  # fmt: skip
    assert result["request"]["params"] == {"fast": "5", "slow": "20"}
    assert result["header"]["params"]["fast"] == 5 and len(result["equity"]) == 2 * 96


def test_the_result_shows_the_metrics_and_charts_of_the_api(
    browser: httpx.Client, api: httpx.Client
) -> None:
    result = _run(api)

    html = browser.get(f"/ui/backtests/{result['id']}").text

    chart = _chart_data(html, "bt-chart-data")
    trades = re.findall(r'<tr class="bt-trade">', html)
    (price,) = chart["prices"]
    entries = [p for p in price["long_entry"] + price["short_entry"] if p is not None]
    assert f"{result['metrics']['total_return_pct']:.2f} %" in html
    assert len(trades) == result["metrics"]["trades"]
    assert chart["equity"]["equity"] == [float(p["equity"]) for p in result["equity"]]
    assert chart["equity"]["drawdown_pct"] == pytest.approx(
        [p["drawdown_pct"] for p in result["equity"]]
    )
    assert price["symbol"] == "BTCUSDT" and len(price["close"]) == 2 * 288
    assert sorted(entries) == sorted(float(t["entry_price"]) for t in result["trades"])


def test_past_backtests_are_listed_and_compare_side_by_side(
    browser: httpx.Client, api: httpx.Client
) -> None:
    first, second = _run(api), _run(api, params={"fast": 8, "slow": 30})

    listing = browser.get("/ui/backtests/list").text
    compared = browser.get(
        "/ui/backtests/compare", params=[("ids", first["id"]), ("ids", second["id"])]
    )
    too_few = browser.get("/ui/backtests/compare", params={"ids": first["id"]})

    assert listing.index(second["id"]) < listing.index(first["id"])  # newest first
    chart = _chart_data(compared.text, "bt-compare-data")
    assert [s["label"] for s in chart["series"]] == [
        f"sma_cross {first['id'][:6]}", f"sma_cross {second['id'][:6]}"
    ]  # fmt: skip
    row = re.search(r'<tr data-metric="trades">(.*?)</tr>', compared.text)
    assert row is not None
    trades = [first["metrics"]["trades"], second["metrics"]["trades"]]
    assert re.findall(r'<td class="num">(\d+)</td>', row.group(1)) == [str(n) for n in trades]
    assert 'data-field="ids"' in too_few.text


# -- in a browser --------------------------------------------------------------------------------

PAGE_STATE = """(function () {
  function count(selector) { return document.querySelectorAll(selector).length; }
  var job = document.querySelector('#bt-job .bt-job[data-job-id]');
  var view = document.querySelector('#bt-result .bt-view');
  return JSON.stringify({
    ws: document.getElementById('bt-job').getAttribute('data-ws'),
    job: job && {id: job.dataset.jobId, status: job.dataset.status,
                 pushes: Number(job.dataset.pushes || 0)},
    result: view ? view.dataset.backtestId : null,
    charts: count('#bt-result .bt-chart[data-drawn=true] canvas'),
    compared: count('#bt-result .bt-compare [data-drawn=true] canvas'),
    rows: count('#bt-list tr[data-backtest-id]'),
    newest: (document.querySelector('#bt-list tr[data-backtest-id]')
             || {dataset: {}}).dataset.status,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  });
})()"""

SUBMIT = """(function () {
  var form = document.getElementById('bt-form');
  form.querySelector('[name="param.fast"]').value = '5';
  form.querySelector('[name="param.slow"]').value = '20';
  form.querySelector('[name=start]').value = '2025-10-01';
  form.querySelector('[name=end]').value = '2025-10-03';
  form.querySelectorAll('[name=symbols]').forEach(function (box) {
    box.checked = box.value === 'BTCUSDT';
  });
  form.querySelector('button[type=submit]').click();
  return true;
})()"""

COMPARE = """(function () {
  var boxes = document.querySelectorAll('#bt-list input[name=ids]:not(:disabled)');
  boxes[0].checked = true; boxes[1].checked = true;
  document.getElementById('bt-compare').click();
  return boxes.length;
})()"""


def _screenshot(page: DevTools, path: Path) -> None:
    """The page as a PNG at ``path``, for a person to look at."""
    shot = page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def _wait(page: DevTools, done: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        raw = page.evaluate(PAGE_STATE)
        state = json.loads(raw) if raw else {}
        if state and done(state):
            return state
        assert time.monotonic() < deadline, f"{what}: {state}"
        time.sleep(0.1)


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs Chromium (Debian package: chromium; `make test` installs it)",
)
def test_a_backtest_from_the_form_runs_to_its_result_and_compares(
    base_url: str, api: httpx.Client, tmp_path: Path
) -> None:
    _run(api)  # a second one to compare with
    with chromium_page(tmp_path / "chromium") as page:
        cookie = {"name": SESSION_COOKIE, "value": session_value(TOKEN), "url": base_url}
        page.send("Network.setCookie", **cookie, httpOnly=True, sameSite="Strict")
        page.send("Page.navigate", url=base_url + "/backtests")
        loaded = _wait(
            page, lambda s: s["ws"] == "open" and s["rows"] >= 1, "the page and its WebSocket"
        )
        page.evaluate(SUBMIT)
        ran = _wait(page, lambda s: s["result"] and s["charts"] == 2, "the backtest's result drawn")
        listed = _wait(
            page, lambda s: s["rows"] > loaded["rows"] and s["newest"] == "done", "it listed done"
        )
        page.evaluate(COMPARE)
        compared = _wait(page, lambda s: s["compared"] == 1, "the comparison drawn")
        _screenshot(page, tmp_path / "backtests-compare-1280.png")
        page.evaluate(f"htmx.ajax('GET', '/ui/backtests/{ran['result']}', '#bt-result')")
        _wait(page, lambda s: s["charts"] == 2, "the result drawn again")
        _screenshot(page, tmp_path / "backtests-result-1280.png")
        page.send(
            "Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2,
            mobile=True,
        )  # fmt: skip
        phone = _wait(page, lambda s: s["overflow"] <= 0, "the page at phone width")
        _screenshot(page, tmp_path / "backtests-result-390.png")
        problems = page.problems()

    finished = api.get(f"/backtests/{ran['result']}").json()
    assert ran["job"]["id"] == ran["result"] and ran["job"]["status"] == "done"
    assert ran["job"]["pushes"] >= 2  # moved by the WebSocket's messages, not polled
    assert finished["status"] == "done" and finished["symbols"] == ["BTCUSDT"]
    assert listed["rows"] == loaded["rows"] + 1
    assert loaded["overflow"] <= 0 and compared["overflow"] <= 0 and phone["overflow"] <= 0
    assert problems == []
