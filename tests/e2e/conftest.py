"""The Playwright fixtures of tests/e2e/playwright_fixtures.py, for every module here."""

from tests.e2e.playwright_fixtures import (  # noqa: F401
    panel_api,
    panel_page,
    panel_server,
    pw_browser,
    screenshot,
    session_state,
)
