"""The trade history's SQL reads on real databases: each trade linked to its entry order's tag,
its entry signal's reasons and the equity before it; the filters; numbered and keyset pages; the
attribution computed from them by the service."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from adapters.storage.sql.trade_history import SIGNAL_LOOKBACK_MS
from adapters.storage.sql.unit_of_work import SqlUnitOfWork
from domain.attribution import NONE, Dimension
from domain.model import (
    Direction,
    EquityPoint,
    ExitReason,
    Fill,
    Liquidity,
    Order,
    OrderType,
    Reason,
    Side,
    Signal,
    Trade,
)
from domain.trade_history import TradeQuery
from service_layer.analytics import attribution, every_trade, trade_window

NewUow = Callable[..., SqlUnitOfWork]
T0 = 1_760_000_000_000  # ms UTC
MIN = 60_000


def _entry_order(id: str, symbol: str, side: Side, time: int, tag: str) -> tuple[Order, Fill]:
    order = Order(id, symbol, side, OrderType.MARKET, Decimal(1), time, tag=tag)
    fill = Fill(f"{id}-f", id, symbol, side, Decimal(1), Decimal(100), Decimal("0.1"),
                Liquidity.TAKER, time)  # fmt: skip
    return order, fill


def _signal(symbol: str, time: int, direction: Direction, *reasons: Reason) -> Signal:
    return Signal(symbol, "5m", time, direction, 0.7, reasons, strategy="adaptive")


def _regime(name: str) -> Reason:
    return Reason("regime", f"regime {name}: entries allowed, size × 1", {"size_multiplier": 1.0})


def _trade(id: str, symbol: str, side: Side, entry: int, pnl: str, **extra: object) -> Trade:
    values: dict[str, object] = {
        "qty": Decimal(1), "entry_price": Decimal(100), "exit_time": entry + 10 * MIN,
        "exit_price": Decimal(101), "pnl": Decimal(pnl), "fees": Decimal("0.2"),
    } | extra  # fmt: skip
    return Trade(id, symbol, side, entry_time=entry, **values)  # type: ignore[arg-type]


ML = Reason("ml", "P(up) 0.64: kept [trend-BTCUSDT-hgb-7]", {"probability_up": 0.64})
TRADES = (
    # Opened by the strategy on a signal with a regime and a model.
    _trade("a", "BTCUSDT", Side.BUY, T0, "5", exit_reason=ExitReason.TAKE_PROFIT),
    # Opened through the API: a signal of its symbol and direction is not its entry signal.
    _trade("b", "ETHUSDT", Side.SELL, T0 + MIN, "-3", exit_reason=ExitReason.STOP),
    # Opened by a strategy: its direction's only signal is older than the lookback, a later
    # one is the other direction's.
    _trade("c", "SOLUSDT", Side.BUY, T0 - 5 * MIN, "2"),
)


def _store(new_uow: NewUow) -> None:
    with new_uow() as uow:
        for id, symbol, side, time, tag in (
            ("oa", "BTCUSDT", Side.BUY, T0, "adaptive"),
            ("ob", "ETHUSDT", Side.SELL, T0 + MIN, "api"),
            ("oc", "SOLUSDT", Side.BUY, T0 - 5 * MIN, "sma_cross"),
        ):
            order, fill = _entry_order(id, symbol, side, time, tag)
            uow.orders.upsert(order)
            uow.fills.add(fill)
        for signal in (
            _signal("BTCUSDT", T0 - 5 * MIN, Direction.LONG, _regime("VOLATILE")),  # older
            _signal("BTCUSDT", T0, Direction.LONG, _regime("RANGING"), ML),  # the entry's
            _signal("SOLUSDT", T0 - 6 * MIN, Direction.SHORT, _regime("VOLATILE")),  # other way
            _signal("ETHUSDT", T0, Direction.SHORT, _regime("RANGING")),
            _signal(
                "SOLUSDT", T0 - 5 * MIN - SIGNAL_LOOKBACK_MS - 1, Direction.LONG, _regime("RANGING")
            ),
        ):
            uow.signals.add(signal)
        for time, equity in ((T0 - MIN, "1000"), (T0, "1100")):
            uow.equity.add(EquityPoint(time, Decimal(equity), Decimal(equity)))
        for trade in TRADES:
            uow.trades.add(trade)
        uow.commit()
    with new_uow("other-run") as uow:
        uow.trades.add(_trade("z", "BTCUSDT", Side.BUY, T0, "100"))
        uow.commit()


def test_each_trade_comes_with_its_entry_tag_entry_signal_and_prior_equity(
    new_uow: NewUow,
) -> None:
    _store(new_uow)

    with new_uow() as uow:
        entries = {
            e.trade.id: e
            for e in uow.trade_history.entries(TradeQuery(), tags=True, reasons=True, equity=True)
        }

    assert set(entries) == {"a", "b", "c"}  # not the other run's
    a, b, c = entries["a"], entries["b"], entries["c"]
    assert a.trade == TRADES[0]
    assert (a.entry_tag, [r.message for r in a.reasons][-1]) == ("adaptive", ML.message)
    assert a.reasons[0].message.startswith("regime RANGING")
    assert (a.equity, b.equity, c.equity) == (Decimal(1000), Decimal(1100), None)
    assert b.entry_tag == "api"
    assert (c.entry_tag, c.reasons) == ("sma_cross", ())


def test_entries_read_only_what_is_asked_for(new_uow: NewUow) -> None:
    _store(new_uow)

    with new_uow() as uow:
        bare = uow.trade_history.entries(TradeQuery())
        with_equity = uow.trade_history.entries(TradeQuery(), equity=True)

    assert [e.trade.id for e in bare] == ["c", "a", "b"]  # exit order
    assert [e.trade for e in bare] == sorted(TRADES, key=lambda t: t.exit_time)
    assert all((e.entry_tag, e.reasons, e.equity) == (None, (), None) for e in bare)
    assert [e.equity for e in with_equity] == [None, Decimal(1000), Decimal(1100)]
    assert all((e.entry_tag, e.reasons) == (None, ()) for e in with_equity)


def test_the_attribution_reads_the_regime_model_and_strategy_of_each_entry(
    new_uow: NewUow,
) -> None:
    _store(new_uow)

    def by(dimension: Dimension) -> dict[str, int]:
        groups = attribution(new_uow, dimension, TradeQuery())
        return {g.key: g.stats.trades for g in groups if g.stats.trades}

    assert by(Dimension.REGIME) == {"RANGING": 1, NONE: 2}
    assert by(Dimension.MODEL) == {"trend-BTCUSDT-hgb-7": 1, NONE: 2}
    assert by(Dimension.STRATEGY) == {"adaptive": 1, "api": 1, "sma_cross": 1}
    assert by(Dimension.EXIT_REASON) == {"take_profit": 1, "stop": 1, "signal": 1}


def test_filters_select_by_symbol_side_exit_reason_and_exit_time(new_uow: NewUow) -> None:
    _store(new_uow)
    queries = {
        "symbol": TradeQuery(symbol="ETHUSDT"),
        "side": TradeQuery(side=Side.BUY),
        "reason": TradeQuery(exit_reason=ExitReason.TAKE_PROFIT),
        "range": TradeQuery(start=T0 + 10 * MIN, end=T0 + 10 * MIN),
        "none": TradeQuery(symbol="BTCUSDT", side=Side.SELL),
    }

    with new_uow() as uow:
        found = {
            name: sorted(e.trade.id for e in uow.trade_history.entries(q))
            for name, q in queries.items()
        }
        counts = {name: uow.trade_history.count(q) for name, q in queries.items()}

    assert found == {
        "symbol": ["b"],
        "side": ["a", "c"],
        "reason": ["a"],
        "range": ["a"],
        "none": [],
    }
    assert counts == {name: len(ids) for name, ids in found.items()}


def test_numbered_pages_and_the_export_read_every_trade_once_newest_first(
    new_uow: NewUow,
) -> None:
    _store(new_uow)

    pages = [trade_window(new_uow, TradeQuery(), page=n, per_page=2) for n in (1, 2, 3)]
    exported = list(every_trade(new_uow, TradeQuery()))

    assert [[t.id for t in p.trades] for p in pages] == [["b", "a"], ["c"], ["c"]]  # 3: the last
    assert [(p.page, p.pages, p.total) for p in pages] == [(1, 2, 3), (2, 2, 3), (2, 2, 3)]
    assert [t.id for t in exported] == ["b", "a", "c"]
    assert exported == sorted(TRADES, key=lambda t: t.exit_time, reverse=True)
