"""Binance USDⓈ-M execution through ccxt against the fake venue on loopback, real 5m bars.

The fake and the client share one simulated clock (the venue's "now"); orders fill against the
real BTCUSDT bars as Binance would fill them (see ``tests/venues/binance_fake_trading.py``).
Every test also replays the client's events into the kernel's ledger: none may be refused, so
the engine would take them as it takes the simulated venue's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import SimulatedClock
from adapters.venues.binance_usdm.account_exchange import AccountExchange, VenueRefusal
from adapters.venues.binance_usdm.execution import BinanceUsdmExecution
from adapters.venues.binance_usdm.order_tracker import Submission
from adapters.venues.binance_usdm.orders_wire import order_params
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from domain.candles import Candles
from domain.errors import InvalidOrder
from domain.ledger import Ledger
from domain.margin import MarginMode
from domain.model import (
    ExitReason,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from domain.orders import ExecutionEvent
from domain.orders import ExecutionEventKind as K
from tests.fixtures.data import load_candles
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC, a bar open inside the file
NOW = T0 + 60_000  # one minute into that bar: the price now is its open
BTC = "BTCUSDT"
QTY = Decimal("0.010")
TICK = Decimal("0.1")
ORDER = "/fapi/v1/order"


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(NOW)


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=clock, symbols=(BTC,)) as venue:
        yield venue


def _settings(fake: FakeBinanceUsdm, **overrides: object) -> BinanceUsdmSettings:
    fast = {
        "timeout_s": 0.5, "retries": 2, "backoff_s": 0.01, "max_backoff_s": 0.05,
        "recv_window_ms": 300, "api_key": API_KEY, "api_secret": API_SECRET,
    }  # fmt: skip
    return BinanceUsdmSettings(rest_url=fake.rest_url, ws_url=fake.ws_url, **(fast | overrides))  # type: ignore[arg-type]


def _client(
    fake: FakeBinanceUsdm,
    clock: SimulatedClock,
    mode: MarginMode = MarginMode.ISOLATED,
    **s: object,
) -> BinanceUsdmExecution:
    return BinanceUsdmExecution(
        _settings(fake, **s), clock=clock, leverage={BTC: 5}, margin_mode=mode
    )


@pytest.fixture
def client(fake: FakeBinanceUsdm, clock: SimulatedClock) -> Iterator[BinanceUsdmExecution]:
    with _client(fake, clock) as execution:
        yield execution


@dataclass
class Book:
    """The orders sent and every event drained, replayed into the kernel's ledger."""

    client: BinanceUsdmExecution
    ledger: Ledger = field(default_factory=lambda: Ledger(Decimal(10_000)))
    events: list[ExecutionEvent] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)

    def submit(self, order: Order) -> Order:
        self.ledger.add(order)
        self.client.submit(order)
        return order

    def until(self, done: Callable[[list[ExecutionEvent]], bool]) -> list[ExecutionEvent]:
        """Drain events until ``done(events)`` (fails after 10 s of wall time)."""
        deadline = time.monotonic() + 10
        while not done(self.events):
            assert time.monotonic() < deadline, f"events so far: {self.events}"
            time.sleep(0.005)
            self._take()
        self._take()
        return self.events

    def of(self, order_id: str) -> list[ExecutionEvent]:
        return [e for e in self.events if e.order_id == order_id]

    def kinds(self, order_id: str) -> list[K]:
        return [e.kind for e in self.of(order_id)]

    def _take(self) -> None:
        for event in self.client.drain_events():
            self.events.append(event)
            self.ledger.apply(event)
        changes = self.ledger.drain()
        assert changes.refused == [], changes.refused
        self.trades += changes.trades


@pytest.fixture
def book(client: BinanceUsdmExecution) -> Book:
    return Book(client)


def _order(
    n: int,
    side: Side,
    kind: OrderType = OrderType.MARKET,
    qty: Decimal = QTY,
    **terms: object,
) -> Order:
    return Order(f"lc{n:030d}", BTC, side, kind, qty, NOW, **terms)  # type: ignore[arg-type]


def _filled(order_id: str, qty: Decimal = QTY) -> Callable[[list[ExecutionEvent]], bool]:
    def done(events: list[ExecutionEvent]) -> bool:
        fills = [e.fill.qty for e in events if e.order_id == order_id and e.fill is not None]
        return sum(fills, Decimal(0)) >= qty

    return done


def _has(order_id: str, kind: K) -> Callable[[list[ExecutionEvent]], bool]:
    return lambda events: any(e.order_id == order_id and e.kind is kind for e in events)


def _bars(start: int, end: int) -> Candles:
    return load_candles("binance_usdm_BTCUSDT_5m.csv.gz").between(start, end)


def _price(value: float) -> Decimal:
    """A file price as the venue quotes it (to the tick)."""
    return Decimal(str(value)).quantize(TICK)


def _advance(fake: FakeBinanceUsdm, bars: int) -> None:
    """Let ``bars`` bars close (each matched by the venue at its close)."""
    fake.advance_to(T0 + bars * M5 + 10)


def _open_long(book: Book) -> Order:
    entry = book.submit(_order(900, Side.BUY))
    book.until(_filled(entry.id))
    return entry


# ------------------------------------------------------------------ order types


def test_market_order_is_acknowledged_then_filled_at_the_price_now(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    order = book.submit(_order(1, Side.BUY))

    book.until(_filled(order.id))

    price = _price(_bars(T0, T0 + M5).open[0])
    fill = book.of(order.id)[-1].fill
    assert book.kinds(order.id) == [K.ACCEPTED, K.FILL]
    assert fill is not None and (fill.qty, fill.price) == (QTY, price)
    assert fill.fee == (QTY * price * Decimal("0.0005")).quantize(Decimal("1E-8"))
    assert fill.liquidity is Liquidity.TAKER
    assert book.ledger.get(order.id).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert [(p.symbol, p.qty, p.entry_price) for p in book.client.positions()] == [
        (BTC, QTY, price)
    ]
    assert fake.account.placed == {order.id: 1}


def test_resting_limit_fills_at_its_price_as_maker_on_the_bar_that_trades_through_it(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    later = _bars(T0 + M5, T0 + 7 * M5)
    limit = _price(float(later.low.min()))  # the lowest low ahead: reached once, exactly
    hit = int(later.open_time[int(later.low.argmin())])
    order = book.submit(_order(2, Side.BUY, OrderType.LIMIT, price=limit))
    book.until(_has(order.id, K.ACCEPTED))

    _advance(fake, (hit - T0) // M5)  # every bar before the one that reaches it
    before = list(book.client.drain_events())
    _advance(fake, (hit - T0) // M5 + 1)
    book.until(_filled(order.id))

    fill = book.of(order.id)[-1].fill
    assert before == []
    assert fill is not None and (fill.price, fill.liquidity) == (limit, Liquidity.MAKER)
    assert book.client.open_orders() == []


def test_post_only_limit_that_would_take_is_rejected(book: Book, fake: FakeBinanceUsdm) -> None:
    above = _price(_bars(T0, T0 + M5).open[0]) + 50
    order = book.submit(
        _order(3, Side.BUY, OrderType.LIMIT, price=above, time_in_force=TimeInForce.POST_ONLY)
    )

    book.until(_has(order.id, K.REJECTED))

    assert book.kinds(order.id) == [K.REJECTED]
    assert "Post Only order will be rejected" in (book.of(order.id)[0].reason or "")
    assert fake.account.placed[order.id] == 0


def test_ioc_fills_what_it_can_and_the_rest_expires(book: Book, fake: FakeBinanceUsdm) -> None:
    fake.account.fill_fraction = Decimal("0.5")
    above = _price(_bars(T0, T0 + M5).open[0]) + 50
    order = book.submit(
        _order(4, Side.BUY, OrderType.LIMIT, price=above, time_in_force=TimeInForce.IOC)
    )

    book.until(_has(order.id, K.EXPIRED))

    assert book.kinds(order.id) == [K.ACCEPTED, K.FILL, K.EXPIRED]
    assert book.of(order.id)[1].fill.qty == QTY / 2  # type: ignore[union-attr]


def test_fok_that_cannot_fill_whole_expires_without_a_fill(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    fake.account.fill_fraction = Decimal("0.5")
    above = _price(_bars(T0, T0 + M5).open[0]) + 50
    order = book.submit(
        _order(5, Side.BUY, OrderType.LIMIT, price=above, time_in_force=TimeInForce.FOK)
    )

    book.until(_has(order.id, K.EXPIRED))

    assert book.kinds(order.id) == [K.ACCEPTED, K.EXPIRED]


def test_reduce_only_order_that_would_not_reduce_is_rejected(book: Book) -> None:
    order = book.submit(_order(6, Side.SELL, reduce_only=True))

    book.until(_has(order.id, K.REJECTED))

    assert book.of(order.id)[0].reason == "ReduceOnly Order is rejected."


def test_stop_market_goes_to_the_algo_api_and_fills_when_a_bar_falls_through_it(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    entry = _open_long(book)
    later = _bars(T0 + M5, T0 + 7 * M5)
    level = _price(_bars(T0, T0 + M5).open[0]) - 30
    hit = next(i for i in range(len(later)) if later.low[i] <= float(level))
    stop = book.submit(_order(7, Side.SELL, OrderType.STOP, stop_price=level, reduce_only=True))
    book.until(_has(stop.id, K.ACCEPTED))

    _advance(fake, hit + 2)
    book.until(_filled(stop.id))

    algo = next(a for a in fake.account.algos.values() if a.client_id == stop.id)
    fill = book.of(stop.id)[-1].fill
    assert (algo.type, algo.status, algo.trigger) == ("STOP_MARKET", "FINISHED", level)
    assert fill is not None and fill.price == min(level, _price(later.open[hit]))
    assert fake.private.attempts == {entry.id: 1, stop.id: 1}  # the stop never on /order
    assert [t.exit_reason for t in book.trades] == [ExitReason.STOP]
    assert book.client.positions() == []


def test_take_profit_market_fills_when_a_bar_rises_through_it(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    _open_long(book)
    later = _bars(T0 + M5, T0 + 7 * M5)
    level = _price(_bars(T0, T0 + M5).open[0]) + 270
    hit = next(i for i in range(len(later)) if later.high[i] >= float(level))
    target = book.submit(
        _order(8, Side.SELL, OrderType.TAKE_PROFIT, stop_price=level, reduce_only=True)
    )

    _advance(fake, hit + 2)
    book.until(_filled(target.id))

    assert book.of(target.id)[-1].fill.price == max(level, _price(later.open[hit]))  # type: ignore[union-attr]


def test_trailing_stop_is_sent_as_a_callback_rate_and_trails_the_best_price(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    _open_long(book)
    price = _price(_bars(T0, T0 + M5).open[0])
    offset = Decimal("94.2")  # 0.1 % of the price now
    trail = book.submit(
        _order(9, Side.SELL, OrderType.TRAILING_STOP, stop_price=price - offset,
               trailing_offset=offset, reduce_only=True)
    )  # fmt: skip
    book.until(_has(trail.id, K.ACCEPTED))

    _advance(fake, 8)
    book.until(_filled(trail.id))

    algo = next(a for a in fake.account.algos.values() if a.client_id == trail.id)
    best, fill_price = price, None  # Binance's rule: best price since activation, 0.1 % back
    for bar in range(1, 8):
        bars = _bars(T0 + bar * M5, T0 + (bar + 1) * M5)
        level = (best * Decimal("0.999")).quantize(TICK)
        if _price(bars.low[0]) <= level:
            fill_price = min(_price(bars.open[0]), level)
            break
        best = max(best, _price(bars.high[0]))
    assert (algo.type, algo.rate) == ("TRAILING_STOP_MARKET", Decimal("0.1"))
    assert book.of(trail.id)[-1].fill.price == fill_price  # type: ignore[union-attr]


def test_trailing_offset_outside_binances_callback_range_is_rejected_unsent(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    price = _price(_bars(T0, T0 + M5).open[0])
    offset = Decimal("20000")  # 21 %: Binance takes 0.1 to 10 %
    trail = book.submit(
        _order(10, Side.SELL, OrderType.TRAILING_STOP, stop_price=price - offset,
               trailing_offset=offset)
    )  # fmt: skip

    book.until(_has(trail.id, K.REJECTED))

    assert "Binance takes 0.1% to 10%" in (book.of(trail.id)[0].reason or "")
    assert fake.private.attempts[trail.id] == 0


# ------------------------------------------------------------------ cancel, modify, reads


def test_cancel_a_resting_limit_and_a_stop(book: Book, fake: FakeBinanceUsdm) -> None:
    price = _price(_bars(T0, T0 + M5).open[0])
    _open_long(book)
    limit = book.submit(_order(11, Side.BUY, OrderType.LIMIT, price=price - 500))
    stop = book.submit(
        _order(12, Side.SELL, OrderType.STOP, stop_price=price - 500, reduce_only=True)
    )
    book.until(lambda e: _has(limit.id, K.ACCEPTED)(e) and _has(stop.id, K.ACCEPTED)(e))

    book.client.cancel(limit.id)
    book.client.cancel(stop.id)
    book.until(lambda e: _has(limit.id, K.CANCELED)(e) and _has(stop.id, K.CANCELED)(e))

    assert book.kinds(limit.id) == [K.ACCEPTED, K.CANCELED]
    assert book.kinds(stop.id) == [K.ACCEPTED, K.CANCELED]
    assert book.client.open_orders() == []
    assert [a.status for a in fake.account.algos.values()] == ["CANCELED"]


def test_cancel_of_a_filled_order_is_refused(book: Book) -> None:
    entry = _open_long(book)

    book.client.cancel(entry.id)

    assert book.client.drain_events()[-1].kind is K.CANCEL_REJECTED


def test_limit_is_amended_in_place(book: Book, fake: FakeBinanceUsdm) -> None:
    price = _price(_bars(T0, T0 + M5).open[0])
    limit = book.submit(_order(13, Side.BUY, OrderType.LIMIT, price=price - 500))
    book.until(_has(limit.id, K.ACCEPTED))

    book.client.modify(limit.id, qty=Decimal("0.02"), price=price - 400)
    book.until(_has(limit.id, K.MODIFIED))

    venue = next(o for o in fake.account.orders.values() if o.client_id == limit.id)
    amended = book.of(limit.id)[-1]
    assert (amended.qty, amended.price) == (Decimal("0.02"), price - 400)
    assert (venue.qty, venue.price, venue.status) == (Decimal("0.02"), price - 400, "NEW")
    assert fake.account.placed[limit.id] == 1
    fetched = book.client.fetch_order(limit.id)
    assert fetched is not None and (fetched.qty, fetched.price) == (Decimal("0.02"), price - 400)


def test_stop_is_canceled_and_replaced_keeping_our_id(book: Book, fake: FakeBinanceUsdm) -> None:
    _open_long(book)
    price = _price(_bars(T0, T0 + M5).open[0])
    stop = book.submit(
        _order(14, Side.SELL, OrderType.STOP, stop_price=price - 500, reduce_only=True)
    )
    book.until(_has(stop.id, K.ACCEPTED))

    book.client.modify(stop.id, stop_price=price - 30)
    book.until(_has(stop.id, K.MODIFIED))
    _advance(fake, 3)
    book.until(_filled(stop.id))

    algos = {a.client_id: (a.status, a.trigger) for a in fake.account.algos.values()}
    assert algos == {stop.id: ("CANCELED", price - 500), stop.id + "r1": ("FINISHED", price - 30)}
    assert book.kinds(stop.id) == [K.ACCEPTED, K.MODIFIED, K.FILL]
    assert book.of(stop.id)[1].stop_price == price - 30


def test_fetch_by_client_id_and_open_orders(book: Book) -> None:
    price = _price(_bars(T0, T0 + M5).open[0])
    _open_long(book)
    limit = book.submit(_order(15, Side.BUY, OrderType.LIMIT, price=price - 500, tag="trend"))
    stop = book.submit(
        _order(16, Side.SELL, OrderType.STOP, stop_price=price - 500, reduce_only=True)
    )
    book.until(lambda e: _has(limit.id, K.ACCEPTED)(e) and _has(stop.id, K.ACCEPTED)(e))

    fetched = book.client.fetch_order(limit.id)
    listed = book.client.open_orders(BTC)

    assert fetched is not None and (fetched.status, fetched.tag) == (OrderStatus.NEW, "trend")
    assert [(o.id, o.type) for o in listed] == [
        (limit.id, OrderType.LIMIT),
        (stop.id, OrderType.STOP),
    ]
    assert book.client.fetch_order("lc" + "9" * 30) is None


# ------------------------------------------------------------------ lost answers


def test_timeout_after_acceptance_makes_the_order_unknown_then_it_is_looked_up_not_resent(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    fake.drop_user_streams(refuse=True)  # only the lookup can tell what happened
    fake.private.hang_next(ORDER, seconds=1.5, process=True)
    fake.fail_next(ORDER, 503, after=1, times=3)  # the first lookups fail too
    order = book.submit(_order(20, Side.BUY))

    state = book.client.tracker.get(order.id)
    assert state is not None and state.submission is Submission.UNKNOWN
    book.until(_filled(order.id))

    assert book.kinds(order.id) == [K.ACCEPTED, K.FILL]
    assert fake.private.attempts[order.id] == 1
    assert fake.account.placed[order.id] == 1
    assert state.submission is Submission.ACKNOWLEDGED


def test_lost_answer_of_an_order_the_venue_never_took_is_sent_again_once_same_id(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    fake.private.hang_next(ORDER, seconds=1.0, process=False)
    order = book.submit(_order(21, Side.BUY))

    book.until(_filled(order.id))

    assert book.kinds(order.id) == [K.ACCEPTED, K.FILL]
    assert fake.private.attempts[order.id] == 2
    assert fake.account.placed[order.id] == 1


def test_5xx_on_a_submission_is_looked_up_then_sent_again_and_reads_are_retried(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    fake.fail_next(ORDER, 503)
    fake.fail_next("/fapi/v3/positionRisk", 502, times=2)
    order = book.submit(_order(22, Side.BUY))
    book.until(_filled(order.id))

    held = book.client.positions()

    assert [p.qty for p in held] == [QTY]
    assert (fake.private.attempts[order.id], fake.account.placed[order.id]) == (2, 1)
    assert fake.requests[("/fapi/v3/positionRisk", 502)] == 2
    assert fake.requests[("/fapi/v3/positionRisk", 200)] == 1


# ------------------------------------------------------------------ the user-data stream


def test_duplicated_user_events_give_each_fill_once(book: Book, fake: FakeBinanceUsdm) -> None:
    fake.account.trades_per_fill = 3
    fake.private.duplicate_events(20)
    order = book.submit(_order(30, Side.BUY))

    book.until(_filled(order.id))

    fills = [e.fill for e in book.of(order.id) if e.fill is not None]
    assert len(fills) == 3 and len({f.id for f in fills}) == 3
    assert sum(f.qty for f in fills) == QTY
    assert book.client.tracker.duplicates >= 3


def test_reversed_user_events_are_applied_in_execution_order(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    fake.account.trades_per_fill = 3
    fake.private.reverse_events(7)  # NEW, then (trade, account update) × 3, all backwards
    order = book.submit(_order(31, Side.BUY))

    book.until(_filled(order.id))

    fills = [e.fill for e in book.of(order.id) if e.fill is not None]
    assert [f.id for f in fills] == sorted(f.id for f in fills)
    assert [f.qty for f in fills] == [Decimal("0.003"), Decimal("0.003"), Decimal("0.004")]


def test_fill_that_arrives_before_the_acknowledgement(book: Book, fake: FakeBinanceUsdm) -> None:
    fake.private.reverse_events(2)  # the trade before NEW on the stream...
    fake.private.delay_answer(ORDER, 0.3)  # ...and both before the REST answer
    order = book.submit(_order(32, Side.BUY))

    book.until(_filled(order.id))

    assert book.kinds(order.id) == [K.ACCEPTED, K.FILL]
    assert book.client.tracker.fills_before_ack == 1


def test_partial_fills_taker_now_then_maker_on_the_next_bar(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    fake.account.fill_fraction = Decimal("0.5")
    limit = _price(_bars(T0, T0 + M5).open[0]) + 20  # crosses now, and the next bar's low
    order = book.submit(_order(33, Side.BUY, OrderType.LIMIT, price=limit))
    book.until(_filled(order.id, QTY / 2))

    _advance(fake, 2)
    book.until(_filled(order.id))

    fills = [e.fill for e in book.of(order.id) if e.fill is not None]
    assert [(f.qty, f.liquidity) for f in fills] == [
        (QTY / 2, Liquidity.TAKER),
        (QTY / 2, Liquidity.MAKER),
    ]
    assert fills[1].price == limit


def test_fills_missed_while_the_stream_was_down_come_after_it_reconnects(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    limit = _price(_bars(T0, T0 + M5).open[0]) - 30
    order = book.submit(_order(34, Side.BUY, OrderType.LIMIT, price=limit))
    book.until(_has(order.id, K.ACCEPTED))
    fake.drop_user_streams(refuse=True)

    _advance(fake, 3)  # it fills while nobody listens
    fake.private.refusing = False
    book.until(_filled(order.id))

    assert book.client.stream_opens >= 2
    assert book.kinds(order.id) == [K.ACCEPTED, K.FILL]


def test_liquidation_by_the_venue_is_a_liquidation_order_and_its_fill(
    book: Book, fake: FakeBinanceUsdm
) -> None:
    entry = _open_long(book)
    price = _price(_bars(T0, T0 + M5).open[0])
    stop = book.submit(
        _order(40, Side.SELL, OrderType.STOP, stop_price=price - 500, reduce_only=True)
    )
    book.until(_has(stop.id, K.ACCEPTED))

    venue_id = fake.liquidate(BTC)
    book.until(_filled(venue_id))

    liquidation = book.of(venue_id)[0]
    assert liquidation.kind is K.LIQUIDATION and liquidation.order is not None
    assert (liquidation.order.side, liquidation.order.qty) == (Side.SELL, entry.qty)
    assert book.kinds(stop.id) == [K.ACCEPTED, K.CANCELED]
    assert venue_id.startswith("autoclose-")
    assert [t.exit_reason for t in book.trades] == [ExitReason.LIQUIDATION]
    assert book.ledger.position(BTC).qty == 0
    assert book.client.positions() == []


def test_the_fakes_user_stream_reads_in_ccxts_own_watch_methods(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    order = _order(35, Side.BUY)

    async def main() -> tuple[list, list, list]:
        exchange = AccountExchange(
            _settings(fake), clock=clock, on_user_event=lambda _: None, on_user_stream=lambda: None
        )
        try:
            await exchange.load_markets()
            watching = asyncio.gather(
                exchange.watch_orders(), exchange.watch_my_trades(), exchange.watch_positions()
            )
            async with asyncio.timeout(10):
                while fake.private.streams == 0:
                    await asyncio.sleep(0.005)
                await exchange.fapiPrivatePostOrder(order_params(order, order.id))
                orders, trades, positions = await watching
        finally:
            await exchange.close()
        return orders, trades, positions

    orders, trades, positions = asyncio.run(main())

    price = float(_bars(T0, T0 + M5).open[0])
    assert [(o["clientOrderId"], o["symbol"]) for o in orders] == [(order.id, "BTC/USDT:USDT")]
    assert [(t["amount"], t["price"], t["side"]) for t in trades] == [(0.01, price, "buy")]
    assert [(p["contracts"], p["side"], p["entryPrice"]) for p in positions] == [
        (0.01, "long", price)
    ]


# ------------------------------------------------------------------ account settings


def test_leverage_and_margin_mode_are_set_and_verified_at_start(
    client: BinanceUsdmExecution, fake: FakeBinanceUsdm
) -> None:
    venue = fake.account.positions[BTC]

    client.set_leverage(BTC, 10)

    assert (venue.leverage, venue.margin_type) == (10, "ISOLATED")
    assert dict(client.leverage) == {BTC: 10}
    with pytest.raises(InvalidOrder) as refused:
        client.set_leverage(BTC, 500)
    assert (
        refused.value.field == "leverage" and "Leverage 500 is not valid" in refused.value.message
    )


def test_start_is_refused_when_the_venue_cannot_take_the_margin_mode(
    book: Book, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    _open_long(book)  # an open position: Binance refuses a margin type change

    with pytest.raises(VenueRefusal) as refused:
        _client(fake, clock, MarginMode.CROSS).start()

    assert refused.value.venue_code == -4048


def test_requests_follow_the_venues_clock_when_it_is_ahead(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    fake.private.skew_ms = 60_000  # the venue's clock a minute ahead of ours

    with _client(fake, clock) as client:
        book = Book(client)
        first = book.submit(_order(50, Side.BUY))
        book.until(_filled(first.id))
        fake.private.skew_ms = 120_000  # it drifts again: -1021, measured again, sent again
        second = book.submit(_order(51, Side.BUY))
        book.until(_filled(second.id))

    assert fake.requests[(ORDER, 400)] == 1
    assert fake.account.placed == {first.id: 1, second.id: 1}


# ------------------------------------------------------------------ secrets


def test_keys_and_signatures_never_appear_in_logs_or_errors(
    fake: FakeBinanceUsdm, clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with _client(fake, clock) as client:
        book = Book(client)
        fake.private.hang_next(ORDER, seconds=1.0, process=False)  # a lost answer: logged
        book.submit(_order(60, Side.BUY))
        book.submit(_order(61, Side.BUY, reduce_only=True))  # a refusal with a reason
        book.until(_has(_order(61, Side.BUY).id, K.REJECTED))
        fake.fail_next("/fapi/v3/account", 503, times=3)  # a read that fails for good
        with pytest.raises(Exception) as failed:
            client.balance()
        texts.append(str(failed.value))
        texts += [e.reason or "" for e in book.events]
    with pytest.raises(VenueRefusal) as bad_secret:
        _client(fake, clock, api_secret="not-the-secret").start()
    texts.append(str(bad_secret.value))
    texts += [r.getMessage() + (r.exc_text or "") for r in caplog.records]

    secrets = [API_KEY, API_SECRET, *fake.private.signatures, *fake.private.listen_keys]
    assert "Signature for this request is not valid" in str(bad_secret.value)
    assert len(fake.private.signatures) >= 5 and caplog.records
    assert [s for s in secrets if any(s in t for t in texts)] == []
    assert API_SECRET not in repr(_settings(fake)) and API_KEY not in str(_settings(fake))


def test_keys_come_from_owner_only_files(tmp_path: Path) -> None:
    key, secret = tmp_path / "key", tmp_path / "secret"
    key.write_text(API_KEY + "\n")
    secret.write_text(API_SECRET)
    key.chmod(0o600)
    secret.chmod(0o644)

    with pytest.raises(ValueError) as loose:
        BinanceUsdmSettings(api_key_file=key, api_secret_file=secret)
    secret.chmod(0o600)
    settings = BinanceUsdmSettings(api_key_file=key, api_secret_file=secret)

    assert f"{secret} must be readable by its owner only (600), is 644" in str(loose.value)
    assert API_SECRET not in str(loose.value)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == API_KEY
    assert settings.api_secret is not None and settings.api_secret.get_secret_value() == API_SECRET
