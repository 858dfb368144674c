"""A wake-up's search (service_layer.wakeups): the first bar it fires on, read in growing
chunks up to its time, is the first bar a scan of every later bar finds, on real bars."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.strategies.base import WakeUp
from service_layer.wakeups import _first_hit
from tests.fixtures.data import load_sample_candles

CANDLES = load_sample_candles("ETHUSDT")
TF = 300_000
N = len(CANDLES)
LOW, HIGH = float(CANDLES.low.min()), float(CANDLES.high.max())


def _scan(wake: WakeUp, lo: int) -> int | None:
    times = CANDLES.open_time
    hit = np.zeros(N - lo, dtype=bool)
    if wake.at_time is not None:
        hit |= times[lo:] + TF >= wake.at_time
    if wake.above is not None:
        hit |= CANDLES.high[lo:] >= wake.above
    if wake.below is not None:
        hit |= CANDLES.low[lo:] <= wake.below
    return lo + int(hit.argmax()) if hit.any() else None


@settings(max_examples=300, deadline=None)
@given(
    lo=st.integers(0, N),
    at=st.none() | st.integers(0, N + 50),
    above=st.none() | st.floats(LOW, HIGH * 1.01),
    below=st.none() | st.floats(LOW * 0.99, HIGH),
)
def test_the_first_hit_is_the_full_scans(
    lo: int, at: int | None, above: float | None, below: float | None
) -> None:
    assume(at is not None or above is not None or below is not None)
    at_time = None if at is None else int(CANDLES.open_time[0]) + at * TF
    wake = WakeUp("ETHUSDT", "t", at_time=at_time, above=above, below=below)

    assert _first_hit(wake, CANDLES, lo, TF) == (_scan(wake, lo) if lo < N else None)
