"""``sma_cross`` checked trade by trade against an independent reference implementation.

The reference below re-implements the product rules from scratch in plain Python: it reads the
sample CSV and exchange info with the standard library, computes SMAs with exactly rounded sums
(``math.fsum``) over Python floats, and does the money in ``Decimal``. It imports nothing from
the strategy, indicator, execution, account or engine code it checks.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.exchanges.paper import PaperBroker, sequential_ids
from adapters.marketdata.exchange_info import load_instruments
from adapters.marketdata.feeds import HistoricalFeed
from domain.candles import Candles
from domain.execution import FeeSchedule
from domain.model import Trade
from domain.strategies import build_strategy
from service_layer.backtest import BacktestResult, run_backtest
from tests.fixtures.data import load_sample_candles, sample_dir

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
EXCHANGE_INFO = "binance_usdm_exchange_info_20251030.json"
BAR_MS = 300_000
CASH = Decimal(10_000)
TAKER = Decimal("0.0005")


# -- the reference ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Rules:
    """Trading rules of one symbol, read straight from the exchange-info JSON."""

    tick: Decimal
    step: Decimal
    min_notional: Decimal


@dataclass(frozen=True)
class Bar:
    """One bar as the CSV spells it: prices as Decimal, the close also as a float for SMAs."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


@dataclass(frozen=True)
class RefTrade:
    """One round trip of the reference."""

    side: str
    qty: Decimal
    entry_time: int
    entry_price: Decimal
    exit_time: int
    exit_price: Decimal
    pnl: Decimal
    fees: Decimal


@dataclass(frozen=True)
class RefResult:
    """Trades and final cash of one reference run."""

    trades: list[RefTrade]
    cash: Decimal


def read_rules(path: Path, symbol: str) -> Rules:
    """Tick, lot step and min notional of ``symbol`` from a Binance USD-M exchangeInfo file."""
    document = json.loads(path.read_text(encoding="utf-8"))
    entry = next(s for s in document["symbols"] if s["symbol"] == symbol)
    filters = {f["filterType"]: f for f in entry["filters"]}
    return Rules(
        tick=Decimal(filters["PRICE_FILTER"]["tickSize"]),
        step=Decimal(filters["LOT_SIZE"]["stepSize"]),
        min_notional=Decimal(filters["MIN_NOTIONAL"]["notional"]),
    )


def read_bars(path: Path) -> list[Bar]:
    """Every row of a sample kline CSV, parsed with the csv module."""
    with gzip.open(path, "rt", newline="") as handle:
        return [
            Bar(
                int(row["open_time"]),
                Decimal(row["open"]),
                Decimal(row["high"]),
                Decimal(row["low"]),
                Decimal(row["close"]),
            )
            for row in csv.DictReader(handle)
        ]


def reference_sma(closes: list[float], n: int) -> list[float | None]:
    """Mean of the last ``n`` closes (exactly rounded sum); None for the first ``n − 1`` bars."""
    return [
        None if t < n - 1 else math.fsum(closes[t - n + 1 : t + 1]) / n for t in range(len(closes))
    ]


def reference_crosses(closes: list[float], fast: int, slow: int) -> dict[int, int]:
    """Bar index → +1 (cross up) or −1 (cross down), strict on both bars."""
    f, s = reference_sma(closes, fast), reference_sma(closes, slow)
    crosses: dict[int, int] = {}
    for t in range(1, len(closes)):
        a0, b0, a1, b1 = f[t - 1], s[t - 1], f[t], s[t]
        if a0 is None or b0 is None or a1 is None or b1 is None:
            continue
        if a0 < b0 and a1 > b1:
            crosses[t] = 1
        elif a0 > b0 and a1 < b1:
            crosses[t] = -1
    return crosses


def market_price(bar_open: Decimal, direction: int, bps: Decimal, tick: Decimal) -> Decimal:
    """Open ± slippage, rounded against the taker (up for a buy, down for a sell)."""
    raw = bar_open * (1 + direction * bps / 10_000)
    mode = ROUND_CEILING if direction > 0 else ROUND_FLOOR
    return (raw / tick).to_integral_value(mode) * tick


def reference_sma_cross(
    bars: list[Bar], fast: int, slow: int, rules: Rules, cash: Decimal, fee: Decimal, bps: Decimal
) -> RefResult:
    """Stop-and-reverse on SMA crosses, all equity, fills at the next open, flat at the end."""
    crosses = reference_crosses([float(b.close) for b in bars], fast, slow)
    trades: list[RefTrade] = []
    qty = Decimal(0)  # signed
    entry = entry_fee = Decimal(0)
    entry_time = 0
    pending: tuple[int, Decimal] | None = None

    def close_out(price: Decimal, time: int, exit_fee: Decimal) -> None:
        nonlocal cash, qty
        direction = 1 if qty > 0 else -1
        realized = abs(qty) * (price - entry) * direction
        trades.append(
            RefTrade(
                "buy" if direction > 0 else "sell",
                abs(qty),
                entry_time,
                entry,
                time,
                price,
                realized - entry_fee - exit_fee,
                entry_fee + exit_fee,
            )
        )
        cash += realized - exit_fee
        qty = Decimal(0)

    for t, bar in enumerate(bars):
        if pending is not None:
            direction, new_qty = pending
            pending = None
            price = market_price(bar.open, direction, bps, rules.tick)
            if qty != 0:
                # Closing trades against the held side: a short is bought back, a long sold.
                exit_price = market_price(bar.open, -1 if qty > 0 else 1, bps, rules.tick)
                close_out(exit_price, bar.open_time, abs(qty) * exit_price * fee)
            if new_qty > 0:
                qty, entry, entry_time = new_qty * direction, price, bar.open_time
                entry_fee = new_qty * price * fee
                cash -= entry_fee
        if t in crosses and t < len(bars) - 1:
            equity = cash + qty * (bar.close - entry)
            size = (equity / bar.close / rules.step).to_integral_value(ROUND_FLOOR) * rules.step
            if size * bar.close < rules.min_notional:
                size = Decimal(0)
            pending = (crosses[t], size)
    if qty != 0:
        last = bars[-1]
        close_out(last.close, last.open_time + BAR_MS, abs(qty) * last.close * fee)
    return RefResult(trades, cash)


# -- helpers ----------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def sample_bars(symbol: str) -> list[Bar]:
    return read_bars(sample_dir() / f"binance_usdm_{symbol}_5m.csv.gz")


@lru_cache(maxsize=4)
def sample_rules(symbol: str) -> Rules:
    return read_rules(sample_dir() / EXCHANGE_INFO, symbol)


def engine_backtest(
    symbol: str, candles: Candles, fast: int, slow: int, bps: Decimal
) -> tuple[BacktestResult, PaperBroker]:
    instruments = {symbol: load_instruments(sample_dir() / EXCHANGE_INFO)[symbol]}
    broker = PaperBroker(
        instruments=instruments,
        cash=CASH,
        fees=FeeSchedule(taker=TAKER),
        slippage_bps=bps,
        ids=sequential_ids(""),
    )
    result = run_backtest(
        strategy=build_strategy("sma_cross", {"fast": fast, "slow": slow}, "5m"),
        feed=HistoricalFeed({symbol: candles}, "5m"),
        broker=broker,
        clock=SimulatedClock(),
        instruments=instruments,
        initial_cash=CASH,
    )
    return result, broker


def as_key(trade: Trade | RefTrade) -> tuple[object, ...]:
    return (
        str(trade.side),
        trade.qty,
        trade.entry_time,
        trade.exit_time,
        trade.entry_price,
        trade.exit_price,
    )


def first_mismatch(ours: list[Trade], ref: list[RefTrade]) -> str:
    for k, (a, b) in enumerate(zip(ours, ref, strict=False)):
        if as_key(a) != as_key(b):
            return f"trade {k}: engine {as_key(a)} vs reference {as_key(b)}"
    return f"lengths: engine {len(ours)} vs reference {len(ref)}"


# -- tests ------------------------------------------------------------------------------------
CASES = [
    pytest.param(
        symbol,
        fast,
        slow,
        bps,
        id=f"{symbol}-{fast}x{slow}-{bps}bps",
    )
    for symbol in SYMBOLS
    for fast, slow in ((10, 30), (50, 200))
    for bps in (Decimal(2), Decimal(0))
]


@pytest.mark.parametrize(("symbol", "fast", "slow", "bps"), CASES)
def test_engine_trades_match_reference_trade_by_trade(
    symbol: str, fast: int, slow: int, bps: Decimal
) -> None:
    bars, rules = sample_bars(symbol), sample_rules(symbol)
    expected = reference_sma_cross(bars, fast, slow, rules, CASH, TAKER, bps)

    result, broker = engine_backtest(symbol, load_sample_candles(symbol), fast, slow, bps)

    assert len(expected.trades) > 50
    assert [as_key(t) for t in result.trades] == [as_key(t) for t in expected.trades], (
        first_mismatch(result.trades, expected.trades)
    )
    for ours, ref in zip(result.trades, expected.trades, strict=True):
        assert abs(ours.pnl - ref.pnl) <= Decimal("1e-9")
        assert abs(ours.fees - ref.fees) <= Decimal("1e-9")
    assert abs(broker.cash - expected.cash) <= Decimal("1e-6")
    assert result.metrics.end_equity == pytest.approx(float(expected.cash), abs=1e-6)


def test_exact_sma_tie_on_real_bars_is_not_a_cross() -> None:
    bars = sample_bars("SOLUSDT")
    t = 9247
    closes = [b.close for b in bars]
    exact_fast = sum(closes[t - 49 : t + 1]) / 50
    exact_slow = sum(closes[t - 199 : t + 1]) / 200
    assert exact_fast == exact_slow  # arrange: a real tie, in exact decimal arithmetic
    tie_close_time = bars[t].open_time + BAR_MS

    result, _ = engine_backtest("SOLUSDT", load_sample_candles("SOLUSDT"), 50, 200, Decimal(2))

    assert tie_close_time not in {s.time for s in result.signals}


def touch_series() -> tuple[Candles, list[Bar]]:
    """Twelve bars (real BTCUSDT times and whole-number closes) where, with SMA(2)/SMA(4), a
    cross up at bar 4 is followed by a tie at bar 6 (SMA(2) == SMA(4) exactly: the closes of
    bars 3..6 are B, D, D, B) and fast below slow at bar 7: the cross down is skipped. The next
    cross, at bar 8, is up again (same direction as held), and bar 9 crosses down."""
    real = sample_bars("BTCUSDT")
    levels: list[Decimal] = []
    for bar in real:
        if bar.close == bar.close.to_integral_value() and bar.close not in levels:
            levels.append(bar.close)
        if len(levels) == 4:
            break
    a, b, c, d = sorted(levels)
    closes = [d, c, a, b, d, d, b, d, c, a, c, a]
    opens = [closes[0], *closes[:-1]]
    bars = [
        Bar(real[k].open_time, o, max(o, x), min(o, x), x)
        for k, (o, x) in enumerate(zip(opens, closes, strict=True))
    ]
    candles = Candles(
        open_time=np.array([x.open_time for x in bars], dtype=np.int64),
        open=np.array([float(x.open) for x in bars]),
        high=np.array([float(x.high) for x in bars]),
        low=np.array([float(x.low) for x in bars]),
        close=np.array([float(x.close) for x in bars]),
        volume=np.ones(len(bars)),
    )
    return candles, bars


def test_equality_touch_skips_the_opposite_cross_and_same_direction_cross_reopens() -> None:
    candles, bars = touch_series()
    assert reference_crosses([float(x.close) for x in bars], 2, 4) == {4: 1, 8: 1, 9: -1}
    expected = reference_sma_cross(bars, 2, 4, sample_rules("BTCUSDT"), CASH, TAKER, Decimal(0))
    t = [x.open_time for x in bars]

    result, broker = engine_backtest("BTCUSDT", candles, 2, 4, Decimal(0))

    # long from bar 5's open to bar 9's open (no exit on the tie), a new long at bar 9's open
    # closed by the cross down at bar 10's open, then a short closed at the last close
    assert [(str(x.side), x.entry_time, x.exit_time) for x in result.trades] == [
        ("buy", t[5], t[9]),
        ("buy", t[9], t[10]),
        ("sell", t[10], t[11] + BAR_MS),
    ]
    assert [x.entry_price for x in result.trades] == [bars[4].close, bars[8].close, bars[9].close]
    assert [as_key(x) for x in result.trades] == [as_key(x) for x in expected.trades]
    for ours, ref in zip(result.trades, expected.trades, strict=True):
        assert abs(ours.pnl - ref.pnl) <= Decimal("1e-9")
    assert abs(broker.cash - expected.cash) <= Decimal("1e-6")
