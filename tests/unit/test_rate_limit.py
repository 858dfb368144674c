"""The venue request budget (spec 001 Property 30): requests queued as the window says never
exceed 1,200 in any minute, and a request waits only when the last minute is full."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rate_limit import RequestWindow

MINUTE = 60_000


def _sent_in_any_minute(sent: list[tuple[int, int]]) -> int:
    """The most weight sent in any window (t − 1 min, t] (``sent`` in time order)."""
    most = total = left = 0
    for t, weight in sent:
        total += weight
        while sent[left][0] <= t - MINUTE:
            total -= sent[left][1]
            left += 1
        most = max(most, total)
    return most


# Property 30: for any 1-minute window, the total number of API requests <= 1200.
@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 40)), min_size=100, max_size=600))
def test_queued_requests_never_exceed_the_limit_in_any_minute(
    requests: list[tuple[int, int]],
) -> None:
    window, now, sent = RequestWindow(), 0, []
    for gap, weight in requests:  # (ms since the last arrival, request weight)
        now += gap
        wait = window.delay(now, weight)
        assert wait == 0 or window.used(now) + weight > 1_200  # waits only when full
        now += wait
        window.record(now, weight)
        sent.append((now, weight))

    assert _sent_in_any_minute(sent) <= 1_200
    assert window.used(now) == sum(w for s, w in sent if s > now - MINUTE)


def test_a_burst_fills_the_minute_then_waits_for_the_oldest_to_leave() -> None:
    window = RequestWindow(limit=3, window_ms=MINUTE)
    for t in (0, 10, 20):
        window.record(t)

    assert window.delay(30) == MINUTE - 30  # the request at 0 leaves at 60,000
    assert window.delay(30, weight=2) == MINUTE + 10 - 30
    with pytest.raises(ValueError, match="wait 59970 ms"):
        window.record(30)
    window.record(MINUTE)
    assert window.used(MINUTE) == 3


def test_bad_input_is_refused_with_the_reason() -> None:
    window = RequestWindow(limit=5)
    window.record(1_000)
    with pytest.raises(ValueError, match="weight must be in"):
        window.delay(1_000, weight=6)
    with pytest.raises(ValueError, match="before the last one"):
        window.record(999)
    with pytest.raises(ValueError, match="limit and window_ms"):
        RequestWindow(limit=0)
