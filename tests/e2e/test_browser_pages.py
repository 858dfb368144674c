"""Every page of the panel in a real browser (Chromium under Playwright), at 1280 px and at a
phone's width (390 px): each fills its panels and goes live without a console error or a
failed request, the body never scrolls sideways, and a screenshot of each is kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, StorageState, ViewportSize, expect

from tests.e2e.playwright_fixtures import (
    DESKTOP,
    PHONE,
    PanelServer,
    open_page,
    wait_until_filled,
    watch,
)

PAGES = {
    "dashboard": "/",
    "control": "/control",
    "analysis": "/analysis",
    "ai": "/ai",
    "chart": "/chart",
    "trades": "/trades",
    "backtests": "/backtests",
}
WIDTHS: dict[str, ViewportSize] = {"desktop": DESKTOP, "phone": PHONE}
OVERFLOW_JS = "document.scrollingElement.scrollWidth - window.innerWidth"
"""How many CSS pixels the page is wider than the viewport (0 or less: no sideways scroll)."""
WIDEST_JS = """() => {
  const limit = window.innerWidth;
  return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > limit + 1 && e.offsetParent !== null)
    .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
      + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : ''));
}"""
"""A few elements reaching past the viewport's right edge, to say what overflows."""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", PAGES)
def test_each_page_renders_cleanly_at_desktop_and_phone_width(
    name: str,
    width: str,
    pw_browser: Browser,
    panel_server: PanelServer,
    session_state: StorageState,
    screenshot: Callable[[Page, str], Path],
) -> None:
    page = open_page(pw_browser, panel_server.url, WIDTHS[width], session_state)
    try:
        problems = watch(page)
        page.goto(PAGES[name])
        wait_until_filled(page)
        expect(page.locator("header.topbar")).to_be_visible()
        expect(page.locator("nav.pages [aria-current=page]")).to_have_count(1)
        expect(page.locator("#status .kpis")).to_be_visible()
        screenshot(page, f"{name}-{width}")
        overflow = page.evaluate(OVERFLOW_JS)
        sticking_out = page.evaluate(WIDEST_JS) if overflow > 1 else []
        found = list(problems)
    finally:
        page.context.close()

    assert found == []
    assert overflow <= 1, f"{overflow} px wider than the viewport: {sticking_out}"
