"""``sma_cross`` checked trade by trade against an independent reference implementation.

The reference below re-implements the product rules from scratch in plain Python: it reads the
sample CSV and exchange info with the standard library, computes SMAs with exactly rounded sums
(``math.fsum``) over Python floats, and does the money in ``Decimal`` (fees rounded to the quote
asset's precision, as a venue charges them). It imports nothing from the strategy, indicator,
execution, account or engine code it checks; the engine side runs against the real simulated
venue, and trades, PnL, fees and the final wallet must match exactly.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from domain.candles import Candles
from domain.execution import FeeSchedule
from domain.model import Trade
from domain.strategies import build_strategy
from tests.fixtures.data import load_sample_candles, sample_dir
from tests.fixtures.venues import SampleRun, backtest_candles

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
    money: Decimal  # the quote asset's precision: fees and PnL are kept to it


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
    """Tick, lot step, min notional and quote precision of ``symbol`` from a Binance USD-M
    exchangeInfo file."""
    document = json.loads(path.read_text(encoding="utf-8"))
    entry = next(s for s in document["symbols"] if s["symbol"] == symbol)
    filters = {f["filterType"]: f for f in entry["filters"]}
    return Rules(
        tick=Decimal(filters["PRICE_FILTER"]["tickSize"]),
        step=Decimal(filters["LOT_SIZE"]["stepSize"]),
        min_notional=Decimal(filters["MIN_NOTIONAL"]["notional"]),
        money=Decimal(1).scaleb(-int(entry["quotePrecision"])),
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


class RefAccount:
    """One symbol's position and the wallet, booked the documented way: each fill pays
    ``qty × price × fee`` rounded half-even to the quote precision; a fill that closes a
    position and opens the other side (a reversal is one order) splits its fee pro rata,
    the closing share rounded half-even to the quote precision."""

    def __init__(self, cash: Decimal, rules: Rules, fee: Decimal) -> None:
        self.cash, self.rules, self.fee = cash, rules, fee
        self.qty = Decimal(0)  # signed
        self.entry = self.entry_fee = Decimal(0)
        self.entry_time = 0
        self.trades: list[RefTrade] = []

    def money(self, amount: Decimal) -> Decimal:
        return amount.quantize(self.rules.money, ROUND_HALF_EVEN)

    def fill(self, direction: int, qty: Decimal, price: Decimal, time: int) -> None:
        """Book a fill of ``qty`` (> 0) in ``direction`` (+1 buy, −1 sell)."""
        fee = self.money(qty * price * self.fee)
        self.cash -= fee
        closing = min(qty, abs(self.qty)) if self.qty * direction < 0 else Decimal(0)
        if closing:
            held = 1 if self.qty > 0 else -1
            realized = closing * (price - self.entry) * held
            exit_fee = fee if closing == qty else self.money(fee * closing / qty)
            self.trades.append(
                RefTrade(
                    "buy" if held > 0 else "sell",
                    closing,
                    self.entry_time,
                    self.entry,
                    time,
                    price,
                    realized - self.entry_fee - exit_fee,
                    self.entry_fee + exit_fee,
                )
            )  # the reference only ever closes whole positions
            self.cash += realized
            self.qty, fee = Decimal(0), fee - exit_fee
        opening = qty - closing
        if opening:
            self.qty, self.entry, self.entry_time = opening * direction, price, time
            self.entry_fee = fee


def reference_sma_cross(
    bars: list[Bar], fast: int, slow: int, rules: Rules, cash: Decimal, fee: Decimal, bps: Decimal
) -> RefResult:
    """Stop-and-reverse on SMA crosses, all equity, fills at the next open, flat at the end.

    A cross against the position is one order of ``|held| + new`` at the new side's price; a
    cross in the held direction closes (at the closing side's price) then opens anew.
    """
    crosses = reference_crosses([float(b.close) for b in bars], fast, slow)
    book = RefAccount(cash, rules, fee)
    pending: tuple[int, Decimal] | None = None
    for t, bar in enumerate(bars):
        if pending is not None:
            direction, size = pending
            pending = None
            held = book.qty
            if held * direction > 0:
                exit_price = market_price(bar.open, -direction, bps, rules.tick)
                book.fill(-direction, abs(held), exit_price, bar.open_time)
                held = Decimal(0)
            if size + abs(held) > 0:
                price = market_price(bar.open, direction, bps, rules.tick)
                book.fill(direction, abs(held) + size, price, bar.open_time)
        if t in crosses and t < len(bars) - 1:
            equity = book.cash + book.qty * (bar.close - book.entry)
            size = (equity / bar.close / rules.step).to_integral_value(ROUND_FLOOR) * rules.step
            if size * bar.close < rules.min_notional:
                size = Decimal(0)
            pending = (crosses[t], size)
    if book.qty != 0:
        last = bars[-1]
        book.fill(-1 if book.qty > 0 else 1, abs(book.qty), last.close, last.open_time + BAR_MS)
    return RefResult(book.trades, book.cash)


# -- helpers ----------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def sample_bars(symbol: str) -> list[Bar]:
    return read_bars(sample_dir() / f"binance_usdm_{symbol}_5m.csv.gz")


@lru_cache(maxsize=4)
def sample_rules(symbol: str) -> Rules:
    return read_rules(sample_dir() / EXCHANGE_INFO, symbol)


def engine_backtest(symbol: str, candles: Candles, fast: int, slow: int, bps: Decimal) -> SampleRun:
    return backtest_candles(
        build_strategy("sma_cross", {"fast": fast, "slow": slow}, "5m"),
        {symbol: candles},
        cash=CASH,
        fees=FeeSchedule(taker=TAKER),
        slippage_bps=bps,
    )


def as_key(trade: Trade | RefTrade) -> tuple[object, ...]:
    return (
        str(trade.side),
        trade.qty,
        trade.entry_time,
        trade.exit_time,
        trade.entry_price,
        trade.exit_price,
        trade.pnl,
        trade.fees,
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

    run = engine_backtest(symbol, load_sample_candles(symbol), fast, slow, bps)

    trades = run.result.trades
    assert len(expected.trades) > 50
    assert [as_key(t) for t in trades] == [as_key(t) for t in expected.trades], first_mismatch(
        trades, expected.trades
    )
    assert run.venue.cash == expected.cash
    assert run.result.metrics.end_equity == pytest.approx(float(expected.cash), abs=1e-6)


def test_each_trade_is_named_by_the_fill_that_closed_it() -> None:
    run = engine_backtest("ETHUSDT", load_sample_candles("ETHUSDT"), 10, 30, Decimal(2))
    fills = {f.id: f for f in run.result.fills}

    trades = run.result.trades

    assert len({t.id for t in trades}) == len(trades)
    for t in trades:
        closing = fills[t.id]
        assert closing.id == f"{closing.order_id}-{closing.time}"
        assert (closing.time, closing.price) == (t.exit_time, t.exit_price)
        assert closing.side is t.side.opposite


def test_exact_sma_tie_on_real_bars_is_not_a_cross() -> None:
    bars = sample_bars("SOLUSDT")
    t = 9247
    closes = [b.close for b in bars]
    exact_fast = sum(closes[t - 49 : t + 1]) / 50
    exact_slow = sum(closes[t - 199 : t + 1]) / 200
    assert exact_fast == exact_slow  # arrange: a real tie, in exact decimal arithmetic
    tie_close_time = bars[t].open_time + BAR_MS

    run = engine_backtest("SOLUSDT", load_sample_candles("SOLUSDT"), 50, 200, Decimal(2))

    assert tie_close_time not in {s.time for s in run.result.signals}


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

    run = engine_backtest("BTCUSDT", candles, 2, 4, Decimal(0))

    result = run.result
    # long from bar 5's open to bar 9's open (no exit on the tie), a new long at bar 9's open
    # closed by the cross down at bar 10's open, then a short closed at the last close
    assert [(str(x.side), x.entry_time, x.exit_time) for x in result.trades] == [
        ("buy", t[5], t[9]),
        ("buy", t[9], t[10]),
        ("sell", t[10], t[11] + BAR_MS),
    ]
    assert [x.entry_price for x in result.trades] == [bars[4].close, bars[8].close, bars[9].close]
    assert [as_key(x) for x in result.trades] == [as_key(x) for x in expected.trades]
    assert run.venue.cash == expected.cash
