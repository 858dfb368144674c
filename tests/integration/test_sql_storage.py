"""SQL storage on real SQLite and PostgreSQL: repository round trips, queries, unit of work."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from adapters.storage.sql.unit_of_work import SqlUnitOfWork
from domain.model import (
    Direction,
    EquityPoint,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Reason,
    Side,
    Signal,
    Trade,
)
from domain.ports import RunState

NewUow = Callable[[], SqlUnitOfWork]
T0 = 1_700_000_000_000  # ms UTC


def order(id: str = "o1", **changes: object) -> Order:
    base = Order(
        id=id,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        qty=Decimal("0.5"),
        created_time=T0,
    )
    return replace(base, **changes)


def fill(id: str = "f1", order_id: str = "o1", **changes: object) -> Fill:
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


def trade(id: str = "t1", **changes: object) -> Trade:
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


def run_state(id: str = "r1", **changes: object) -> RunState:
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


def store(new_uow: NewUow, *orders: Order, fills: tuple[Fill, ...] = ()) -> None:
    with new_uow() as uow:
        for each in orders:
            uow.orders.upsert(each)
        for each in fills:
            uow.fills.add(each)
        uow.commit()


# --- round trips ------------------------------------------------------------------------------


def test_order_round_trips_every_field(new_uow: NewUow) -> None:
    limit = order(
        type=OrderType.LIMIT,
        side=Side.SELL,
        qty=Decimal("1.000"),
        price=Decimal("43000.10"),
        stop_price=Decimal("42000"),
        client_order_id="c-1",
        status=OrderStatus.PARTIALLY_FILLED,
        filled_qty=Decimal("0.25"),
        avg_fill_price=Decimal("43000.123456789012345678"),
        updated_time=T0 + 1,
        reduce_only=True,
        tag="sma_cross",
        reject_reason="none",
    )
    market = order("o2")
    store(new_uow, limit, market)

    with new_uow() as uow:
        got_limit, got_market = uow.orders.get("o1"), uow.orders.get("o2")

    assert got_limit == limit
    assert got_market == market
    assert got_market is not None and got_market.price is None and got_market.updated_time is None
    assert got_limit is not None and str(got_limit.qty) == "1"  # trailing zeros normalized


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
    signal = Signal("BTCUSDT", "1h", T0, Direction.LONG, 0.75, reasons, strategy="sma_cross")

    with new_uow() as uow:
        uow.signals.add(signal)
        uow.commit()
    with new_uow() as uow:
        (got,) = uow.signals.list()

    assert (got.symbol, got.timeframe, got.time, got.direction) == ("BTCUSDT", "1h", T0, "long")
    assert got.confidence == 0.75 and got.strategy == "sma_cross"
    assert got.reasons[0] == reasons[0] and got.reasons[2] == reasons[2]
    assert got.reasons[1].values["adx"] == 31.0 and got.reasons[1].values["cap"] == -math.inf
    assert math.isnan(got.reasons[1].values["warmup"])


def test_run_state_round_trips_and_upsert_replaces(new_uow: NewUow) -> None:
    started = run_state()
    progressed = replace(
        started,
        cash=Decimal("10050.25"),
        last_bar_time={"BTCUSDT": T0 + 3_600_000},
        stopped_reason="stopped by user",
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

    assert first == started
    assert second == progressed and isinstance(second.symbols, tuple)


def test_latest_run_is_the_newest_started_of_that_mode(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.runs.upsert(run_state("old", started_time=T0))
        uow.runs.upsert(run_state("new", started_time=T0 + 10))
        uow.runs.upsert(run_state("live", mode="live", started_time=T0 + 20))
        uow.commit()

    with new_uow() as uow:
        paper, live, backtest = (
            uow.runs.latest("paper"),
            uow.runs.latest("live"),
            uow.runs.latest("x"),
        )

    assert paper is not None and paper.id == "new"
    assert live is not None and live.id == "live"
    assert backtest is None


# --- orders -----------------------------------------------------------------------------------


def test_order_upsert_replaces_status_and_fill_state(new_uow: NewUow) -> None:
    placed = order()
    filled = replace(
        placed,
        status=OrderStatus.FILLED,
        filled_qty=Decimal("0.5"),
        avg_fill_price=Decimal("43000.12"),
        updated_time=T0 + 60_000,
    )
    store(new_uow, placed)

    store(new_uow, filled)

    with new_uow() as uow:
        assert uow.orders.get("o1") == filled
        assert uow.orders.list() == [filled]


def test_orders_list_newest_first_by_symbol_with_limit(new_uow: NewUow) -> None:
    orders = [
        order(f"o{i}", created_time=T0 + i, symbol="ETHUSDT" if i % 2 else "BTCUSDT")
        for i in range(6)
    ]
    store(new_uow, *orders)

    with new_uow() as uow:
        everything = uow.orders.list()
        eth = uow.orders.list(symbol="ETHUSDT")
        newest_two = uow.orders.list(limit=2)

    assert [o.id for o in everything] == ["o5", "o4", "o3", "o2", "o1", "o0"]
    assert [o.id for o in eth] == ["o5", "o3", "o1"]
    assert [o.id for o in newest_two] == ["o5", "o4"]


def test_list_open_returns_unfinished_orders_oldest_first(new_uow: NewUow) -> None:
    statuses = list(OrderStatus)
    store(
        new_uow,
        *[order(f"o{i}", created_time=T0 - i, status=status) for i, status in enumerate(statuses)],
    )

    with new_uow() as uow:
        open_orders = uow.orders.list_open()

    assert [(o.id, o.status) for o in open_orders] == [
        ("o1", OrderStatus.PARTIALLY_FILLED),
        ("o0", OrderStatus.NEW),
    ]


def test_list_refuses_a_limit_below_one(new_uow: NewUow) -> None:
    with new_uow() as uow, pytest.raises(ValueError, match="limit must be >= 1, was 0"):
        uow.orders.list(limit=0)


# --- fills, trades, positions, equity, signals --------------------------------------------------


def test_adding_a_fill_again_is_a_no_op(new_uow: NewUow) -> None:
    first = fill(realized_pnl=Decimal("-12.5"), liquidity=Liquidity.MAKER)
    store(new_uow, order(), fills=(first, first))

    store(new_uow, fills=(replace(first, qty=Decimal("9")),))

    with new_uow() as uow:
        assert uow.fills.list() == [first]


def test_fills_list_newest_first_by_order_with_limit(new_uow: NewUow) -> None:
    fills = [fill(f"f{i}", order_id=f"o{i % 2}", time=T0 + i) for i in range(5)]
    store(new_uow, order("o0"), order("o1"), fills=tuple(fills))

    with new_uow() as uow:
        of_o0 = uow.fills.list(order_id="o0")
        newest = uow.fills.list(limit=1)

    assert [f.id for f in of_o0] == ["f4", "f2", "f0"]
    assert [f.id for f in newest] == ["f4"]


def test_trades_are_added_once_and_listed_newest_exit_first(new_uow: NewUow) -> None:
    trades = [
        trade(f"t{i}", exit_time=T0 + i, symbol="ETHUSDT" if i == 1 else "BTCUSDT")
        for i in range(3)
    ]

    with new_uow() as uow:
        for each in [*trades, trades[0]]:
            uow.trades.add(each)
        uow.commit()
    with new_uow() as uow:
        everything, btc = uow.trades.list(), uow.trades.list(symbol="BTCUSDT", limit=1)

    assert everything == trades[::-1]
    assert btc == [trades[2]]


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


def test_signals_list_newest_first_and_replayed_signal_replaces(new_uow: NewUow) -> None:
    def signal(symbol: str, time: int, confidence: float = 0.5) -> Signal:
        return Signal(symbol, "1h", time, Direction.SHORT, confidence, (), strategy="s")

    with new_uow() as uow:
        for i in range(4):
            uow.signals.add(signal("ETHUSDT" if i == 2 else "BTCUSDT", T0 + i))
        uow.signals.add(signal("BTCUSDT", T0 + 3, confidence=0.9))
        uow.commit()
    with new_uow() as uow:
        everything, btc = uow.signals.list(), uow.signals.list(symbol="BTCUSDT", limit=2)

    assert [s.time - T0 for s in everything] == [3, 2, 1, 0]
    assert [(s.time - T0, s.confidence) for s in btc] == [(3, 0.9), (1, 0.5)]


# --- unit of work -----------------------------------------------------------------------------


def test_leaving_without_commit_writes_nothing(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.orders.upsert(order())

    with new_uow() as uow:
        assert uow.orders.list() == []


def test_exception_inside_the_block_rolls_back_every_repository(new_uow: NewUow) -> None:
    with pytest.raises(RuntimeError, match="boom"), new_uow() as uow:
        uow.orders.upsert(order())
        uow.fills.add(fill())
        uow.trades.add(trade())
        uow.positions.upsert(Position("BTCUSDT", Decimal(1)))
        uow.equity.add(EquityPoint(T0, Decimal(1), Decimal(1)))
        uow.runs.upsert(run_state())
        raise RuntimeError("boom")

    with new_uow() as uow:
        assert uow.orders.list() == [] and uow.fills.list() == [] and uow.trades.list() == []
        assert uow.positions.list() == [] and uow.equity.list() == []
        assert uow.runs.get("r1") is None


def test_rollback_discards_only_what_was_not_committed(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.orders.upsert(order("kept"))
        uow.commit()
        uow.orders.upsert(order("dropped"))
        uow.rollback()
        uow.commit()

    with new_uow() as uow:
        assert [o.id for o in uow.orders.list()] == ["kept"]


def test_fill_of_an_unknown_order_fails_at_commit_and_writes_nothing(new_uow: NewUow) -> None:
    with new_uow() as uow:
        uow.trades.add(trade())
        uow.fills.add(fill(order_id="ghost"))
        with pytest.raises(IntegrityError):
            uow.commit()

    with new_uow() as uow:
        assert uow.fills.list() == [] and uow.trades.list() == []


def test_a_unit_of_work_in_use_cannot_be_entered_again(new_uow: NewUow) -> None:
    uow = new_uow()
    with uow, pytest.raises(RuntimeError, match="already in use"):
        uow.__enter__()
    with pytest.raises(RuntimeError, match="not entered"):
        uow.commit()
