"""Orders asked for through the trading service, as the API asks: every kernel order type,
time in force, reduce-only and linked orders, idempotent client ids, brackets and amendments.

The service runs over in-memory storage and the real simulated venue on real BTCUSDT bars, with
a strategy that never trades: the orders placed here are the only ones. The first 100 bars warm
the kernel up (the last close is the mark); :meth:`Desk.run` then replays the next bars.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.marketdata.exchange_info import load_instruments
from adapters.venues.simulated.venue import SimulatedVenue
from domain.candles import Candles
from domain.errors import (
    DuplicateOrder,
    InvalidOrder,
    OrderNotCancelable,
    OrderNotFound,
    OrderRejected,
)
from domain.ledger import Ledger
from domain.model import (
    ExitReason,
    Fill,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from domain.ports import RunState
from domain.strategies.base import Decision, DecisionContext, OrderIntent
from service_layer.engine import Engine
from service_layer.messagebus import MessageBus
from service_layer.order_requests import BracketRequest
from service_layer.trading import TradingService
from tests.fakes import InMemoryUnitOfWork, ListFeed, MemoryStore
from tests.fixtures.data import load_sample_candles, sample_dir

SYMBOL = "BTCUSDT"
WARM = 100
CASH = Decimal(10_000)
QTY = Decimal("0.010")
D = Decimal


class Idle:
    """A strategy that never trades."""

    name = "idle"

    def params(self) -> dict[str, float | int | str | bool]:
        return {}

    def warmup_bars(self) -> int:
        return 0

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        return None

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        return {}

    def decide(self, ctx: DecisionContext) -> Decision:
        return Decision()

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        return None


class SteppedFeed(ListFeed):
    """The bars after index ``cut``, one a batch, as many as ``step[0]`` says when the run
    starts (the bars before ``cut`` are its history)."""

    def __init__(self, candles: Candles, cut: int, step: list[int]) -> None:
        super().__init__([], (SYMBOL,), "5m", {SYMBOL: candles.slice(0, cut)})
        self.candles, self.cut, self.step = candles, cut, step

    def batches(self) -> Iterator[dict[str, Candles]]:
        for i in range(self.cut, self.cut + self.step[0]):
            if self._stopped:
                self._reason = "stopped"
                return
            yield {SYMBOL: self.candles.slice(i, i + 1)}
        self._reason = "end of data"

    @property
    def exhausted(self) -> bool:
        return self.step[0] == 0


@dataclass
class Desk:
    """The service over real bars; ``run(n)`` replays the next ``n`` bars and stops."""

    service: TradingService
    candles: Candles
    step: list[int] = field(default_factory=lambda: [0])

    def run(self, bars: int) -> None:
        self.step[0] = bars
        self.service.start()
        deadline = time.monotonic() + 30
        while self.service.status().running and time.monotonic() < deadline:
            time.sleep(0.002)
        assert self.service.status().stopped_reason == "end of data"

    @property
    def mark(self) -> Decimal:
        return self.service.engine.marks[SYMBOL]

    @property
    def held(self) -> Decimal:
        return self.service.engine.ledger.position(SYMBOL).qty

    def order(self, order_id: str) -> Order:
        return self.service.get_order(order_id)

    def fills(self, order_id: str) -> list[Fill]:
        return self.service.fills(order_id=order_id).items

    def buy(self, qty: Decimal = QTY) -> None:
        """Open a long of ``qty`` at the next bar's open."""
        self.service.desk.place(OrderIntent(SYMBOL, Side.BUY, qty))
        self.run(1)
        assert self.held == qty


def _desk(participation: Decimal | None = None) -> Desk:
    candles = load_sample_candles(SYMBOL)
    rules = load_instruments(sample_dir() / "binance_usdm_exchange_info_20251030.json")
    instruments = {SYMBOL: rules[SYMBOL]}
    store = MemoryStore()
    run = RunState("run-api", "paper", "idle", {}, (SYMBOL,), "5m", 0, CASH, CASH, {})
    step = [0]

    def uow() -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(store, run.id)

    def engine_factory(state: RunState) -> Engine:
        clock = SimulatedClock()
        venue = SimulatedVenue(
            instruments=instruments, cash=state.cash, clock=clock, participation=participation
        )
        return Engine(
            strategy=Idle(),
            execution=venue,
            matcher=venue,
            clock=clock,
            instruments=instruments,
            symbols=(SYMBOL,),
            timeframe="5m",
            run_id=state.id,
            ledger=Ledger(state.cash, [], []),
            window=300,
        )

    def feed(after: dict[str, int] | None, sleep: Callable[[float], object]) -> SteppedFeed:
        cut = WARM if not after else int(np.searchsorted(candles.open_time, after[SYMBOL], "right"))
        return SteppedFeed(candles, cut, step)

    service = TradingService(
        engine_factory=engine_factory,
        feed_factory=feed,
        uow_factory=uow,
        bus=MessageBus(),
        run=run,
        perf_counter=time.perf_counter,
    )
    return Desk(service, candles, step)


@pytest.fixture
def desk() -> Desk:
    return _desk()


# -- order types ----------------------------------------------------------------------------
def test_a_trailing_stop_without_a_level_starts_at_the_last_close_less_its_offset(
    desk: Desk,
) -> None:
    sell = desk.service.desk.place(
        OrderIntent(SYMBOL, Side.SELL, QTY, type=OrderType.TRAILING_STOP, trailing_offset=D(150))
    )
    buy = desk.service.desk.place(
        OrderIntent(SYMBOL, Side.BUY, QTY, type=OrderType.TRAILING_STOP, trailing_offset=D(150))
    )

    assert desk.mark == D("110084.4")
    assert sell.order.stop_price == D("109934.4")
    assert buy.order.stop_price == D("110234.4")
    assert sell.order.trailing_offset == D(150)
    assert sell.order.status is OrderStatus.NEW


def test_a_trailing_stop_follows_the_best_price_and_fills_when_the_price_turns(
    desk: Desk,
) -> None:
    desk.buy()
    start = desk.mark
    trail = desk.service.desk.place_order(
        symbol=SYMBOL, side=Side.SELL, type=OrderType.TRAILING_STOP, qty=QTY,
        trailing_offset=D(150), reduce_only=True, client_order_id="trail",
    )  # fmt: skip

    desk.run(200)

    done = desk.order("trail")
    fills = desk.fills("trail")
    assert trail.stop_price == start - 150
    assert done.status is OrderStatus.FILLED
    assert done.stop_price is not None and done.stop_price > trail.stop_price  # it moved up
    assert len(fills) == 1 and fills[0].price <= done.stop_price
    assert desk.held == 0


def test_a_take_profit_fills_once_the_price_reaches_it(desk: Desk) -> None:
    desk.buy()
    level = desk.mark + 200
    desk.service.desk.place_order(
        symbol=SYMBOL, side=Side.SELL, type=OrderType.TAKE_PROFIT, qty=QTY, stop_price=level,
        reduce_only=True, client_order_id="tp",
    )  # fmt: skip

    desk.run(200)

    fills = desk.fills("tp")
    first = int(np.argmax(desk.candles.high[WARM + 1 :] >= float(level))) + WARM + 1
    assert desk.order("tp").status is OrderStatus.FILLED
    assert [f.time for f in fills] == [int(desk.candles.open_time[first])]
    assert fills[0].price >= level
    assert desk.held == 0


def test_a_stop_filling_cancels_the_orders_linked_to_it(desk: Desk) -> None:
    stop = desk.mark - 100
    far = desk.mark + 20_000
    for kind, level, cid in ((OrderType.STOP, stop, "stop"), (OrderType.LIMIT, far, "limit")):
        desk.service.desk.place_order(
            symbol=SYMBOL, side=Side.SELL, type=kind, qty=QTY, link_id="oco-1",
            stop_price=level if kind is OrderType.STOP else None,
            price=level if kind is OrderType.LIMIT else None, client_order_id=cid,
        )  # fmt: skip

    desk.run(50)

    assert desk.order("stop").status is OrderStatus.FILLED
    assert desk.order("stop").link_id == desk.order("limit").link_id == "oco-1"
    assert desk.order("limit").status is OrderStatus.CANCELED
    assert desk.fills("stop")[0].price <= stop


@pytest.mark.parametrize(
    ("tif", "offset", "reason"),
    [
        (TimeInForce.IOC, -5_000, "ioc order found no price on its first bar"),
        (TimeInForce.FOK, -5_000, "fok order found no price on its first bar"),
        (TimeInForce.POST_ONLY, +5_000, "post-only order would take liquidity"),
    ],
)
def test_immediate_and_post_only_limits_expire_when_they_cannot_fill_as_asked(
    desk: Desk, tif: TimeInForce, offset: int, reason: str
) -> None:
    desk.service.desk.place_order(
        symbol=SYMBOL, side=Side.BUY, type=OrderType.LIMIT, qty=QTY, price=desk.mark + offset,
        time_in_force=tif, client_order_id="tif",
    )  # fmt: skip

    desk.run(3)

    expired = desk.order("tif")
    assert expired.status is OrderStatus.EXPIRED
    assert expired.time_in_force is tif
    assert expired.reject_reason == reason
    assert desk.fills("tif") == []


def test_an_ioc_market_order_fills_on_the_next_bar(desk: Desk) -> None:
    desk.service.desk.place_order(
        symbol=SYMBOL, side=Side.BUY, type=OrderType.MARKET, qty=QTY,
        time_in_force=TimeInForce.IOC, client_order_id="ioc-market",
    )  # fmt: skip

    desk.run(1)

    assert desk.order("ioc-market").status is OrderStatus.FILLED
    assert desk.held == QTY


def test_a_reduce_only_order_on_a_flat_position_is_refused_and_not_stored(desk: Desk) -> None:
    with pytest.raises(InvalidOrder, match="would not reduce position 0") as refused:
        desk.service.desk.place_order(
            symbol=SYMBOL, side=Side.SELL, type=OrderType.MARKET, qty=QTY, reduce_only=True,
            client_order_id="ro",
        )  # fmt: skip

    assert refused.value.field == "reduce_only"
    with pytest.raises(OrderNotFound):
        desk.order("ro")


# -- idempotency ----------------------------------------------------------------------------
def test_a_repeated_client_order_id_returns_the_first_order_and_trades_once(desk: Desk) -> None:
    intent = OrderIntent(SYMBOL, Side.BUY, QTY)
    first = desk.service.desk.place(intent, "once")
    again = desk.service.desk.place(intent, "once")
    desk.run(3)
    after_fill = desk.service.desk.place(intent, "once")

    assert (first.created, again.created, after_fill.created) == (True, False, False)
    assert again.order == first.order
    assert after_fill.order.status is OrderStatus.FILLED
    assert len(desk.fills("once")) == 1
    assert desk.held == QTY


def test_a_repeated_client_order_id_with_other_terms_is_refused_naming_the_term(
    desk: Desk,
) -> None:
    desk.service.desk.place(OrderIntent(SYMBOL, Side.BUY, QTY), "mine")

    with pytest.raises(DuplicateOrder) as refused:
        desk.service.desk.place(OrderIntent(SYMBOL, Side.BUY, D("0.020")), "mine")

    assert refused.value.field == "client_order_id"
    assert refused.value.message == (
        "client_order_id 'mine' is already used by an order with other terms: "
        "qty 0.020 (the order has 0.010)"
    )
    assert desk.order("mine").qty == QTY


def test_a_repeated_trailing_stop_matches_though_its_level_has_moved(desk: Desk) -> None:
    desk.buy()
    intent = OrderIntent(
        SYMBOL, Side.SELL, QTY, type=OrderType.TRAILING_STOP, trailing_offset=D(1500),
        reduce_only=True,
    )  # fmt: skip
    first = desk.service.desk.place(intent, "trail-once")
    assert first.order.stop_price is not None
    desk.service.desk.modify_order("trail-once", stop_price=first.order.stop_price + 500)

    again = desk.service.desk.place(intent, "trail-once")

    assert again.created is False
    assert again.order.stop_price == first.order.stop_price + 500


def test_a_repeated_client_order_id_of_a_rejected_order_is_rejected_again(desk: Desk) -> None:
    huge = OrderIntent(SYMBOL, Side.BUY, D(5))  # notional far beyond equity × max_leverage
    with pytest.raises(OrderRejected) as first:
        desk.service.desk.place(huge, "too-big")

    with pytest.raises(OrderRejected) as again:
        desk.service.desk.place(huge, "too-big")

    assert again.value.reason == first.value.reason
    assert again.value.order_id == "too-big"
    assert desk.order("too-big").status is OrderStatus.REJECTED


# -- brackets -------------------------------------------------------------------------------
def _bracket(
    stop: Decimal, target: Decimal, price: Decimal | None = None, side: Side = Side.BUY
) -> BracketRequest:
    return BracketRequest(SYMBOL, side, QTY, price, stop, target)


def test_a_bracket_stop_filling_cancels_its_take_profit_and_leaves_the_position_flat(
    desk: Desk,
) -> None:
    mark = desk.mark
    placed = desk.service.desk.place_bracket(_bracket(mark - 100, mark + 20_000), "br-1")

    desk.run(100)

    bracket = desk.service.desk.bracket("br-1")
    entry, stop, target = bracket.entry, bracket.stop_loss, bracket.take_profit
    assert (placed.created, placed.stop_loss, placed.take_profit) == (True, None, None)
    assert entry.status is OrderStatus.FILLED and entry.avg_fill_price is not None
    assert stop is not None and target is not None
    assert stop.stop_price == entry.avg_fill_price - 100
    assert target.stop_price == entry.avg_fill_price + 20_000
    assert (stop.type, target.type) == (OrderType.STOP, OrderType.TAKE_PROFIT)
    assert stop.reduce_only and target.reduce_only
    assert stop.link_id == target.link_id == "br-1"
    assert stop.qty == target.qty == QTY
    assert (stop.status, target.status) == (OrderStatus.FILLED, OrderStatus.CANCELED)
    assert desk.held == 0
    trades = desk.service.trades().items
    assert [t.exit_reason for t in trades] == [ExitReason.STOP]


def test_a_bracket_take_profit_closing_the_position_cancels_its_stop(desk: Desk) -> None:
    mark = desk.mark
    desk.service.desk.place_bracket(_bracket(mark + 20_000, mark - 100, side=Side.SELL), "br-short")

    desk.run(100)

    bracket = desk.service.desk.bracket("br-short")
    assert bracket.entry.side is Side.SELL
    assert bracket.take_profit is not None and bracket.stop_loss is not None
    assert bracket.take_profit.status is OrderStatus.FILLED
    assert bracket.stop_loss.status is OrderStatus.CANCELED
    assert desk.held == 0


def test_a_limit_bracket_filled_at_its_price_puts_its_exits_at_the_levels_asked(
    desk: Desk,
) -> None:
    price = desk.mark - 200
    desk.service.desk.place_bracket(_bracket(price - 300, price + 400, price=price), "br-limit")

    desk.run(100)

    bracket = desk.service.desk.bracket("br-limit")
    assert bracket.entry.avg_fill_price == price
    assert bracket.stop_loss is not None and bracket.take_profit is not None
    assert bracket.stop_loss.stop_price == price - 300
    assert bracket.take_profit.stop_price == price + 400


@pytest.mark.parametrize(
    ("stop", "target", "price", "field", "message"),
    [
        (+50, +500, None, "stop_loss.stop_price", "must be below the entry's last price"),
        (-50, -500, None, "take_profit.stop_price", "must be above the entry's last price"),
        (-50, +500, -100, "stop_loss.stop_price", "must be below the entry's limit price"),
        (D("-50.05"), +500, None, "stop_loss.stop_price", "must be a multiple of 0.10"),
    ],
)
def test_bracket_exits_on_the_wrong_side_or_off_the_tick_are_refused(
    desk: Desk, stop: Decimal, target: int, price: int | None, field: str, message: str
) -> None:
    mark = desk.mark
    limit = None if price is None else mark + price
    with pytest.raises(InvalidOrder, match=message) as refused:
        desk.service.desk.place_bracket(_bracket(mark + stop, mark + target, limit), "bad")

    assert refused.value.field == field
    with pytest.raises(OrderNotFound):
        desk.order("bad")


def test_a_repeated_bracket_returns_the_first_and_other_levels_are_refused(desk: Desk) -> None:
    mark = desk.mark
    request = _bracket(mark - 1_000, mark + 1_000)
    first = desk.service.desk.place_bracket(request, "br-once")
    desk.run(2)  # the mark moves: the levels still span the same distance

    again = desk.service.desk.place_bracket(request, "br-once")
    with pytest.raises(DuplicateOrder, match="take_profit - stop_loss"):
        desk.service.desk.place_bracket(_bracket(mark - 1_000, mark + 900), "br-once")
    with pytest.raises(DuplicateOrder, match="a bracket's entry"):
        desk.service.desk.place(request.entry(), "br-once")

    assert again.created is False
    assert again.entry.id == first.entry.id
    assert again.stop_loss is not None and again.take_profit is not None
    assert len(desk.fills("br-once")) == 1


def test_an_order_that_is_no_bracket_entry_is_not_found_as_a_bracket(desk: Desk) -> None:
    desk.service.desk.place(OrderIntent(SYMBOL, Side.BUY, QTY), "plain")

    with pytest.raises(OrderNotFound, match="not a bracket's entry"):
        desk.service.desk.bracket("plain")


# -- amendments -----------------------------------------------------------------------------
def test_a_resting_limit_moved_to_the_market_fills_there(desk: Desk) -> None:
    far = desk.mark - 5_000
    desk.service.desk.place_order(
        symbol=SYMBOL, side=Side.BUY, type=OrderType.LIMIT, qty=QTY, price=far,
        client_order_id="rest",
    )  # fmt: skip
    desk.run(2)
    assert desk.order("rest").status is OrderStatus.NEW

    moved = desk.service.desk.modify_order("rest", price=desk.mark + 500)
    desk.run(1)

    assert moved.price == desk.order("rest").price != far
    assert moved.status is OrderStatus.NEW
    assert desk.order("rest").status is OrderStatus.FILLED
    assert desk.held == QTY


def test_a_stop_and_a_quantity_are_amended(desk: Desk) -> None:
    desk.service.desk.place_order(
        symbol=SYMBOL, side=Side.BUY, type=OrderType.STOP, qty=QTY, stop_price=desk.mark + 5_000,
        client_order_id="stop",
    )  # fmt: skip

    moved = desk.service.desk.modify_order("stop", qty=D("0.020"), stop_price=desk.mark + 4_000)

    assert (moved.qty, moved.stop_price) == (D("0.020"), desk.mark + 4_000)
    assert desk.order("stop") == moved


def _partly_filled() -> tuple[Desk, Decimal]:
    """A desk whose market order ``slow`` of 0.2 BTC has filled in part (the venue fills
    1/10,000 of a bar's volume, about 0.03 BTC a bar)."""
    desk = _desk(participation=D("0.0001"))
    desk.service.desk.place(OrderIntent(SYMBOL, Side.BUY, D("0.200")), "slow")
    desk.run(1)
    filled = desk.order("slow").filled_qty
    assert 0 < filled < D("0.200")
    return desk, filled


@pytest.mark.parametrize("below", [D(0), D("0.001")])
def test_a_quantity_not_above_what_has_filled_is_refused_by_the_venue(below: Decimal) -> None:
    desk, filled = _partly_filled()

    with pytest.raises(OrderRejected) as refused:
        desk.service.desk.modify_order("slow", qty=filled - below)

    assert refused.value.message.startswith("modify of order slow rejected: ")
    assert str(filled) in refused.value.reason and "filled" in refused.value.reason
    assert refused.value.field == "qty"
    assert desk.order("slow").qty == D("0.200")


def test_a_quantity_above_what_has_filled_with_less_left_than_filled_is_amended() -> None:
    desk, filled = _partly_filled()

    amended = desk.service.desk.modify_order("slow", qty=filled + D("0.005"))

    assert amended.qty == filled + D("0.005")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"price": D("100000.05")}, "price", "price must be a multiple of 0.10"),
        ({"qty": D("0.0105")}, "qty", "qty must be a multiple of 0.001"),
        ({"stop_price": D(100_000)}, "stop_price", "stop_price applies to stop"),
    ],
)
def test_amendments_the_instrument_or_the_order_type_refuses_are_invalid(
    desk: Desk, changes: dict[str, Decimal], field: str, message: str
) -> None:
    desk.service.desk.place_order(
        symbol=SYMBOL, side=Side.BUY, type=OrderType.LIMIT, qty=QTY, price=D(100_000),
        client_order_id="limit",
    )  # fmt: skip

    with pytest.raises(InvalidOrder, match=message) as refused:
        desk.service.desk.modify_order("limit", **changes)

    assert refused.value.field == field
    assert desk.order("limit").price == D(100_000)


def test_a_final_or_unknown_order_cannot_be_amended(desk: Desk) -> None:
    desk.service.desk.place_order(
        symbol=SYMBOL, side=Side.BUY, type=OrderType.LIMIT, qty=QTY, price=D(100_000),
        client_order_id="gone",
    )  # fmt: skip
    desk.service.desk.cancel_order("gone")

    with pytest.raises(OrderNotCancelable, match="already canceled"):
        desk.service.desk.modify_order("gone", price=D(100_001))
    with pytest.raises(OrderNotFound):
        desk.service.desk.modify_order("nope", price=D(100_001))
