"""The dashboard in a real browser (Chromium under Playwright) while the sample replays: its
panels change as the engine runs without the page being reloaded, and the top bar's Start and
Stop buttons drive the engine."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.playwright_fixtures import WAIT_MS, wait_until_filled, watch


@pytest.fixture
def dashboard(panel_page: Page, panel_api: httpx.Client) -> Iterator[Page]:
    """The logged-in dashboard, filled and live, with the engine running (running again
    after the test)."""
    panel_api.post("/engine/start")  # 409 when it runs already
    panel_page.goto("/")
    wait_until_filled(panel_page)
    yield panel_page
    panel_api.post("/engine/start")


def _kpi(page: Page, label: str) -> Locator:
    """The value of the status strip's figure ``label``."""
    return page.locator("#status .kpi", has_text=label).locator(".value")


def _changes(page: Page, selector: str) -> None:
    """Wait until the inner HTML of ``selector`` differs from what it is now."""
    before = page.locator(selector).inner_html()
    page.wait_for_function(
        "([sel, html]) => document.querySelector(sel).innerHTML !== html",
        arg=[selector, before],
        timeout=WAIT_MS,
    )


def test_status_equity_positions_and_signals_update_live_without_a_reload(
    dashboard: Page,
) -> None:
    page = dashboard
    problems = watch(page)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("window.notReloaded = true")
    bars = _kpi(page, "Bars processed")
    market_time = _kpi(page, "Market time")
    equity = _kpi(page, "Equity")
    bars_before, time_before = bars.inner_text(), market_time.inner_text()
    equity_before = equity.inner_text()
    chart_time = page.locator("#equity-chart .u-legend .u-series").first.locator(".u-value")
    expect(page.locator("#equity-chart canvas")).to_have_count(1)  # uPlot drew the series
    chart_time_before = chart_time.inner_text()

    expect(bars).not_to_have_text(bars_before)
    expect(market_time).not_to_have_text(time_before)
    expect(equity).not_to_have_text(equity_before)  # the open positions' marks moved
    expect(chart_time).not_to_have_text(chart_time_before)  # new equity points came
    _changes(page, "#positions")
    _changes(page, "#signals")

    expect(page.locator("#positions table.positions tbody tr").first).to_be_visible()
    expect(page.locator("#signals li.signal").first).to_be_visible()
    expect(page.locator("#conn")).to_have_text("live")
    assert page.evaluate("window.notReloaded") is True
    assert navigations == []
    assert problems == []


def test_stop_and_start_from_the_top_bar_drive_the_engine(
    dashboard: Page, panel_api: httpx.Client
) -> None:
    page = dashboard
    problems = watch(page)
    kpis = page.locator("#status .kpis")
    start, stop = page.locator("#engine-start"), page.locator("#engine-stop")
    expect(kpis).to_have_attribute("data-running", "true")
    expect(start).to_be_disabled()

    stop.click()

    expect(kpis).to_have_attribute("data-running", "false")
    expect(page.locator("#status .badge.stopped")).to_have_text("stopped")
    expect(start).to_be_enabled()
    expect(stop).to_be_disabled()
    stopped = panel_api.get("/status").json()
    assert stopped["running"] is False
    bars_stopped = stopped["candles_processed"]
    expect(_kpi(page, "Bars processed")).to_have_text(f"{bars_stopped:,}")
    expect(kpis).to_have_attribute("data-running", "false")

    start.click()

    expect(kpis).to_have_attribute("data-running", "true")
    expect(page.locator("#status .badge.running")).to_have_text("running")
    expect(stop).to_be_enabled()
    expect(start).to_be_disabled()
    assert panel_api.get("/status").json()["running"] is True
    expect(_kpi(page, "Bars processed")).not_to_have_text(f"{bars_stopped:,}")
    assert problems == []
