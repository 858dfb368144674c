"""Account bookkeeping (domain/account.py) with fills at real BTCUSDT prices.

Fills are named as the venues name them (``<client order id>-<bar time>``) and a trade takes the
id of the fill that closed it. Realized PnL and pro-rata fee shares are kept to the quote
asset's precision (USDT: 8 places), average entry prices to 12 places.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.account import MONEY_QUANTUM, PRICE_QUANTUM, Account, apply_fill
from domain.execution import to_decimal
from domain.model import Fill, Liquidity, Position, Side, Trade
from tests.fixtures.data import load_sample_candles

SYMBOL = "BTCUSDT"
RATE = Decimal("0.0005")
STEP = Decimal("0.001")
CASH = Decimal(10_000)
TOLERANCE = Decimal("1e-18")

_order_numbers = itertools.count(1)


def price(i: int, column: str = "close") -> Decimal:
    """A real BTCUSDT price: ``column`` of sample bar ``i``."""
    return to_decimal(getattr(load_sample_candles(SYMBOL), column)[i])


def bar_time(i: int) -> int:
    return int(load_sample_candles(SYMBOL).open_time[i])


def money(amount: Decimal) -> Decimal:
    return amount.quantize(MONEY_QUANTUM, ROUND_HALF_EVEN)


def fill(side: Side, qty: str | Decimal, i: int, column: str = "open") -> Fill:
    """A taker fill of ``qty`` at a real price of bar ``i`` (its own order, fee rounded to
    USDT's 8 places as a venue charges it)."""
    q, p, t = Decimal(qty), price(i, column), bar_time(i)
    order_id = f"o{next(_order_numbers)}"
    return Fill(f"{order_id}-{t}", order_id, SYMBOL, side, q, p, money(q * p * RATE),
                Liquidity.TAKER, t)  # fmt: skip


def trade_id_of(f: Fill) -> Callable[[], str]:
    """The trade id rule of the ledger and the venue: the closing fill's id."""
    return lambda: f.id


def flat() -> Position:
    return Position(SYMBOL)


def test_buy_on_flat_opens_a_long_at_the_fill_price_carrying_its_fee() -> None:
    f = fill(Side.BUY, "0.05", 100)

    outcome = apply_fill(flat(), f, trade_id_of(f))

    assert outcome.position == Position(SYMBOL, Decimal("0.05"), f.price, f.time, f.fee)
    assert (outcome.realized, outcome.trade) == (Decimal(0), None)


def test_adding_to_a_long_averages_the_entry_to_12_places_and_keeps_the_open_time() -> None:
    first, second = fill(Side.BUY, "0.05", 100), fill(Side.BUY, "0.03", 200)
    held = apply_fill(flat(), first, trade_id_of(first)).position

    outcome = apply_fill(held, second, trade_id_of(second))

    cost = Decimal("0.05") * first.price + Decimal("0.03") * second.price
    assert outcome.position.qty == Decimal("0.08")
    assert outcome.position.entry_price == (cost / Decimal("0.08")).quantize(PRICE_QUANTUM)
    assert abs(outcome.position.entry_price - cost / Decimal("0.08")) <= PRICE_QUANTUM / 2
    assert outcome.position.opened_time == first.time
    assert outcome.position.entry_fees == first.fee + second.fee
    assert outcome.trade is None


def test_partial_close_records_a_trade_for_the_closed_part_only_named_by_the_fill() -> None:
    entry, exit_ = fill(Side.BUY, "0.08", 100), fill(Side.SELL, "0.03", 300)
    held = apply_fill(flat(), entry, trade_id_of(entry)).position

    outcome = apply_fill(held, exit_, trade_id_of(exit_))

    gross = Decimal("0.03") * (exit_.price - entry.price)
    entry_share = money(entry.fee * Decimal("0.03") / Decimal("0.08"))
    assert outcome.realized == gross
    assert outcome.trade == Trade(
        exit_.id, SYMBOL, Side.BUY, Decimal("0.03"), entry.time, entry.price, exit_.time,
        exit_.price, gross - entry_share - exit_.fee, entry_share + exit_.fee,
    )  # fmt: skip
    assert outcome.position == Position(
        SYMBOL, Decimal("0.05"), entry.price, entry.time, entry.fee - entry_share
    )


def test_full_close_of_a_short_goes_flat_and_books_pnl_net_of_both_fees() -> None:
    entry, exit_ = fill(Side.SELL, "0.05", 100), fill(Side.BUY, "0.05", 400)
    account = Account(CASH)
    account.apply(entry, trade_id_of(entry))

    outcome = account.apply(exit_, trade_id_of(exit_))

    gross = Decimal("0.05") * (entry.price - exit_.price)
    assert outcome.position.qty == 0 and account.positions == {}
    assert outcome.trade is not None
    assert outcome.trade.side is Side.SELL
    assert outcome.trade.id == exit_.id
    assert outcome.trade.pnl == gross - entry.fee - exit_.fee
    assert account.cash == CASH + gross - entry.fee - exit_.fee
    assert account.fees_paid == entry.fee + exit_.fee


def test_flip_through_zero_closes_the_long_and_opens_the_rest_short_at_the_fill_price() -> None:
    entry, flip = fill(Side.BUY, "0.05", 100), fill(Side.SELL, "0.08", 500)
    held = apply_fill(flat(), entry, trade_id_of(entry)).position

    outcome = apply_fill(held, flip, trade_id_of(flip))

    exit_share = money(flip.fee * Decimal("0.05") / Decimal("0.08"))
    assert outcome.trade is not None
    assert outcome.trade.qty == Decimal("0.05")
    assert outcome.trade.fees == entry.fee + exit_share
    gross = Decimal("0.05") * (flip.price - entry.price)
    assert outcome.trade.pnl == gross - entry.fee - exit_share
    assert outcome.position == Position(
        SYMBOL, Decimal("-0.03"), flip.price, flip.time, flip.fee - exit_share
    )


def test_realized_pnl_and_fee_shares_round_half_even_to_the_account_money_quantum() -> None:
    account = Account(CASH, money=Decimal("0.01"))  # a quote asset kept to cents
    entry = Fill("e-1", "e", SYMBOL, Side.BUY, Decimal("0.002"), Decimal("95000.1"),
                 Decimal("0.03"), Liquidity.TAKER, 1)  # fmt: skip
    exit_ = Fill("x-2", "x", SYMBOL, Side.SELL, Decimal("0.001"), Decimal("95005.1"),
                 Decimal("0.05"), Liquidity.TAKER, 2)  # fmt: skip
    account.apply(entry, trade_id_of(entry))

    outcome = account.apply(exit_, trade_id_of(exit_))

    # realized 0.001 × 5.0 = 0.005 → 0.00 and the entry fee's half 0.015 → 0.02 (to even);
    # the rest of the entry fee stays with the position
    assert outcome.realized == Decimal("0.00")
    assert outcome.trade is not None and outcome.trade.fees == Decimal("0.07")
    assert account.position(SYMBOL).entry_fees == Decimal("0.01")
    assert account.cash == CASH - entry.fee - exit_.fee


def test_apply_fill_refuses_a_fill_of_another_symbol() -> None:
    other = Fill("f", "o", "ETHUSDT", Side.BUY, Decimal(1), Decimal(4000), Decimal(0),
                 Liquidity.TAKER, 0)  # fmt: skip

    with pytest.raises(ValueError, match="ETHUSDT"):
        apply_fill(flat(), other, trade_id_of(other))


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
    fills = [fill(side, n * STEP, i, column) for i, column, side, n in steps]
    realized: list[Decimal] = []
    trades: list[Trade] = []
    for f in fills:
        outcome = account.apply(f, trade_id_of(f))
        realized.append(outcome.realized)
        trades += [outcome.trade] if outcome.trade else []
    held = account.position(SYMBOL).qty
    if held != 0:
        closing = fill(Side.SELL if held > 0 else Side.BUY, abs(held), last_bar, "close")
        outcome = account.apply(closing, trade_id_of(closing))
        fills.append(closing)
        realized.append(outcome.realized)
        trades += [outcome.trade] if outcome.trade else []

    assert account.positions == {}
    fees = sum((f.fee for f in fills), Decimal(0))
    assert abs(account.cash - (CASH + sum(realized, Decimal(0)) - fees)) <= TOLERANCE
    assert abs(sum((t.pnl for t in trades), Decimal(0)) - (account.cash - CASH)) <= TOLERANCE
    assert abs(sum((t.fees for t in trades), Decimal(0)) - fees) <= TOLERANCE
    # realized PnL is the fills' cash flow, up to the rounding of each close (half a money
    # quantum) and of each averaged entry price (half a price quantum per unit closed)
    flow = -sum((f.qty * f.price * f.side.sign for f in fills), Decimal(0))
    traded = sum((f.qty for f in fills), Decimal(0))
    bound = len(fills) * MONEY_QUANTUM / 2 + traded * PRICE_QUANTUM / 2
    assert abs(sum(realized, Decimal(0)) - flow) <= bound
