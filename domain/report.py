"""Breakdown of a backtest's round-trip trades, and the buy-and-hold benchmark of its period.

Conventions: money (PnL, fees, averages) is ``Decimal`` in the quote currency, summed exactly
from the trades; rates and returns are fractions (0.05 = 5 %). A trade's PnL is net of its fees
(:class:`~domain.model.Trade`). A *win* is a trade with PnL > 0, a *loss* one with PnL < 0; a
trade with PnL exactly 0 is neither (it counts as a trade, and it ends a losing streak).

Formulas (backtesting.py's ``compute_stats`` and QuantStats' ``avg_win``, ``avg_loss`` and
``consecutive_losses``, applied to trade PnLs):

* win rate = wins / trades (0 with no trade), as ``PerformanceMetrics.win_rate_pct`` counts it;
* average win = sum of winning PnLs / wins; average loss = sum of losing PnLs / losses
  (negative); None when there is no win (loss);
* longest losing streak = the most consecutive losses in exit-time order;
* buy-and-hold return of a symbol = last close / first open − 1 over its bars (bought at the
  first bar's open, where the backtest's period starts, and sold at the last bar's close; no
  fees or slippage; backtesting.py measures from the first close instead); of the equally
  weighted basket (1/N of the cash in each symbol at the start, never rebalanced) = the mean of
  the symbols' returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from domain.candles import Candles
from domain.model import ZERO, Direction, Trade


@dataclass(frozen=True, slots=True)
class TradeStats:
    """Counts and sums of a set of trades (money in quote currency).

    ``gross_profit`` is the sum of the winning PnLs (>= 0), ``gross_loss`` the sum of the
    losing ones (<= 0); ``pnl`` the net PnL of all of them (= gross profit + gross loss) and
    ``fees`` the fees they paid (already in ``pnl``).
    """

    trades: int = 0
    wins: int = 0
    losses: int = 0
    pnl: Decimal = ZERO
    fees: Decimal = ZERO
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO

    @property
    def win_rate(self) -> float:
        """wins / trades as a fraction (0 with no trade)."""
        return self.wins / self.trades if self.trades else 0.0

    @property
    def average_win(self) -> Decimal | None:
        """Mean PnL of the winning trades (quote currency, > 0); None without a win."""
        return self.gross_profit / self.wins if self.wins else None

    @property
    def average_loss(self) -> Decimal | None:
        """Mean PnL of the losing trades (quote currency, < 0); None without a loss."""
        return self.gross_loss / self.losses if self.losses else None


def trade_stats(trades: Iterable[Trade]) -> TradeStats:
    """:class:`TradeStats` of ``trades``.

    >>> trade_stats([]).win_rate
    0.0
    """
    count = wins = losses = 0
    pnl = fees = profit = loss = ZERO
    for t in trades:
        count += 1
        pnl += t.pnl
        fees += t.fees
        if t.pnl > 0:
            wins += 1
            profit += t.pnl
        elif t.pnl < 0:
            losses += 1
            loss += t.pnl
    return TradeStats(count, wins, losses, pnl, fees, profit, loss)


def stats_by_symbol(trades: Sequence[Trade], symbols: Iterable[str]) -> dict[str, TradeStats]:
    """:class:`TradeStats` per symbol: every one of ``symbols`` in their order (a symbol with
    no trade gets empty stats), then any other symbol the trades name, sorted."""
    names = list(dict.fromkeys([*symbols, *sorted({t.symbol for t in trades})]))
    return {s: trade_stats(t for t in trades if t.symbol == s) for s in names}


def stats_by_direction(trades: Sequence[Trade]) -> dict[Direction, TradeStats]:
    """:class:`TradeStats` of the long trades and of the short trades (both keys always)."""
    return {
        side: trade_stats(t for t in trades if t.direction is side)
        for side in (Direction.LONG, Direction.SHORT)
    }


def longest_losing_streak(trades: Sequence[Trade]) -> int:
    """The most consecutive losing trades (PnL < 0), the trades taken in exit-time order (ties
    keep their given order); 0 without a loss.

    >>> longest_losing_streak([])
    0
    """
    longest = run = 0
    for t in sorted(trades, key=lambda t: t.exit_time):
        run = run + 1 if t.pnl < 0 else 0
        longest = max(longest, run)
    return longest


@dataclass(frozen=True, slots=True)
class BuyAndHold:
    """Buy-and-hold returns (fractions) of each symbol over its bars, and of the equally
    weighted basket of them."""

    symbols: dict[str, float]
    basket: float


def buy_and_hold(candles: Mapping[str, Candles]) -> BuyAndHold:
    """Return of buying each symbol at its first bar's open and selling at its last bar's close
    (``close[-1] / open[0] − 1``, no costs), and of the basket holding 1/N of the cash in each
    (the mean of the N returns).

    Raises
    ------
    ValueError
        When ``candles`` is empty, a symbol has no bar, or its first open is not > 0.
    """
    if not candles:
        raise ValueError("buy-and-hold needs at least one symbol")
    returns: dict[str, float] = {}
    for symbol, bars in candles.items():
        if not len(bars):
            raise ValueError(f"buy-and-hold of {symbol} needs at least one bar, has none")
        first = float(bars.open[0])
        if not first > 0:
            raise ValueError(f"buy-and-hold of {symbol}: first open must be > 0, was {first}")
        returns[symbol] = float(bars.close[-1]) / first - 1.0
    return BuyAndHold(returns, sum(returns.values()) / len(returns))


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Everything the backtest report shows beside the performance metrics: totals, per symbol,
    long and short, the longest losing streak and the buy-and-hold benchmark."""

    total: TradeStats
    by_symbol: dict[str, TradeStats]
    by_direction: dict[Direction, TradeStats]
    longest_losing_streak: int
    buy_and_hold: BuyAndHold


def breakdown(trades: Sequence[Trade], candles: Mapping[str, Candles]) -> Breakdown:
    """The :class:`Breakdown` of ``trades`` made on ``candles`` (symbol → the bars of the
    backtest's period; their order is the order of :attr:`Breakdown.by_symbol`).

    Raises
    ------
    ValueError
        As :func:`buy_and_hold`.
    """
    return Breakdown(
        total=trade_stats(trades),
        by_symbol=stats_by_symbol(trades, candles),
        by_direction=stats_by_direction(trades),
        longest_losing_streak=longest_losing_streak(trades),
        buy_and_hold=buy_and_hold(candles),
    )
