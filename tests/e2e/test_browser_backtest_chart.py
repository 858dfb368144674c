"""Candlestick charts in a real browser (Chromium under Playwright), against a paper server
replaying the sample: a backtest launched from the panel shows its trades as entry and exit
markers on its result's candlestick chart, which the mouse wheel zooms; the price chart page's
timeframe links switch its candles; a long backtest's bar moves through intermediate values
as the WebSocket pushes its progress."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.playwright_fixtures import eventually, watch

PARAMS_SETTLED = """() => {
  window.btParamsSettled = false;
  document.body.addEventListener('htmx:afterSettle', (e) => {
    if (e.detail.target && e.detail.target.id === 'bt-params') window.btParamsSettled = true;
  });
}"""

PROGRESS_SEEN = """() => {
  window.btProgressSeen = [];
  const note = () => {
    const job = document.querySelector('#bt-job .bt-job[data-job-id]');
    if (job) window.btProgressSeen.push(Number(job.dataset.progress));
  };
  new MutationObserver(note).observe(document.getElementById('bt-job'),
    {subtree: true, childList: true, attributes: true, attributeFilter: ['data-progress']});
}"""

CANDLES = '#bt-result [data-chart="candles"]'
DRAWN = CANDLES + "[data-drawn=true]"

CHART_BARS = """() => {
  const c = window.lootChart || {};
  return {timeframe: c.timeframe, candles: c.candles || 0, first: c.firstTime, last: c.lastTime};
}"""

TF_S = {"5m": 300, "15m": 900, "1h": 3600, "4h": 14400}


def _launch(
    page: Page, start: str, end: str, symbols: set[str], fast: str = "5", slow: str = "20"
) -> None:
    """Fill the backtest form with ``sma_cross(fast, slow)`` on ``symbols`` from ``start`` to
    ``end`` (UTC days) and run it."""
    form = page.locator("#bt-form")
    # Choosing a strategy reloads its parameters' fields: fill them once they are swapped in.
    page.evaluate(PARAMS_SETTLED)
    form.locator("#bt-strategy").select_option("sma_cross")
    page.wait_for_function("() => window.btParamsSettled === true")
    form.locator('[name="param.fast"]').fill(fast)
    form.locator('[name="param.slow"]').fill(slow)
    form.locator("#bt-start").fill(start)
    form.locator("#bt-end").fill(end)
    for box in form.locator("[name=symbols]").all():
        box.set_checked(box.get_attribute("value") in symbols)
    form.get_by_role("button", name="Run backtest").click()


def _visible_bars(page: Page) -> float:
    chart = page.locator(DRAWN).first
    return float(chart.get_attribute("data-visible-to") or 0) - float(
        chart.get_attribute("data-visible-from") or 0
    )


def test_a_backtest_from_the_panel_shows_its_trades_on_its_candlestick_chart(
    panel_page: Page, panel_api: httpx.Client, screenshot: Callable[[Page, str], Path]
) -> None:
    problems = watch(panel_page)
    panel_page.goto("/backtests")
    expect(panel_page.locator("#bt-job")).to_have_attribute("data-ws", "open")

    _launch(panel_page, "2025-10-01", "2025-10-04", {"ETHUSDT"})

    view = panel_page.locator("#bt-result .bt-view[data-backtest-id]")
    expect(view).to_have_count(1)
    expect(panel_page.locator(DRAWN)).to_have_count(1)
    chart = panel_page.locator(DRAWN)
    chart.scroll_into_view_if_needed()
    stored = panel_api.get(f"/backtests/{view.get_attribute('data-backtest-id')}").json()
    shot = screenshot(panel_page, "backtest-candles-1280")
    legend = panel_page.locator("#bt-result .bt-candles-legend")
    box = chart.bounding_box()
    assert box is not None
    panel_page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)  # the first bars
    expect(legend).to_have_text(re.compile(r"^2025-10-01 00:"))
    panel_page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 60)  # off the chart
    expect(legend).to_have_text(re.compile(r"^2025-10-03 23:55 UTC\s+O "))  # the last bar

    trades = stored["trades"]
    assert stored["status"] == "done" and stored["symbols"] == ["ETHUSDT"] and trades
    assert chart.get_attribute("data-symbol") == "ETHUSDT"
    assert int(chart.get_attribute("data-candles") or 0) == 3 * 288
    assert int(chart.get_attribute("data-trades") or 0) == len(trades)
    assert int(chart.get_attribute("data-markers") or 0) == 2 * len(trades)
    assert int(chart.get_attribute("data-entries") or 0) == len(trades)
    assert int(chart.get_attribute("data-exits") or 0) == len(trades)
    assert chart.locator("canvas").count() > 0
    assert panel_page.locator('#bt-result [data-chart="price"]').count() == 0  # no closes line
    assert shot.stat().st_size > 0
    assert problems == []


def test_the_mouse_wheel_zooms_a_backtests_candlestick_chart(
    panel_page: Page, panel_api: httpx.Client, screenshot: Callable[[Page, str], Path]
) -> None:
    body = {"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "symbols": ["BTCUSDT"],
            "start": 1_759_276_800_000, "end": 1_759_276_800_000 + 2 * 86_400_000}  # fmt: skip
    started = panel_api.post("/backtests", json=body)
    assert started.status_code == 202, started.text
    backtest_id = started.json()["id"]
    eventually(lambda: panel_api.get(f"/backtests/{backtest_id}").json()["status"] == "done")
    problems = watch(panel_page)
    panel_page.goto("/backtests")
    panel_page.locator(f'#bt-list tr[data-backtest-id="{backtest_id}"] .bt-open').click()
    expect(panel_page.locator(DRAWN)).to_have_count(1)
    chart = panel_page.locator(DRAWN)
    chart.scroll_into_view_if_needed()
    expect(chart).to_have_attribute("data-visible-to", re.compile(r"\d"))
    whole = _visible_bars(panel_page)

    box = chart.bounding_box()
    assert box is not None
    panel_page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    panel_page.mouse.wheel(0, -600)
    panel_page.wait_for_function(
        f"() => {{ const c = document.querySelector('{DRAWN}');"
        f" return c.dataset.visibleTo - c.dataset.visibleFrom < {whole} - 1; }}"
    )
    zoomed_in = _visible_bars(panel_page)
    screenshot(panel_page, "backtest-candles-zoomed-1280")
    panel_page.mouse.wheel(0, 600)
    panel_page.wait_for_function(
        f"() => {{ const c = document.querySelector('{DRAWN}');"
        f" return c.dataset.visibleTo - c.dataset.visibleFrom > {zoomed_in} + 1; }}"
    )
    zoomed_out = _visible_bars(panel_page)

    assert int(chart.get_attribute("data-candles") or 0) == 2 * 288
    assert whole >= 2 * 288 - 1  # fitted: every bar in view
    assert zoomed_in < whole and zoomed_out > zoomed_in
    assert problems == []


def test_the_timeframe_links_switch_the_price_charts_candles(
    panel_page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    problems = watch(panel_page)
    panel_page.goto("/chart/BTCUSDT")
    seen: dict[str, dict[str, Any]] = {}

    for tf in ("5m", "15m", "1h", "4h"):
        if tf != "5m":
            panel_page.locator(f'.chart-timeframes a[data-timeframe="{tf}"]').click()
        panel_page.wait_for_function(
            f"() => window.lootChart && window.lootChart.timeframe === '{tf}'"
            " && window.lootChart.candles > 1"
        )
        seen[tf] = panel_page.evaluate(CHART_BARS)
        expect(panel_page.locator(f'.chart-timeframes a[data-timeframe="{tf}"]')).to_have_attribute(
            "aria-current", "page"
        )
        screenshot(panel_page, f"chart-BTCUSDT-{tf}-1280")

    for tf, bars in seen.items():
        spacing = (bars["last"] - bars["first"]) / (bars["candles"] - 1)
        assert spacing == TF_S[tf], (tf, bars)  # the sample has no gap
        assert bars["first"] % TF_S[tf] == 0, (tf, bars)
    assert seen["5m"]["candles"] > seen["15m"]["candles"] > seen["1h"]["candles"]
    assert seen["1h"]["candles"] > seen["4h"]["candles"]
    left = [p for p in problems if not ("/ui/stream?" in p and p.endswith("net::ERR_ABORTED"))]
    assert left == []  # but the live stream of each page left, cut by the navigation


def test_a_long_backtests_bar_moves_through_intermediate_values(
    panel_page: Page, panel_api: httpx.Client
) -> None:
    problems = watch(panel_page)
    panel_page.goto("/backtests")
    expect(panel_page.locator("#bt-job")).to_have_attribute("data-ws", "open")
    panel_page.evaluate(PROGRESS_SEEN)

    # The sample's 60 days of the three symbols: over a hundred progress messages.
    _launch(panel_page, "2025-09-02", "2025-11-01", {"BTCUSDT", "ETHUSDT", "SOLUSDT"})

    job = panel_page.locator("#bt-job .bt-job[data-job-id]")
    expect(job).to_have_attribute("data-status", "done", timeout=180_000)
    seen: list[float] = panel_page.evaluate("() => window.btProgressSeen")
    stored = panel_api.get(f"/backtests/{job.get_attribute('data-job-id')}").json()

    assert stored["status"] == "done" and len(stored["symbols"]) == 3
    between = [p for p in seen if 0 < p < 1]
    assert between, seen
    assert between == sorted(between)  # it only moves forward
    assert seen[-1] == 1
    assert problems == []
