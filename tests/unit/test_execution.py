"""Fill rules of domain/execution.py and the paper broker, on real BTCUSDT/ETHUSDT bars.

Every order is placed relative to the real prices of the bar it is meant to fill on: a market
order at bar ``t`` fills on bar ``t+1``, a limit or stop level sits on a real low, high or open.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.exchanges.paper import PaperBroker, sequential_ids
from adapters.marketdata.exchange_info import load_instruments
from domain.candles import Candles
from domain.errors import InsufficientMargin, InvalidOrder, OrderNotCancelable, UnknownSymbol
from domain.execution import FeeSchedule, first_trigger, to_decimal
from domain.model import Instrument, Liquidity, Order, OrderStatus, OrderType, Side
from tests.fixtures.data import load_sample_candles, sample_dir

BTC, ETH = "BTCUSDT", "ETHUSDT"
TAKER, MAKER = Decimal("0.0005"), Decimal("0.0002")


def instruments() -> dict[str, Instrument]:
    every = load_instruments(sample_dir() / "binance_usdm_exchange_info_20251030.json")
    return {BTC: every[BTC], ETH: every[ETH]}


def new_broker(cash: Decimal = Decimal(10_000), bps: Decimal = Decimal(2)) -> PaperBroker:
    return PaperBroker(
        instruments=instruments(), cash=cash, slippage_bps=bps, ids=sequential_ids("x")
    )


def btc() -> Candles:
    return load_sample_candles(BTC)


def d(x: float) -> Decimal:
    return to_decimal(x)


def first_bar(candles: Candles, wanted: Callable[[int], bool], start: int = 1) -> int:
    """The first bar index >= start (real data) for which ``wanted`` holds."""
    return next(i for i in range(start, len(candles)) if wanted(i))


_ids = sequential_ids("o")


def order(
    side: Side,
    kind: OrderType,
    qty: str,
    *,
    symbol: str = BTC,
    price: Decimal | None = None,
    stop: Decimal | None = None,
    reduce_only: bool = False,
) -> Order:
    return Order(
        id=_ids(),
        symbol=symbol,
        side=side,
        type=kind,
        qty=Decimal(qty),
        created_time=0,
        price=price,
        stop_price=stop,
        reduce_only=reduce_only,
    )


def submit_at_close(broker: PaperBroker, candles: Candles, t: int, o: Order) -> Order:
    """Place ``o`` on bar ``t``'s close (marked there), as the engine does."""
    broker.mark(o.symbol, float(candles.close[t]))
    return broker.submit(o)


# -- market orders ----------------------------------------------------------------------------
def test_market_buy_fills_at_next_open_plus_slippage_rounded_up_to_the_tick() -> None:
    c = btc()
    broker = new_broker(bps=Decimal(2))
    # a bar whose slipped open is not on the tick, so the rounding direction shows
    t = first_bar(c, lambda i: (d(c.open[i + 1]) * Decimal("1.0002")) % Decimal("0.1") != 0)
    submit_at_close(broker, c, t, order(Side.BUY, OrderType.MARKET, "0.05"))

    (fill,) = broker.execute(BTC, c, t + 1)

    slipped = d(c.open[t + 1]) * Decimal("1.0002")
    expected = (slipped / Decimal("0.1")).to_integral_value(ROUND_CEILING) * Decimal("0.1")
    assert fill.price == expected > slipped
    assert fill.time == int(c.open_time[t + 1])
    assert fill.liquidity is Liquidity.TAKER
    assert fill.fee == Decimal("0.05") * expected * TAKER


def test_market_sell_fills_at_next_open_minus_slippage_rounded_down_to_the_tick() -> None:
    c = btc()
    broker = new_broker(bps=Decimal(2))
    t = first_bar(c, lambda i: (d(c.open[i + 1]) * Decimal("0.9998")) % Decimal("0.1") != 0)
    submit_at_close(broker, c, t, order(Side.SELL, OrderType.MARKET, "0.05"))

    (fill,) = broker.execute(BTC, c, t + 1)

    slipped = d(c.open[t + 1]) * Decimal("0.9998")
    expected = (slipped / Decimal("0.1")).to_integral_value(ROUND_FLOOR) * Decimal("0.1")
    assert fill.price == expected < slipped
    assert fill.fee == Decimal("0.05") * expected * TAKER


def test_market_order_without_slippage_fills_exactly_at_the_next_open() -> None:
    c = btc()
    broker = new_broker(bps=Decimal(0))
    submit_at_close(broker, c, 100, order(Side.BUY, OrderType.MARKET, "0.05"))

    (fill,) = broker.execute(BTC, c, 101)

    assert fill.price == d(c.open[101])


# -- limit orders -----------------------------------------------------------------------------
TICK = Decimal("0.1")


def test_limit_buy_fills_at_the_limit_with_maker_fee_when_the_low_trades_through() -> None:
    c = btc()
    i = first_bar(c, lambda k: d(c.low[k]) + TICK < d(c.open[k]))
    limit = d(c.low[i]) + TICK  # low < limit < open
    broker = new_broker()
    submit_at_close(broker, c, i - 1, order(Side.BUY, OrderType.LIMIT, "0.05", price=limit))

    (fill,) = broker.execute(BTC, c, i)

    assert (fill.price, fill.liquidity) == (limit, Liquidity.MAKER)
    assert fill.fee == Decimal("0.05") * limit * MAKER


def test_limit_buy_touched_by_the_low_does_not_fill() -> None:
    c = btc()
    i = first_bar(c, lambda k: c.low[k] < c.open[k])
    touch = order(Side.BUY, OrderType.LIMIT, "0.05", price=d(c.low[i]))  # low == limit

    hit = first_trigger(touch, c, i)

    assert hit is None or hit > i


def test_limit_buy_fills_at_the_open_with_taker_fee_when_the_bar_opens_below_it() -> None:
    c = btc()
    i = 500
    limit = d(c.open[i]) + 10 * TICK  # the bar opens through the limit
    broker = new_broker()
    submit_at_close(broker, c, i - 1, order(Side.BUY, OrderType.LIMIT, "0.05", price=limit))

    (fill,) = broker.execute(BTC, c, i)

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)
    assert fill.fee == Decimal("0.05") * d(c.open[i]) * TAKER


def test_limit_sell_fills_at_the_limit_with_maker_fee_when_the_high_trades_through() -> None:
    c = btc()
    i = first_bar(c, lambda k: d(c.high[k]) - TICK > d(c.open[k]))
    limit = d(c.high[i]) - TICK  # open < limit < high
    broker = new_broker()
    submit_at_close(broker, c, i - 1, order(Side.SELL, OrderType.LIMIT, "0.05", price=limit))

    (fill,) = broker.execute(BTC, c, i)

    assert (fill.price, fill.liquidity) == (limit, Liquidity.MAKER)


def test_limit_sell_touched_by_the_high_does_not_fill() -> None:
    c = btc()
    i = first_bar(c, lambda k: c.high[k] > c.open[k])
    touch = order(Side.SELL, OrderType.LIMIT, "0.05", price=d(c.high[i]))

    hit = first_trigger(touch, c, i)

    assert hit is None or hit > i


def test_limit_sell_fills_at_the_open_with_taker_fee_when_the_bar_opens_above_it() -> None:
    c = btc()
    i = 500
    limit = d(c.open[i]) - 10 * TICK
    broker = new_broker()
    submit_at_close(broker, c, i - 1, order(Side.SELL, OrderType.LIMIT, "0.05", price=limit))

    (fill,) = broker.execute(BTC, c, i)

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)


# -- stop orders ------------------------------------------------------------------------------
def test_stop_buy_touched_by_the_high_fills_at_the_stop_with_taker_fee() -> None:
    c = btc()
    i = first_bar(c, lambda k: c.high[k] > c.open[k])
    stop = d(c.high[i])  # a touch is enough for a stop
    broker = new_broker()
    submit_at_close(broker, c, i - 1, order(Side.BUY, OrderType.STOP, "0.05", stop=stop))

    (fill,) = broker.execute(BTC, c, i)

    assert (fill.price, fill.liquidity) == (stop, Liquidity.TAKER)
    assert fill.fee == Decimal("0.05") * stop * TAKER


def test_stop_buy_fills_at_the_open_when_the_bar_gaps_up_through_the_stop() -> None:
    c = btc()
    i = first_bar(c, lambda k: d(c.open[k]) > d(c.close[k - 1]) + TICK)
    stop = d(c.close[i - 1]) + TICK  # above the last close, below the gapped open
    broker = new_broker()
    submit_at_close(broker, c, i - 1, order(Side.BUY, OrderType.STOP, "0.05", stop=stop))

    (fill,) = broker.execute(BTC, c, i)

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)


def test_stop_buy_above_the_high_does_not_fill() -> None:
    c = btc()
    i = 700
    stop = d(c.high[i]) + TICK

    hit = first_trigger(order(Side.BUY, OrderType.STOP, "0.05", stop=stop), c, i)

    assert hit is None or hit > i


def test_stop_sell_touched_by_the_low_fills_at_the_stop() -> None:
    c = btc()
    i = first_bar(c, lambda k: c.low[k] < c.open[k])
    stop = d(c.low[i])
    broker = new_broker()
    submit_at_close(broker, c, i - 1, order(Side.SELL, OrderType.STOP, "0.05", stop=stop))

    (fill,) = broker.execute(BTC, c, i)

    assert (fill.price, fill.liquidity) == (stop, Liquidity.TAKER)


def test_stop_sell_fills_at_the_open_when_the_bar_gaps_down_through_the_stop() -> None:
    c = btc()
    i = first_bar(c, lambda k: d(c.open[k]) < d(c.close[k - 1]) - TICK)
    stop = d(c.close[i - 1]) - TICK
    broker = new_broker()
    submit_at_close(broker, c, i - 1, order(Side.SELL, OrderType.STOP, "0.05", stop=stop))

    (fill,) = broker.execute(BTC, c, i)

    assert (fill.price, fill.liquidity) == (d(c.open[i]), Liquidity.TAKER)


def test_fee_schedule_defaults_to_binance_usdm_taker_and_maker_rates() -> None:
    fees = FeeSchedule()

    assert (fees.rate(Liquidity.TAKER), fees.rate(Liquidity.MAKER)) == (TAKER, MAKER)


# -- validation -------------------------------------------------------------------------------
def test_broker_rejects_qty_off_the_lot_step() -> None:
    c, broker = btc(), new_broker()

    with pytest.raises(InvalidOrder) as err:
        submit_at_close(broker, c, 10, order(Side.BUY, OrderType.MARKET, "0.0505"))

    assert err.value.field == "qty"
    assert "0.0505" in err.value.message


def test_broker_rejects_limit_price_off_the_tick() -> None:
    c, broker = btc(), new_broker()
    price = d(c.close[10]) - Decimal("0.05")

    with pytest.raises(InvalidOrder) as err:
        submit_at_close(broker, c, 10, order(Side.BUY, OrderType.LIMIT, "0.05", price=price))

    assert err.value.field == "price"


def test_broker_rejects_stop_price_off_the_tick() -> None:
    c, broker = btc(), new_broker()
    stop = d(c.close[10]) + Decimal("0.05")

    with pytest.raises(InvalidOrder) as err:
        submit_at_close(broker, c, 10, order(Side.BUY, OrderType.STOP, "0.05", stop=stop))

    assert err.value.field == "stop_price"


def test_broker_rejects_notional_under_the_minimum() -> None:
    eth, broker = load_sample_candles(ETH), new_broker()
    assert Decimal("0.004") * d(eth.close[10]) < 20  # ETHUSDT min notional is 20 USDT

    with pytest.raises(InvalidOrder) as err:
        submit_at_close(broker, eth, 10, order(Side.BUY, OrderType.MARKET, "0.004", symbol=ETH))

    assert err.value.field == "qty"


def test_broker_rejects_an_unknown_symbol() -> None:
    broker = new_broker()

    with pytest.raises(UnknownSymbol) as err:
        broker.submit(order(Side.BUY, OrderType.MARKET, "1", symbol="DOGEUSDT"))

    assert "DOGEUSDT" in err.value.message
    assert broker.open_orders() == []


def test_broker_rejects_margin_beyond_equity_times_leverage_and_keeps_the_order() -> None:
    c = btc()
    broker = new_broker(cash=Decimal(10_000))  # max leverage 5: 50,000 USDT gross
    mark = d(c.close[10])
    qty = (Decimal(50_000) / mark / Decimal("0.001")).to_integral_value(ROUND_CEILING)
    big = order(Side.BUY, OrderType.MARKET, str(qty * Decimal("0.001")))

    with pytest.raises(InsufficientMargin):
        submit_at_close(broker, c, 10, big)

    kept = broker.get_order(big.id)
    assert kept.status is OrderStatus.REJECTED
    assert kept.reject_reason
    assert broker.open_orders() == []


def test_broker_accepts_an_order_just_within_equity_times_leverage() -> None:
    c = btc()
    broker = new_broker(cash=Decimal(10_000))
    mark = d(c.close[10])
    qty = (Decimal(50_000) / mark / Decimal("0.001")).to_integral_value(ROUND_FLOOR)

    accepted = submit_at_close(
        broker, c, 10, order(Side.BUY, OrderType.MARKET, str(qty * Decimal("0.001")))
    )

    assert accepted.status is OrderStatus.NEW


def test_cancel_of_a_filled_order_raises_order_not_cancelable() -> None:
    c, broker = btc(), new_broker()
    placed = submit_at_close(broker, c, 10, order(Side.BUY, OrderType.MARKET, "0.05"))
    broker.execute(BTC, c, 11)

    with pytest.raises(OrderNotCancelable):
        broker.cancel(placed.id, int(c.open_time[12]))

    assert broker.get_order(placed.id).status is OrderStatus.FILLED


def test_reduce_only_stop_is_canceled_when_the_position_goes_flat() -> None:
    c, broker = btc(), new_broker()
    submit_at_close(broker, c, 10, order(Side.BUY, OrderType.MARKET, "0.05"))
    broker.execute(BTC, c, 11)
    far_below = d(c.close[11]) * Decimal("0.5")
    far_below -= far_below % TICK
    stop = submit_at_close(
        broker,
        c,
        11,
        order(Side.SELL, OrderType.STOP, "0.05", stop=far_below, reduce_only=True),
    )
    submit_at_close(broker, c, 12, order(Side.SELL, OrderType.MARKET, "0.05"))

    broker.execute(BTC, c, 13)

    assert broker.position(BTC).qty == 0
    assert broker.get_order(stop.id).status is OrderStatus.CANCELED
    assert broker.open_orders(BTC) == []


def test_reduce_only_stop_never_grows_a_position_flipped_on_the_same_bar() -> None:
    c, broker = btc(), new_broker()
    submit_at_close(broker, c, 10, order(Side.BUY, OrderType.MARKET, "0.05"))
    broker.execute(BTC, c, 11)
    i = first_bar(c, lambda k: c.low[k] < c.open[k] - 1, start=13)
    stop_level = d(c.low[i]) + TICK  # triggers on bar i, after the market order (nearer open)
    submit_at_close(
        broker,
        c,
        i - 1,
        order(Side.SELL, OrderType.STOP, "0.05", stop=stop_level, reduce_only=True),
    )
    submit_at_close(broker, c, i - 1, order(Side.SELL, OrderType.MARKET, "0.10"))

    broker.execute(BTC, c, i)

    assert broker.position(BTC).qty == Decimal("-0.05")


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
