"""Futures realism in the kernel on real Binance USD-M data: liquidation at the formula's price
through the October 2025 crash, funding settlements, and a ledger that reconciles to the cent.

The expected liquidation bar is found here by a plain loop over the bars and mark-price hours,
written from the rule in :mod:`domain.futures`, independently of its vectorized search.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.marketdata.binance_csv import read_klines
from adapters.marketdata.exchange_info import load_catalog
from adapters.marketdata.feeds import HistoricalFeed
from adapters.marketdata.funding_csv import read_funding, read_mark_prices
from adapters.marketdata.leverage_brackets import read_leverage_brackets
from adapters.venues.simulated.venue import SimulatedVenue
from domain.candles import Candles
from domain.execution import FeeSchedule
from domain.funding import HOUR_MS, funding_payment
from domain.futures import FuturesBook, FuturesTerms, MarketFeeds
from domain.margin import MarginMode, liquidation_price
from domain.model import ExitReason, Instrument, Side, fast_constructor
from domain.strategies import build_strategy
from domain.strategies.base import (
    Decision,
    DecisionContext,
    OrderIntent,
    Portfolio,
    floor_qty,
)
from service_layer.backtest import BacktestResult, run_backtest
from tests.fixtures.data import sample_dir, shared_file

BAR_MS = 300_000
CRASH = 1_760_131_800_000  # 2025-10-10 21:30 UTC: the crash's worst 5m bars are just before
ENTRY = 1_760_122_800_000  # 2025-10-10 19:00 UTC
CASH = Decimal(10_000)


class BuyAt:
    """A test strategy: at the close ``at`` (ms UTC), go long every symbol with ``share`` of
    the equity allocated to it put up as margin (notional = equity × share / symbols ×
    leverage), then hold."""

    name = "buy_at"

    def __init__(self, at: int, share: Decimal = Decimal(1)) -> None:
        self.at = at
        self.share = share
        self.symbols: tuple[str, ...] = ()

    def params(self) -> dict[str, float | int | str | bool]:
        return {"at": self.at}

    def warmup_bars(self) -> int:
        return 0

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        self.symbols = symbols

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        out = {}
        for symbol, candles in bars.items():
            closes = candles.open_time + BAR_MS
            out[symbol] = closes[closes == self.at].astype(np.int64)
        return out

    def decide(self, ctx: DecisionContext) -> Decision:
        portfolio: Portfolio = ctx.portfolio
        orders = []
        for symbol in sorted(ctx.due):
            margin = portfolio.equity * self.share / len(self.symbols)
            notional = margin * portfolio.leverage_of(symbol)
            price = portfolio.marks[symbol]
            qty = floor_qty(notional, price, portfolio.instruments[symbol])
            orders.append(OrderIntent(symbol, Side.BUY, qty))
        return Decision(orders=tuple(orders))

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        return None


def _rules(symbols: list[str]) -> dict[str, Instrument]:
    catalog = load_catalog([sample_dir() / "binance_usdm_exchange_info_20251030.json"])
    brackets = read_leverage_brackets(shared_file("binance_usdm_leverage_brackets_20241024.json"))
    return {
        s: fast_constructor(Instrument, validate=True)(
            **{**_fields(catalog.get(s)), "brackets": brackets[s]}
        )
        for s in symbols
    }


def _fields(instrument: Instrument) -> dict[str, Any]:
    return {name: getattr(instrument, name) for name in instrument.__dataclass_fields__}


def _backtest(
    strategy: Any,
    symbols: list[str],
    leverage: int,
    start: int,
    end: int | None = None,
    mode: MarginMode = MarginMode.ISOLATED,
) -> tuple[BacktestResult, dict[str, Candles], dict[str, Instrument], FuturesBook]:
    rules = _rules(symbols)
    bars = {
        s: read_klines(shared_file(f"binance_usdm_{s}_5m.csv.gz")).between(start, end)
        for s in symbols
    }
    feeds = {
        s: MarketFeeds(
            rules[s].brackets,
            read_funding(shared_file(f"binance_usdm_{s}_funding.csv.gz")),
            read_mark_prices(shared_file(f"binance_usdm_{s}_mark_1h.csv.gz")),
        )
        for s in symbols
    }
    book = FuturesBook(FuturesTerms(mode=mode, leverage=leverage), feeds, BAR_MS)
    clock = SimulatedClock()
    venue = SimulatedVenue(
        instruments=rules, cash=CASH, clock=clock, fees=FeeSchedule(), futures=book
    )
    result = run_backtest(
        strategy=strategy,
        feed=HistoricalFeed(bars, "5m"),
        venue=venue,
        matcher=venue,
        clock=clock,
        instruments=rules,
        initial_cash=CASH,
        margin=venue,
    )
    return result, bars, rules, book


def _reconciles(result: BacktestResult) -> None:
    money = result.money
    fills = sum((f.realized_pnl for f in result.fills), Decimal(0))
    fees = sum((f.fee for f in result.fills), Decimal(0))
    funding = sum((p.amount for p in result.fundings), Decimal(0))
    assert (money.realized_pnl, money.fees_paid, money.funding_paid) == (fills, fees, funding)
    expected = money.start_equity + money.realized_pnl - money.fees_paid - money.funding_paid
    assert money.final_balance == expected  # exact: every amount is booked once, in Decimal
    assert money.final_balance == money.end_equity


def _expected_liquidation_bar(
    candles: Candles, marks: Candles, level: float, since: int, start: int
) -> int | None:
    """The rule of domain.futures, one bar at a time: the traded bar's low and the mark hour's
    low both at or below ``level``, or the mark hour's low alone on the hour's last bar (for an
    hour that began at or after the entry ``since``)."""
    mark_low = dict(zip(marks.open_time.tolist(), marks.low.tolist(), strict=True))
    for i in range(start, len(candles)):
        t = int(candles.open_time[i])
        hour = t - t % HOUR_MS
        touched = float(candles.low[i]) <= level
        if hour not in mark_low:
            if touched:
                return i
            continue
        ends_hour = (t + BAR_MS) % HOUR_MS == 0
        if mark_low[hour] <= level and (touched or (ends_hour and hour >= since)):
            return i
    return None


@pytest.mark.parametrize("leverage", [10, 20])
@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
def test_the_october_2025_crash_liquidates_longs_where_the_formula_says(
    symbol: str, leverage: int
) -> None:
    result, bars, rules, _ = _backtest(
        BuyAt(ENTRY), [symbol], leverage, ENTRY - 50 * BAR_MS, CRASH + 24 * HOUR_MS
    )

    (entry_fill, *_) = result.fills
    qty, entry = entry_fill.qty, entry_fill.price
    formula = liquidation_price(
        rules[symbol].brackets,  # type: ignore[arg-type]
        qty=qty,
        entry_price=entry,
        wallet_balance=qty * entry / leverage,
    )
    assert formula is not None and formula < entry
    candles = bars[symbol]
    marks = read_mark_prices(shared_file(f"binance_usdm_{symbol}_mark_1h.csv.gz"))
    start = int(candles.open_time.searchsorted(entry_fill.time))
    expected = _expected_liquidation_bar(candles, marks, float(formula), entry_fill.time, start)
    liquidated = [t for t in result.trades if t.exit_reason is ExitReason.LIQUIDATION]
    if expected is None:
        assert liquidated == [] and result.liquidations == 0
    else:
        (trade,) = liquidated
        assert trade.exit_time == int(candles.open_time[expected])
        assert trade.exit_price == rules[symbol].round_price(formula, up=True)
        (fill,) = [f for f in result.fills if f.order_id.startswith("liquidation-")]
        assert fill.side is Side.SELL and fill.qty == qty
        lost = -trade.gross_pnl + fill.fee  # price loss + liquidation fee
        assert lost <= qty * entry / leverage + Decimal("0.01")  # never more than the margin
        assert result.liquidations == 1
    _reconciles(result)


def test_the_crash_liquidates_at_10x_and_20x_on_the_alts() -> None:
    liquidated = {}
    for leverage in (10, 20):
        for symbol in ("ETHUSDT", "SOLUSDT"):
            result, *_ = _backtest(
                BuyAt(ENTRY), [symbol], leverage, ENTRY - 50 * BAR_MS, CRASH + 24 * HOUR_MS
            )
            liquidated[symbol, leverage] = result.liquidations
    assert all(n == 1 for n in liquidated.values()), liquidated


def test_cross_margin_liquidates_later_than_isolated_when_the_wallet_holds_more() -> None:
    half = Decimal("0.5")
    isolated, *_ = _backtest(
        BuyAt(ENTRY, half), ["SOLUSDT"], 20, ENTRY - 50 * BAR_MS, CRASH + 24 * HOUR_MS
    )
    cross, *_ = _backtest(
        BuyAt(ENTRY, half),
        ["SOLUSDT"],
        20,
        ENTRY - 50 * BAR_MS,
        CRASH + 24 * HOUR_MS,
        mode=MarginMode.CROSS,
    )
    (iso_trade,) = isolated.trades
    (cross_trade,) = cross.trades
    # The whole wallet (twice the isolated margin) backs the cross position: its liquidation
    # price is further away, and it loses the whole wallet where isolated loses half of it.
    assert cross_trade.exit_time >= iso_trade.exit_time
    assert cross_trade.exit_price < iso_trade.exit_price
    assert cross.money.final_balance < isolated.money.final_balance
    assert isolated.money.final_balance > CASH / 2 - 200  # the margin and fees, no more
    _reconciles(isolated)
    _reconciles(cross)


def test_ten_months_of_funding_reconcile_to_the_cent() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    strategy = build_strategy("sma_cross", {"fast": 48, "slow": 288}, "5m")
    result, bars, _, _ = _backtest(strategy, symbols, 2, 0)

    _reconciles(result)
    assert len(result.fundings) > 1_500
    rates = {s: read_funding(shared_file(f"binance_usdm_{s}_funding.csv.gz")) for s in symbols}
    for payment in result.fundings:
        assert payment.rate == rates[payment.symbol].rate_at(payment.time_ms)
        assert payment.amount == funding_payment(payment.qty, payment.mark, payment.rate)
        assert (payment.amount > 0) == ((payment.qty > 0) == (payment.rate > 0))
    # Every funding time at which a position was open is settled once, and no other: a
    # position opened by a fill at the bar opening at the funding time does not pay it, one
    # closed there does.
    for symbol in symbols:
        times = rates[symbol].times
        held = set()
        for trade in (t for t in result.trades if t.symbol == symbol):
            held.update(f for f in times if trade.entry_time < f <= trade.exit_time)
        end = int(bars[symbol].open_time[-1])
        paid = [p.time_ms for p in result.fundings if p.symbol == symbol]
        assert paid == sorted(f for f in held if f <= end)


@pytest.mark.parametrize("strategy", ["sma_cross", "trend_follow"])
@pytest.mark.parametrize("leverage", [1, 3])
def test_the_strategies_size_within_the_margin_the_venue_allows(
    strategy: str, leverage: int
) -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    result, *_ = _backtest(build_strategy(strategy, {}, "5m"), symbols, leverage, 1_756_771_200_000)

    refused = [r for r in result.rejections if "initial margin" in r]
    assert result.metrics.trades > 20
    assert refused == []
    _reconciles(result)
