"""The adaptive strategy reads the correlation from each symbol's hourly returns, computed once
over all its bars in a backtest and sliced per decision: the same matrix as
:func:`domain.correlation.correlation_at` computes from the window's bars, at any time."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.analysis import PipelineConfig
from domain.correlation import H1, correlation_at, correlation_of
from domain.isolation import FeatureGuard
from domain.strategies.adaptive_pipeline import SymbolPipeline
from tests.fixtures.data import load_sample_candles

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
HISTORIES = {s: load_sample_candles(s) for s in SYMBOLS}
END = min(int(c.open_time[-1]) for c in HISTORIES.values())
START = max(int(c.open_time[0]) for c in HISTORIES.values())
M5 = 300_000


def _pipelines(incremental: bool) -> dict[str, SymbolPipeline]:
    out = {}
    for symbol, candles in HISTORIES.items():
        pipeline = SymbolPipeline(
            PipelineConfig(),
            M5,
            incremental=incremental,
            guard=FeatureGuard(
                dict.fromkeys(
                    ("timeframes", "thresholds", "regime", "exits", "volume_profile"), True
                )
            ),
        )
        pipeline.update(candles)
        out[symbol] = pipeline
    return out


BATCH = _pipelines(incremental=False)


@settings(max_examples=100, deadline=None)
@given(
    time=st.integers(START // M5 + 1, END // M5).map(lambda k: k * M5),
    symbols=st.sampled_from([SYMBOLS[:2], SYMBOLS[1:], SYMBOLS]),
)
def test_sliced_returns_give_the_windowed_matrix(time: int, symbols: tuple[str, ...]) -> None:
    direct = correlation_at(HISTORIES, symbols, time)
    series = [BATCH[s].hourly_returns(time, 720) for s in symbols]
    sliced = correlation_of(series, symbols, time)
    assert sliced.observations == direct.observations
    assert np.array_equal(sliced.values, direct.values, equal_nan=True)
    assert np.array_equal(sliced.volatility, direct.volatility, equal_nan=True)


def test_the_matrix_is_known_a_month_in() -> None:
    time = START + 31 * 24 * H1
    series = [BATCH[s].hourly_returns(time, 720) for s in SYMBOLS]
    assert correlation_of(series, SYMBOLS, time).observations >= 168
