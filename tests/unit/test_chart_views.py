"""The price chart's pure builders (:mod:`web.chart_views`): bars, trade and open-position
markers, position lines, the volume profile's levels."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from domain.candles import Candles
from domain.futures import PositionMargin
from domain.model import (
    ExitReason,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Trade,
)
from domain.volume_profile import volume_profile
from service_layer.trading import PositionView
from web.chart_views import (
    bars_json,
    history_bars,
    levels_json,
    open_markers,
    position_json,
    position_lines,
    tick_places,
    trade_markers,
)

M5, H1 = 300_000, 3_600_000
T0 = 1_756_771_200_000  # 2025-09-02 00:00 UTC


def _trade(entry: int, exit_: int, side: Side = Side.BUY, **kw: object) -> Trade:
    values: dict = {
        "id": f"t{entry}", "symbol": "BTCUSDT", "side": side, "qty": Decimal("0.1"),
        "entry_time": entry, "entry_price": Decimal("100.5"), "exit_time": exit_,
        "exit_price": Decimal("101.2"), "pnl": Decimal("0.05"), "fees": Decimal("0.02"),
    } | kw  # fmt: skip
    return Trade(**values)


def _view(qty: str, entry: str = "100", liquidation: str | None = "80") -> PositionView:
    position = Position("BTCUSDT", Decimal(qty), Decimal(entry), opened_time=T0 + 6 * M5)
    margin = PositionMargin(
        "BTCUSDT", 5, Decimal(1000), Decimal(200), Decimal(5),
        None if liquidation is None else Decimal(liquidation),
    )  # fmt: skip
    return PositionView(position, Decimal("101"), Decimal("0.1"), margin)


def _order(
    order_type: OrderType,
    side: Side,
    stop: str,
    status: OrderStatus = OrderStatus.NEW,
    symbol: str = "BTCUSDT",
) -> Order:
    trailing = Decimal(5) if order_type is OrderType.TRAILING_STOP else None
    return Order(
        f"o-{order_type}-{side}-{stop}-{status}", symbol, side, order_type, Decimal(1), T0,
        stop_price=Decimal(stop), status=status, trailing_offset=trailing,
    )  # fmt: skip


def test_bars_are_the_candles_with_their_open_in_seconds() -> None:
    candles = Candles(
        open_time=np.array([T0, T0 + M5]), open=np.array([1.0, 2.0]), high=np.array([3.0, 4.0]),
        low=np.array([0.5, 1.5]), close=np.array([2.0, 3.0]), volume=np.array([10.0, 20.0]),
    )  # fmt: skip

    bars = bars_json(candles)

    assert bars == [
        {"time": T0 // 1000, "open": 1.0, "high": 3.0, "low": 0.5, "close": 2.0, "volume": 10.0},
        {"time": (T0 + M5) // 1000, "open": 2.0, "high": 4.0, "low": 1.5, "close": 3.0,
         "volume": 20.0},
    ]  # fmt: skip


def test_a_trade_has_an_entry_and_an_exit_marker_on_the_bars_holding_its_fills() -> None:
    trade = _trade(T0 + 2 * M5, T0 + 14 * M5, Side.SELL, exit_reason=ExitReason.STOP)

    markers = trade_markers([trade], H1, T0, T0 + 5 * H1)

    entry, exit_ = markers
    assert entry == {
        "time": T0 // 1000, "at": T0 + 2 * M5, "price": 100.5, "side": "sell", "kind": "entry",
        "trade": trade.id, "direction": "short",
    }  # fmt: skip
    assert exit_["time"] == (T0 + H1) // 1000 and exit_["at"] == T0 + 14 * M5
    assert (exit_["side"], exit_["kind"], exit_["price"]) == ("buy", "exit", 101.2)
    assert exit_["reason"] == "stop" and exit_["pnl"] == "0.05"


def test_markers_outside_the_bars_shown_are_left_out_and_the_rest_come_oldest_first() -> None:
    before = _trade(T0 - 3 * M5, T0 + 4 * M5)  # entered before the first bar shown
    after = _trade(T0 + 9 * M5, T0 + 30 * M5)  # closed after the last bar shown
    middle = _trade(T0 + M5, T0 + 2 * M5)

    markers = trade_markers([after, middle, before], M5, T0, T0 + 10 * M5)

    assert [(m["trade"], m["kind"]) for m in markers] == [
        (middle.id, "entry"), (middle.id, "exit"), (before.id, "exit"), (after.id, "entry"),
    ]  # fmt: skip


def test_the_open_position_is_marked_by_its_fills_on_its_side_since_it_opened() -> None:
    view = _view("-0.3")
    fills = [
        Fill("f1", "o1", "BTCUSDT", Side.SELL, Decimal("0.2"), Decimal(99), Decimal(0),
             Liquidity.TAKER, T0 + 6 * M5),
        Fill("f2", "o2", "BTCUSDT", Side.BUY, Decimal("0.1"), Decimal(98), Decimal(0),
             Liquidity.TAKER, T0 + 7 * M5),
        Fill("f3", "o3", "BTCUSDT", Side.SELL, Decimal("0.2"), Decimal(97), Decimal(0),
             Liquidity.TAKER, T0 + 8 * M5),
        Fill("f0", "o0", "BTCUSDT", Side.SELL, Decimal("0.2"), Decimal(96), Decimal(0),
             Liquidity.TAKER, T0 + 2 * M5),
    ]  # fmt: skip

    markers = open_markers(view, fills, M5, T0, T0 + 20 * M5)

    assert [(m["at"], m["price"], m["side"], m["trade"]) for m in markers] == [
        (T0 + 6 * M5, 99.0, "sell", None), (T0 + 8 * M5, 97.0, "sell", None),
    ]  # fmt: skip
    assert open_markers(None, fills, M5, T0, T0 + 20 * M5) == []


def test_a_long_has_entry_liquidation_and_its_working_closing_stops_and_take_profits() -> None:
    orders = [
        _order(OrderType.STOP, Side.SELL, "95"),
        _order(OrderType.TRAILING_STOP, Side.SELL, "96", OrderStatus.PARTIALLY_FILLED),
        _order(OrderType.TAKE_PROFIT, Side.SELL, "110"),
        _order(OrderType.STOP, Side.SELL, "90", OrderStatus.CANCELED),
        _order(OrderType.STOP, Side.BUY, "105"),  # a stop entry on the same side
        _order(OrderType.TAKE_PROFIT, Side.SELL, "120", symbol="ETHUSDT"),
    ]

    lines = position_lines(_view("0.5"), orders)

    assert [(line["kind"], line["price"], line["title"]) for line in lines] == [
        ("entry", 100.0, "Entry"), ("liquidation", 80.0, "Liq."), ("stop", 95.0, "Stop"),
        ("stop", 96.0, "Stop"), ("take_profit", 110.0, "TP"),
    ]  # fmt: skip
    assert lines[2]["order"] == orders[0].id and lines[0]["order"] is None


def test_a_position_without_a_liquidation_price_and_a_flat_one_draw_what_they_have() -> None:
    assert [line["kind"] for line in position_lines(_view("0.5", liquidation=None), [])] == [
        "entry"
    ]
    assert position_lines(_view("0"), [_order(OrderType.STOP, Side.SELL, "95")]) == []
    assert position_lines(None, []) == []


def test_the_position_caption_and_the_levels() -> None:
    profile = volume_profile(
        np.array([99.0, 100.0, 101.0]), np.array([100.0, 101.0, 102.0]),
        np.array([5.0, 20.0, 5.0]), 101.0,
    )  # fmt: skip

    assert position_json(_view("-0.3")) == {
        "side": "short", "qty": "0.3", "entry": "100", "mark": "101", "unrealized": "0.1",
    }  # fmt: skip
    assert position_json(_view("0")) is None
    assert levels_json(profile) == {"poc": profile.poc, "vah": profile.vah, "val": profile.val}
    assert levels_json(None) is None


def test_history_and_precision() -> None:
    assert [history_bars(tf) for tf in (M5, 3 * M5, H1, 4 * H1)] == [4032, 1344, 336, 84]
    assert history_bars(4032 * M5) == 1  # a week of history is always within two weeks
    assert [tick_places(Decimal(t)) for t in ("0.10", "0.01", "0.0001", "1", "10")] == [
        1, 2, 4, 0, 0,
    ]  # fmt: skip
