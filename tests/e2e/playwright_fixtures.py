"""Playwright fixtures for the browser tests of the web panel (tests/e2e/test_browser_*.py).

Debian's Chromium (``/usr/bin/chromium``, which ``make test`` installs) is driven through
Playwright's sync API; Playwright's own browser downloads are never used. Every host but
127.0.0.1 fails to resolve in that browser, so a page that reached for a CDN would fail its
request (and the console check). Screenshots go to ``<pytest basetemp>/screenshots/``.

Fixtures (made visible to every module of tests/e2e by its conftest):

* ``pw_browser`` (module): the launched Chromium.
* ``panel_server`` (module): a paper server of the app replaying the shipped sample at 20 bar
  times a second (fills, trades and signals within seconds); its base URL and container.
* ``panel_api`` (module): an httpx client of its REST API with the bearer token.
* ``panel_page`` (function): a page at 1280 × 900 whose context is logged in; not navigated.
* ``screenshot`` (session): ``screenshot(page, name)`` writes a full-page PNG and logs its path.

Helpers: :func:`open_page` for another viewport, :func:`watch` for the console errors and failed
requests of a page, :func:`log_in` through the login form, :func:`wait_until_filled` for a
page's panels and live stream, :func:`eventually` to poll the REST API.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    StorageState,
    ViewportSize,
    expect,
    sync_playwright,
)

from lootcapital.bootstrap import Container
from tests.e2e.devtools import CHROMIUM
from tests.e2e.web_fixtures import sample_server

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)  # the screenshots' paths reach pytest's log capture and log_cli
T = TypeVar("T")

TOKEN = "browser-test-token-for-the-panel"  # bootstrap wants at least 16 characters
WAIT_MS = 30_000
"""How long an expectation or a wait may take at most (one that holds returns at once): the
replay brings a bar every 50 ms, but a backtest launched from the panel took over 10 s on a
2-core machine running the test files in parallel."""
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
LOADING = re.compile(r"^Loading")
"""The placeholder text of a panel that HTMX has not filled yet."""


@dataclass(frozen=True)
class PanelServer:
    """A running paper server: its base URL and its container."""

    url: str
    container: Container


@pytest.fixture(scope="module")
def pw_browser() -> Iterator[Browser]:
    """Debian's headless Chromium under Playwright (skipped off CI when it is not installed).

    One per module, not per session: while Playwright's sync API is started it holds a running
    asyncio loop in the main thread, where ``asyncio.run`` in later tests would then fail."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is not installed (make test installs it)")
        pytest.skip("Chromium is not installed (make test installs it)")
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def panel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PanelServer]:
    """One paper server per test module, replaying the sample with ``sma_cross`` (running)."""
    with sample_server(tmp_path_factory.mktemp("browser"), TOKEN) as (url, container):
        yield PanelServer(url, container)


@pytest.fixture(scope="module")
def panel_api(panel_server: PanelServer) -> Iterator[httpx.Client]:
    """A REST API client of the server with the bearer token, as a bot is."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = panel_server.url + "/api/v1"
    with httpx.Client(base_url=base, headers=headers, timeout=10.0) as client:
        yield client


def open_page(
    browser: Browser,
    base_url: str,
    viewport: ViewportSize = DESKTOP,
    state: StorageState | None = None,
) -> Page:
    """A page in a new context of ``viewport`` (CSS pixels) whose relative URLs go to
    ``base_url``, with the cookies of ``state`` when given; close it with
    ``page.context.close()``."""
    context = browser.new_context(base_url=base_url, viewport=viewport, storage_state=state)
    context.set_default_timeout(WAIT_MS)
    return context.new_page()


def log_in(page: Page, token: str = TOKEN) -> None:
    """Open the panel's front page and submit ``token`` in its login form."""
    page.goto("/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture(scope="module")
def session_state(pw_browser: Browser, panel_server: PanelServer) -> StorageState:
    """The cookies of a context logged in through the form, for :func:`open_page`."""
    page = open_page(pw_browser, panel_server.url)
    try:
        log_in(page)
        expect(page.locator("#status .kpis")).to_be_visible()
        return page.context.storage_state()
    finally:
        page.context.close()


@pytest.fixture
def panel_page(
    pw_browser: Browser, panel_server: PanelServer, session_state: StorageState
) -> Iterator[Page]:
    """A logged-in page at 1280 × 900, not navigated yet; its context closed after the test."""
    page = open_page(pw_browser, panel_server.url, state=session_state)
    yield page
    page.context.close()


def watch(page: Page) -> list[str]:
    """Start collecting ``page``'s problems: console errors and warnings, uncaught exceptions,
    failed requests and HTTP error responses; the list fills as they come."""
    found: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning", "assert"):
            found.append(f"console.{message.type}: {message.text} at {message.location}")

    def on_failed(request: Request) -> None:
        found.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            found.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: found.append(f"uncaught: {error}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    return found


def eventually(read: Callable[[], T], limit_s: float = WAIT_MS / 1000) -> T:
    """The first truthy ``read()`` within ``limit_s``, polled every 50 ms (fails after): for
    what the page cannot show, such as the REST API's answer."""
    deadline = time.monotonic() + limit_s
    while True:
        value = read()
        if value or time.monotonic() > deadline:
            assert value, f"not within {limit_s} s: {value!r}"
            return value
        time.sleep(0.05)


def wait_until_filled(page: Page) -> None:
    """Wait until the live stream is connected and no panel shows its loading placeholder."""
    expect(page.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    expect(page.locator("main").get_by_text(LOADING)).to_have_count(0)


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Page, str], Path]:
    """``screenshot(page, name)``: a full-page PNG of ``page`` at
    ``<basetemp>/screenshots/<name>.png``; its path is logged and returned."""
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        LOG.info("screenshot of %s: %s", page.url, path)
        return path

    return take
