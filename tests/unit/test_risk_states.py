"""Trading states and the order check (domain/risk/states.py): the admission table worked out
by hand, a real BTCUSDT position replayed through the October 10 2025 crash, and Hypothesis
invariants (reduce-only orders never increase exposure, reducing admits nothing that grows or
flips a position, halted admits no order)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.model import Side
from domain.risk.states import (
    ACCOUNT,
    StateChange,
    TradingState,
    admits,
    most_restrictive,
    position_after,
    reduces,
)
from tests.fixtures.data import load_candles

D = Decimal
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
BUY, SELL = Side.BUY, Side.SELL


@pytest.mark.parametrize(
    ("position", "side", "qty", "reduce_only", "after"),
    [
        (D(1), SELL, D("0.4"), False, D("0.6")),
        (D(1), SELL, D("1.5"), False, D("-0.5")),  # a plain order flips the position
        (D(1), SELL, D("1.5"), True, D(0)),  # reduce-only: clipped to the position
        (D(1), BUY, D("0.5"), True, D(1)),  # reduce-only on the wrong side: nothing
        (D(0), SELL, D(1), True, D(0)),
        (D(-2), BUY, D(1), True, D(-1)),
        (D(-2), SELL, D(1), False, D(-3)),
    ],
)
def test_position_after_a_complete_fill(
    position: Decimal, side: Side, qty: Decimal, reduce_only: bool, after: Decimal
) -> None:
    assert position_after(position, side, qty, reduce_only) == after


@pytest.mark.parametrize(
    ("state", "position", "side", "qty", "reduce_only", "admitted"),
    [
        (ACTIVE, D(0), BUY, D(1), False, True),
        (ACTIVE, D(1), BUY, D(5), False, True),
        (REDUCING, D(1), SELL, D("0.5"), False, True),
        (REDUCING, D(1), SELL, D(1), False, True),  # closes exactly
        (REDUCING, D(1), SELL, D("1.5"), False, False),  # would flip to short
        (REDUCING, D(1), SELL, D("1.5"), True, True),  # reduce-only: clipped, cannot flip
        (REDUCING, D(1), BUY, D("0.1"), False, False),
        (REDUCING, D(1), BUY, D("0.1"), True, False),
        (REDUCING, D(0), SELL, D(1), False, False),  # flat: nothing to reduce
        (REDUCING, D(-3), BUY, D(2), False, True),
        (HALTED, D(1), SELL, D("0.5"), True, False),  # not even an exit
        (HALTED, D(0), BUY, D(1), False, False),
    ],
)
def test_admission_table(
    state: TradingState,
    position: Decimal,
    side: Side,
    qty: Decimal,
    reduce_only: bool,
    admitted: bool,
) -> None:
    refusal = admits(state, position, side, qty, reduce_only)

    assert (refusal is None) is admitted


def test_refusals_say_the_state_and_the_order() -> None:
    assert admits(REDUCING, D(1), BUY, D("0.1"), False) == (
        "trading is reducing: buy 0.1 would not reduce position 1 without flipping it"
    )
    assert admits(HALTED, D(1), SELL, D(1), True) == (
        "trading is halted: sell 1 refused (only cancels are allowed)"
    )


def test_a_non_positive_order_qty_is_an_error() -> None:
    with pytest.raises(ValueError, match="order_qty must be > 0, was 0"):
        admits(ACTIVE, D(1), BUY, D(0), False)


def test_most_restrictive_orders_the_states() -> None:
    assert most_restrictive() is ACTIVE
    assert most_restrictive(ACTIVE, REDUCING) is REDUCING
    assert most_restrictive(HALTED, REDUCING, ACTIVE) is HALTED
    assert [s.severity for s in TradingState] == [0, 1, 2]


def test_a_state_change_is_a_transition_of_a_named_scope() -> None:
    change = StateChange(ACCOUNT, ACTIVE, HALTED, "2 consecutive losing trades", 1_000, "x")

    assert (change.scope, change.from_state, change.to_state) == ("account", ACTIVE, HALTED)
    with pytest.raises(ValueError, match="two different states, was halted"):
        StateChange(ACCOUNT, HALTED, HALTED, "again", 1_000)
    with pytest.raises(ValueError, match="scope must not be empty"):
        StateChange("", ACTIVE, HALTED, "why", 1_000)


def test_a_real_long_is_only_ever_cut_while_reducing_through_the_october_10_crash() -> None:
    # A 0.081 BTC long held into 2025-10-10 with the account reducing all day. At each 5m
    # close a toy strategy asks to sell 0.01 reduce-only after a down close and to buy 0.01
    # back otherwise. Reducing refuses every buy; the sells shrink the position 0.01 at a
    # time, the 9th (the 01:25 UTC close) is clipped to the last 0.001, and once flat every
    # order is refused.
    candles = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")
    start = int(dt.datetime(2025, 10, 10, tzinfo=dt.UTC).timestamp() * 1000)
    rows = np.flatnonzero((candles.open_time >= start) & (candles.open_time < start + 86_400_000))
    down = candles.close[rows] < candles.close[rows - 1]
    held, path, refused = D("0.081"), [], 0

    for is_down in down:
        side, qty = (SELL, D("0.01")) if is_down else (BUY, D("0.01"))
        if admits(REDUCING, held, side, qty, reduce_only=is_down) is None:
            held = position_after(held, side, qty, reduce_only=is_down)
        else:
            refused += 1
        path.append(held)

    flat_at = int(np.flatnonzero(down)[8])  # the 9th down close of the day
    assert len(rows) == 288
    assert all(b <= a for a, b in zip([D("0.081"), *path], path, strict=False))
    assert path[flat_at - 1] == D("0.001") and path[flat_at] == 0 and held == 0
    assert refused == 288 - 9
    assert dt.datetime.fromtimestamp(
        (int(candles.open_time[rows[flat_at]]) + 300_000) / 1000, tz=dt.UTC
    ) == dt.datetime(2025, 10, 10, 1, 25, tzinfo=dt.UTC)


# -- invariants -----------------------------------------------------------------------------

quantities = st.decimals(min_value=D("0.001"), max_value=D(1000), places=3)
positions = st.decimals(min_value=D(-1000), max_value=D(1000), places=3)
sides = st.sampled_from([BUY, SELL])


@settings(max_examples=500)
@given(positions, sides, quantities)
def test_reduce_only_orders_never_increase_exposure_nor_flip(
    position: Decimal, side: Side, qty: Decimal
) -> None:
    after = position_after(position, side, qty, reduce_only=True)

    assert abs(after) <= abs(position)
    assert after == 0 or (after > 0) == (position > 0)


@settings(max_examples=500)
@given(positions, sides, quantities, st.booleans())
def test_reducing_admits_only_orders_that_shrink_without_flipping(
    position: Decimal, side: Side, qty: Decimal, reduce_only: bool
) -> None:
    admitted = admits(REDUCING, position, side, qty, reduce_only) is None
    after = position_after(position, side, qty, reduce_only)

    assert admitted is reduces(position, side, qty, reduce_only)
    if admitted:
        assert abs(after) < abs(position)
        assert after == 0 or (after > 0) == (position > 0)


@settings(max_examples=500)
@given(positions, sides, quantities, st.booleans())
def test_halted_admits_no_order_and_active_admits_every_order(
    position: Decimal, side: Side, qty: Decimal, reduce_only: bool
) -> None:
    assert admits(HALTED, position, side, qty, reduce_only) is not None
    assert admits(ACTIVE, position, side, qty, reduce_only) is None
