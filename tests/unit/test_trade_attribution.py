"""Performance attribution and trade history statistics on hand-made trades: grouping by every
dimension, win rate, profit factor, averages, empty groups, drawdown, leverage, period buckets and
the PnL calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from domain.attribution import (
    NONE,
    AttributionGroup,
    Dimension,
    TradeEntry,
    attribute,
    key_of,
    model_of,
    regime_of,
)
from domain.errors import ConfigError
from domain.model import ExitReason, Reason, Side, Trade
from domain.report import TradeStats
from domain.trade_history import (
    Period,
    TradeQuery,
    equity_curve,
    pnl_by_period,
    pnl_calendar,
    summarize,
)


def _ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


MON_09 = _ms(2025, 10, 13, 9, 30)  # a Monday
TUE_14 = _ms(2025, 10, 14, 14, 0)
SUN_23 = _ms(2025, 10, 19, 23, 55)


def _trade(
    pnl: str,
    *,
    symbol: str = "BTCUSDT",
    entry: int = MON_09,
    exit_after: int = 3_600_000,
    reason: ExitReason = ExitReason.SIGNAL,
    fees: str = "1",
    qty: str = "1",
    price: str = "100",
    ident: str = "",
) -> Trade:
    return Trade(
        id=ident or f"t-{symbol}-{entry}-{pnl}",
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(qty),
        entry_time=entry,
        entry_price=Decimal(price),
        exit_time=entry + exit_after,
        exit_price=Decimal(price),
        pnl=Decimal(pnl),
        fees=Decimal(fees),
        exit_reason=reason,
    )


def _regime(name: str) -> Reason:
    return Reason("regime", f"regime {name}: entries allowed, size × 1, thresholds × 1", {})


def _ml(model: str) -> Reason:
    return Reason("ml", f"P(up) 0.62: kept [{model}]", {"probability_up": 0.62})


def _entry(trade: Trade, tag: str | None = "adaptive", *reasons: Reason) -> TradeEntry:
    return TradeEntry(trade, tag, reasons, Decimal(1000))


def _group(groups: list[AttributionGroup], key: str) -> AttributionGroup:
    (found,) = [g for g in groups if g.key == key]
    return found


# -- statistics of one group ----------------------------------------------------------------------


def test_win_rate_counts_wins_over_all_trades_and_a_zero_pnl_trade_is_neither() -> None:
    entries = [_entry(_trade(p)) for p in ("10", "-5", "0", "20")]

    (group,) = attribute(entries, Dimension.SYMBOL)

    assert (group.stats.trades, group.stats.wins, group.stats.losses) == (4, 2, 1)
    assert group.stats.win_rate == 0.5


def test_profit_factor_is_gross_profit_over_gross_loss() -> None:
    entries = [_entry(_trade(p)) for p in ("10", "20", "-4", "-8")]

    (group,) = attribute(entries, Dimension.SYMBOL)

    assert group.profit_factor == pytest.approx(30 / 12)
    assert group.stats.average_win == Decimal(15)
    assert group.stats.average_loss == Decimal(-6)
    assert group.stats.pnl == Decimal(18)


def test_profit_factor_is_none_without_a_losing_trade() -> None:
    (group,) = attribute([_entry(_trade("3")), _entry(_trade("0"))], Dimension.SYMBOL)

    assert group.profit_factor is None
    assert group.stats.average_loss is None


def test_group_money_is_summed_exactly() -> None:
    entries = [_entry(_trade("0.1", fees="0.01")) for _ in range(3)]

    (group,) = attribute(entries, Dimension.SYMBOL)

    assert group.stats.pnl == Decimal("0.3")
    assert group.stats.fees == Decimal("0.03")


# -- grouping ------------------------------------------------------------------------------------


def test_hours_are_the_entry_hour_utc_and_every_hour_is_listed() -> None:
    entries = [
        _entry(_trade("5", entry=MON_09)),
        _entry(_trade("-2", entry=MON_09 + 600_000, exit_after=5 * 3_600_000)),
        _entry(_trade("7", entry=TUE_14)),
    ]

    groups = attribute(entries, Dimension.HOUR)

    assert [g.key for g in groups] == [f"{h:02d}" for h in range(24)]
    assert _group(groups, "09").stats.trades == 2
    assert _group(groups, "09").stats.pnl == Decimal(3)
    assert _group(groups, "14").stats.trades == 1
    assert sum(g.stats.trades for g in groups) == 3


def test_weekdays_start_on_monday_and_a_weekday_without_trades_is_an_empty_group() -> None:
    entries = [_entry(_trade("5", entry=MON_09)), _entry(_trade("-1", entry=SUN_23))]

    groups = attribute(entries, Dimension.WEEKDAY)

    assert [g.key for g in groups] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert _group(groups, "Sun").stats.pnl == Decimal(-1)
    empty = _group(groups, "Wed")
    assert empty.stats == TradeStats()
    assert (empty.stats.win_rate, empty.profit_factor, empty.stats.average_win) == (0.0, None, None)


def test_exit_reasons_list_every_reason_in_order() -> None:
    entries = [
        _entry(_trade("4", reason=ExitReason.TAKE_PROFIT)),
        _entry(_trade("-3", reason=ExitReason.STOP)),
        _entry(_trade("-1", reason=ExitReason.STOP)),
    ]

    groups = attribute(entries, Dimension.EXIT_REASON)

    assert [g.key for g in groups] == [r.value for r in ExitReason]
    assert _group(groups, "stop").stats.losses == 2
    assert _group(groups, "take_profit").profit_factor is None
    assert _group(groups, "liquidation").stats.trades == 0


def test_regimes_come_from_the_entry_signal_and_are_ordered_by_pnl() -> None:
    entries = [
        _entry(_trade("5"), "adaptive", _regime("RANGING")),
        _entry(_trade("9"), "adaptive", _regime("TRENDING_BULLISH")),
        _entry(_trade("-4"), "adaptive", _regime("RANGING")),
        _entry(_trade("-2")),  # no entry signal
    ]

    groups = attribute(entries, Dimension.REGIME)

    assert [(g.key, g.stats.pnl) for g in groups] == [
        ("TRENDING_BULLISH", Decimal(9)),
        ("RANGING", Decimal(1)),
        (NONE, Decimal(-2)),
    ]


def test_models_come_from_the_ml_reason_that_predicted() -> None:
    entries = [
        _entry(_trade("5"), "adaptive", _regime("RANGING"), _ml("trend-BTCUSDT-hgb-1")),
        _entry(_trade("3"), "adaptive", _ml("trend-BTCUSDT-rf-2")),
        _entry(_trade("1"), "adaptive", _ml("trend-BTCUSDT-hgb-1")),
        _entry(_trade("-1"), "adaptive", Reason("ml", "ML off: no active model", {})),
    ]

    groups = attribute(entries, Dimension.MODEL)

    assert [(g.key, g.stats.trades) for g in groups] == [
        ("trend-BTCUSDT-hgb-1", 2),
        ("trend-BTCUSDT-rf-2", 1),
        (NONE, 1),
    ]


def test_strategies_come_from_the_entry_order_tag_and_api_entries_have_no_regime_or_model() -> None:
    api = _entry(_trade("2", ident="api"), "api", _regime("RANGING"), _ml("m-1"))
    entries = [
        _entry(_trade("5"), "adaptive"),
        _entry(_trade("1"), "sma_cross"),
        api,
        _entry(_trade("-1"), None),
    ]

    groups = attribute(entries, Dimension.STRATEGY)

    assert [g.key for g in groups] == ["adaptive", "api", "sma_cross", NONE]
    assert key_of(api, Dimension.REGIME) == NONE
    assert key_of(api, Dimension.MODEL) == NONE


def test_symbols_group_by_symbol() -> None:
    entries = [_entry(_trade("5", symbol="ETHUSDT")), _entry(_trade("-5", symbol="BTCUSDT"))]

    groups = attribute(entries, Dimension.SYMBOL)

    assert [(g.key, g.stats.trades) for g in groups] == [("ETHUSDT", 1), ("BTCUSDT", 1)]


def test_no_trades_give_no_open_groups() -> None:
    assert attribute([], Dimension.STRATEGY) == []
    assert len(attribute([], Dimension.HOUR)) == 24


def test_reason_parsing_reads_off_and_a_model_without_an_id() -> None:
    off = Reason("regime", "regime off: entries allowed, size × 1", {})
    anonymous = Reason("ml", "P(up) 0.55: kept", {"probability_up": 0.55})

    assert regime_of([off]) == "off"
    assert regime_of([Reason("timeframes", "3/4 aligned", {})]) == NONE
    assert model_of([anonymous]) == "ml"


# -- trade history statistics --------------------------------------------------------------------


def test_summary_gives_return_drawdown_fees_and_leverage() -> None:
    trades = [
        _trade("100", entry=MON_09, exit_after=1, qty="2", price="500"),
        _trade("-150", entry=MON_09 + 10, exit_after=1, qty="1", price="500"),
        _trade("50", entry=MON_09 + 20, exit_after=1),
    ]
    entries = [
        TradeEntry(trades[0], equity=Decimal(1000)),
        TradeEntry(trades[1], equity=Decimal(1100)),
        TradeEntry(trades[2]),  # equity unknown: not in the average leverage
    ]

    summary = summarize(entries, Decimal(1000))

    assert summary.total_return == pytest.approx(0.0)
    assert summary.max_drawdown == pytest.approx(150 / 1100)
    assert summary.stats.fees == Decimal(3)
    assert summary.average_leverage == pytest.approx((1.0 + 500 / 1100) / 2)
    assert summary.loss_rate == pytest.approx(1 / 3)


def test_equity_curve_follows_exit_order() -> None:
    late = _trade("-20", entry=MON_09, exit_after=7_200_000, ident="late")
    early = _trade("10", entry=MON_09, exit_after=3_600_000, ident="early")

    curve = equity_curve([late, early], Decimal(100))

    assert curve.equity.tolist() == [110.0, 90.0]
    assert curve.drawdown.tolist() == pytest.approx([0.0, 20 / 110])


def test_pnl_is_bucketed_by_exit_day_monday_week_and_month() -> None:
    trades = [
        _trade("5", entry=MON_09, exit_after=0),
        _trade("-2", entry=TUE_14, exit_after=0),
        _trade("4", entry=SUN_23, exit_after=600_000),  # exits Monday the 20th
    ]

    days = pnl_by_period(trades, Period.DAY)
    weeks = pnl_by_period(trades, Period.WEEK)
    months = pnl_by_period(trades, Period.MONTH)

    assert days == [
        (_ms(2025, 10, 13), Decimal(5)),
        (_ms(2025, 10, 14), Decimal(-2)),
        (_ms(2025, 10, 20), Decimal(4)),
    ]
    assert weeks == [(_ms(2025, 10, 13), Decimal(3)), (_ms(2025, 10, 20), Decimal(4))]
    assert months == [(_ms(2025, 10, 1), Decimal(7))]


def test_calendar_is_a_monday_first_grid_of_the_month_with_each_days_pnl() -> None:
    trades = [
        _trade("5", entry=MON_09, exit_after=0),
        _trade("-8", entry=MON_09 + 60_000, exit_after=0),
        _trade("9", entry=_ms(2025, 11, 1, 10), exit_after=0),  # another month
    ]

    grid = pnl_calendar(trades, 2025, 10)

    cells = [c for week in grid.weeks for c in week]
    assert all(len(week) == 7 for week in grid.weeks)
    assert cells[2].day == date(2025, 10, 1)  # 2025-10-01 was a Wednesday
    assert [c.day for c in cells if c.day is not None][-1] == date(2025, 10, 31)
    (day,) = [c for c in cells if c.day == date(2025, 10, 13)]
    assert (day.pnl, day.trades) == (Decimal(-3), 2)
    assert (grid.pnl, grid.trades, grid.largest) == (Decimal(-3), 2, Decimal(3))


def test_a_query_refuses_an_end_before_its_start_and_a_calendar_a_bad_month() -> None:
    with pytest.raises(ConfigError) as bad_range:
        TradeQuery(start=10, end=5)
    with pytest.raises(ConfigError) as bad_month:
        pnl_calendar([], 2025, 13)

    assert bad_range.value.field == "end"
    assert bad_month.value.field == "month"
