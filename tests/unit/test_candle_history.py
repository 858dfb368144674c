"""The engine's per-symbol bar window: a backtest's block is kept without a copy, and the
caller's arrays are never written to."""

from __future__ import annotations

import numpy as np

from domain.candles import OHLCV_COLUMNS, Candles
from service_layer.history import CandleHistory
from tests.fixtures.data import load_sample_candles


def _copy(candles: Candles) -> Candles:
    return Candles(*(getattr(candles, name).copy() for name in ("open_time", *OHLCV_COLUMNS)))


def test_a_block_is_kept_without_a_copy_and_later_bars_never_write_into_it() -> None:
    candles = load_sample_candles("BTCUSDT")
    block, rest = candles.slice(0, 2_000), candles.slice(2_000, 2_100)
    before = _copy(block)
    history = CandleHistory()
    history.append(block)
    assert np.shares_memory(history.candles.close, block.close)
    for i in range(len(rest)):
        history.append(rest.slice(i, i + 1))
    for name in ("open_time", *OHLCV_COLUMNS):
        np.testing.assert_array_equal(getattr(block, name), getattr(before, name))
        np.testing.assert_array_equal(
            getattr(history.candles, name), getattr(candles.slice(0, 2_100), name)
        )


def test_a_limited_window_keeps_the_last_bars_of_an_adopted_block() -> None:
    candles = load_sample_candles("BTCUSDT")
    history = CandleHistory(limit=500)
    history.append(candles.slice(0, 2_000))
    np.testing.assert_array_equal(history.candles.close, candles.close[1_500:2_000])
    history.append(candles.slice(2_000, 2_001))
    np.testing.assert_array_equal(history.candles.close, candles.close[1_501:2_001])


def test_columns_of_another_dtype_are_copied_as_float64() -> None:
    candles = load_sample_candles("BTCUSDT").slice(0, 2_000)
    low_precision = Candles(
        candles.open_time, *(getattr(candles, n).astype(np.float32) for n in OHLCV_COLUMNS)
    )
    history = CandleHistory()
    history.append(low_precision)
    assert history.candles.close.dtype == np.float64
    assert not np.shares_memory(history.candles.close, low_precision.close)
