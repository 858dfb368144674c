"""The backtest breakdown (domain/report.py) on hand-computed trades and real bars, its
invariants, and the choice of stored bars a higher timeframe is built from."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.candles import Candles
from domain.model import Direction, Side, Trade
from domain.report import (
    breakdown,
    buy_and_hold,
    longest_losing_streak,
    stats_by_direction,
    stats_by_symbol,
    trade_stats,
)
from service_layer.backtest import source_timeframe
from tests.fixtures.data import load_sample_candles


def _trade(
    pnl: str, *, symbol: str = "BTCUSDT", side: Side = Side.BUY, exit_time: int = 0, fees: str = "1"
) -> Trade:
    return Trade(
        id=f"t{exit_time}",
        symbol=symbol,
        side=side,
        qty=Decimal("0.01"),
        entry_time=exit_time - 300_000,
        entry_price=Decimal(100),
        exit_time=exit_time,
        exit_price=Decimal(101),
        pnl=Decimal(pnl),
        fees=Decimal(fees),
    )


def _bars(opens: list[float], closes: list[float]) -> Candles:
    n = len(opens)
    return Candles(
        open_time=np.arange(n, dtype=np.int64) * 300_000,
        open=np.array(opens),
        high=np.maximum(opens, closes),
        low=np.minimum(opens, closes),
        close=np.array(closes),
        volume=np.ones(n),
    )


def test_stats_count_wins_losses_and_average_them_by_hand() -> None:
    # pnls 10, -5, -3, 0, 7: wins 10 and 7, losses -5 and -3, one flat trade.
    trades = [_trade(p, exit_time=k) for k, p in enumerate(["10", "-5", "-3", "0", "7"])]

    stats = trade_stats(trades)

    assert (stats.trades, stats.wins, stats.losses) == (5, 2, 2)
    assert stats.pnl == Decimal(9)
    assert stats.fees == Decimal(5)
    assert stats.gross_profit == Decimal(17) and stats.gross_loss == Decimal(-8)
    assert stats.win_rate == pytest.approx(0.4)
    assert stats.average_win == Decimal("8.5")
    assert stats.average_loss == Decimal(-4)


def test_averages_are_none_without_a_win_or_a_loss() -> None:
    only_losses = trade_stats([_trade("-2"), _trade("-4")])
    nothing = trade_stats([])

    assert only_losses.average_win is None and only_losses.average_loss == Decimal(-3)
    assert nothing.average_loss is None and nothing.win_rate == 0.0


def test_longest_losing_streak_counts_in_exit_order_and_a_flat_trade_ends_it() -> None:
    # In exit order: -1 -2 -3 | +5 | -1 | 0 | -2 -2  → the longest streak is 3.
    pnls = {10: "-1", 20: "-2", 30: "-3", 40: "5", 50: "-1", 60: "0", 70: "-2", 80: "-2"}
    shuffled = [_trade(pnls[t], exit_time=t) for t in (70, 10, 50, 30, 80, 20, 60, 40)]

    assert longest_losing_streak(shuffled) == 3
    assert longest_losing_streak([_trade("1"), _trade("0")]) == 0


def test_long_and_short_are_the_side_of_the_opening_fill() -> None:
    long_win = _trade("4", side=Side.BUY, exit_time=1)
    short_loss = _trade("-6", side=Side.SELL, exit_time=2)
    short_win = _trade("2", side=Side.SELL, exit_time=3)

    by_side = stats_by_direction([long_win, short_loss, short_win])

    assert long_win.direction is Direction.LONG and short_loss.direction is Direction.SHORT
    assert list(by_side) == [Direction.LONG, Direction.SHORT]
    assert by_side[Direction.LONG].pnl == Decimal(4)
    assert by_side[Direction.SHORT].pnl == Decimal(-4)
    assert by_side[Direction.SHORT].wins == by_side[Direction.SHORT].losses == 1


def test_every_symbol_gets_a_row_in_the_given_order_even_without_trades() -> None:
    trades = [_trade("3", symbol="ETHUSDT"), _trade("-1", symbol="ETHUSDT")]

    by_symbol = stats_by_symbol(trades, ["SOLUSDT", "ETHUSDT", "BTCUSDT"])

    assert list(by_symbol) == ["SOLUSDT", "ETHUSDT", "BTCUSDT"]
    assert by_symbol["ETHUSDT"].pnl == Decimal(2)
    assert by_symbol["SOLUSDT"].trades == by_symbol["BTCUSDT"].trades == 0


def test_buy_and_hold_goes_from_the_first_open_to_the_last_close_basket_is_the_mean() -> None:
    candles = {"A": _bars([100, 104, 90], [103, 91, 110]), "B": _bars([200, 170], [180, 150])}

    result = buy_and_hold(candles)

    assert result.symbols == {"A": pytest.approx(0.10), "B": pytest.approx(-0.25)}
    assert result.basket == pytest.approx(-0.075)


def test_buy_and_hold_of_the_real_btc_sample() -> None:
    bars = load_sample_candles("BTCUSDT")

    result = buy_and_hold({"BTCUSDT": bars})

    # First row of the file opens at 109187.9, the last closes at 109557.3.
    assert result.symbols["BTCUSDT"] == pytest.approx(109557.3 / 109187.9 - 1)


def test_buy_and_hold_refuses_no_symbol_or_no_bar() -> None:
    with pytest.raises(ValueError, match="at least one symbol"):
        buy_and_hold({})
    with pytest.raises(ValueError, match="ETHUSDT needs at least one bar"):
        buy_and_hold({"ETHUSDT": Candles.empty()})


def test_breakdown_puts_it_together() -> None:
    trades = [_trade("5", exit_time=1), _trade("-2", side=Side.SELL, exit_time=2)]

    report = breakdown(trades, {"BTCUSDT": _bars([100], [101])})

    assert report.total.pnl == Decimal(3)
    assert list(report.by_symbol) == ["BTCUSDT"]
    assert report.longest_losing_streak == 1
    assert report.buy_and_hold.basket == pytest.approx(0.01)


_trades = st.lists(
    st.builds(
        _trade,
        st.decimals(min_value=-1000, max_value=1000, places=4).map(str),
        symbol=st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
        side=st.sampled_from([Side.BUY, Side.SELL]),
        exit_time=st.integers(min_value=0, max_value=10**6),
        fees=st.decimals(min_value=0, max_value=10, places=4).map(str),
    ),
    max_size=40,
)


@given(_trades)
def test_the_parts_add_up_to_the_total(trades: list[Trade]) -> None:
    total = trade_stats(trades)
    by_symbol = stats_by_symbol(trades, ["BTCUSDT"])
    by_side = stats_by_direction(trades)

    for parts in (by_symbol.values(), by_side.values()):
        assert sum(p.trades for p in parts) == total.trades == len(trades)
        assert sum(p.wins for p in parts) == total.wins
        assert sum((p.pnl for p in parts), Decimal(0)) == total.pnl
        assert sum((p.fees for p in parts), Decimal(0)) == total.fees
    assert total.pnl == total.gross_profit + total.gross_loss == sum(t.pnl for t in trades)


@given(_trades)
def test_the_losing_streak_is_the_longest_run_of_losses(trades: list[Trade]) -> None:
    ordered = "".join("L" if t.pnl < 0 else "." for t in sorted(trades, key=lambda t: t.exit_time))
    longest_run = max((len(run) for run in ordered.split(".")), default=0)

    streak = longest_losing_streak(trades)

    assert streak == longest_run
    assert streak <= trade_stats(trades).losses


@pytest.mark.parametrize(
    ("target", "stored", "expected"),
    [
        ("1h", ["5m"], "5m"),
        ("1h", ["1m", "5m", "15m", "2h"], "15m"),
        ("5m", ["1m", "5m"], "5m"),
        ("1h", ["7m", "2h"], None),
        ("1h", [], None),
    ],
)
def test_a_higher_timeframe_is_built_from_the_longest_stored_divisor(
    target: str, stored: list[str], expected: str | None
) -> None:
    assert source_timeframe(target, stored) == expected


def test_json_trades_say_long_short_at_the_instruments_precision_with_fee_currency() -> None:
    from api.numbers import Numbers
    from domain.metrics import performance
    from domain.model import Instrument
    from service_layer.backtest import BacktestResult, MoneyTotals

    btc = Instrument(
        "BTCUSDT", tick_size=Decimal("0.10"), step_size=Decimal("0.001"), quote_precision=2
    )
    trade = Trade(
        id="t1",
        symbol="BTCUSDT",
        side=Side.SELL,
        qty=Decimal("0.0290000"),
        entry_time=0,
        entry_price=Decimal("113553.84"),  # an average entry: rounded half-even to the tick
        exit_time=300_000,
        exit_price=Decimal("113257.15"),
        pnl=Decimal("8.5989"),
        fees=Decimal("3.2905"),
    )
    time, equity = np.array([300_000]), np.array([10_008.5989])
    metrics = performance(time, equity, 10_000.0, [trade], 3.2905, np.array([True]))
    money = MoneyTotals(
        Decimal(10_000),
        Decimal("10008.5989"),
        Decimal("3.2905"),
        Decimal("11.8894"),
        Decimal(0),
        Decimal("10008.5989"),
    )
    result = BacktestResult(
        metrics, [trade], [], [], time, equity, 1, [], money, instruments={"BTCUSDT": btc}
    )

    document = result.to_json(Numbers({"BTCUSDT": btc}, btc.quote_precision))

    assert document["trades"] == [
        {
            "symbol": "BTCUSDT",
            "side": "short",
            "qty": "0.029",
            "entry_time": 0,
            "entry_price": "113553.8",
            "exit_time": 300_000,
            "exit_price": "113257.2",
            "pnl": "8.60",
            "fees": "3.29",
            "fee_currency": "USDT",
            "exit_reason": "signal",
        }
    ]
    assert set(document) == {"metrics", "trades", "equity", "models"}


def test_json_money_metrics_and_equity_are_strings_at_the_quote_precision() -> None:
    from api.numbers import Numbers
    from domain.metrics import performance
    from domain.model import Instrument
    from service_layer.backtest import MONEY_METRICS, BacktestResult, MoneyTotals

    btc = Instrument(
        "BTCUSDT", tick_size=Decimal("0.10"), step_size=Decimal("0.001"), quote_precision=2
    )
    time, equity = np.array([300_000, 600_000]), np.array([10_001.235, 9_999.994999])
    metrics = performance(time, equity, 10_000.0, [], 1.0, np.array([True, False]))
    money = MoneyTotals(
        Decimal(10_000),
        Decimal("9999.994999"),
        Decimal("1.005"),
        Decimal("1.0000001"),
        Decimal("-0.0050011"),
        Decimal("9999.994999"),
    )
    result = BacktestResult(
        metrics, [], [], [], time, equity, 2, [], money, instruments={"BTCUSDT": btc}
    )

    document = result.to_json(Numbers({"BTCUSDT": btc}, btc.quote_precision))

    assert MONEY_METRICS == (
        "start_equity",
        "end_equity",
        "fees_paid",
        "realized_pnl",
        "funding_paid",
        "final_balance",
    )
    assert {k: document["metrics"][k] for k in MONEY_METRICS} == {  # half-even, from Decimals
        "start_equity": "10000.00",
        "end_equity": "9999.99",
        "fees_paid": "1.00",
        "realized_pnl": "1.00",
        "funding_paid": "-0.01",
        "final_balance": "9999.99",
    }
    assert document["metrics"]["liquidations"] == 0
    assert document["equity"] == [[300_000, "10001.24"], [600_000, "9999.99"]]
    assert isinstance(document["metrics"]["sharpe"], float)
    assert document["metrics"]["trades"] == 0
