"""Advanced exits (domain/exit_rules.py, issue 6 component 6): Hypothesis properties 19-22, the
trailing rule by hand, and the rules run through the real kernel on real BTCUSDT bars.

The kernel tests reuse ``tests/fixtures/exit_harness.py`` (``run``: an ``Engine`` over a
``HistoricalFeed`` against a ``SimulatedVenue``, slippage 0) with a test-only strategy that
enters once and leaves every exit to the functions under test. The expected fills and stop
moves are computed here with a plain loop over the bars in ``Decimal`` (the venue's rules as
that module states them), never by calling the code under test.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.candles import Candles
from domain.exit_rules import (
    BREAKEVEN_TAG,
    FILLED_TAG,
    TAGS,
    TIME_LIMIT_MS,
    TIME_TAG,
    TRAIL_TAG,
    Bar,
    ExitState,
    breakeven,
    close_positions,
    entry_fill,
    exit_plan,
    fill_wake,
    manage,
    observe,
    regime_exit,
    start,
    time_exit,
    trail,
)
from domain.indicators import atr, macd
from domain.model import (
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Reason,
    Side,
)
from domain.regime import Regime
from domain.resample import resample
from domain.strategies.base import (
    Decision,
    DecisionContext,
    Modify,
    OrderIntent,
    WakeUp,
    zero_crossings,
)
from service_layer.exits import exit_orders
from tests.fixtures.data import load_sample_candles
from tests.fixtures.exit_harness import (
    DAY_MS,
    QTY,
    SYMBOL,
    TF_MS,
    bars,
    ceil_tick,
    close_time,
    floor_step,
    floor_tick,
    instrument,
    run,
)

SYM = "XUSDT"
HOUR_MS = 3_600_000
TICKS = st.sampled_from(
    [Decimal("0.00001"), Decimal("0.01"), Decimal("0.1"), Decimal("0.5"), Decimal(1)]
)
STEPS = st.sampled_from([Decimal("0.00000001"), Decimal("0.001"), Decimal("0.01"), Decimal(1)])
SIDES = st.sampled_from([Side.BUY, Side.SELL])
REGIMES = st.sampled_from(list(Regime))


def _stop(side: Side, qty: Decimal, level: Decimal, order_id: str = "stop") -> Order:
    """A working reduce-only stop closing a position opened by ``side``."""
    return Order(
        order_id,
        SYM,
        side.opposite,
        OrderType.STOP,
        qty,
        0,
        stop_price=level,
        status=OrderStatus.NEW,
        reduce_only=True,
    )


def _state(
    side: Side,
    entry: Decimal = Decimal(100),
    qty: Decimal = Decimal(1),
    atr_: Decimal = Decimal(2),
    **flags: bool,
) -> ExitState:
    return ExitState(SYM, side, 0, entry, qty, atr_, **flags)


def _position(side: Side, qty: Decimal = Decimal(1), entry: Decimal = Decimal(100)) -> Position:
    return Position(SYM, side.sign * qty, entry, opened_time=0)


TICK_INSTRUMENT = Instrument(SYM, tick_size=Decimal("0.1"), step_size=Decimal("0.001"))


# -- Property 19: partial exits -----------------------------------------------------------------
# Property 19
@settings(max_examples=200, deadline=None)
@given(
    atr_=st.floats(0.001, 5_000),
    multiplier=st.sampled_from([2.5, 1.0]) | st.floats(0.1, 5),
    tick=TICKS,
    step=STEPS,
    lots=st.integers(1, 100_000),
    side=SIDES,
    price_atrs=st.integers(10, 1_000),
)
def test_take_profits_close_33_then_66_then_100_percent_and_never_more_than_the_entry(
    atr_: float,
    multiplier: float,
    tick: Decimal,
    step: Decimal,
    lots: int,
    side: Side,
    price_atrs: int,
) -> None:
    rules = Instrument(SYM, tick_size=tick, step_size=step)
    unit, qty = Decimal(repr(atr_)), lots * step
    price = rules.round_price((unit + tick) * price_atrs, up=True)  # the stop stays above 0
    plan = exit_plan(atr_, multiplier, rules)
    entry = Order(
        "entry",
        SYM,
        side,
        OrderType.MARKET,
        qty,
        0,
        status=OrderStatus.FILLED,
        filled_qty=qty,
        avg_fill_price=price,
        exits=plan,
    )

    placed = exit_orders(entry, Position(SYM, side.sign * qty, price, 0), rules, 0)

    cumulative = list(itertools.accumulate(tp.fraction for tp in plan.take_profits))
    assert cumulative == [Decimal("0.33"), Decimal("0.66"), Decimal("1.00")]
    for tp, multiple in zip(plan.take_profits, ("1.5", "3", "5"), strict=True):
        assert Decimal(multiple) * unit <= tp.distance < Decimal(multiple) * unit + tick
    exact_stop = Decimal(repr(multiplier)) * unit
    assert plan.stop_distance is not None
    assert exact_stop <= plan.stop_distance < exact_stop + tick
    by_level = {int(o.tag[-1]) - 1: o for o in placed if o.type is OrderType.TAKE_PROFIT}
    closed = Decimal(0)
    for k, share in enumerate(cumulative):
        order = by_level.get(k)
        if order is not None:
            assert order.reduce_only and rules.on_step(order.qty)
            assert order.stop_price == price + side.sign * plan.take_profits[k].distance
            closed += order.qty
        assert share * qty - (k + 1) * step < closed <= share * qty
    assert closed == qty
    (stop,) = [o for o in placed if o.type is OrderType.STOP]
    assert stop.qty == qty and stop.stop_price == price - side.sign * plan.stop_distance


def test_the_entry_fill_is_the_stop_the_engine_placed_for_it_not_what_was_asked() -> None:
    price = Decimal(100)
    entry = Order(
        "entry", SYM, Side.BUY, OrderType.MARKET, Decimal("0.6"), 0, status=OrderStatus.FILLED,
        filled_qty=Decimal("0.6"), avg_fill_price=price, tag="adaptive",
        exits=exit_plan(2.0, 1.5, TICK_INSTRUMENT),
    )  # fmt: skip
    placed = exit_orders(entry, Position(SYM, Decimal("0.6"), price, 0), TICK_INSTRUMENT, 0)
    take_profits = [o for o in placed if o.type is OrderType.TAKE_PROFIT]

    # The strategy asked for 1.0; the risk gate cut the entry to 0.6.
    assert entry_fill(placed, Decimal("1.0")) == Decimal("0.6")
    assert entry_fill(placed, Decimal("0.5")) == Decimal("0.5")
    assert entry_fill(take_profits, Decimal("1.0")) == Decimal("1.0")  # no stop working


def test_exit_plan_rounds_each_distance_up_to_the_tick() -> None:
    plan = exit_plan(100.03, 2.5, TICK_INSTRUMENT)

    assert plan.stop_distance == Decimal("250.1")  # 250.075
    assert [(tp.distance, tp.fraction) for tp in plan.take_profits] == [
        (Decimal("150.1"), Decimal("0.33")),  # 150.045
        (Decimal("300.1"), Decimal("0.33")),  # 300.09
        (Decimal("500.2"), Decimal("0.34")),  # 500.15
    ]


@pytest.mark.parametrize(
    ("atr_", "multiplier"),
    [(0.0, 2.5), (-1.0, 2.5), (math.nan, 1.0), (math.inf, 1.0), (100.0, 0.0)],
)
def test_exit_plan_refuses_an_atr_or_multiplier_that_is_not_finite_and_positive(
    atr_: float, multiplier: float
) -> None:
    with pytest.raises(ValueError, match="must be finite and > 0"):
        exit_plan(atr_, multiplier, TICK_INSTRUMENT)


# -- arming ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "key", "level"), [(Side.BUY, "above", 104.0), (Side.SELL, "below", 96.0)]
)
def test_start_asks_to_wake_at_two_atr_in_favour_and_a_day_after_the_entry(
    side: Side, key: str, level: float
) -> None:
    position = Position(SYM, side.sign * Decimal(3), Decimal(100), opened_time=5_000)

    armed = start(position, 2.0, now=9_000)

    assert armed.state == ExitState(SYM, side, 5_000, Decimal(100), Decimal(3), Decimal(2))
    assert armed.wake == (
        WakeUp(SYM, BREAKEVEN_TAG, **{key: level}),
        WakeUp(SYM, TIME_TAG, at_time=5_000 + 24 * HOUR_MS),
    )
    assert armed.reasons[0].values["breakeven_trigger"] == level


def test_start_refuses_a_flat_position() -> None:
    with pytest.raises(ValueError, match="flat position"):
        start(Position(SYM), 2.0, now=0)


def test_observe_records_a_profit_level_once_a_take_profit_has_filled() -> None:
    state = _state(Side.BUY, qty=Decimal(3))

    after = observe(state, _position(Side.BUY, Decimal(2)), ())

    assert after is not None and after.profit_reached
    assert observe(state, _position(Side.BUY, Decimal(3)), ()) == state
    assert observe(state, Position(SYM), ()) is None
    assert observe(state, _position(Side.SELL, Decimal(3)), ()) is None


# -- Property 20: breakeven -----------------------------------------------------------------
# Property 20
@settings(max_examples=200, deadline=None)
@given(
    side=SIDES,
    tick=TICKS,
    entry_ticks=st.integers(1_000, 10**7),
    hundredths=st.integers(0, 99),
    offset=st.integers(-500, 500),
    atr_ticks=st.integers(1, 900),
)
def test_breakeven_moves_the_stop_to_the_entry_and_never_loosens_it(
    side: Side, tick: Decimal, entry_ticks: int, hundredths: int, offset: int, atr_ticks: int
) -> None:
    rules = Instrument(SYM, tick_size=tick, step_size=Decimal("0.001"))
    entry = (entry_ticks + Decimal(hundredths) / 100) * tick  # an average fill may be off tick
    old = (entry_ticks - side.sign * offset) * tick
    state = _state(side, entry, Decimal(1), atr_ticks * tick)
    below = entry - entry % tick
    level = below if side is Side.BUY or below == entry else below + tick

    actions = breakeven(
        state, _position(side, Decimal(1), entry), (_stop(side, Decimal(1), old),), rules
    )

    assert 0 <= side.sign * (entry - level) < tick and rules.on_tick(level)
    looser = side.sign * (level - old) > 0
    assert actions.modify == ((Modify("stop", stop_price=level),) if looser else ())
    new = actions.modify[0].stop_price if actions.modify else old
    assert new is not None and side.sign * (new - old) >= 0  # never loosened
    assert side.sign * (new - level) >= 0  # at breakeven or tighter
    assert actions.state is not None and actions.state.breakeven_done
    assert actions.state.profit_reached and actions.orders == ()


def test_breakeven_moves_every_stop_of_the_position_and_leaves_other_orders() -> None:
    stops = (
        _stop(Side.BUY, Decimal(1), Decimal(95), "a"),
        _stop(Side.BUY, Decimal(1), Decimal(97), "b"),
    )
    take_profit = Order(
        "tp",
        SYM,
        Side.SELL,
        OrderType.TAKE_PROFIT,
        Decimal(1),
        0,
        stop_price=Decimal(103),
        status=OrderStatus.NEW,
        reduce_only=True,
    )

    actions = breakeven(
        _state(Side.BUY), _position(Side.BUY), (*stops, take_profit), TICK_INSTRUMENT
    )

    assert actions.modify == (
        Modify("a", stop_price=Decimal(100)),
        Modify("b", stop_price=Decimal(100)),
    )
    assert "moved to 100" in actions.reasons[0].message


def test_rules_forget_a_position_that_closed_and_drop_its_wake_ups() -> None:
    actions = breakeven(_state(Side.BUY), Position(SYM), (), TICK_INSTRUMENT)

    assert actions.state is None and actions.modify == () and actions.orders == ()
    assert set(actions.drop_wakes) == {(SYM, tag) for tag in TAGS}


# -- trailing -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "bar", "level"),
    [
        (Side.BUY, Bar(104.04, -0.1, 0.2), Decimal("103.0")),  # 104.04 - 1 = 103.04, rounded down
        (Side.SELL, Bar(95.96, 0.1, -0.2), Decimal("97.0")),  # 95.96 + 1 = 96.96, rounded up
    ],
)
def test_trailing_starts_when_momentum_turns_against_a_position_in_profit(
    side: Side, bar: Bar, level: Decimal
) -> None:
    stop = _stop(side, Decimal(1), Decimal(100 - side.sign * 5))

    actions = trail(_state(side), _position(side), (stop,), TICK_INSTRUMENT, bar, now=7_000)

    assert actions.state is not None and actions.state.trailing
    assert actions.modify == (Modify("stop", stop_price=level),)
    assert actions.wake == (WakeUp(SYM, TRAIL_TAG, at_time=7_001),)  # the next bar's close
    assert [r.values["stop"] for r in actions.reasons if "stop" in r.values] == [float(level)]


@pytest.mark.parametrize(
    "bar",
    [
        Bar(99.0, -0.1, 0.2),  # at a loss
        Bar(104.0, 0.1, -0.2),  # momentum turns in the position's favour
        Bar(104.0, -0.1, 0.0),  # from zero: no cross
        Bar(104.0, 0.1, 0.2),  # no sign change
        Bar(104.0, math.nan, 0.2),
        Bar(math.nan, -0.1, 0.2),
    ],
)
def test_trailing_does_not_start_at_a_loss_or_without_a_reversal_against_the_position(
    bar: Bar,
) -> None:
    stop = _stop(Side.BUY, Decimal(1), Decimal(95))

    actions = trail(_state(Side.BUY), _position(Side.BUY), (stop,), TICK_INSTRUMENT, bar, 7_000)

    assert actions.state == _state(Side.BUY)
    assert actions.modify == () and actions.wake == () and actions.reasons == ()


def test_trailing_keeps_a_tighter_stop_and_keeps_asking_for_the_next_bar() -> None:
    stop = _stop(Side.BUY, Decimal(1), Decimal("103.0"))
    state = _state(Side.BUY, trailing=True)

    actions = trail(state, _position(Side.BUY), (stop,), TICK_INSTRUMENT, Bar(103.5, 1, 1), 7_000)

    assert actions.state == state and actions.modify == ()  # 102.5 would loosen it
    assert actions.wake == (WakeUp(SYM, TRAIL_TAG, at_time=7_001),)


def test_manage_moves_to_breakeven_and_trails_in_one_decision_with_one_amendment() -> None:
    stop = _stop(Side.BUY, Decimal(1), Decimal(95))

    actions = manage(
        _state(Side.BUY),
        _position(Side.BUY),
        (stop,),
        TICK_INSTRUMENT,
        Bar(104.6, -0.1, 0.2),
        7_000,
        {BREAKEVEN_TAG},
    )

    assert actions.modify == (Modify("stop", stop_price=Decimal("103.6")),)
    assert actions.state is not None and actions.state.breakeven_done and actions.state.trailing
    assert len(actions.reasons) == 3  # breakeven, trailing on, trailing move


# -- Property 21: time exit -----------------------------------------------------------------
# Property 21
@settings(max_examples=200, deadline=None)
@given(
    side=SIDES,
    elapsed=st.integers(0, 48 * HOUR_MS),
    taken=st.integers(0, 999),
    reached=st.booleans(),
    cap=st.none() | st.integers(1, 1_500),
    step=STEPS,
)
def test_time_exit_closes_the_whole_position_after_a_day_only_when_no_profit_level_was_reached(
    side: Side, elapsed: int, taken: int, reached: bool, cap: int | None, step: Decimal
) -> None:
    rules = Instrument(
        SYM,
        tick_size=Decimal("0.1"),
        step_size=step,
        market_max_qty=None if cap is None else cap * step,
    )
    entry_qty, held = 1_000 * step, (1_000 - taken) * step
    state = ExitState(
        SYM, side, 10**12, Decimal(100), entry_qty, Decimal(2), profit_reached=reached
    )

    actions = time_exit(state, _position(side, held), (), rules, 10**12 + elapsed)

    if elapsed >= TIME_LIMIT_MS and not reached and taken == 0:
        assert sum((o.qty for o in actions.orders), Decimal(0)) == held
        for order in actions.orders:
            assert order.reduce_only and order.type is OrderType.MARKET
            assert order.side is side.opposite and order.symbol == SYM
            assert cap is None or order.qty <= cap * step
        assert actions.state is None and (SYM, TIME_TAG) in actions.drop_wakes
        assert "time exit" in actions.reasons[0].message
    else:
        assert actions.orders == () and actions.state is not None
        assert actions.state.profit_reached == (reached or taken > 0)
    if elapsed < TIME_LIMIT_MS:
        assert actions.wake == (WakeUp(SYM, TIME_TAG, at_time=10**12 + TIME_LIMIT_MS),)


# -- Property 22: regime exit ---------------------------------------------------------------
# Property 22
@settings(max_examples=200, deadline=None)
@given(
    previous=st.none() | REGIMES,
    new=REGIMES,
    held=st.dictionaries(
        st.sampled_from(["AUSDT", "BUSDT", "CUSDT"]),
        st.tuples(st.integers(-5_000, 5_000), st.integers(0, 9)),
    ),
)
def test_regime_exit_closes_every_position_only_from_trending_to_ranging(
    previous: Regime | None, new: Regime, held: dict[str, tuple[int, int]]
) -> None:
    step = Decimal("0.001")
    rules = {s: Instrument(s, step_size=step, market_max_qty=Decimal(1)) for s in held}
    positions = {  # some off the lot step (dust a venue left): never closed beyond what is open
        s: Position(s, lots * step + (1 if lots >= 0 else -1) * odd * step / 10, Decimal(100))
        for s, (lots, odd) in held.items()
    }
    trending = previous in (Regime.TRENDING_BULLISH, Regime.TRENDING_BEARISH)

    fires = regime_exit(previous, new)
    actions = close_positions(previous, new, positions, rules)

    assert fires is (trending and new is Regime.RANGING)
    if not fires:
        assert actions is None
        return
    assert actions is not None and actions.state is None
    for symbol, position in positions.items():
        mine = [o for o in actions.orders if o.symbol == symbol]
        closed = sum((o.qty for o in mine), Decimal(0))
        assert closed <= abs(position.qty) < closed + step
        assert all(o.reduce_only and o.type is OrderType.MARKET and o.qty <= 1 for o in mine)
        assert all(o.side.sign * position.qty < 0 for o in mine)


@settings(max_examples=100, deadline=None)
@given(
    side=SIDES,
    time=st.integers(0, 2**42),
    cents=st.integers(1, 10**9),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_exit_state_survives_a_json_round_trip(
    side: Side, time: int, cents: int, flags: tuple[bool, bool, bool]
) -> None:
    state = ExitState(
        SYM, side, time, Decimal(cents) / 100, Decimal(cents) / 1000, Decimal(cents) / 7, *flags
    )

    restored = ExitState.from_json(json.loads(json.dumps(state.to_json())))

    assert restored == state


def test_exit_state_refuses_a_non_positive_entry() -> None:
    with pytest.raises(ValueError, match="entry_price must be finite and > 0, was 0"):
        ExitState(SYM, Side.BUY, 0, Decimal(0), Decimal(1), Decimal(1))


# -- through the real kernel ----------------------------------------------------------------
@lru_cache(maxsize=1)
def _sample() -> tuple[Candles, np.ndarray]:
    candles = load_sample_candles(SYMBOL)
    return candles, macd(candles.close)[2]


class ExitRulesTrader:
    """Buys ``QTY`` at the close of bar ``entry_bar`` with ``exit_plan(atr, multiplier)``;
    arms the exit rules at the close of the fill's bar and lets ``manage`` run them at every
    wake-up and every zero crossing of the MACD histogram. Records its amendments."""

    name = "exit_rules"

    def __init__(self, entry_bar: int, atr_: float, multiplier: float) -> None:
        self.entry_time, self.atr, self.multiplier = close_time(entry_bar), atr_, multiplier
        candles, hist = _sample()
        crossings = candles.open_time[zero_crossings(math.nan, hist)] + TF_MS
        self.crossings = crossings[crossings > self.entry_time]
        self.exits: ExitState | None = None
        self.moves: list[tuple[int, Decimal | None]] = []
        self.reasons: list[Reason] = []
        self.contexts: list[DecisionContext] = []  # read by the harness

    def params(self) -> dict[str, float | int | str | bool]:
        return {}

    def warmup_bars(self) -> int:
        return 1

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        self.instrument = instruments[SYMBOL]

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        closes = bars[SYMBOL].open_time + TF_MS
        due = (closes == self.entry_time) | np.isin(closes, self.crossings)
        return {SYMBOL: closes[due].astype(np.int64)}

    def decide(self, ctx: DecisionContext) -> Decision:
        self.contexts.append(ctx)
        if ctx.time == self.entry_time:
            plan = exit_plan(self.atr, self.multiplier, self.instrument)
            buy = OrderIntent(SYMBOL, Side.BUY, QTY, exits=plan)
            return Decision(orders=(buy,), wake=(fill_wake(SYMBOL, ctx.time),))
        candles, hist = _sample()
        j = int((ctx.time - TF_MS - candles.open_time[0]) // TF_MS)
        bar = Bar(float(candles.close[j]), float(hist[j]), float(hist[j - 1]))
        tags = {w.tag for w in ctx.woken}
        position, orders = ctx.portfolio.position(SYMBOL), ctx.portfolio.orders(SYMBOL)
        if self.exits is None and FILLED_TAG in tags and position.qty:
            armed = start(position, self.atr, ctx.time, entry_qty=QTY)
            assert armed.state is not None
            actions = armed.then(
                manage(armed.state, position, orders, self.instrument, bar, ctx.time, ())
            )
        elif self.exits is not None:
            actions = manage(self.exits, position, orders, self.instrument, bar, ctx.time, tags)
        else:
            return Decision()
        self.exits = actions.state
        self.moves += [(ctx.time, m.stop_price) for m in actions.modify]
        self.reasons += actions.reasons
        return Decision(
            orders=actions.orders,
            modify=actions.modify,
            wake=actions.wake,
            drop_wakes=actions.drop_wakes,
        )

    def state(self) -> dict[str, Any]:
        return {"exits": None if self.exits is None else self.exits.to_json()}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.exits = ExitState.from_json(state["exits"]) if state.get("exits") else None


@dataclass(frozen=True)
class HandFill:
    name: str  # "tp1".."tp3", "stop" or "time"
    bar: int
    qty: Decimal
    price: Decimal


def hand_exit_rules(
    entry_bar: int, atr_: float, multiplier: float
) -> tuple[list[HandFill], list[tuple[int, Decimal]]]:
    """(fills, stop moves as (decision bar, level)) of a long bought at bar ``entry_bar + 1``'s
    open, by the issue's rules: stop ``multiplier`` ATR below, take-profits at 1.5/3/5 ATR
    (33 %, 33 %, the rest); at bar closes from the one after the fill's: the first bar whose
    high reaches entry + 2 ATR moves the stop to the entry, the first closing a day after the
    fill closes at the next open if no profit level was reached; at the fill's close, at each of
    those, at each histogram zero crossing and at every close once trailing: a histogram turning
    negative with the close above the entry starts trailing at close - 0.5 ATR."""
    b, (candles, hist) = bars(), _sample()
    x, fill = Decimal(repr(atr_)), entry_bar + 1
    entry = b[fill].open
    stop = floor_tick(entry - ceil_tick(Decimal(repr(multiplier)) * x))
    levels = [ceil_tick(entry + ceil_tick(m * x)) for m in (Decimal("1.5"), Decimal(3), Decimal(5))]
    sizes = [floor_step(QTY * Decimal("0.33"))] * 2
    sizes.append(QTY - sum(sizes, Decimal(0)))
    deadline, left, done = b[fill].open_time + DAY_MS, QTY, 0
    armed = trailing = reached = breakeven_spent = time_spent = False
    fills: list[HandFill] = []
    moves: list[tuple[int, Decimal]] = []
    for j in range(fill, len(b)):
        hits = [k for k in range(done, 3) if b[j].high >= levels[k]]
        assert not (hits and b[j].low <= stop), f"bar {j} reaches the stop and a take-profit"
        for k in hits:
            fills.append(HandFill(f"tp{k + 1}", j, sizes[k], max(b[j].open, levels[k])))
            left, reached = left - sizes[k], True
        done += len(hits)
        if b[j].low <= stop:
            return [*fills, HandFill("stop", j, left, min(b[j].open, stop))], moves
        if left == 0:
            return fills, moves
        crossing = hist[j - 1] * hist[j] < 0
        woke_be = armed and not breakeven_spent and b[j].high >= entry + 2 * x
        woke_time = armed and not time_spent and b[j].open_time + TF_MS >= deadline
        breakeven_spent, time_spent = breakeven_spent or woke_be, time_spent or woke_time
        if woke_be:
            reached = True
            if floor_tick(entry) > stop:
                stop = floor_tick(entry)
                moves.append((j, stop))
        if woke_time and not reached:
            return [*fills, HandFill("time", j + 1, left, b[j + 1].open)], moves
        armed = armed or j == fill
        if j == fill or trailing or crossing or woke_be or woke_time:
            close = Decimal(repr(float(candles.close[j])))
            trailing = trailing or (close > entry and hist[j - 1] > 0 > hist[j])
            if trailing and floor_tick(close - x / 2) > stop:
                stop = floor_tick(close - x / 2)
                moves.append((j, stop))
    raise AssertionError("the position never closes")


def _hour_atr(entry_bar: int) -> float:
    """ATR(24) of the complete 1h bars before the close of bar ``entry_bar``."""
    hours = resample(load_sample_candles(SYMBOL).slice(0, entry_bar + 1), TF_MS, HOUR_MS)
    return float(atr(hours.high, hours.low, hours.close, 24)[-1])


def _kernel_fills(strategy: ExitRulesTrader, first: int, last: int) -> list[HandFill]:
    """Run ``strategy`` over sample bars ``first..last - 1`` and return its exits' fills."""
    done = run(strategy, first, last)  # type: ignore[arg-type]
    (entry,) = [o for o in done.orders.values() if not o.reduce_only]
    assert entry.exits == exit_plan(strategy.atr, strategy.multiplier, instrument())
    assert sum((t.qty for t in done.trades), Decimal(0)) == QTY
    assert not [o for o in done.orders.values() if o.is_open]
    got = [
        HandFill(
            o.tag.rsplit(":", 1)[-1] if ":" in o.tag else "time",
            (f.time - bars()[0].open_time) // TF_MS,
            f.qty,
            f.price,
        )
        for o in done.orders.values()
        if o.reduce_only
        for f in done.fills_of(o)
    ]
    return sorted(got, key=lambda f: (f.bar, f.name))


def test_kernel_takes_partial_profits_moves_to_breakeven_and_trails_at_the_hand_levels() -> None:
    entry_bar = 199
    candles, _ = _sample()
    atr_ = float(atr(candles.high, candles.low, candles.close, 14)[entry_bar])
    fills, moves = hand_exit_rules(entry_bar, atr_, 2.5)
    entry = bars()[entry_bar + 1].open
    assert [f.name for f in fills] == ["tp1", "tp2", "stop"]  # arrange: every rule but time
    assert moves[0][1] == entry and len(moves) > 2  # breakeven first, then the trail
    assert fills[-1].price > entry and [f.qty for f in fills] == [
        Decimal("0.082"),
        Decimal("0.082"),
        Decimal("0.086"),
    ]
    strategy = ExitRulesTrader(entry_bar, atr_, 2.5)

    got = _kernel_fills(strategy, entry_bar - 40, fills[-1].bar + 20)

    assert got == fills
    assert strategy.moves == [(close_time(j), level) for j, level in moves]
    assert strategy.exits is None  # forgotten at the first decision after the close
    messages = [r.message.split(":")[0] for r in strategy.reasons]
    assert messages[:2] == ["exits armed", "breakeven"] and "trailing on" in messages


def test_kernel_closes_at_market_a_day_after_entry_when_no_profit_level_was_reached() -> None:
    entry_bar = 1117
    atr_ = _hour_atr(entry_bar)  # a 1h ATR: the day passes without reaching 1.5 ATR
    fills, moves = hand_exit_rules(entry_bar, atr_, 2.5)
    assert [f.name for f in fills] == ["time"] and moves == []
    assert fills[0].bar == entry_bar + 1 + 288  # the open after the bar closing a day later
    strategy = ExitRulesTrader(entry_bar, atr_, 2.5)

    got = _kernel_fills(strategy, entry_bar - 40, fills[-1].bar + 20)

    assert got == fills
    assert strategy.exits is None and strategy.moves == []
    assert any(r.message.startswith("time exit: 24.0 h") for r in strategy.reasons)
