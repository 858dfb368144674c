"""The price chart and a backtest from the panel in a real browser (Chromium under
Playwright), against a paper server replaying the sample: the chart draws the engine's candles
and the trades' markers, and a backtest launched from the form reaches its result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.playwright_fixtures import eventually, watch

CHART_STATE = """() => {
  const c = window.lootChart || {};
  const el = document.getElementById('price-chart');
  return {candles: c.candles || 0, markers: c.markers || 0,
          canvases: el ? el.querySelectorAll('canvas').length : 0,
          attrs: el ? {candles: el.dataset.candles, markers: el.dataset.markers} : {}};
}"""

PARAMS_SETTLED = """() => {
  window.btParamsSettled = false;
  document.body.addEventListener('htmx:afterSettle', (e) => {
    if (e.detail.target && e.detail.target.id === 'bt-params') window.btParamsSettled = true;
  });
}"""


def test_the_price_chart_draws_the_candles_and_the_trades_markers(
    panel_page: Page, panel_api: httpx.Client, screenshot: Callable[[Page, str], Path]
) -> None:
    eventually(lambda: panel_api.get("/trades", params={"symbol": "BTCUSDT"}).json())
    problems = watch(panel_page)

    panel_page.goto("/chart/BTCUSDT")
    panel_page.wait_for_function(
        "() => window.lootChart && window.lootChart.candles > 0 && window.lootChart.markers > 0"
    )
    drawn: dict[str, Any] = panel_page.evaluate(CHART_STATE)
    shot = screenshot(panel_page, "chart-BTCUSDT-1280")

    assert drawn["canvases"] > 0
    assert int(drawn["attrs"]["candles"]) == drawn["candles"] >= 7 * 288  # a week of 5m bars
    assert int(drawn["attrs"]["markers"]) == drawn["markers"] > 0
    assert shot.stat().st_size > 0
    assert problems == []


def test_a_backtest_launched_from_the_panel_reaches_its_result(
    panel_page: Page, panel_api: httpx.Client, screenshot: Callable[[Page, str], Path]
) -> None:
    problems = watch(panel_page)
    panel_page.goto("/backtests")
    expect(panel_page.locator("#bt-job")).to_have_attribute("data-ws", "open")
    form = panel_page.locator("#bt-form")

    # Choosing a strategy reloads its parameters' fields: fill them once they are swapped in,
    # or the swap would wipe what was typed.
    panel_page.evaluate(PARAMS_SETTLED)
    form.locator("#bt-strategy").select_option("sma_cross")
    panel_page.wait_for_function("() => window.btParamsSettled === true")
    form.locator('[name="param.fast"]').fill("5")
    form.locator('[name="param.slow"]').fill("20")
    form.locator("#bt-start").fill("2025-10-01")
    form.locator("#bt-end").fill("2025-10-03")
    for box in form.locator("[name=symbols]").all():
        box.set_checked(box.get_attribute("value") == "BTCUSDT")
    form.get_by_role("button", name="Run backtest").click()

    view = panel_page.locator("#bt-result .bt-view[data-backtest-id]")
    expect(view).to_have_count(1)
    expect(panel_page.locator("#bt-result .bt-chart[data-drawn=true] canvas")).to_have_count(2)
    backtest_id = view.get_attribute("data-backtest-id")
    stored = panel_api.get(f"/backtests/{backtest_id}").json()
    screenshot(panel_page, "backtest-result-1280")

    assert stored["status"] == "done"
    assert stored["symbols"] == ["BTCUSDT"]
    assert stored["strategy"] == "sma_cross"
    assert problems == []
