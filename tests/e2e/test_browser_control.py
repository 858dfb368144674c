"""The control centre in a real browser (Chromium under Playwright) while the sample replays:
halt and resume, and closing every position with its confirmation step, each checked on the
page and through the REST API the bots use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.playwright_fixtures import eventually, wait_until_filled, watch

REASON = "news at 14:30, browser test"


@pytest.fixture
def control(panel_page: Page, panel_api: httpx.Client) -> Iterator[Page]:
    """The logged-in control centre, filled and live, the engine running; trading is resumed
    after the test."""
    panel_api.post("/engine/start")  # 409 when it runs already
    panel_page.goto("/control")
    wait_until_filled(panel_page)
    yield panel_page
    panel_api.post("/risk/resume")


def _account_state(api: httpx.Client) -> str:
    state: str = api.get("/risk").json()["status"]["account_state"]
    return state


def _symbols(positions: list[dict[str, Any]]) -> set[str]:
    return {p["symbol"] for p in positions}


def _halt(page: Page, reason: str) -> Locator:
    """Halt trading through the form; the halt form after it."""
    form = page.locator("#halt-form")
    form.get_by_label("Halt trading").fill(reason)
    form.get_by_role("button", name="Halt", exact=True).click()
    expect(page.locator("#risk .states")).to_have_attribute("data-account-state", "halted")
    return page.locator("#halt-form")


def test_halt_with_a_reason_then_resume_from_the_control_centre(
    control: Page, panel_api: httpx.Client, screenshot: Callable[[Page, str], Path]
) -> None:
    page = control
    problems = watch(page)
    expect(page.locator("#risk .states")).to_have_attribute("data-account-state", "active")

    form = _halt(page, REASON)

    expect(form.get_by_role("status")).to_have_text(f"Trading halted: {REASON}")
    expect(page.locator("#risk .badge.state").first).to_have_text("halted")
    expect(page.locator("#risk table.holds td.reason").first).to_contain_text(REASON)
    expect(page.locator("#alerts")).to_contain_text(REASON)
    assert _account_state(panel_api) == "halted"
    holds = panel_api.get("/risk").json()["status"]["holds"]
    (account_hold,) = [h for h in holds if h["scope"] == "account"]
    assert REASON in account_hold["reason"]
    screenshot(page, "control-halted")

    form.get_by_role("button", name="Resume").click()

    expect(page.locator("#risk .states")).to_have_attribute("data-account-state", "active")
    expect(page.locator("#halt-form").get_by_role("status")).to_have_text(
        "Trading resumed: the account is active."
    )
    expect(page.locator("#risk table.holds")).to_have_count(0)
    assert _account_state(panel_api) == "active"
    assert problems == []


def test_close_all_needs_its_confirmation_then_flattens_every_position(
    control: Page, panel_api: httpx.Client, screenshot: Callable[[Page, str], Path]
) -> None:
    page = control
    problems = watch(page)
    expect(page.locator("#positions table.positions tbody tr").first).to_be_visible()
    _halt(page, "flatten the book")  # the strategy opens nothing more; closing still passes
    held = _symbols(panel_api.get("/positions").json())
    assert held
    close_all = page.locator("#close-all")

    page.get_by_role("button", name="Close all positions…").click()
    expect(close_all).to_have_attribute("data-step", "confirm")
    listed = close_all.locator(".closing .sym")
    expect(listed).to_have_count(len(held))
    assert set(listed.all_inner_texts()) == held
    screenshot(page, "control-close-all-confirm")
    close_all.get_by_role("button", name="Cancel").click()

    expect(close_all).to_have_attribute("data-step", "start")
    assert _symbols(panel_api.get("/positions").json()) == held  # nothing was closed
    expect(page.locator("#positions table.positions tbody tr")).to_have_count(len(held))

    page.get_by_role("button", name="Close all positions…").click()
    page.get_by_role("button", name="Yes, close all positions").click()

    expect(close_all).to_have_attribute("data-step", "done")
    expect(close_all.get_by_role("status")).to_have_text(
        f"Sent {len(held)} closing order{'' if len(held) == 1 else 's'}."
    )
    expect(page.locator("#positions")).to_have_text("No open positions.")
    eventually(lambda: panel_api.get("/positions").json() == [])
    rows = close_all.locator("tbody tr")
    expect(rows).to_have_count(len(held))
    for order_id in [rows.nth(i).get_attribute("data-order-id") for i in range(len(held))]:
        order = panel_api.get(f"/orders/{order_id}").json()
        assert order["reduce_only"] and order["type"] == "market"
    expect(page.locator("#alerts [data-kind='close_all']").first).to_be_visible()
    screenshot(page, "control-closed-all")
    assert problems == []
