"""Account bookkeeping (domain/account.py) with fills at real BTCUSDT prices."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.exchanges.paper import sequential_ids
from domain.account import Account, apply_fill
from domain.execution import to_decimal
from domain.model import Fill, Liquidity, Position, Side, Trade
from tests.fixtures.data import load_sample_candles

SYMBOL = "BTCUSDT"
RATE = Decimal("0.0005")
STEP = Decimal("0.001")
CASH = Decimal(10_000)
TOLERANCE = Decimal("1e-18")


def price(i: int, column: str = "close") -> Decimal:
    """A real BTCUSDT price: ``column`` of sample bar ``i``."""
    return to_decimal(getattr(load_sample_candles(SYMBOL), column)[i])


def bar_time(i: int) -> int:
    return int(load_sample_candles(SYMBOL).open_time[i])


_fill_ids = sequential_ids("f")


def fill(side: Side, qty: str | Decimal, i: int, column: str = "open") -> Fill:
    """A taker fill of ``qty`` at a real price of bar ``i``."""
    q, p = Decimal(qty), price(i, column)
    return Fill(_fill_ids(), "o", SYMBOL, side, q, p, q * p * RATE, Liquidity.TAKER, bar_time(i))


def flat() -> Position:
    return Position(SYMBOL)


def test_buy_on_flat_opens_a_long_at_the_fill_price_carrying_its_fee() -> None:
    f = fill(Side.BUY, "0.05", 100)

    outcome = apply_fill(flat(), f, sequential_ids("t"))

    assert outcome.position == Position(SYMBOL, Decimal("0.05"), f.price, f.time, f.fee)
    assert (outcome.realized, outcome.trade) == (Decimal(0), None)


def test_adding_to_a_long_averages_the_entry_and_keeps_the_open_time() -> None:
    first, second = fill(Side.BUY, "0.05", 100), fill(Side.BUY, "0.03", 200)
    held = apply_fill(flat(), first, sequential_ids("t")).position

    outcome = apply_fill(held, second, sequential_ids("t"))

    cost = Decimal("0.05") * first.price + Decimal("0.03") * second.price
    assert outcome.position.qty == Decimal("0.08")
    assert outcome.position.entry_price == cost / Decimal("0.08")
    assert outcome.position.opened_time == first.time
    assert outcome.position.entry_fees == first.fee + second.fee
    assert outcome.trade is None


def test_partial_close_records_a_trade_for_the_closed_part_only() -> None:
    entry, exit_ = fill(Side.BUY, "0.08", 100), fill(Side.SELL, "0.03", 300)
    held = apply_fill(flat(), entry, sequential_ids("t")).position

    outcome = apply_fill(held, exit_, sequential_ids("t"))

    gross = Decimal("0.03") * (exit_.price - entry.price)
    entry_share = entry.fee * Decimal("0.03") / Decimal("0.08")
    assert outcome.realized == gross
    assert outcome.trade == Trade(
        "t1", SYMBOL, Side.BUY, Decimal("0.03"), entry.time, entry.price, exit_.time,
        exit_.price, gross - entry_share - exit_.fee, entry_share + exit_.fee,
    )  # fmt: skip
    assert outcome.position == Position(
        SYMBOL, Decimal("0.05"), entry.price, entry.time, entry.fee - entry_share
    )


def test_full_close_of_a_short_goes_flat_and_books_pnl_net_of_both_fees() -> None:
    entry, exit_ = fill(Side.SELL, "0.05", 100), fill(Side.BUY, "0.05", 400)
    account = Account(CASH)
    account.apply(entry, sequential_ids("t"))

    outcome = account.apply(exit_, sequential_ids("t"))

    gross = Decimal("0.05") * (entry.price - exit_.price)
    assert outcome.position.qty == 0 and account.positions == {}
    assert outcome.trade is not None
    assert outcome.trade.side is Side.SELL
    assert outcome.trade.pnl == gross - entry.fee - exit_.fee
    assert account.cash == CASH + gross - entry.fee - exit_.fee
    assert account.fees_paid == entry.fee + exit_.fee


def test_flip_through_zero_closes_the_long_and_opens_the_rest_short_at_the_fill_price() -> None:
    entry, flip = fill(Side.BUY, "0.05", 100), fill(Side.SELL, "0.08", 500)
    held = apply_fill(flat(), entry, sequential_ids("t")).position

    outcome = apply_fill(held, flip, sequential_ids("t"))

    exit_share = flip.fee * Decimal("0.05") / Decimal("0.08")
    assert outcome.trade is not None
    assert outcome.trade.qty == Decimal("0.05")
    assert outcome.trade.fees == entry.fee + exit_share
    gross = Decimal("0.05") * (flip.price - entry.price)
    assert outcome.trade.pnl == gross - entry.fee - exit_share
    assert outcome.position == Position(
        SYMBOL, Decimal("-0.03"), flip.price, flip.time, flip.fee - exit_share
    )


def test_apply_fill_refuses_a_fill_of_another_symbol() -> None:
    other = Fill("f", "o", "ETHUSDT", Side.BUY, Decimal(1), Decimal(4000), Decimal(0),
                 Liquidity.TAKER, 0)  # fmt: skip

    with pytest.raises(ValueError, match="ETHUSDT"):
        apply_fill(flat(), other, sequential_ids("t"))


# -- money never disappears -------------------------------------------------------------------
fill_steps = st.lists(
    st.tuples(
        st.integers(0, 17_279),  # real bar
        st.sampled_from(["open", "high", "low", "close"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 300),  # lot steps
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(steps=fill_steps, last_bar=st.integers(0, 17_279))
def test_money_never_disappears_over_any_fill_sequence_ending_flat(
    steps: list[tuple[int, str, Side, int]], last_bar: int
) -> None:
    account = Account(CASH)
    ids = sequential_ids("t")
    fills = [fill(side, n * STEP, i, column) for i, column, side, n in steps]
    realized: list[Decimal] = []
    trades: list[Trade] = []
    for f in fills:
        outcome = account.apply(f, ids)
        realized.append(outcome.realized)
        trades += [outcome.trade] if outcome.trade else []
    held = account.position(SYMBOL).qty
    if held != 0:
        closing = fill(Side.SELL if held > 0 else Side.BUY, abs(held), last_bar, "close")
        outcome = account.apply(closing, ids)
        fills.append(closing)
        realized.append(outcome.realized)
        trades += [outcome.trade] if outcome.trade else []

    assert account.positions == {}
    fees = sum((f.fee for f in fills), Decimal(0))
    assert abs(account.cash - (CASH + sum(realized, Decimal(0)) - fees)) <= TOLERANCE
    assert abs(sum((t.pnl for t in trades), Decimal(0)) - (account.cash - CASH)) <= TOLERANCE
    assert abs(sum((t.fees for t in trades), Decimal(0)) - fees) <= TOLERANCE
