"""Paper and live process one bar per symbol at a time; the kernel answers such one-bar blocks in
scalar arithmetic where the block forms would build small arrays. Each one-bar path gives what
its block form gives, on real bars: the crossing rows, the strategies' candidates and setups, and
the equity at the bar's close.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.strategies import build_strategy
from domain.strategies.base import zero_crossings
from service_layer.equity import PositionStep, _curve, _one_close
from tests.fixtures.data import load_sample_candles
from tests.fixtures.venues import sample_instruments

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
TF_MS = 300_000
values = st.one_of(
    st.sampled_from([0.0, -0.0, np.nan, 1.0, -1.0]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


def reference_crossings(previous: float, column: list[float]) -> list[int]:
    before = [previous, *column[:-1]]
    return [
        i for i, (a, b) in enumerate(zip(before, column, strict=True)) if (a < 0 < b) or (a > 0 > b)
    ]


@given(values, st.lists(values, min_size=1, max_size=30))
def test_zero_crossings_of_a_block_and_of_each_row_agree(previous: float, column: list) -> None:
    block = zero_crossings(previous, np.array(column))
    assert block.tolist() == reference_crossings(previous, column)
    one_by_one = [
        i
        for i, value in enumerate(column)
        if len(zero_crossings(column[i - 1] if i else previous, np.array([value])))
    ]
    assert one_by_one == block.tolist()


@pytest.mark.parametrize("strategy", ["sma_cross", "trend_follow"])
def test_a_strategy_bar_by_bar_finds_the_candidates_of_one_block(strategy: str) -> None:
    candles = {s: load_sample_candles(s).slice(0, 6_000) for s in SYMBOLS}
    instruments = {s: sample_instruments(s)[s] for s in SYMBOLS}
    block, stepped = (build_strategy(strategy, {}, "5m", incremental=i) for i in (False, True))
    for s in (block, stepped):
        s.prepare(SYMBOLS, instruments)
    expected = block.on_bars(candles)
    found: dict[str, list[int]] = {s: [] for s in SYMBOLS}
    setups: dict[str, list[tuple[int, int]]] = {s: [] for s in SYMBOLS}
    for i in range(6_000):
        due = stepped.on_bars({s: c.slice(i, i + 1) for s, c in candles.items()})
        for symbol, times in due.items():
            found[symbol] += times.tolist()
            if strategy == "trend_follow":
                trend, entry = stepped._setups[symbol]
                setups[symbol].append((int(trend[0]), int(entry[0])))
    for symbol in SYMBOLS:
        assert found[symbol] == expected[symbol].tolist()
        assert len(found[symbol]) > 10
        if strategy == "trend_follow":
            trend, entry = block._setups[symbol]
            assert setups[symbol] == list(zip(trend.tolist(), entry.tolist(), strict=True))


steps = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.floats(-5, 5, allow_nan=False),
        st.floats(1, 1e5, allow_nan=False),
        st.floats(0, 1e6, allow_nan=False),
    ),
    max_size=6,
)


@settings(max_examples=200)
@given(
    bar=st.integers(300, 5_000),
    with_bars=st.sets(st.sampled_from(SYMBOLS), min_size=1),
    held=st.dictionaries(
        st.sampled_from(SYMBOLS), st.tuples(st.floats(-5, 5), st.floats(1, 1e5)), max_size=3
    ),
    fills=steps,
)
def test_the_equity_at_one_close_is_the_vectorized_curves(
    bar: int, with_bars: set[str], held: dict, fills: list
) -> None:
    """Symbols without a bar in the batch are marked at their last bar before it."""
    history = {
        s: load_sample_candles(s).slice(0, bar + 1 if s in with_bars else bar - 7) for s in SYMBOLS
    }
    starts = {s: bar for s in with_bars}
    time = int(history[min(with_bars)].open_time[bar])
    log = [PositionStep(time, s, q, e, c) for s, q, e, c in fills]
    before = (10_000.0, held)
    one = _one_close(history, starts, TF_MS, before, log)
    curve = _curve(history, starts, TF_MS, before, log)
    assert one is not None and curve is not None
    assert [column.tolist() for column in one] == [column.tolist() for column in curve]
