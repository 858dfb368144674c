"""SQL storage on real SQLite and PostgreSQL: round trips, run scoping, pages, unit of work."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from adapters.storage.sql.unit_of_work import SqlUnitOfWork
from domain.errors import ConfigError, DuplicateOrder
from domain.model import (
    Direction,
    EquityPoint,
    ExitPlan,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Reason,
    Side,
    Signal,
    TakeProfit,
    TimeInForce,
    Trade,
)
from domain.ports import Page, RunState

NewUow = Callable[..., SqlUnitOfWork]
T = TypeVar("T")
T0 = 1_700_000_000_000  # ms UTC


def order(id: str = "o1", **changes: Any) -> Order:
    base = Order(
        id=id,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        qty=Decimal("0.5"),
        created_time=T0,
    )
    return replace(base, **changes)


def fill(id: str = "f1", order_id: str = "o1", **changes: Any) -> Fill:
    base = Fill(
        id=id,
        order_id=order_id,
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=Decimal("0.5"),
        price=Decimal("43000.12"),
        fee=Decimal("0.0215"),
        liquidity=Liquidity.TAKER,
        time=T0,
    )
    return replace(base, **changes)


def trade(id: str = "t1", **changes: Any) -> Trade:
    base = Trade(
        id=id,
        symbol="BTCUSDT",
        side=Side.SELL,
        qty=Decimal("0.5"),
        entry_time=T0,
        entry_price=Decimal("43000"),
        exit_time=T0 + 60_000,
        exit_price=Decimal("42000.5"),
        pnl=Decimal("499.70"),
        fees=Decimal("0.05"),
    )
    return replace(base, **changes)


def signal(symbol: str = "BTCUSDT", time: int = T0, confidence: float = 0.5) -> Signal:
    return Signal(symbol, "1h", time, Direction.SHORT, confidence, (), strategy="s")


def run_state(id: str = "r1", **changes: Any) -> RunState:
    base = RunState(
        id=id,
        mode="paper",
        strategy="sma_cross",
        params={"fast": 10, "slow": 30.5, "ma": "ema"},
        symbols=("BTCUSDT", "ETHUSDT"),
        timeframe="1h",
        started_time=T0,
        initial_cash=Decimal("10000"),
        cash=Decimal("10000"),
        last_bar_time={},
    )
    return replace(base, **changes)


def store(
    new_uow: NewUow, *orders: Order, fills: tuple[Fill, ...] = (), run: str = "run-1"
) -> None:
    with new_uow(run) as uow:
        for each in orders:
            uow.orders.upsert(each)
        for each in fills:
            uow.fills.add(each)
        uow.commit()


def read_all(read: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a paged listing, following ``next_cursor`` to the end."""
    cursor: str | None = None
    while True:
        page = read(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


# --- round trips ------------------------------------------------------------------------------


def test_order_round_trips_every_field(new_uow: NewUow) -> None:
    trailing = order(
        type=OrderType.TRAILING_STOP,
        side=Side.SELL,
        qty=Decimal("1.000"),
        stop_price=Decimal("42000.5"),
        trailing_offset=Decimal("150.123456789012345678"),
        status=OrderStatus.PARTIALLY_FILLED,
        filled_qty=Decimal("0.25"),
        avg_fill_price=Decimal("43000.123456789012345678"),
        updated_time=T0 + 1,
        reduce_only=True,
        tag="sma_cross",
        reject_reason="none",
        venue_order_id="8389765",
        link_id="entry-7",
    )
    entry = order(
        "o2",
        type=OrderType.LIMIT,
        price=Decimal("43000.10"),
        time_in_force=TimeInForce.POST_ONLY,
        exits=ExitPlan(
            stop_distance=Decimal("250.5"),
            take_profits=(
                TakeProfit(Decimal("300"), Decimal("0.5")),
                TakeProfit(Decimal("600.000000000000000001"), Decimal("0.25")),
            ),
            trailing_distance=Decimal("1E+2"),
        ),
    )
    market, empty_plan = order("o3"), order("o4", exits=ExitPlan())
    store(new_uow, trailing, entry, market, empty_plan)

    with new_uow() as uow:
        got = [uow.orders.get(id) for id in ("o1", "o2", "o3", "o4")]

    assert got == [trailing, entry, market, empty_plan]
    assert got[2] is not None and got[2].price is None and got[2].exits is None
    assert got[3] is not None and got[3].exits == ExitPlan()
    assert got[0] is not None and str(got[0].qty) == "1"  # trailing zeros normalized
    assert got[1] is not None and got[1].exits is not None
    assert got[1].exits.take_profits[1].distance == Decimal("600.000000000000000001")


def test_missing_order_and_run_are_none(new_uow: NewUow) -> None:
    with new_uow() as uow:
        assert uow.orders.get("nope") is None
        assert uow.runs.get("nope") is None
        assert uow.runs.latest("paper") is None
        assert uow.equity.latest() is None


def test_signal_reasons_round_trip_as_json(new_uow: NewUow) -> None:
    reasons = (
        Reason("sma_cross", "fast above slow", {"fast": 43010.5, "slow": 42990.25}),
        Reason("regime", "trending", {"adx": 31.0, "warmup": math.nan, "cap": -math.inf}),
        Reason("note", "no numbers"),
    )
    stored = Signal("BTCUSDT", "1h", T0, Direction.LONG, 0.75, reasons, strategy="sma_cross")

    with new_uow() as uow:
        uow.signals.add(stored)
        uow.commit()
    with new_uow() as uow:
        (got,) = uow.signals.page().items

    assert (got.symbol, got.timeframe, got.time, got.direction) == ("BTCUSDT", "1h", T0, "long")
    assert got.confidence == 0.75 and got.strategy == "sma_cross"
    assert got.reasons[0] == reasons[0] and got.reasons[2] == reasons[2]
    assert got.reasons[1].values["adx"] == 31.0 and got.reasons[1].values["cap"] == -math.inf
    assert math.isnan(got.reasons[1].values["warmup"])


def test_run_state_round_trips_with_nested_state_and_error(new_uow: NewUow) -> None:
    started = run_state()
    progressed = replace(
        started,
        cash=Decimal("10050.25"),
        last_bar_time={"BTCUSDT": T0 + 3_600_000},
        stopped_reason="error",
        state={
            "kernel": {"wakeups": [[T0, "BTCUSDT"], [T0 + 60_000, "ETHUSDT"]], "seq": 12},
            "strategy": {"BTCUSDT": {"above": True, "high": "43000.5", "acc": [0.5, 0.75]}},
            "empty": {},
            "none": None,
        },
        candles_processed=12_345_678_901,
        error="VenueError: timeout after 3 retries\nat bar 1700003600000",
    )

    with new_uow() as uow:
        uow.runs.upsert(started)
        uow.commit()
    with new_uow() as uow:
        first = uow.runs.get("r1")
        uow.runs.upsert(progressed)
        uow.commit()
    with new_uow() as uow:
        second = uow.runs.get("r1")

    assert first == started and first is not None and first.state == {} and first.error is None
    assert second == progressed and second is not None and isinstance(second.symbols, tuple)


@pytest.mark.parametrize("bad", [math.nan, math.inf, Decimal("1.5"), object()])
def test_run_state_that_json_cannot_hold_is_refused(new_uow: NewUow, bad: object) -> None:
    with new_uow() as uow, pytest.raises(ValueError):
        uow.runs.upsert(run_state(state={"x": [bad]}))


def test_latest_run_is_the_newest_started_of_that_mode(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.runs.upsert(run_state("old", started_time=T0))
        uow.runs.upsert(run_state("new", started_time=T0 + 10))
        uow.runs.upsert(run_state("live", mode="live", started_time=T0 + 20))
        uow.commit()

    with new_uow("any-run") as uow:
        paper, live, other = uow.runs.latest("paper"), uow.runs.latest("live"), uow.runs.latest("x")

    assert paper is not None and paper.id == "new"
    assert live is not None and live.id == "live"
    assert other is None


# --- orders -----------------------------------------------------------------------------------


def test_order_upsert_replaces_status_and_fill_state(new_uow: NewUow) -> None:
    placed = order()
    filled = replace(
        placed,
        status=OrderStatus.FILLED,
        filled_qty=Decimal("0.5"),
        avg_fill_price=Decimal("43000.12"),
        updated_time=T0 + 60_000,
        venue_order_id="v1",
    )
    store(new_uow, placed)

    store(new_uow, filled)

    with new_uow() as uow:
        assert uow.orders.get("o1") == filled
        assert uow.orders.page() == Page([filled], None)


def test_orders_page_newest_first_by_symbol_with_limit(new_uow: NewUow) -> None:
    orders = [
        order(f"o{i}", created_time=T0 + i, symbol="ETHUSDT" if i % 2 else "BTCUSDT")
        for i in range(6)
    ]
    store(new_uow, *orders)

    with new_uow() as uow:
        everything = uow.orders.page()
        eth = uow.orders.page(symbol="ETHUSDT")
        newest_two = uow.orders.page(limit=2)
        next_two = uow.orders.page(limit=2, cursor=newest_two.next_cursor)
        first_eth = uow.orders.page(symbol="ETHUSDT", limit=2)
        last_eth = uow.orders.page(symbol="ETHUSDT", limit=2, cursor=first_eth.next_cursor)

    assert [o.id for o in everything.items] == ["o5", "o4", "o3", "o2", "o1", "o0"]
    assert everything.next_cursor is None
    assert [o.id for o in eth.items] == ["o5", "o3", "o1"] and eth.next_cursor is None
    assert [o.id for o in newest_two.items] == ["o5", "o4"]
    assert [o.id for o in next_two.items] == ["o3", "o2"]
    assert [o.id for o in first_eth.items] == ["o5", "o3"]
    assert last_eth == Page([orders[1]], None)


def test_list_open_returns_unfinished_orders_oldest_first(new_uow: NewUow) -> None:
    statuses = list(OrderStatus)
    store(
        new_uow,
        *[order(f"o{i}", created_time=T0 - i, status=status) for i, status in enumerate(statuses)],
    )

    with new_uow() as uow:
        open_orders = uow.orders.list_open()

    assert [(o.id, o.status) for o in open_orders] == [
        ("o4", OrderStatus.PENDING_CANCEL),
        ("o2", OrderStatus.PARTIALLY_FILLED),
        ("o1", OrderStatus.NEW),
        ("o0", OrderStatus.PENDING_NEW),
    ]


def test_pages_refuse_a_limit_below_one(new_uow: NewUow) -> None:
    with new_uow() as uow:
        for read in (uow.orders.page, uow.fills.page, uow.trades.page, uow.signals.page):
            with pytest.raises(ConfigError, match="limit must be an integer >= 1, was 0") as exc:
                read(limit=0)
            assert exc.value.field == "limit"
        with pytest.raises(ConfigError, match="limit"):
            uow.equity.list(limit=0)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "%%%%",
        _b64("not json"),
        _b64('{"a": 1}'),
        _b64('["orders", 1]'),
        _b64('["trades", 1700000000000, "t1"]'),  # another listing's cursor
        _b64('["orders", "1700000000000", "o1"]'),
        _b64('["orders", true, "o1"]'),
        _b64('["orders", 1700000000000, 7]'),
        "A" * 5_000,
    ],
)
def test_a_malformed_cursor_is_a_config_error_naming_the_cursor(
    new_uow: NewUow, cursor: str
) -> None:
    store(new_uow, order())

    with new_uow() as uow, pytest.raises(ConfigError, match="malformed cursor") as exc:
        uow.orders.page(cursor=cursor)

    assert exc.value.field == "cursor"


def test_every_listing_refuses_cursors_of_another_listing(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.orders.upsert(order("o1"))
        uow.orders.upsert(order("o2"))
        uow.fills.add(fill("f1"))
        uow.fills.add(fill("f2"))
        uow.trades.add(trade("t1"))
        uow.trades.add(trade("t2"))
        uow.signals.add(signal(time=T0))
        uow.signals.add(signal(time=T0 + 1))
        cursors = {
            "orders": uow.orders.page(limit=1).next_cursor,
            "fills": uow.fills.page(limit=1).next_cursor,
            "trades": uow.trades.page(limit=1).next_cursor,
            "signals": uow.signals.page(limit=1).next_cursor,
        }
        readers = {
            "orders": uow.orders.page,
            "fills": uow.fills.page,
            "trades": uow.trades.page,
            "signals": uow.signals.page,
        }
        for name, read in readers.items():
            for other, cursor in cursors.items():
                assert cursor is not None
                if other == name:
                    assert len(read(cursor=cursor).items) == 1
                else:
                    with pytest.raises(ConfigError, match="malformed cursor"):
                        read(cursor=cursor)


# --- pagination over long histories -----------------------------------------------------------

HISTORY = 1_050  # items; many share a time, so the id breaks ties


def test_cursor_pages_read_a_long_order_history_exactly_once_in_order(new_uow: NewUow) -> None:
    orders = [
        order(f"o{i:05d}", created_time=T0 + i // 7, symbol=("BTCUSDT", "ETHUSDT")[i % 2])
        for i in range(HISTORY)
    ]
    store(new_uow, *orders[::-1])  # stored out of order on purpose

    with new_uow() as uow:
        everything = list(read_all(lambda c: uow.orders.page(limit=97, cursor=c)))
        eth = list(read_all(lambda c: uow.orders.page(symbol="ETHUSDT", limit=100, cursor=c)))

    newest_first = sorted(orders, key=lambda o: (o.created_time, o.id), reverse=True)
    assert everything == newest_first
    assert eth == [o for o in newest_first if o.symbol == "ETHUSDT"]


def test_cursor_pages_read_a_long_trade_history_and_ignore_newer_trades(new_uow: NewUow) -> None:
    trades = [trade(f"t{i:05d}", exit_time=T0 + i // 5) for i in range(HISTORY)]
    with new_uow() as uow:
        for each in trades:
            uow.trades.add(each)
        uow.commit()

    seen: list[Trade] = []
    with new_uow() as uow:
        page = uow.trades.page(limit=250)
        while True:
            seen.extend(page.items)
            # A trade closed while the user pages must not shift the older pages.
            uow.trades.add(trade(f"new{len(seen)}", exit_time=T0 + HISTORY))
            if page.next_cursor is None:
                break
            page = uow.trades.page(limit=250, cursor=page.next_cursor)

    assert seen == sorted(trades, key=lambda t: (t.exit_time, t.id), reverse=True)


def test_cursor_pages_read_a_long_signal_history_exactly_once_in_order(new_uow: NewUow) -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    signals = [signal(symbols[i % 3], T0 + i // 3 * 60_000) for i in range(HISTORY)]
    with new_uow() as uow:
        for each in signals:
            uow.signals.add(each)
        uow.commit()

    with new_uow() as uow:
        everything = list(read_all(lambda c: uow.signals.page(limit=100, cursor=c)))
        sol = list(read_all(lambda c: uow.signals.page(symbol="SOLUSDT", limit=33, cursor=c)))

    # Same time: the signal stored later comes first.
    assert everything == signals[::-1]
    assert sol == [s for s in signals[::-1] if s.symbol == "SOLUSDT"]


def test_cursor_pages_read_a_long_fill_history_exactly_once_in_order(new_uow: NewUow) -> None:
    fills = [fill(f"f{i:05d}", order_id=f"o{i % 3}", time=T0 + i // 4) for i in range(HISTORY)]
    store(new_uow, order("o0"), order("o1"), order("o2"), fills=tuple(fills))

    with new_uow() as uow:
        everything = list(read_all(lambda c: uow.fills.page(limit=128, cursor=c)))
        of_o1 = list(read_all(lambda c: uow.fills.page(order_id="o1", limit=50, cursor=c)))

    newest_first = sorted(fills, key=lambda f: (f.time, f.id), reverse=True)
    assert everything == newest_first
    assert of_o1 == [f for f in newest_first if f.order_id == "o1"]


def test_realized_pnl_per_symbol_is_the_exact_sum_of_the_run_s_trades(new_uow: NewUow) -> None:
    pnls = {"BTCUSDT": ["499.70", "-0.01", "0.000001"], "ETHUSDT": ["-12.345678"]}
    with new_uow("r1") as uow:
        for symbol, values in pnls.items():
            for k, value in enumerate(values):
                uow.trades.add(trade(f"{symbol}-{k}", symbol=symbol, pnl=Decimal(value)))
        uow.commit()
    with new_uow("r2") as uow:
        uow.trades.add(trade("other", pnl=Decimal("1000")))
        uow.commit()

    with new_uow("r1") as uow:
        realized = uow.trades.realized_by_symbol()

    assert realized == {"BTCUSDT": Decimal("499.690001"), "ETHUSDT": Decimal("-12.345678")}


# --- run scoping ------------------------------------------------------------------------------


def _write_a_run(new_uow: NewUow, run: str, cash: Decimal) -> None:
    with new_uow(run) as uow:
        uow.orders.upsert(order(f"{run}-o", status=OrderStatus.NEW))
        uow.fills.add(fill(f"{run}-f", order_id=f"{run}-o"))
        uow.trades.add(trade(f"{run}-t"))
        uow.positions.upsert(Position("BTCUSDT", cash))
        uow.equity.add(EquityPoint(T0, cash, cash))
        uow.signals.add(signal(confidence=float(cash) / 100))
        uow.commit()


def test_two_runs_rows_never_mix(new_uow: NewUow) -> None:
    _write_a_run(new_uow, "a", Decimal(10))
    _write_a_run(new_uow, "b", Decimal(20))

    for run, cash, other in (("a", Decimal(10), "b"), ("b", Decimal(20), "a")):
        with new_uow(run) as uow:
            assert [o.id for o in uow.orders.page().items] == [f"{run}-o"]
            assert [o.id for o in uow.orders.list_open()] == [f"{run}-o"]
            assert uow.orders.get(f"{other}-o") is None
            assert [f.id for f in uow.fills.page().items] == [f"{run}-f"]
            assert uow.fills.page(order_id=f"{other}-o").items == []
            assert [t.id for t in uow.trades.page().items] == [f"{run}-t"]
            assert uow.positions.list() == [Position("BTCUSDT", cash)]
            assert uow.equity.list() == [EquityPoint(T0, cash, cash)]
            assert uow.equity.latest() == EquityPoint(T0, cash, cash)
            assert [s.confidence for s in uow.signals.page().items] == [float(cash) / 100]
    with new_uow("c") as uow:
        assert uow.orders.page().items == [] and uow.positions.list() == []


def test_an_order_id_of_another_run_is_refused_and_left_alone(new_uow: NewUow) -> None:
    store(new_uow, order("shared", qty=Decimal(1)), run="a")

    with new_uow("b") as uow, pytest.raises(DuplicateOrder, match="shared") as exc:
        uow.orders.upsert(order("shared", qty=Decimal(2)))

    assert exc.value.field == "id"
    with new_uow("a") as uow:
        assert uow.orders.get("shared") == order("shared", qty=Decimal(1))


def test_a_fill_or_trade_id_of_another_run_is_refused(new_uow: NewUow) -> None:
    with new_uow("a") as uow:
        uow.orders.upsert(order("a-o"))
        uow.fills.add(fill("shared-f", order_id="a-o"))
        uow.trades.add(trade("shared-t"))
        uow.commit()

    with new_uow("b") as uow:
        uow.orders.upsert(order("b-o"))
        with pytest.raises(ValueError, match="fill id 'shared-f' is already stored for run 'a'"):
            uow.fills.add(fill("shared-f", order_id="b-o"))
        with pytest.raises(ValueError, match="trade id 'shared-t'"):
            uow.trades.add(trade("shared-t"))


# --- fills, trades, positions, equity, signals --------------------------------------------------


def test_adding_a_fill_again_keeps_the_first(new_uow: NewUow) -> None:
    first = fill(realized_pnl=Decimal("-12.5"), liquidity=Liquidity.MAKER)
    store(new_uow, order(), fills=(first, first))

    store(new_uow, fills=(replace(first, qty=Decimal("9")),))

    with new_uow() as uow:
        assert uow.fills.page() == Page([first], None)


def test_trades_are_added_once_and_paged_newest_exit_first(new_uow: NewUow) -> None:
    trades = [
        trade(f"t{i}", exit_time=T0 + i, symbol="ETHUSDT" if i == 1 else "BTCUSDT")
        for i in range(3)
    ]

    with new_uow() as uow:
        for each in [*trades, replace(trades[0], pnl=Decimal(1))]:
            uow.trades.add(each)
        uow.commit()
    with new_uow() as uow:
        everything, btc = uow.trades.page(), uow.trades.page(symbol="BTCUSDT", limit=1)

    assert everything == Page(trades[::-1], None)
    assert btc.items == [trades[2]] and btc.next_cursor is not None


def test_position_upsert_keeps_one_row_per_symbol_including_flat(new_uow: NewUow) -> None:
    long = Position("BTCUSDT", Decimal("0.5"), Decimal("43000"), T0, Decimal("0.02"))
    flat = Position("BTCUSDT")
    short = Position("ETHUSDT", Decimal("-2"), Decimal("2300.5"), T0)

    with new_uow() as uow:
        uow.positions.upsert(long)
        uow.positions.upsert(short)
        uow.positions.upsert(flat)
        uow.commit()
    with new_uow() as uow:
        positions = uow.positions.list()

    assert positions == [flat, short]


def test_equity_same_time_replaces_and_lists_newest_first(new_uow: NewUow) -> None:
    points = [EquityPoint(T0 + i, Decimal(10_000 + i), Decimal(10_000)) for i in range(4)]
    corrected = EquityPoint(T0 + 3, Decimal("9999.99"), Decimal("9990"))

    with new_uow() as uow:
        for point in [*points, corrected]:
            uow.equity.add(point)
        uow.commit()
    with new_uow() as uow:
        everything = uow.equity.list()
        recent = uow.equity.list(since_ms=T0 + 2)
        limited = uow.equity.list(limit=2)
        latest = uow.equity.latest()

    assert everything == [corrected, points[2], points[1], points[0]]
    assert recent == [corrected, points[2]]
    assert limited == [corrected, points[2]]
    assert latest == corrected


def test_signals_page_newest_first_and_replayed_signal_replaces(new_uow: NewUow) -> None:
    with new_uow() as uow:
        for i in range(4):
            uow.signals.add(signal("ETHUSDT" if i == 2 else "BTCUSDT", T0 + i))
        uow.signals.add(signal("BTCUSDT", T0 + 3, confidence=0.9))
        uow.commit()
    with new_uow() as uow:
        everything, btc = uow.signals.page(), uow.signals.page(symbol="BTCUSDT", limit=2)

    assert [s.time - T0 for s in everything.items] == [3, 2, 1, 0]
    assert [(s.time - T0, s.confidence) for s in btc.items] == [(3, 0.9), (1, 0.5)]


# --- unit of work -----------------------------------------------------------------------------


def test_leaving_without_commit_writes_nothing(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.orders.upsert(order())
        uow.runs.upsert(run_state())

    with new_uow() as uow:
        assert uow.orders.page().items == [] and uow.runs.get("r1") is None


def test_exception_inside_the_block_rolls_back_every_repository(new_uow: NewUow) -> None:
    with pytest.raises(RuntimeError, match="boom"), new_uow() as uow:
        uow.orders.upsert(order())
        uow.fills.add(fill())
        uow.trades.add(trade())
        uow.positions.upsert(Position("BTCUSDT", Decimal(1)))
        uow.equity.add(EquityPoint(T0, Decimal(1), Decimal(1)))
        uow.signals.add(signal())
        uow.runs.upsert(run_state())
        raise RuntimeError("boom")

    with new_uow() as uow:
        assert uow.orders.page().items == [] and uow.fills.page().items == []
        assert uow.trades.page().items == [] and uow.signals.page().items == []
        assert uow.positions.list() == [] and uow.equity.list() == []
        assert uow.runs.get("r1") is None


def test_rollback_discards_only_what_was_not_committed(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.orders.upsert(order("kept"))
        uow.commit()
        uow.orders.upsert(order("dropped"))
        uow.equity.add(EquityPoint(T0, Decimal(1), Decimal(1)))
        uow.rollback()
        uow.commit()

    with new_uow() as uow:
        assert [o.id for o in uow.orders.page().items] == ["kept"]
        assert uow.equity.list() == []


def test_one_unit_of_work_commits_many_times(new_uow: NewUow) -> None:
    with new_uow() as uow:
        for i in range(3):
            uow.runs.upsert(run_state(candles_processed=i))
            uow.equity.add(EquityPoint(T0 + i, Decimal(i), Decimal(i)))
            uow.commit()

    with new_uow() as uow:
        run = uow.runs.get("r1")
        assert run is not None and run.candles_processed == 2
        assert [p.time - T0 for p in uow.equity.list()] == [2, 1, 0]


def test_fill_of_an_unknown_order_fails_at_commit_and_writes_nothing(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.trades.add(trade())
        uow.fills.add(fill(order_id="ghost"))
        with pytest.raises(IntegrityError):
            uow.commit()

    with new_uow() as uow:
        assert uow.fills.page().items == [] and uow.trades.page().items == []


def test_a_value_out_of_range_is_refused_before_it_reaches_the_database(new_uow: NewUow) -> None:
    with new_uow() as uow:
        with pytest.raises(ValueError, match="must be < 1e20"):
            uow.equity.add(EquityPoint(T0, Decimal("1E+20"), Decimal(1)))
        uow.equity.add(EquityPoint(T0, Decimal(1), Decimal(1)))
        uow.commit()

    with new_uow() as uow:
        assert uow.equity.list() == [EquityPoint(T0, Decimal(1), Decimal(1))]


def test_a_unit_of_work_in_use_cannot_be_entered_again(new_uow: NewUow) -> None:
    uow = new_uow()
    with uow, pytest.raises(RuntimeError, match="already in use"):
        uow.__enter__()
    with pytest.raises(RuntimeError, match="not entered"):
        uow.commit()


def test_a_unit_of_work_needs_a_run_id(new_uow: NewUow) -> None:
    with pytest.raises(ValueError, match="run_id must be a non-empty string"):
        new_uow("")


def test_a_writer_keeps_its_connection_between_uses_until_closed(
    engine: Engine, new_uow: NewUow
) -> None:
    checkouts: list[Connection] = []

    def connect() -> Connection:
        connection = engine.connect()
        checkouts.append(connection)
        return connection

    writer = SqlUnitOfWork(connect, "run-1", keep_connection=True)
    for i in range(3):
        with writer as uow:
            uow.equity.add(EquityPoint(T0 + i, Decimal(i), Decimal(i)))
            uow.commit()
    with writer as uow:  # left without commit: rolled back, the connection still kept
        uow.equity.add(EquityPoint(T0 + 9, Decimal(9), Decimal(9)))
    assert len(checkouts) == 1 and not checkouts[0].closed

    writer.close()
    assert checkouts[0].closed
    with new_uow() as uow:
        assert [p.time - T0 for p in uow.equity.list()] == [2, 1, 0]


def test_a_writer_gives_its_connection_back_after_an_error(engine: Engine) -> None:
    checkouts: list[Connection] = []

    def connect() -> Connection:
        checkouts.append(engine.connect())
        return checkouts[-1]

    writer = SqlUnitOfWork(connect, "run-1", keep_connection=True)
    with pytest.raises(RuntimeError, match="boom"), writer as uow:
        uow.equity.add(EquityPoint(T0, Decimal(1), Decimal(1)))
        raise RuntimeError("boom")
    assert checkouts[0].closed  # a failed connection may be broken: never reused
    with writer as uow:
        uow.equity.add(EquityPoint(T0, Decimal(1), Decimal(1)))
        uow.commit()
    assert len(checkouts) == 2
    writer.close()


def test_saving_progress_changes_only_what_moves_while_a_run_runs(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.runs.upsert(run_state())
        uow.commit()
    moved = run_state(
        strategy="changed-is-ignored",
        cash=Decimal("9876.5"),
        last_bar_time={"BTCUSDT": T0 + 300_000},
        state={"wakes": [{"symbol": "BTCUSDT", "at_time": T0}]},
        candles_processed=42,
        error="RuntimeError: x",
    )
    with new_uow() as uow:
        uow.runs.save_progress(moved)
        uow.commit()

    with new_uow() as uow:
        assert uow.runs.get("r1") == replace(moved, strategy=run_state().strategy)
        with pytest.raises(LookupError, match="'ghost' is not stored"):
            uow.runs.save_progress(run_state(id="ghost"))
