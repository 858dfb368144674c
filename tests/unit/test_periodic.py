"""Periodic work is aligned to epoch market time, never to the process start."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.strategies.base import next_aligned

HOUR = 3_600_000


@given(
    time=st.integers(min_value=0, max_value=2**42),
    period=st.sampled_from([300_000, HOUR, 4 * HOUR, 24 * HOUR]),
)
def test_next_aligned_is_the_first_epoch_multiple_after_the_time(time: int, period: int) -> None:
    nxt = next_aligned(time, period)

    assert nxt % period == 0
    assert time < nxt <= time + period


def test_four_hour_work_runs_at_utc_multiples_of_four_hours() -> None:
    start = 1_756_771_200_000 + 5 * HOUR + 123  # 2025-09-02 05:00:00.123 UTC

    first = next_aligned(start, 4 * HOUR)

    assert (first - 1_756_771_200_000) // HOUR == 8
    assert next_aligned(first, 4 * HOUR) - first == 4 * HOUR


def test_a_non_positive_period_is_refused() -> None:
    with pytest.raises(ValueError, match="period_ms must be > 0, was 0"):
        next_aligned(0, 0)
