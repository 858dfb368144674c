"""No lookahead: what a backtest decides up to bar k does not depend on bars after k.

Each case runs the same strategy over real SOLUSDT bars three ways: truncated after bar k, on the
full series, and on the full series with every bar after k wildly altered. The signals and
orders decided on closes up to bar k's close, and the fills before bar k+1's open, must be
identical in all three.

The engine is driven here as :func:`service_layer.backtest.run_backtest` drives it, against the
real simulated venue; the orders are read from the ledger's changes (every order is recorded
there as ``pending_new`` when it is decided, including those decided on the last close, which
wait in the outbox instead of being sent).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import SimulatedClock
from adapters.venues.simulated.venue import SimulatedVenue
from domain.candles import Candles
from domain.ledger import Ledger
from domain.model import Fill, Order, OrderStatus, Signal
from domain.strategies import build_strategy
from service_layer.engine import Engine
from tests.fixtures.data import load_sample_candles
from tests.fixtures.venues import sample_instruments

SYMBOL = "SOLUSDT"
BAR_MS = 300_000
BARS = 7_000  # enough for trend_follow's 1h EMA(200) and ADX to be defined for a while
CASH = Decimal(10_000)
PARAMS = {"sma_cross": {"fast": 10, "slow": 30}, "trend_follow": {}}

Decisions = tuple[list[Signal], list[Order], list[Fill]]


def decisions_up_to(strategy: str, candles: Candles, k: int) -> Decisions:
    """Signals and orders decided on closes up to bar ``k``'s, fills before bar ``k+1``."""
    instruments = sample_instruments(SYMBOL)
    clock = SimulatedClock()
    venue = SimulatedVenue(instruments=instruments, cash=CASH, clock=clock)
    engine = Engine(
        strategy=build_strategy(strategy, PARAMS[strategy], "5m"),
        execution=venue,
        matcher=venue,
        clock=clock,
        instruments=instruments,
        symbols=(SYMBOL,),
        timeframe="5m",
        run_id="lookahead",
        ledger=Ledger(CASH),
    )
    outcome = engine.process({SYMBOL: candles})
    close_k = int(candles.open_time[k]) + BAR_MS
    placed = [o for o in outcome.changes.orders if o.status is OrderStatus.PENDING_NEW]
    return (
        [s for s in outcome.signals if s.time <= close_k],
        [o for o in placed if o.created_time <= close_k],
        [f for f in outcome.changes.fills if f.time < close_k],
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


@settings(max_examples=15, deadline=None)
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


@settings(max_examples=15, deadline=None)
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
    assert any(o.reduce_only for o in orders), "no exit placed: exits go unchecked"


def test_an_order_decided_on_the_last_close_is_compared_even_though_it_is_not_sent() -> None:
    full = sample()
    signals, _, _ = decisions_up_to("sma_cross", full, BARS - 1)
    k = int(np.searchsorted(full.open_time, signals[-1].time - BAR_MS))

    truncated = decisions_up_to("sma_cross", full.slice(0, k + 1), k)

    assert truncated[1][-1].created_time == signals[-1].time
    assert_same(truncated, decisions_up_to("sma_cross", full, k))
