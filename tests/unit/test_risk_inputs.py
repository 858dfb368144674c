"""The mark grid's per-day extremes bound the equity the risk gate would otherwise reduce row by
row: on real bars, the bound never crosses the rows' true lowest or highest equity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.candles import Candles
from domain.metrics import DAY_MS
from service_layer.risk_inputs import (
    MarkGrid,
    Segment,
    equity_bound,
    equity_extreme,
    mark_grid,
    segment_equity,
)
from tests.fixtures.data import load_sample_candles

TF_MS = 300_000


@pytest.fixture(scope="module")
def grid() -> MarkGrid:
    history: dict[str, Candles] = {s: load_sample_candles(s) for s in ("BTCUSDT", "ETHUSDT")}
    return mark_grid(history, TF_MS, None)


def test_day_rows_start_each_utc_day_and_the_extremes_are_the_days(grid: MarkGrid) -> None:
    day = grid.close_time // DAY_MS
    rows = grid.day_rows

    assert rows[0] == 0 and len(rows) == len(np.unique(day)) > 20
    assert all(day[r] != day[r - 1] for r in rows[1:])
    for d, (lo, hi) in enumerate(zip(rows, [*rows[1:], len(day)], strict=True)):
        assert grid.day_low[d].tolist() == np.min(grid.marks[lo:hi], axis=0).tolist()
        assert grid.day_high[d].tolist() == np.max(grid.marks[lo:hi], axis=0).tolist()


@st.composite
def _cases(draw: st.DrawFn, days: int) -> tuple[int, int, int, dict[str, tuple[float, float]]]:
    d = draw(st.integers(0, days - 1))
    symbols = draw(st.sampled_from([("BTCUSDT",), ("ETHUSDT",), ("BTCUSDT", "ETHUSDT")]))
    qty = st.floats(0.001, 5.0).map(lambda q: q * draw(st.sampled_from([1, -1])))
    held = {s: (draw(qty), draw(st.floats(100.0, 150_000.0))) for s in symbols}
    start, length = draw(st.floats(0.0, 1.0)), draw(st.floats(0.0, 1.0))
    return d, int(start * 1_000_000), int(length * 1_000_000), held


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_day_bound_never_crosses_the_rows_equity(grid: MarkGrid, data: st.DataObject) -> None:
    rows = [*grid.day_rows, len(grid.close_time)]
    d, start, length, held = data.draw(_cases(len(grid.day_rows)))
    first, end = rows[d], rows[d + 1]
    a = first + start % (end - first)
    b = a + 1 + length % (end - a)
    seg = Segment(first, end, 10_000.0, held)

    equity = segment_equity(grid, seg, a, b)
    low, high = equity_bound(grid, seg, d), equity_bound(grid, seg, d, high=True)

    if len(held) == 1:  # the same formula as the exact extreme: no rounding between them
        assert low <= equity_extreme(grid, seg, a, b) and high >= equity_extreme(
            grid, seg, a, b, high=True
        )
    slack = 1e-9 * float(np.max(np.abs(equity)))
    assert low <= float(equity.min()) + slack
    assert high >= float(equity.max()) - slack
