"""Exits of a filled entry on real BTCUSDT bars, checked against values computed by hand.

A test-only strategy (:class:`OneEntry`) buys at one chosen bar close of the real sample and then
manages the position with an exit plan, wake-ups and amendments. It runs through the real
kernel wired as :func:`service_layer.backtest.run_backtest` wires it (``Engine`` over a
``HistoricalFeed`` against a ``SimulatedVenue``, slippage 0). The expected exit bars, prices and
quantities are computed here with plain Python loops over the bars in ``Decimal`` (the rules of
``domain/execution.py``), never by calling the code under test:

* a market order fills at the next bar's open;
* a sell stop triggers when a bar's low <= its level and fills at ``min(open, level)``;
* a sell take-profit triggers when a bar's high >= its level and fills at ``max(open, level)``;
* a trailing sell stop's level on bar ``j`` is ``max(entry fill, highs of the bars before j
  since the fill) − offset``; it triggers and fills like a stop;
* exits exist from the entry fill's bar open on, so they may fill on that same bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from domain.model import (
    ExitPlan,
    OrderStatus,
    OrderType,
    TakeProfit,
)
from tests.fixtures.exit_harness import (
    DAY_MS,
    QTY,
    TF_MS,
    OneEntry,
    bar_at,
    bars,
    ceil_tick,
    close_time,
    floor_step,
    floor_tick,
    run,
)


# -- trailing stop ----------------------------------------------------------------------------
def hand_trailing_exit(entry_bar: int, offset: Decimal) -> tuple[int, Decimal, Decimal]:
    """(exit bar, level in force there, fill price) of a trailing sell stop ``offset`` behind
    the best price since a market buy filled at bar ``entry_bar + 1``'s open."""
    b = bars()
    best = b[entry_bar + 1].open
    for j in range(entry_bar + 1, len(b)):
        level = floor_tick(best - offset)
        if b[j].low <= level:
            return j, level, floor_tick(min(b[j].open, level))
        best = max(best, b[j].high)
    raise AssertionError("the trailing stop never triggers")


@pytest.mark.parametrize(
    ("entry_bar", "offset", "gaps"),
    [
        pytest.param(388, Decimal(300), False, id="touched"),
        pytest.param(4326, Decimal(300), True, id="gapped-through"),
    ],
)
def test_trailing_stop_exits_on_the_first_bar_whose_low_reaches_the_trailed_level(
    entry_bar: int, offset: Decimal, gaps: bool
) -> None:
    exit_bar, level, price = hand_trailing_exit(entry_bar, offset)
    fill_bar = entry_bar + 1
    assert level > floor_tick(bars()[fill_bar].open - offset)  # arrange: the level has moved
    assert (bars()[exit_bar].open < level) is gaps

    done = run(
        OneEntry(entry_bar, ExitPlan(trailing_distance=offset)), entry_bar - 10, exit_bar + 20
    )

    trail = done.by_tag(":trail")
    assert trail.type is OrderType.TRAILING_STOP and trail.reduce_only
    assert trail.status is OrderStatus.FILLED and trail.stop_price == level
    (fill,) = done.fills_of(trail)
    assert (fill.time, fill.price, fill.qty) == (bars()[exit_bar].open_time, price, QTY)
    (trade,) = done.trades
    assert (trade.entry_time, trade.entry_price) == (bars()[fill_bar].open_time,
                                                     bars()[fill_bar].open)  # fmt: skip
    assert (trade.exit_time, trade.exit_price, trade.id) == (fill.time, price, fill.id)


# -- partial take-profits ---------------------------------------------------------------------
FRACTIONS = (Decimal("0.33"), Decimal("0.33"), Decimal("0.34"))
MULTIPLES = (Decimal("1.5"), Decimal(3), Decimal(5))


def take_profit_plan(x: Decimal) -> ExitPlan:
    return ExitPlan(
        stop_distance=x,
        take_profits=tuple(TakeProfit(m * x, f) for m, f in zip(MULTIPLES, FRACTIONS, strict=True)),
    )


@dataclass(frozen=True)
class HandExit:
    name: str  # "tp1".."tp3" or "stop"
    bar: int
    qty: Decimal
    price: Decimal


def hand_take_profits(entry_bar: int, x: Decimal, *, breakeven: bool = False) -> list[HandExit]:
    """The exits of a long bought at bar ``entry_bar + 1``'s open with a stop ``x`` below and
    take-profits at 1.5x, 3x and 5x above (33 %, 33 %, the rest), until flat. With
    ``breakeven``, the first bar after the fill's whose high reaches ``entry + 2x`` moves the
    stop to the entry from the next bar on."""
    b = bars()
    fill_bar = entry_bar + 1
    entry = b[fill_bar].open
    stop = floor_tick(entry - x)
    levels = [ceil_tick(entry + m * x) for m in MULTIPLES]
    sizes = [floor_step(QTY * f) for f in FRACTIONS[:-1]]
    sizes.append(QTY - sum(sizes, Decimal(0)))
    left, done, out = QTY, 0, []
    for j in range(fill_bar, len(b)):
        hits = [k for k in range(done, 3) if b[j].high >= levels[k]]
        stopped = b[j].low <= stop
        assert not (hits and stopped), f"bar {j} reaches the stop and a take-profit: ambiguous"
        for k in hits:
            out.append(HandExit(f"tp{k + 1}", j, sizes[k], max(b[j].open, levels[k])))
            left -= sizes[k]
        done += len(hits)
        if stopped:
            out.append(HandExit("stop", j, left, min(b[j].open, stop)))
            left = Decimal(0)
        if left == 0:
            return out
        if breakeven and j > fill_bar and b[j].high >= entry + 2 * x:
            stop, breakeven = entry, False
    raise AssertionError("the position never closes")


def test_take_profits_fill_level_by_level_and_the_last_one_cancels_the_stop() -> None:
    entry_bar, x = 363, Decimal(200)
    expected = hand_take_profits(entry_bar, x)
    assert [e.name for e in expected] == ["tp1", "tp2", "tp3"]
    assert len({e.bar for e in expected}) == 3  # arrange: one level per bar
    assert [e.qty for e in expected] == [Decimal("0.082"), Decimal("0.082"), Decimal("0.086")]

    done = run(OneEntry(entry_bar, take_profit_plan(x)), entry_bar - 10, expected[-1].bar + 50)

    got = []
    for name in ("tp1", "tp2", "tp3"):
        order = done.by_tag(f":{name}")
        assert order.type is OrderType.TAKE_PROFIT and order.status is OrderStatus.FILLED
        (fill,) = done.fills_of(order)
        got.append(HandExit(name, bar_at(fill.time), fill.qty, fill.price))
    assert got == expected
    stop = done.by_tag(":stop")
    assert stop.status is OrderStatus.CANCELED and stop.filled_qty == 0
    assert stop.updated_time == bars()[expected[-1].bar].open_time
    assert sum((t.qty for t in done.trades), Decimal(0)) == QTY
    assert not [o for o in done.orders.values() if o.is_open]


def test_stop_after_a_take_profit_sells_only_what_is_left_and_cancels_the_other_levels() -> None:
    entry_bar, x = 412, Decimal(200)
    expected = hand_take_profits(entry_bar, x)
    assert [e.name for e in expected] == ["tp1", "stop"]
    assert expected[1].qty == QTY - Decimal("0.082")

    done = run(OneEntry(entry_bar, take_profit_plan(x)), entry_bar - 10, expected[-1].bar + 50)

    tp1, stop = done.by_tag(":tp1"), done.by_tag(":stop")
    got = [
        HandExit(name, bar_at(f.time), f.qty, f.price)
        for name, order in (("tp1", tp1), ("stop", stop))
        for f in done.fills_of(order)
    ]
    assert got == expected
    assert stop.filled_qty == expected[1].qty and stop.status.is_final
    for name in ("tp2", "tp3"):
        assert done.by_tag(f":{name}").status is OrderStatus.CANCELED
    assert [t.qty for t in done.trades] == [e.qty for e in expected]


def test_breakeven_move_after_a_take_profit_moves_the_stop_for_what_is_left() -> None:
    entry_bar, x = 1171, Decimal(200)
    expected = hand_take_profits(entry_bar, x, breakeven=True)
    entry = bars()[entry_bar + 1].open
    assert [e.name for e in expected] == ["tp1", "stop"]  # arrange: tp1, wake-up, back to entry
    assert expected[1].price <= entry
    strategy = OneEntry(entry_bar, take_profit_plan(x), breakeven=x)

    done = run(strategy, entry_bar - 10, expected[-1].bar + 50)

    assert [[w.tag for w in c.woken] for c in done.contexts] == [[], ["filled"], ["breakeven"]]
    stop = done.by_tag(":stop")
    assert stop.stop_price == entry
    got = [
        HandExit(name, bar_at(f.time), f.qty, f.price)
        for name in ("tp1", "stop")
        for f in done.fills_of(done.by_tag(f":{name}"))
    ]
    assert got == expected


# -- breakeven --------------------------------------------------------------------------------
@dataclass(frozen=True)
class HandBreakeven:
    wake_bar: int
    exit_bar: int
    exit_price: Decimal


def hand_breakeven(entry_bar: int, x: Decimal) -> HandBreakeven:
    """Stop ``x`` below a buy filled at bar ``entry_bar + 1``'s open; from the bar after the
    fill's, the first bar whose high reaches ``entry + 2x`` moves it to the entry (from the
    next bar on); then the first bar whose low reaches the entry sells at min(open, entry)."""
    b = bars()
    fill_bar = entry_bar + 1
    entry = b[fill_bar].open
    stop, level = floor_tick(entry - x), entry + 2 * x
    assert b[fill_bar].high < level and b[fill_bar].low > stop
    wake = next(j for j in range(fill_bar + 1, len(b)) if b[j].high >= level)
    assert all(b[j].low > stop for j in range(fill_bar, wake + 1)), "stopped out first"
    out = next(j for j in range(wake + 1, len(b)) if b[j].low <= entry)
    return HandBreakeven(wake, out, min(b[out].open, entry))


def test_breakeven_wakes_once_on_the_first_bar_reaching_the_level_and_moves_the_stop() -> None:
    entry_bar, x = 1000, Decimal(200)
    expected = hand_breakeven(entry_bar, x)
    entry = bars()[entry_bar + 1].open
    assert expected.wake_bar - entry_bar > 5  # arrange: many bars pass before the wake-up
    strategy = OneEntry(entry_bar, ExitPlan(stop_distance=x), breakeven=x)

    done = run(strategy, entry_bar - 10, expected.exit_bar + 20)

    times = [c.time for c in done.contexts]
    assert times == [close_time(entry_bar), close_time(entry_bar + 1),
                     close_time(expected.wake_bar)]  # fmt: skip
    assert [[w.tag for w in c.woken] for c in done.contexts] == [[], ["filled"], ["breakeven"]]
    stop = done.by_tag(":stop")
    assert stop.stop_price == entry and stop.status is OrderStatus.FILLED
    (fill,) = done.fills_of(stop)
    assert (bar_at(fill.time), fill.price, fill.qty) == (
        expected.exit_bar,
        expected.exit_price,
        QTY,
    )


# -- time exit --------------------------------------------------------------------------------
def test_time_exit_sells_at_the_open_after_the_bar_that_closes_a_day_after_entry() -> None:
    entry_bar, x = 2000, Decimal(3000)  # a stop too far to be reached in the day
    b = bars()
    deadline = close_time(entry_bar) + DAY_MS
    wake = next(j for j in range(entry_bar + 1, len(b)) if b[j].open_time + TF_MS >= deadline)
    stop = floor_tick(b[entry_bar + 1].open - x)
    assert wake == entry_bar + 288  # 24 h of 5m bars after the entry decision
    assert all(b[j].low > stop for j in range(entry_bar + 1, wake + 2))
    strategy = OneEntry(entry_bar, ExitPlan(stop_distance=x), hold_ms=DAY_MS)

    done = run(strategy, entry_bar - 10, wake + 20)

    assert [c.time for c in done.contexts] == [close_time(entry_bar), close_time(wake)]
    (trade,) = done.trades
    assert (trade.exit_time, trade.exit_price, trade.qty) == (b[wake + 1].open_time,
                                                              b[wake + 1].open, QTY)  # fmt: skip
    (market,) = [o for o in done.orders.values() if o.tag == "one_entry" and o.reduce_only]
    assert market.type is OrderType.MARKET and market.created_time == close_time(wake)
    assert done.by_tag(":stop").status is OrderStatus.CANCELED
