"""The simulated venue beyond plain fills, on real BTCUSDT bars: take-profit and trailing-stop
orders, linked exits, time in force, the participation cap, idempotent submission, amendments
and the market-order lot cap.

Each expected bar, price and quantity is computed here by hand from the real bars (plain loops in
``Decimal`` over the rules of ``domain/execution.py``), never by calling the code under test.
The venue is driven as the engine drives it (see the helpers of ``test_execution``).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple

import pytest

from adapters.venues.simulated.venue import SimulatedVenue
from domain.candles import Candles
from domain.model import Liquidity, Order, OrderStatus, OrderType, Position, Side, TimeInForce
from domain.orders import ExecutionEvent, apply_event
from domain.orders import ExecutionEventKind as K
from tests.unit.test_execution import (
    BTC,
    MAKER,
    STEP,
    TAKER,
    TICK,
    btc,
    d,
    fills_of,
    first_bar,
    held,
    hold,
    instruments,
    kinds,
    money,
    new_venue,
    order,
    place,
    run_bar,
)


def floor_tick(x: Decimal) -> Decimal:
    return (x / TICK).to_integral_value(ROUND_FLOOR) * TICK


def floor_step(x: Decimal) -> Decimal:
    return (x / STEP).to_integral_value(ROUND_FLOOR) * STEP


def run_bars(venue: SimulatedVenue, candles: Candles, lo: int, hi: int) -> list[ExecutionEvent]:
    """Bars ``lo .. hi-1`` one after another, as the engine steps through time."""
    return [e for i in range(lo, hi) for e in run_bar(venue, candles, i)]


def status_of(venue: SimulatedVenue, order_id: str) -> OrderStatus:
    found = venue.fetch_order(order_id)
    assert found is not None, f"the venue forgot {order_id}"
    return found.status


def head(candles: Candles, n: int) -> Candles:
    """The first ``n`` bars: what a paper run has seen when bar ``n-1`` has just closed."""
    return Candles(
        candles.open_time[:n],
        candles.open[:n],
        candles.high[:n],
        candles.low[:n],
        candles.close[:n],
        candles.volume[:n],
    )


# -- take-profit market -----------------------------------------------------------------------
def test_sell_take_profit_fills_at_its_level_when_the_high_touches_it() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, 10, "0.05")
    i = first_bar(c, lambda k: c.high[k] > c.open[k], start=13)
    level = d(c.high[i])  # a touch is enough for a take-profit
    tp = order(Side.SELL, OrderType.TAKE_PROFIT, "0.05", stop=level, reduce_only=True)
    place(venue, c, i - 1, tp)

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.order_id, fill.price, fill.liquidity) == (tp.id, level, Liquidity.TAKER)
    assert fill.fee == money(Decimal("0.05") * level * TAKER)


def test_sell_take_profit_fills_at_the_open_when_the_bar_opens_above_it() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, 10, "0.05")
    i = first_bar(c, lambda k: d(c.open[k]) > d(c.close[k - 1]) + TICK, start=13)
    level = d(c.close[i - 1]) + TICK  # above the last close, below the gapped-up open
    tp = order(Side.SELL, OrderType.TAKE_PROFIT, "0.05", stop=level, reduce_only=True)
    place(venue, c, i - 1, tp)

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)
    assert fill.price > level


def test_buy_take_profit_fills_at_its_level_when_the_low_touches_it() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, 10, "-0.05")
    i = first_bar(c, lambda k: c.low[k] < c.open[k], start=13)
    level = d(c.low[i])
    tp = order(Side.BUY, OrderType.TAKE_PROFIT, "0.05", stop=level, reduce_only=True)
    place(venue, c, i - 1, tp)

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (level, Liquidity.TAKER)


def test_buy_take_profit_fills_at_the_open_when_the_bar_opens_below_it() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, 10, "-0.05")
    i = first_bar(c, lambda k: d(c.open[k]) < d(c.close[k - 1]) - TICK, start=13)
    level = d(c.close[i - 1]) - TICK
    tp = order(Side.BUY, OrderType.TAKE_PROFIT, "0.05", stop=level, reduce_only=True)
    place(venue, c, i - 1, tp)

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)
    assert fill.price < level


def test_sell_take_profit_above_the_high_does_not_fill() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, 10, "0.05")
    i = 700
    level = d(c.high[i]) + TICK
    tp = order(Side.SELL, OrderType.TAKE_PROFIT, "0.05", stop=level, reduce_only=True)
    place(venue, c, i - 1, tp)

    events = run_bar(venue, c, i)

    assert fills_of(events) == []
    assert status_of(venue, tp.id) is OrderStatus.NEW


# -- trailing stop ----------------------------------------------------------------------------
TRAIL_AT, TRAIL_OFFSET = 101, Decimal(1000)  # placed at bar 101's close, 1,000 USDT behind


def hand_trailing_sell(
    candles: Candles, placed_at: int, anchor: Decimal, offset: Decimal
) -> tuple[int, Decimal, Decimal]:
    """``(bar, level, fill price)`` of a sell trailing stop placed at bar ``placed_at``'s close
    with best price ``anchor``: the first later bar whose low <= (max of the anchor and the
    highs of the bars since placement before it) − offset, filling at min(open, level)."""
    best = anchor
    for i in range(placed_at + 1, len(candles)):
        level = floor_tick(best - offset)
        if d(candles.low[i]) <= level:
            return i, level, min(d(candles.open[i]), level)
        best = max(best, d(candles.high[i]))
    raise AssertionError("the trailing stop never triggers on the sample")


def trailing_sell(placed_at: int, candles: Candles) -> Order:
    stop = d(candles.close[placed_at]) - TRAIL_OFFSET  # anchor: the close it is placed at
    return order(
        Side.SELL,
        OrderType.TRAILING_STOP,
        "0.05",
        stop=stop,
        offset=TRAIL_OFFSET,
        reduce_only=True,
    )


def test_trailing_stop_sell_fills_on_the_first_bar_through_its_trailing_level() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, TRAIL_AT - 2, "0.05")
    ts = trailing_sell(TRAIL_AT, c)
    place(venue, c, TRAIL_AT, ts)
    assert ts.stop_price is not None
    bar, level, price = hand_trailing_sell(c, TRAIL_AT, ts.stop_price + TRAIL_OFFSET, TRAIL_OFFSET)
    assert level > ts.stop_price  # the level did trail the highs before it triggered

    hit = venue.next_trigger(BTC, c, TRAIL_AT + 1)
    (fill,) = fills_of(run_bars(venue, c, TRAIL_AT + 1, bar + 1))

    assert hit == bar
    assert (fill.order_id, fill.price, fill.liquidity) == (ts.id, price, Liquidity.TAKER)
    assert fill.time == int(c.open_time[bar])
    assert held(venue) == 0


def test_trailing_stop_level_follows_new_highs_bar_by_bar_in_paper_mode() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, TRAIL_AT - 2, "0.05")
    ts = trailing_sell(TRAIL_AT, c)
    place(venue, c, TRAIL_AT, ts)
    assert ts.stop_price is not None
    bar, _, _ = hand_trailing_sell(c, TRAIL_AT, ts.stop_price + TRAIL_OFFSET, TRAIL_OFFSET)
    last = TRAIL_AT + 6
    assert last < bar

    # paper mode: each step sees the bars closed so far, the newest one last
    events = [e for i in range(TRAIL_AT + 1, last + 1) for e in run_bar(venue, head(c, i + 1), i)]

    best = max([ts.stop_price + TRAIL_OFFSET] + [d(h) for h in c.high[TRAIL_AT + 1 : last]])
    expected = floor_tick(best - TRAIL_OFFSET)
    moved = [e.stop_price for e in events if e.kind is K.MODIFIED]
    assert moved and moved == sorted(moved) and moved[-1] == expected > ts.stop_price
    kept = venue.fetch_order(ts.id)
    assert kept is not None and kept.stop_price == expected
    assert fills_of(events) == []


def test_trailing_stop_level_follows_new_highs_bar_by_bar_in_a_backtest() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, TRAIL_AT - 2, "0.05")
    ts = trailing_sell(TRAIL_AT, c)
    place(venue, c, TRAIL_AT, ts)
    assert ts.stop_price is not None
    last = TRAIL_AT + 6

    events = run_bars(venue, c, TRAIL_AT + 1, last + 1)

    best = max([ts.stop_price + TRAIL_OFFSET] + [d(h) for h in c.high[TRAIL_AT + 1 : last]])
    expected = floor_tick(best - TRAIL_OFFSET)
    kept = venue.fetch_order(ts.id)
    assert kept is not None and kept.stop_price == expected > ts.stop_price
    moved = [e.stop_price for e in events if e.kind is K.MODIFIED]
    assert moved and moved == sorted(moved) and moved[-1] == expected


# -- linked orders ----------------------------------------------------------------------------
class Exits(NamedTuple):
    """A stop level under and a take-profit level over bar ``t``'s close, and the bars (found
    by hand) on which each first triggers."""

    stop: Decimal
    tp: Decimal
    stop_bar: int
    tp_bar: int


def exits_around(c: Candles, t: int) -> Exits:
    """Exits placed at bar ``t``'s close: the stop one tick under the lows of bars t+1..t+3, the
    take-profit one tick over their highs (so neither triggers before bar t+4)."""
    stop = min(d(x) for x in c.low[t + 1 : t + 4]) - TICK
    tp = max(d(x) for x in c.high[t + 1 : t + 4]) + TICK
    stop_bar = first_bar(c, lambda k: d(c.low[k]) <= stop, start=t + 1)
    tp_bar = first_bar(c, lambda k: d(c.high[k]) >= tp, start=t + 1)
    return Exits(stop, tp, stop_bar, tp_bar)


def place_linked_exits(
    venue: SimulatedVenue, c: Candles, t: int, exits: Exits, stop_qty: str, tp_qty: str
) -> tuple[Order, Order]:
    """A reduce-only sell stop and sell take-profit linked together, placed at ``t``'s close."""
    stop = order(Side.SELL, OrderType.STOP, stop_qty, stop=exits.stop, reduce_only=True, link="x")
    tp = order(Side.SELL, OrderType.TAKE_PROFIT, tp_qty, stop=exits.tp, reduce_only=True, link="x")
    place(venue, c, t, stop)
    place(venue, c, t, tp)
    return stop, tp


def test_complete_fill_of_a_linked_stop_cancels_its_take_profit() -> None:
    c, venue = btc(), new_venue()
    t = first_bar(c, lambda k: exits_around(c, k).stop_bar < exits_around(c, k).tp_bar, 20)
    exits = exits_around(c, t)
    hold(venue, c, t - 2, "0.10")  # the exits close half: the position is not flat afterwards
    stop, tp = place_linked_exits(venue, c, t, exits, "0.05", "0.05")

    events = run_bars(venue, c, t + 1, exits.stop_bar + 1)

    assert [(f.order_id, f.qty) for f in fills_of(events)] == [(stop.id, Decimal("0.05"))]
    assert (K.CANCELED, tp.id) in [(e.kind, e.order_id) for e in events]
    assert status_of(venue, tp.id) is OrderStatus.CANCELED
    assert held(venue) == Decimal("0.05")


def test_take_profit_fill_leaves_its_linked_stop_clipped_to_what_is_left() -> None:
    c, venue = btc(), new_venue()
    t = first_bar(c, lambda k: exits_around(c, k).tp_bar < exits_around(c, k).stop_bar, 20)
    exits = exits_around(c, t)
    hold(venue, c, t - 2, "0.10")
    stop, tp = place_linked_exits(venue, c, t, exits, "0.10", "0.04")

    after_tp = run_bars(venue, c, t + 1, exits.tp_bar + 1)
    still_working = [o.id for o in venue.open_orders(BTC)]
    after_stop = run_bars(venue, c, exits.tp_bar + 1, exits.stop_bar + 1)

    assert [(f.order_id, f.qty) for f in fills_of(after_tp)] == [(tp.id, Decimal("0.04"))]
    assert still_working == [stop.id]
    (stop_fill,) = fills_of(after_stop)
    expected_price = min(d(c.open[exits.stop_bar]), exits.stop)
    assert (stop_fill.order_id, stop_fill.qty, stop_fill.price) == (
        stop.id,
        Decimal("0.06"),
        expected_price,
    )
    assert held(venue) == 0
    kept = venue.fetch_order(stop.id)
    assert kept is not None and kept.status.is_final and kept.filled_qty == Decimal("0.06")
    assert venue.open_orders(BTC) == []


def test_every_reduce_only_order_is_canceled_when_the_position_goes_flat() -> None:
    c, venue = btc(), new_venue()
    t = 200
    hold(venue, c, t - 2, "0.05")
    stop, tp = place_linked_exits(venue, c, t, exits_around(c, t), "0.05", "0.05")
    place(venue, c, t + 1, order(Side.SELL, OrderType.MARKET, "0.05"))

    events = run_bar(venue, c, t + 2)  # the exits cannot trigger before bar t+4

    assert held(venue) == 0
    assert {e.order_id for e in events if e.kind is K.CANCELED} == {stop.id, tp.id}
    assert venue.open_orders(BTC) == []


# -- time in force ----------------------------------------------------------------------------
@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_immediate_limit_that_its_first_bar_does_not_reach_expires_unfilled(
    tif: TimeInForce,
) -> None:
    c, venue = btc(), new_venue()
    i = 300
    limit = d(c.low[i]) - 10 * TICK  # below the first bar's low
    later = first_bar(c, lambda k: d(c.low[k]) < limit, start=i + 1)  # where GTC would fill
    buy = order(Side.BUY, OrderType.LIMIT, "0.05", price=limit, tif=tif)
    place(venue, c, i - 1, buy)

    events = run_bar(venue, c, i)

    assert kinds(events) == [K.EXPIRED]
    assert events[0].time == int(c.open_time[i])
    assert status_of(venue, buy.id) is OrderStatus.EXPIRED
    assert fills_of(run_bars(venue, c, i + 1, later + 1)) == []


def test_post_only_limit_whose_first_bar_opens_through_it_expires_instead_of_taking() -> None:
    c, venue = btc(), new_venue()
    i = 500
    limit = d(c.open[i]) + 10 * TICK  # a buy above the open: it would cross on arrival
    buy = order(Side.BUY, OrderType.LIMIT, "0.05", price=limit, tif=TimeInForce.POST_ONLY)
    place(venue, c, i - 1, buy)

    events = run_bar(venue, c, i)

    assert kinds(events) == [K.EXPIRED]
    assert events[0].reason is not None and "take liquidity" in events[0].reason
    assert status_of(venue, buy.id) is OrderStatus.EXPIRED


def test_post_only_limit_that_rests_fills_at_its_limit_as_maker() -> None:
    c, venue = btc(), new_venue()

    def resting_limit(p: int) -> Decimal:  # bars p+1..p+3 touch it, never trade through
        return min(d(x) for x in c.low[p + 1 : p + 4])

    def fill_bar(p: int) -> int:  # the first later bar that trades through it
        return first_bar(c, lambda k: d(c.low[k]) < resting_limit(p), start=p + 1)

    p = first_bar(c, lambda q: d(c.open[fill_bar(q)]) > resting_limit(q), start=50)
    limit, bar = resting_limit(p), fill_bar(p)
    buy = order(Side.BUY, OrderType.LIMIT, "0.05", price=limit, tif=TimeInForce.POST_ONLY)
    place(venue, c, p, buy)

    resting = run_bars(venue, c, p + 1, bar)
    (fill,) = fills_of(run_bar(venue, c, bar))

    assert resting == []
    assert (fill.price, fill.liquidity, fill.time) == (limit, Liquidity.MAKER, c.open_time[bar])
    assert fill.fee == money(Decimal("0.05") * limit * MAKER)


# -- participation cap ------------------------------------------------------------------------
CAP = Decimal("0.01")


def hand_parts(c: Candles, first: int, qty: Decimal) -> list[tuple[int, Decimal]]:
    """``(bar, qty)`` of each part of a ``qty`` order capped at 1 % of each bar's volume."""
    parts, left, i = [], qty, first
    while left > 0:
        part = min(left, floor_step(CAP * d(c.volume[i])))
        if part > 0:
            parts.append((i, part))
        left -= part
        i += 1
    return parts


def quiet_bar(c: Candles, qty: Decimal) -> int:
    """A bar after which a ``qty`` market order needs three to six bars at 1 % of volume."""
    return first_bar(c, lambda k: 3 <= len(hand_parts(c, k + 1, qty)) <= 6, start=20)


def test_market_order_above_the_participation_cap_fills_in_parts_over_several_bars() -> None:
    c = btc()
    venue = new_venue(cash=Decimal(100_000), participation=CAP)
    qty = Decimal("1.000")
    t = quiet_bar(c, qty)
    parts = hand_parts(c, t + 1, qty)
    buy = order(Side.BUY, OrderType.MARKET, str(qty))
    place(venue, c, t, buy)

    events = run_bars(venue, c, t + 1, parts[-1][0] + 2)

    fills = fills_of(events)
    assert [(f.time, f.qty) for f in fills] == [(int(c.open_time[i]), q) for i, q in parts]
    assert [f.price for f in fills] == [
        (d(c.open[i]) * Decimal("1.0002") / TICK).to_integral_value(ROUND_CEILING) * TICK
        for i, _ in parts
    ]
    assert len({f.id for f in fills}) == len(fills)
    statuses = []
    state = buy
    for event in events:
        state = apply_event(state, event)
        statuses.append(state.status)
    assert statuses == [OrderStatus.PARTIALLY_FILLED] * (len(parts) - 1) + [OrderStatus.FILLED]
    assert status_of(venue, buy.id) is OrderStatus.FILLED


def test_ioc_market_order_above_the_cap_fills_one_part_and_expires_the_rest() -> None:
    c = btc()
    venue = new_venue(cash=Decimal(100_000), participation=CAP)
    qty = Decimal("1.000")
    t = quiet_bar(c, qty)
    (first_part,) = hand_parts(c, t + 1, qty)[:1]
    buy = order(Side.BUY, OrderType.MARKET, str(qty), tif=TimeInForce.IOC)
    place(venue, c, t, buy)

    events = run_bar(venue, c, t + 1)

    assert kinds(events) == [K.FILL, K.EXPIRED]
    (fill,) = fills_of(events)
    assert (fill.qty, fill.time) == (first_part[1], int(c.open_time[t + 1]))
    kept = venue.fetch_order(buy.id)
    assert kept is not None
    assert (kept.status, kept.filled_qty) == (OrderStatus.EXPIRED, first_part[1])
    assert fills_of(run_bar(venue, c, t + 2)) == []


def test_fok_market_order_above_the_cap_expires_without_a_fill() -> None:
    c = btc()
    venue = new_venue(cash=Decimal(100_000), participation=CAP)
    qty = Decimal("1.000")
    t = quiet_bar(c, qty)
    buy = order(Side.BUY, OrderType.MARKET, str(qty), tif=TimeInForce.FOK)
    place(venue, c, t, buy)

    events = run_bar(venue, c, t + 1)

    assert kinds(events) == [K.EXPIRED]
    assert status_of(venue, buy.id) is OrderStatus.EXPIRED
    assert venue.positions() == []


# -- idempotent submit, modify ----------------------------------------------------------------
def test_submitting_the_same_client_id_twice_accepts_one_order() -> None:
    c, venue = btc(), new_venue()
    limit = d(c.close[10]) - 1000 * TICK
    first = order(Side.BUY, OrderType.LIMIT, "0.05", price=limit, order_id="same-id")
    again = order(Side.BUY, OrderType.LIMIT, "0.05", price=limit, order_id="same-id")

    events = place(venue, c, 10, first) + place(venue, c, 10, again)

    assert kinds(events) == [K.ACCEPTED]
    assert [o.id for o in venue.open_orders()] == ["same-id"]


def test_modifying_a_working_limit_price_is_answered_with_modified() -> None:
    c, venue = btc(), new_venue()
    limit = d(c.close[10]) - 1000 * TICK
    buy = order(Side.BUY, OrderType.LIMIT, "0.05", price=limit)
    place(venue, c, 10, buy)

    venue.modify(buy.id, price=limit - 50 * TICK)

    (modified,) = venue.drain_events()
    assert (modified.kind, modified.order_id, modified.price) == (
        K.MODIFIED,
        buy.id,
        limit - 50 * TICK,
    )
    kept = venue.fetch_order(buy.id)
    assert kept is not None and kept.price == limit - 50 * TICK


def test_modifying_a_filled_order_is_answered_with_modify_rejected() -> None:
    c, venue = btc(), new_venue()
    buy = order(Side.BUY, OrderType.MARKET, "0.05")
    place(venue, c, 10, buy)
    run_bar(venue, c, 11)

    venue.modify(buy.id, qty=Decimal("0.06"))

    (refused,) = venue.drain_events()
    assert (refused.kind, refused.order_id) == (K.MODIFY_REJECTED, buy.id)
    assert refused.reason
    assert status_of(venue, buy.id) is OrderStatus.FILLED


# -- MARKET_LOT_SIZE --------------------------------------------------------------------------
def test_market_order_above_the_market_lot_cap_is_rejected() -> None:
    c, venue = btc(), new_venue(cash=Decimal(10_000_000))
    rules = instruments()[BTC]
    assert rules.market_max_qty is not None and rules.max_qty is not None
    qty = rules.market_max_qty + 1  # 121 BTC: over MARKET_LOT_SIZE (120), under LOT_SIZE (1000)
    assert qty <= rules.max_qty

    (rejected,) = place(venue, c, 10, order(Side.BUY, OrderType.MARKET, str(qty)))

    assert rejected.kind is K.REJECTED
    assert rejected.reason is not None and str(rules.market_max_qty) in rejected.reason


def test_limit_order_of_the_same_qty_is_accepted_under_the_limit_lot_cap() -> None:
    c, venue = btc(), new_venue(cash=Decimal(10_000_000))
    rules = instruments()[BTC]
    assert rules.market_max_qty is not None
    qty = rules.market_max_qty + 1
    limit = d(c.close[10]) - 1000 * TICK

    (accepted,) = place(venue, c, 10, order(Side.BUY, OrderType.LIMIT, str(qty), price=limit))

    assert accepted.kind is K.ACCEPTED


# -- placement time ---------------------------------------------------------------------------
def test_order_never_fills_on_a_bar_that_opened_before_it_was_placed() -> None:
    c, venue = btc(), new_venue()
    t = first_bar(c, lambda k: c.high[k] > c.close[k], start=10)
    place(venue, c, t, order(Side.BUY, OrderType.STOP, "0.05", stop=d(c.high[t])))

    hit = venue.next_trigger(BTC, c, t)

    assert hit is None or hit > t


def test_the_balance_is_in_the_instruments_quote_asset() -> None:
    usdc = {s: replace(i, quote_asset="USDC") for s, i in instruments().items()}
    assert new_venue().balance().asset == "USDT"
    assert new_venue(rules=usdc).balance().asset == "USDC"
    mixed = {**instruments(), "BTCUSDC": replace(usdc[BTC], symbol="BTCUSDC")}
    with pytest.raises(ValueError, match=r"the instruments use \['USDC', 'USDT'\]"):
        new_venue(rules=mixed)


def test_a_restored_venue_matches_the_exit_of_one_time_before_the_entry() -> None:
    c = btc()
    position = Position(BTC, Decimal("0.010"), Decimal(100_000), 0)
    close = order(Side.SELL, OrderType.MARKET, "0.010", reduce_only=True, order_id="z-exit")
    entry = order(Side.BUY, OrderType.MARKET, "0.010", order_id="a-entry")
    working = [replace(o, status=OrderStatus.NEW) for o in (entry, close)]  # storage: id order
    venue = new_venue()

    venue.restore(Decimal(10_000), [position], working)
    fills = fills_of(run_bar(venue, c, 1))

    assert [f.order_id for f in fills] == ["z-exit", "a-entry"]
    (after,) = venue.positions()
    assert after.qty == Decimal("0.010") and after.entry_price == fills[1].price
