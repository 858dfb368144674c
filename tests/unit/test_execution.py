"""Fill rules of domain/execution.py and the simulated venue, on real BTCUSDT/ETHUSDT bars.

Every order is placed relative to the real prices of the bar it is meant to fill on: an order
placed at bar ``t``'s close (the clock at that close, the symbol marked there, as the engine
does) may fill from bar ``t+1`` on; a limit or stop level sits on a real low, high or open. The
venue answers with execution events only; the helpers here drive it bar by bar exactly as the
engine does (``next_trigger`` / ``process_bar`` until the bar is done) and collect the events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import SimulatedClock
from adapters.marketdata.exchange_info import load_instruments
from adapters.venues.simulated.venue import SimulatedVenue
from domain.candles import Candles
from domain.execution import FeeSchedule, first_trigger, to_decimal
from domain.model import (
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from domain.orders import ExecutionEvent
from domain.orders import ExecutionEventKind as K
from tests.fixtures.data import load_sample_candles, sample_dir

BTC, ETH = "BTCUSDT", "ETHUSDT"
TF_MS = 300_000  # the sample's 5-minute bars
TAKER, MAKER = Decimal("0.0005"), Decimal("0.0002")
TICK = Decimal("0.1")  # BTCUSDT's tick in the shipped exchange info
STEP = Decimal("0.001")  # BTCUSDT's and ETHUSDT's lot step


# -- arrange helpers --------------------------------------------------------------------------
def instruments() -> dict[str, Instrument]:
    every = load_instruments(sample_dir() / "binance_usdm_exchange_info_20251030.json")
    return {BTC: every[BTC], ETH: every[ETH]}


def new_venue(
    cash: Decimal = Decimal(10_000),
    bps: Decimal = Decimal(2),
    *,
    participation: Decimal | None = None,
    rules: dict[str, Instrument] | None = None,
) -> SimulatedVenue:
    return SimulatedVenue(
        instruments=rules or instruments(),
        cash=cash,
        clock=SimulatedClock(),
        slippage_bps=bps,
        participation=participation,
    )


def btc() -> Candles:
    return load_sample_candles(BTC)


def d(x: float) -> Decimal:
    return to_decimal(x)


def money(x: Decimal) -> Decimal:
    """A fee as the venue keeps it: rounded half-even to the quote precision (8 places)."""
    return x.quantize(Decimal("1e-8"), ROUND_HALF_EVEN)


def first_bar(candles: Candles, wanted: Callable[[int], bool], start: int = 1) -> int:
    """The first bar index >= start (real data) for which ``wanted`` holds."""
    return next(i for i in range(start, len(candles)) if wanted(i))


_ids = (f"o{n}" for n in itertools.count())


def order(
    side: Side,
    kind: OrderType,
    qty: str,
    *,
    symbol: str = BTC,
    price: Decimal | None = None,
    stop: Decimal | None = None,
    reduce_only: bool = False,
    tif: TimeInForce = TimeInForce.GTC,
    link: str | None = None,
    offset: Decimal | None = None,
    order_id: str | None = None,
) -> Order:
    return Order(
        id=order_id or next(_ids),
        symbol=symbol,
        side=side,
        type=kind,
        qty=Decimal(qty),
        created_time=0,
        price=price,
        stop_price=stop,
        reduce_only=reduce_only,
        time_in_force=tif,
        link_id=link,
        trailing_offset=offset,
    )


def place(venue: SimulatedVenue, candles: Candles, t: int, o: Order) -> list[ExecutionEvent]:
    """Submit ``o`` at bar ``t``'s close (clock and mark there, as the engine does); the events."""
    close_time = int(candles.open_time[t]) + TF_MS
    venue.clock.advance_to(close_time)
    venue.mark(o.symbol, float(candles.close[t]), close_time)
    venue.submit(o)
    return venue.drain_events()


def run_bar(
    venue: SimulatedVenue, candles: Candles, i: int, symbol: str = BTC
) -> list[ExecutionEvent]:
    """Let bar ``i`` trade as the engine does (match while the venue says bar ``i`` is due)."""
    venue.clock.advance_to(int(candles.open_time[i]))
    while venue.next_trigger(symbol, candles, i) == i:
        venue.process_bar(symbol, candles, i)
    return venue.drain_events()


def fills_of(events: list[ExecutionEvent]) -> list[Fill]:
    return [e.fill for e in events if e.fill is not None]


def kinds(events: list[ExecutionEvent]) -> list[K]:
    return [e.kind for e in events]


def held(venue: SimulatedVenue, symbol: str = BTC) -> Decimal:
    return next((p.qty for p in venue.positions() if p.symbol == symbol), Decimal(0))


def hold(venue: SimulatedVenue, candles: Candles, t: int, qty: str) -> None:
    """Open a position of ``qty`` (signed) with a market order at ``t``'s close, filled on
    ``t+1``."""
    side = Side.BUY if Decimal(qty) > 0 else Side.SELL
    place(venue, candles, t, order(side, OrderType.MARKET, qty.lstrip("-")))
    run_bar(venue, candles, t + 1)
    assert held(venue) == Decimal(qty)


# -- market orders ----------------------------------------------------------------------------
def test_market_buy_fills_at_next_open_plus_slippage_rounded_up_to_the_tick() -> None:
    c = btc()
    venue = new_venue(bps=Decimal(2))
    # a bar whose slipped open is not on the tick, so the rounding direction shows
    t = first_bar(c, lambda i: (d(c.open[i + 1]) * Decimal("1.0002")) % TICK != 0)
    place(venue, c, t, order(Side.BUY, OrderType.MARKET, "0.05"))

    (fill,) = fills_of(run_bar(venue, c, t + 1))

    slipped = d(c.open[t + 1]) * Decimal("1.0002")
    expected = (slipped / TICK).to_integral_value(ROUND_CEILING) * TICK
    assert fill.price == expected > slipped
    assert fill.time == int(c.open_time[t + 1])
    assert fill.liquidity is Liquidity.TAKER
    assert fill.fee == money(Decimal("0.05") * expected * TAKER)


def test_market_sell_fills_at_next_open_minus_slippage_rounded_down_to_the_tick() -> None:
    c = btc()
    venue = new_venue(bps=Decimal(2))
    t = first_bar(c, lambda i: (d(c.open[i + 1]) * Decimal("0.9998")) % TICK != 0)
    place(venue, c, t, order(Side.SELL, OrderType.MARKET, "0.05"))

    (fill,) = fills_of(run_bar(venue, c, t + 1))

    slipped = d(c.open[t + 1]) * Decimal("0.9998")
    expected = (slipped / TICK).to_integral_value(ROUND_FLOOR) * TICK
    assert fill.price == expected < slipped
    assert fill.fee == money(Decimal("0.05") * expected * TAKER)


def test_market_order_without_slippage_fills_exactly_at_the_next_open() -> None:
    c = btc()
    venue = new_venue(bps=Decimal(0))
    place(venue, c, 100, order(Side.BUY, OrderType.MARKET, "0.05"))

    (fill,) = fills_of(run_bar(venue, c, 101))

    assert fill.price == d(c.open[101])


def test_fee_is_rounded_half_even_to_the_quote_precision() -> None:
    eth, venue = load_sample_candles(ETH), new_venue(bps=Decimal(0))

    def exact_fee(i: int) -> Decimal:  # ETH ticks in 0.01: the fee may have 9 places
        return Decimal("0.051") * d(eth.open[i]) * TAKER

    t = first_bar(eth, lambda i: money(exact_fee(i + 1)) != exact_fee(i + 1))
    place(venue, eth, t, order(Side.BUY, OrderType.MARKET, "0.051", symbol=ETH))

    (fill,) = fills_of(run_bar(venue, eth, t + 1, ETH))

    assert fill.fee == money(exact_fee(t + 1)) != exact_fee(t + 1)


# -- limit orders -----------------------------------------------------------------------------
def test_limit_buy_fills_at_the_limit_with_maker_fee_when_the_low_trades_through() -> None:
    c = btc()
    i = first_bar(c, lambda k: d(c.low[k]) + TICK < d(c.open[k]))
    limit = d(c.low[i]) + TICK  # low < limit < open
    venue = new_venue()
    place(venue, c, i - 1, order(Side.BUY, OrderType.LIMIT, "0.05", price=limit))

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (limit, Liquidity.MAKER)
    assert fill.fee == money(Decimal("0.05") * limit * MAKER)


def test_limit_buy_touched_by_the_low_does_not_fill() -> None:
    c = btc()
    i = first_bar(c, lambda k: c.low[k] < c.open[k])
    venue = new_venue()
    place(venue, c, i - 1, order(Side.BUY, OrderType.LIMIT, "0.05", price=d(c.low[i])))

    events = run_bar(venue, c, i)  # low == limit

    assert fills_of(events) == []
    hit = venue.next_trigger(BTC, c, i)
    assert hit is None or hit > i


def test_limit_buy_fills_at_the_open_with_taker_fee_when_the_bar_opens_below_it() -> None:
    c = btc()
    i = 500
    limit = d(c.open[i]) + 10 * TICK  # the bar opens through the limit
    venue = new_venue()
    place(venue, c, i - 1, order(Side.BUY, OrderType.LIMIT, "0.05", price=limit))

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)
    assert fill.fee == money(Decimal("0.05") * d(c.open[i]) * TAKER)


def test_limit_sell_fills_at_the_limit_with_maker_fee_when_the_high_trades_through() -> None:
    c = btc()
    i = first_bar(c, lambda k: d(c.high[k]) - TICK > d(c.open[k]))
    limit = d(c.high[i]) - TICK  # open < limit < high
    venue = new_venue()
    place(venue, c, i - 1, order(Side.SELL, OrderType.LIMIT, "0.05", price=limit))

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (limit, Liquidity.MAKER)
    assert fill.fee == money(Decimal("0.05") * limit * MAKER)


def test_limit_sell_touched_by_the_high_does_not_fill() -> None:
    c = btc()
    i = first_bar(c, lambda k: c.high[k] > c.open[k])
    venue = new_venue()
    place(venue, c, i - 1, order(Side.SELL, OrderType.LIMIT, "0.05", price=d(c.high[i])))

    events = run_bar(venue, c, i)  # high == limit

    assert fills_of(events) == []
    hit = venue.next_trigger(BTC, c, i)
    assert hit is None or hit > i


def test_limit_sell_fills_at_the_open_with_taker_fee_when_the_bar_opens_above_it() -> None:
    c = btc()
    i = 500
    limit = d(c.open[i]) - 10 * TICK
    venue = new_venue()
    place(venue, c, i - 1, order(Side.SELL, OrderType.LIMIT, "0.05", price=limit))

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)
    assert fill.fee == money(Decimal("0.05") * d(c.open[i]) * TAKER)


# -- stop orders ------------------------------------------------------------------------------
def test_stop_buy_touched_by_the_high_fills_at_the_stop_with_taker_fee() -> None:
    c = btc()
    i = first_bar(c, lambda k: c.high[k] > c.open[k])
    stop = d(c.high[i])  # a touch is enough for a stop
    venue = new_venue()
    place(venue, c, i - 1, order(Side.BUY, OrderType.STOP, "0.05", stop=stop))

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (stop, Liquidity.TAKER)
    assert fill.fee == money(Decimal("0.05") * stop * TAKER)


def test_stop_buy_fills_at_the_open_when_the_bar_gaps_up_through_the_stop() -> None:
    c = btc()
    i = first_bar(c, lambda k: d(c.open[k]) > d(c.close[k - 1]) + TICK)
    stop = d(c.close[i - 1]) + TICK  # above the last close, below the gapped open
    venue = new_venue()
    place(venue, c, i - 1, order(Side.BUY, OrderType.STOP, "0.05", stop=stop))

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)


def test_stop_buy_above_the_high_does_not_fill() -> None:
    c = btc()
    i = 700
    venue = new_venue()
    place(venue, c, i - 1, order(Side.BUY, OrderType.STOP, "0.05", stop=d(c.high[i]) + TICK))

    events = run_bar(venue, c, i)

    assert fills_of(events) == []
    hit = venue.next_trigger(BTC, c, i)
    assert hit is None or hit > i


def test_stop_sell_touched_by_the_low_fills_at_the_stop() -> None:
    c = btc()
    i = first_bar(c, lambda k: c.low[k] < c.open[k])
    stop = d(c.low[i])
    venue = new_venue()
    place(venue, c, i - 1, order(Side.SELL, OrderType.STOP, "0.05", stop=stop))

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (stop, Liquidity.TAKER)
    assert fill.fee == money(Decimal("0.05") * stop * TAKER)


def test_stop_sell_fills_at_the_open_when_the_bar_gaps_down_through_the_stop() -> None:
    c = btc()
    i = first_bar(c, lambda k: d(c.open[k]) < d(c.close[k - 1]) - TICK)
    stop = d(c.close[i - 1]) - TICK
    venue = new_venue()
    place(venue, c, i - 1, order(Side.SELL, OrderType.STOP, "0.05", stop=stop))

    (fill,) = fills_of(run_bar(venue, c, i))

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)


def test_fee_schedule_defaults_to_binance_usdm_taker_and_maker_rates() -> None:
    fees = FeeSchedule()

    assert (fees.rate(Liquidity.TAKER), fees.rate(Liquidity.MAKER)) == (TAKER, MAKER)


# -- validation -------------------------------------------------------------------------------
def test_venue_rejects_qty_off_the_lot_step() -> None:
    c, venue = btc(), new_venue()

    events = place(venue, c, 10, order(Side.BUY, OrderType.MARKET, "0.0505"))

    (rejected,) = events
    assert rejected.kind is K.REJECTED
    assert rejected.reason is not None
    assert rejected.reason.startswith("qty") and "0.0505" in rejected.reason


def test_venue_rejects_limit_price_off_the_tick() -> None:
    c, venue = btc(), new_venue()
    price = d(c.close[10]) - Decimal("0.05")

    (rejected,) = place(venue, c, 10, order(Side.BUY, OrderType.LIMIT, "0.05", price=price))

    assert rejected.kind is K.REJECTED
    assert rejected.reason is not None and rejected.reason.startswith("price")


def test_venue_rejects_stop_price_off_the_tick() -> None:
    c, venue = btc(), new_venue()
    stop = d(c.close[10]) + Decimal("0.05")

    (rejected,) = place(venue, c, 10, order(Side.BUY, OrderType.STOP, "0.05", stop=stop))

    assert rejected.kind is K.REJECTED
    assert rejected.reason is not None and rejected.reason.startswith("stop_price")


def test_venue_rejects_notional_under_the_minimum() -> None:
    eth, venue = load_sample_candles(ETH), new_venue()
    assert Decimal("0.004") * d(eth.close[10]) < 20  # ETHUSDT min notional is 20 USDT

    (rejected,) = place(venue, eth, 10, order(Side.BUY, OrderType.MARKET, "0.004", symbol=ETH))

    assert rejected.kind is K.REJECTED
    assert rejected.reason is not None and "minimum" in rejected.reason


def test_venue_rejects_an_unknown_symbol() -> None:
    venue = new_venue()
    doge = order(Side.BUY, OrderType.MARKET, "1", symbol="DOGEUSDT")

    venue.submit(doge)

    (rejected,) = venue.drain_events()
    assert (rejected.kind, rejected.order_id) == (K.REJECTED, doge.id)
    assert rejected.reason is not None and "DOGEUSDT" in rejected.reason
    assert venue.open_orders() == []


def test_venue_rejects_margin_beyond_equity_times_leverage_and_remembers_the_order() -> None:
    c = btc()
    venue = new_venue(cash=Decimal(10_000))  # max leverage 5: 50,000 USDT gross
    mark = d(c.close[10])
    lots = (Decimal(50_000) / mark / STEP).to_integral_value(ROUND_CEILING)
    big = order(Side.BUY, OrderType.MARKET, str(lots * STEP))

    (rejected,) = place(venue, c, 10, big)

    assert rejected.kind is K.REJECTED
    assert rejected.reason is not None and "max_leverage" in rejected.reason
    kept = venue.fetch_order(big.id)
    assert kept is not None
    assert (kept.status, kept.reject_reason) == (OrderStatus.REJECTED, rejected.reason)
    assert venue.open_orders() == []


def test_venue_accepts_an_order_just_within_equity_times_leverage() -> None:
    c = btc()
    venue = new_venue(cash=Decimal(10_000))
    mark = d(c.close[10])
    lots = (Decimal(50_000) / mark / STEP).to_integral_value(ROUND_FLOOR)
    within = order(Side.BUY, OrderType.MARKET, str(lots * STEP))

    (accepted,) = place(venue, c, 10, within)

    assert accepted.kind is K.ACCEPTED
    kept = venue.fetch_order(within.id)
    assert kept is not None and kept.status is OrderStatus.NEW


def test_an_order_that_only_reduces_needs_no_margin_and_one_that_adds_does() -> None:
    c = btc()
    venue = new_venue(cash=Decimal(10_000))  # max leverage 5: 50,000 USDT gross
    lots = (Decimal(49_000) / d(c.close[10]) / STEP).to_integral_value(ROUND_FLOOR)
    hold(venue, c, 10, str(lots * STEP))
    # A later bar where the loss leaves equity × 5 below the position's gross notional.
    t = first_bar(c, lambda i: d(c.close[i]) < d(c.open[11]) * Decimal("0.99"), start=12)

    (more,) = place(venue, c, t, order(Side.BUY, OrderType.MARKET, "0.001"))
    (less,) = place(venue, c, t, order(Side.SELL, OrderType.MARKET, "0.001"))
    (flip,) = place(venue, c, t, order(Side.SELL, OrderType.MARKET, str(2 * lots * STEP)))

    assert more.kind is K.REJECTED
    assert more.reason is not None and "max_leverage" in more.reason
    assert less.kind is K.ACCEPTED  # not reduce-only, yet it only reduces: no margin needed
    assert flip.kind is K.REJECTED  # it would open a short as large as the long


def test_cancel_of_a_filled_order_is_answered_with_cancel_rejected() -> None:
    c, venue = btc(), new_venue()
    placed = order(Side.BUY, OrderType.MARKET, "0.05")
    place(venue, c, 10, placed)
    run_bar(venue, c, 11)

    venue.cancel(placed.id)

    (refused,) = venue.drain_events()
    assert (refused.kind, refused.order_id) == (K.CANCEL_REJECTED, placed.id)
    assert refused.reason is not None and "filled" in refused.reason
    kept = venue.fetch_order(placed.id)
    assert kept is not None and kept.status is OrderStatus.FILLED


def test_reduce_only_stop_is_canceled_when_the_position_goes_flat() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, 10, "0.05")
    far_below = d(c.close[11]) * Decimal("0.5")
    far_below -= far_below % TICK
    stop = order(Side.SELL, OrderType.STOP, "0.05", stop=far_below, reduce_only=True)
    place(venue, c, 11, stop)
    place(venue, c, 12, order(Side.SELL, OrderType.MARKET, "0.05"))

    events = run_bar(venue, c, 13)

    assert held(venue) == 0
    assert (K.CANCELED, stop.id) in [(e.kind, e.order_id) for e in events]
    kept = venue.fetch_order(stop.id)
    assert kept is not None and kept.status is OrderStatus.CANCELED
    assert venue.open_orders(BTC) == []


def test_reduce_only_stop_never_grows_a_position_flipped_on_the_same_bar() -> None:
    c, venue = btc(), new_venue()
    hold(venue, c, 10, "0.05")
    i = first_bar(c, lambda k: c.low[k] < c.open[k] - 1, start=13)
    stop_level = d(c.low[i]) + TICK  # triggers on bar i, after the market order (nearer open)
    stop = order(Side.SELL, OrderType.STOP, "0.05", stop=stop_level, reduce_only=True)
    place(venue, c, i - 1, stop)
    place(venue, c, i - 1, order(Side.SELL, OrderType.MARKET, "0.10"))

    events = run_bar(venue, c, i)

    assert held(venue) == Decimal("-0.05")
    assert stop.id not in [f.order_id for f in fills_of(events)]


# -- first_trigger far away -------------------------------------------------------------------
def brute_force_trigger(o: Order, candles: Candles, start: int) -> int | None:
    level = o.price if o.type is OrderType.LIMIT else o.stop_price
    assert level is not None
    for i in range(start, len(candles)):
        high, low = d(candles.high[i]), d(candles.low[i])
        if o.type is OrderType.LIMIT and (low < level if o.side is Side.BUY else high > level):
            return i
        if o.type is OrderType.STOP and (high >= level if o.side is Side.BUY else low <= level):
            return i
    return None


def untouched_level(candles: Candles, kind: OrderType, side: Side, lo: int, hi: int) -> Decimal:
    """A level that bars [lo, hi) never trigger: the window's extreme, one tick beyond for a
    stop (a touch triggers it), exactly on it for a limit (a touch does not)."""
    highest, lowest = d(float(np.max(candles.high[lo:hi]))), d(float(np.min(candles.low[lo:hi])))
    if kind is OrderType.LIMIT:
        return lowest if side is Side.BUY else highest
    return highest + TICK if side is Side.BUY else lowest - TICK


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 17_280 - 5_002),
    gap=st.integers(5_001, 12_000),
    kind=st.sampled_from([OrderType.LIMIT, OrderType.STOP]),
    side=st.sampled_from([Side.BUY, Side.SELL]),
)
def test_first_trigger_far_away_matches_a_brute_force_scan(
    start: int, gap: int, kind: OrderType, side: Side
) -> None:
    c = btc()
    level = untouched_level(c, kind, side, start, min(len(c), start + gap))
    o = order(
        side,
        kind,
        "0.05",
        price=level if kind is OrderType.LIMIT else None,
        stop=level if kind is OrderType.STOP else None,
    )

    hit = first_trigger(o, c, start)

    assert hit == brute_force_trigger(o, c, start)
    assert hit is None or hit - start >= gap > 5_000


def test_first_trigger_finds_a_buy_stop_more_than_5000_bars_ahead() -> None:
    c = btc()
    stop = untouched_level(c, OrderType.STOP, Side.BUY, 0, 6_000)
    o = order(Side.BUY, OrderType.STOP, "0.05", stop=stop)

    hit = first_trigger(o, c, 0)

    assert hit is not None and hit > 6_000
    assert hit == brute_force_trigger(o, c, 0)


def test_venue_finds_a_buy_stop_more_than_5000_bars_ahead() -> None:
    c, venue = btc(), new_venue()
    stop = untouched_level(c, OrderType.STOP, Side.BUY, 1, 6_000)
    o = order(Side.BUY, OrderType.STOP, "0.05", stop=stop)
    place(venue, c, 0, o)

    hit = venue.next_trigger(BTC, c, 1)

    assert hit is not None and hit > 6_000
    assert hit == brute_force_trigger(o, c, 1)
