"""Marks every test that drives Chromium ``browser``: ``make test`` runs them after the others,
alone (a real browser's timing suffers when it shares 2 cores with the parallel workers)."""

from __future__ import annotations

import pytest


def _drives_chromium(item: pytest.Item) -> bool:
    if item.path.name.startswith("test_browser_"):
        return True
    return any("Chromium" in str(m.kwargs.get("reason", "")) for m in item.iter_markers("skipif"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add the ``browser`` marker to the tests that drive Chromium."""
    for item in items:
        if _drives_chromium(item):
            item.add_marker(pytest.mark.browser)
