"""Logging in to the web panel in a real browser (Chromium under Playwright): the right token
opens the dashboard, a wrong one shows the error and sets no session, logging out ends it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from api.deps import SESSION_COOKIE
from tests.e2e.playwright_fixtures import PHONE, TOKEN, PanelServer, log_in, open_page, watch


@pytest.fixture
def anonymous_page(pw_browser: Browser, panel_server: PanelServer) -> Iterator[Page]:
    """A page of a fresh context: no session cookie."""
    page = open_page(pw_browser, panel_server.url)
    yield page
    page.context.close()


def _session_cookies(page: Page) -> list[dict]:
    return [dict(c) for c in page.context.cookies() if c["name"] == SESSION_COOKIE]


def test_the_right_token_opens_the_dashboard_with_an_http_only_session(
    anonymous_page: Page, panel_server: PanelServer, screenshot: Callable[[Page, str], Path]
) -> None:
    page = anonymous_page
    page.goto("/")
    expect(page.get_by_label("API token")).to_be_visible()
    screenshot(page, "login")

    log_in(page)

    expect(page).to_have_url(panel_server.url + "/")
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.locator("#status .kpis")).to_be_visible()
    cookies = _session_cookies(page)
    assert len(cookies) == 1
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    assert TOKEN not in cookies[0]["value"]
    assert TOKEN not in page.content()


def test_a_wrong_token_shows_the_error_and_sets_no_session(
    anonymous_page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    page = anonymous_page

    log_in(page, "not-the-api-token-at-all")

    expect(page.get_by_role("alert")).to_have_text("That is not the API token.")
    expect(page.get_by_label("API token")).to_be_visible()
    expect(page.locator("header.topbar")).to_have_count(0)
    assert _session_cookies(page) == []
    screenshot(page, "login-wrong-token")
    page.goto("/control")  # still locked out of every page
    expect(page.get_by_label("API token")).to_be_visible()


def test_logging_out_returns_to_the_login_form_and_locks_the_panel(anonymous_page: Page) -> None:
    page = anonymous_page
    log_in(page)
    expect(page.locator("#status .kpis")).to_be_visible()

    page.get_by_role("button", name="Log out").click()

    expect(page.get_by_label("API token")).to_be_visible()
    assert _session_cookies(page) == []
    page.goto("/control")
    expect(page.get_by_label("API token")).to_be_visible()


def test_the_login_page_fits_a_phone_without_console_errors(
    pw_browser: Browser, panel_server: PanelServer, screenshot: Callable[[Page, str], Path]
) -> None:
    page = open_page(pw_browser, panel_server.url, PHONE)
    try:
        problems = watch(page)
        page.goto("/")
        expect(page.get_by_role("button", name="Log in")).to_be_in_viewport()
        screenshot(page, "login-phone")
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        found = list(problems)
    finally:
        page.context.close()

    assert found == []
    assert overflow <= 1
