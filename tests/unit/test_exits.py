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

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Any

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.marketdata.exchange_info import load_instruments
from adapters.marketdata.feeds import HistoricalFeed
from adapters.venues.simulated.venue import SimulatedVenue
from domain.candles import Candles
from domain.ledger import Ledger
from domain.model import (
    ExitPlan,
    Fill,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TakeProfit,
    Trade,
)
from domain.strategies.base import Decision, DecisionContext, Modify, OrderIntent, WakeUp
from service_layer.engine import Engine
from tests.fixtures.data import load_sample_candles, sample_dir

SYMBOL = "BTCUSDT"
TF_MS = 300_000
DAY_MS = 86_400_000
CASH = Decimal(100_000)
QTY = Decimal("0.250")
TICK = Decimal("0.1")  # BTCUSDT's tick in the shipped exchange info (checked below)
STEP = Decimal("0.001")


# -- the real bars, as the CSV spells them ----------------------------------------------------
@dataclass(frozen=True)
class Bar:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal


@lru_cache(maxsize=1)
def bars() -> list[Bar]:
    c = load_sample_candles(SYMBOL)
    return [
        Bar(int(t), Decimal(repr(float(o))), Decimal(repr(float(h))), Decimal(repr(float(lo))))
        for t, o, h, lo in zip(c.open_time, c.open, c.high, c.low, strict=True)
    ]


def close_time(i: int) -> int:
    return bars()[i].open_time + TF_MS


def _bar_at(open_time: int) -> int:
    """Index of the sample bar opening at ``open_time`` (the sample has no gaps)."""
    return (open_time - bars()[0].open_time) // TF_MS


def floor_tick(price: Decimal) -> Decimal:
    return (price / TICK).to_integral_value(ROUND_FLOOR) * TICK


def ceil_tick(price: Decimal) -> Decimal:
    return (price / TICK).to_integral_value(ROUND_CEILING) * TICK


def floor_step(qty: Decimal) -> Decimal:
    return (qty / STEP).to_integral_value(ROUND_FLOOR) * STEP


# -- a test-only strategy -----------------------------------------------------------------------
class OneEntry:
    """Buys ``QTY`` at the close of bar ``entry_bar`` with ``exits`` attached, then:

    * ``breakeven=x``: once the entry has filled, asks to wake when the high reaches
      ``entry + 2x``, and on waking moves the stop to the entry price;
    * ``hold_ms=h``: asks to wake ``h`` after the entry decision and then sells at market.

    Records every decision context it is given.
    """

    name = "one_entry"

    def __init__(
        self,
        entry_bar: int,
        exits: ExitPlan | None = None,
        *,
        breakeven: Decimal | None = None,
        hold_ms: int | None = None,
    ) -> None:
        self.entry_time = close_time(entry_bar)
        self.exits = exits
        self.breakeven = breakeven
        self.hold_ms = hold_ms
        self.contexts: list[DecisionContext] = []
        self.stop_id: str | None = None
        self.entry: Decimal | None = None

    def params(self) -> dict[str, float | int | str | bool]:
        return {}

    def warmup_bars(self) -> int:
        return 1

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        assert symbols == (SYMBOL,)

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        block = bars.get(SYMBOL)
        closes = block.open_time + TF_MS if block is not None else np.empty(0, np.int64)
        return {SYMBOL: closes[closes == self.entry_time].astype(np.int64)}

    def decide(self, ctx: DecisionContext) -> Decision:
        self.contexts.append(ctx)
        if ctx.time == self.entry_time:
            return self._enter()
        tags = {w.tag for w in ctx.woken}
        held = ctx.portfolio.position(SYMBOL)
        if "filled" in tags and self.breakeven is not None:
            (stop,) = [o for o in ctx.portfolio.orders(SYMBOL) if o.type is OrderType.STOP]
            self.stop_id, self.entry = stop.id, held.entry_price
            above = float(held.entry_price + 2 * self.breakeven)
            return Decision(wake=(WakeUp(SYMBOL, "breakeven", above=above),))
        if "breakeven" in tags and self.stop_id is not None:
            return Decision(modify=(Modify(self.stop_id, stop_price=self.entry),))
        if "time" in tags and held.qty > 0:
            return Decision(orders=(OrderIntent(SYMBOL, Side.SELL, held.qty, reduce_only=True),))
        return Decision()

    def _enter(self) -> Decision:
        wakes: list[WakeUp] = []
        if self.breakeven is not None:  # learn the fill price once the entry's bar has closed
            wakes.append(WakeUp(SYMBOL, "filled", at_time=self.entry_time + TF_MS))
        if self.hold_ms is not None:
            wakes.append(WakeUp(SYMBOL, "time", at_time=self.entry_time + self.hold_ms))
        entry = OrderIntent(SYMBOL, Side.BUY, QTY, exits=self.exits)
        return Decision(orders=(entry,), wake=tuple(wakes))

    def state(self) -> dict[str, Any]:
        entry = None if self.entry is None else str(self.entry)
        return {"stop_id": self.stop_id, "entry": entry}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.stop_id = state.get("stop_id")
        self.entry = Decimal(state["entry"]) if state.get("entry") else None


# -- running it -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    orders: dict[str, Order]  # every order in its final state, by id, in creation order
    fills: list[Fill]
    trades: list[Trade]
    contexts: list[DecisionContext]

    def by_tag(self, suffix: str) -> Order:
        (order,) = [o for o in self.orders.values() if o.tag.endswith(suffix)]
        return order

    def fills_of(self, order: Order) -> list[Fill]:
        return [f for f in self.fills if f.order_id == order.id]


def instrument() -> Instrument:
    rules = load_instruments(sample_dir() / "binance_usdm_exchange_info_20251030.json")[SYMBOL]
    assert (rules.tick_size, rules.step_size) == (TICK, STEP)
    return rules


def run(strategy: OneEntry, first: int, last: int) -> Run:
    """Backtest ``strategy`` over sample bars ``first..last - 1`` (slippage 0)."""
    instruments = {SYMBOL: instrument()}
    clock = SimulatedClock()
    venue = SimulatedVenue(instruments=instruments, cash=CASH, clock=clock, slippage_bps=Decimal(0))
    feed = HistoricalFeed({SYMBOL: load_sample_candles(SYMBOL).slice(first, last)}, "5m")
    engine = Engine(
        strategy=strategy,
        execution=venue,
        matcher=venue,
        clock=clock,
        instruments=instruments,
        symbols=feed.symbols,
        timeframe=feed.timeframe,
        run_id="exits",
        ledger=Ledger(CASH),
    )
    engine.warm_up({s: feed.history(s) for s in feed.symbols})
    outcomes = [engine.process(batch) for batch in feed.batches()]
    outcomes.append(engine.finish())
    ids = dict.fromkeys(o.id for out in outcomes for o in out.changes.orders)
    orders = {i: engine.ledger.get(i) for i in ids}
    return Run(
        orders={i: o for i, o in orders.items() if o is not None},
        fills=[f for out in outcomes for f in out.changes.fills],
        trades=[t for out in outcomes for t in out.changes.trades],
        contexts=strategy.contexts,
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
        got.append(HandExit(name, _bar_at(fill.time), fill.qty, fill.price))
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
        HandExit(name, _bar_at(f.time), f.qty, f.price)
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
        HandExit(name, _bar_at(f.time), f.qty, f.price)
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
    assert (_bar_at(fill.time), fill.price, fill.qty) == (
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
