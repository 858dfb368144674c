"""No lookahead: what a backtest decides up to bar k does not depend on bars after k.

Each case runs the same strategy over real SOLUSDT bars three ways: truncated after bar k, on the
full series, and on the full series with every bar after k wildly altered. The signals and
orders decided on closes up to bar k's close, and the fills before bar k+1's open, must be
identical in all three.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import SimulatedClock
from adapters.exchanges.paper import PaperBroker, sequential_ids
from adapters.marketdata.exchange_info import load_instruments
from adapters.marketdata.feeds import HistoricalFeed
from domain.candles import Candles
from domain.model import Fill, Order, Signal
from domain.strategies import build_strategy
from service_layer.backtest import run_backtest
from tests.fixtures.data import load_sample_candles, sample_dir

SYMBOL = "SOLUSDT"
BAR_MS = 300_000
BARS = 7_000  # enough for trend_follow's 1h EMA(200) and ADX to be defined for a while


class RecordingBroker(PaperBroker):
    """A paper broker that also keeps every order it accepted, in order."""

    def __init__(self) -> None:
        every = load_instruments(sample_dir() / "binance_usdm_exchange_info_20251030.json")
        super().__init__(
            instruments={SYMBOL: every[SYMBOL]}, cash=Decimal(10_000), ids=sequential_ids("")
        )
        self.accepted: list[Order] = []

    def submit(self, order: Order) -> Order:
        accepted = super().submit(order)
        self.accepted.append(accepted)
        return accepted


Decisions = tuple[list[Signal], list[Order], list[Fill]]


def decisions_up_to(strategy: str, candles: Candles, k: int) -> Decisions:
    """Signals and orders decided on closes up to bar ``k``'s, fills before bar ``k+1``."""
    broker = RecordingBroker()
    result = run_backtest(
        strategy=build_strategy(strategy, {"fast": 10, "slow": 30} if strategy == "sma_cross"
                                else {}, "5m"),
        feed=HistoricalFeed({SYMBOL: candles}, "5m"),
        broker=broker,
        clock=SimulatedClock(),
        instruments=broker.instruments,
        initial_cash=Decimal(10_000),
    )  # fmt: skip
    close_k = int(candles.open_time[k]) + BAR_MS
    return (
        [s for s in result.signals if s.time <= close_k],
        [o for o in broker.accepted if o.created_time <= close_k],
        [f for f in result.fills if f.time < close_k],
    )


def altered_after(candles: Candles, k: int, factor: float, closes_only: bool) -> Candles:
    """``candles`` with every bar after ``k`` scaled by ``factor`` (only the close, or all of
    open/high/low/close)."""

    def scaled(column: np.ndarray, touch: bool) -> np.ndarray:
        out = np.array(column, dtype=np.float64)
        if touch:
            out[k + 1 :] *= factor
        return out

    every = not closes_only
    return Candles(
        candles.open_time,
        scaled(candles.open, every),
        scaled(candles.high, every),
        scaled(candles.low, every),
        scaled(candles.close, True),
        candles.volume,
    )


def sample() -> Candles:
    return load_sample_candles(SYMBOL).slice(0, BARS)


def assert_same(a: Decisions, b: Decisions) -> None:
    for name, left, right in zip(("signals", "orders", "fills"), a, b, strict=True):
        assert left == right, f"{name} differ"


@settings(max_examples=12, deadline=None)
@given(
    k=st.integers(3_000, BARS - 2),
    factor=st.sampled_from([3.0, 0.3, 1.05]),
    closes_only=st.booleans(),
)
def test_sma_cross_decisions_up_to_bar_k_ignore_future_bars(
    k: int, factor: float, closes_only: bool
) -> None:
    full = sample()

    seen_to_k = decisions_up_to("sma_cross", full.slice(0, k + 1), k)
    seen_all = decisions_up_to("sma_cross", full, k)
    seen_altered = decisions_up_to("sma_cross", altered_after(full, k, factor, closes_only), k)

    assert seen_to_k[0], "no signal before bar k: the comparison would be vacuous"
    assert_same(seen_to_k, seen_all)
    assert_same(seen_to_k, seen_altered)


@settings(max_examples=12, deadline=None)
@given(
    k=st.integers(3_000, BARS - 2),
    factor=st.sampled_from([3.0, 0.3, 1.05]),
    closes_only=st.booleans(),
)
def test_trend_follow_decisions_up_to_bar_k_ignore_future_bars(
    k: int, factor: float, closes_only: bool
) -> None:
    full = sample()

    seen_to_k = decisions_up_to("trend_follow", full.slice(0, k + 1), k)
    seen_all = decisions_up_to("trend_follow", full, k)
    seen_altered = decisions_up_to("trend_follow", altered_after(full, k, factor, closes_only), k)

    assert_same(seen_to_k, seen_all)
    assert_same(seen_to_k, seen_altered)


def test_trend_follow_has_decisions_in_the_window_the_lookahead_test_checks() -> None:
    signals, orders, fills = decisions_up_to("trend_follow", sample(), 3_000)

    assert signals and orders and fills
