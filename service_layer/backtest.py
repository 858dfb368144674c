"""Backtest use case: run a strategy over a historical feed as fast as possible, choose the
stored bars to build a higher timeframe from, and shape the result as the documented JSON."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import numpy as np

from domain.candles import Candles
from domain.funding import FundingPayment
from domain.ledger import Ledger
from domain.metrics import PerformanceMetrics, performance
from domain.model import ExitReason, Fill, Instrument, Signal, Trade
from domain.pipeline_events import PipelineEvent
from domain.ports import BarMatcher, Clock, ExecutionClient, MarginAccount, MarketData
from domain.report import Breakdown, TradeStats
from domain.strategies.base import Strategy, UsesModels
from domain.timeframes import timeframe_ms
from service_layer.engine import BatchOutcome, Engine
from service_layer.risk_gate import RiskGate

if TYPE_CHECKING:  # (scikit-learn loads only when a strategy uses ML)
    from domain.ml.signal_input import ModelSpan


class NumberFormat(Protocol):
    """Writes prices, quantities and money as decimal strings at their precision (the API's
    ``Numbers``); None stays None."""

    def price(self, symbol: str, x: Decimal | None) -> str | None:
        """A price of ``symbol`` (quote currency) at its tick's decimals."""
        ...

    def qty(self, symbol: str, x: Decimal | None) -> str | None:
        """A quantity of ``symbol`` (base asset) at its lot step's decimals."""
        ...

    def money(self, x: Decimal | None) -> str | None:
        """An amount of the quote asset at its precision."""
        ...


@dataclass(frozen=True, slots=True)
class MoneyTotals:
    """A run's money, exact (quote currency): equity before the first bar and after the last
    (every position closed by then, so it is the cash), the fees paid, the PnL realized by the
    fills (gross of fees), the funding paid (received counts negative) and the final wallet
    balance, which is ``start_equity + realized_pnl − fees_paid − funding_paid`` to the unit of
    the quote asset's precision. The float :class:`PerformanceMetrics` of the same names are
    for statistics; these are for output."""

    start_equity: Decimal
    end_equity: Decimal
    fees_paid: Decimal
    realized_pnl: Decimal
    funding_paid: Decimal
    final_balance: Decimal


MONEY_METRICS = tuple(f.name for f in fields(MoneyTotals))
"""The ``metrics`` keys of the ``--json`` document that hold money (decimal strings)."""


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Outcome of a backtest: statistics, round-trip trades, fills, signals and the equity curve
    (``equity_time`` bar close times in ms UTC, ``equity`` in quote currency); ``money`` the
    exact start and end equity and fees; ``instruments`` the trading rules it ran with
    (symbol → rules); ``fundings`` the funding settlements booked and ``leverage`` the
    leverage per symbol (None: not margined as futures); ``pipeline_events`` the strategy's
    threshold adjustments and regime changes (:mod:`domain.pipeline_events`); ``models``
    which ML model predicted on which symbol when (empty without ML)."""

    metrics: PerformanceMetrics
    trades: list[Trade]
    fills: list[Fill]
    signals: list[Signal]
    equity_time: np.ndarray
    equity: np.ndarray
    bars: int
    rejections: list[str]
    money: MoneyTotals
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    fundings: list[FundingPayment] = field(default_factory=list)
    leverage: Mapping[str, int] | None = None
    pipeline_events: list[PipelineEvent] = field(default_factory=list)
    models: list[ModelSpan] = field(default_factory=list)

    @property
    def liquidations(self) -> int:
        """How many trades the venue closed by liquidation."""
        return sum(1 for t in self.trades if t.exit_reason is ExitReason.LIQUIDATION)

    def to_json(self, numbers: NumberFormat) -> dict[str, object]:
        """The documented ``--json`` shape: metrics, trades and ``[[time, equity], ...]``
        (times ms UTC).

        Money is a decimal string at the quote asset's precision: the metrics
        :data:`MONEY_METRICS` (exact, from :attr:`money`) and each point's equity (the float
        curve rounded half-even). The other metrics are JSON numbers (percent, ratios, counts;
        an infinite profit factor is ``null``: JSON has no infinity). A trade's ``side`` is
        ``long`` or ``short``; its prices are at the instrument's tick, its ``qty`` at the lot
        step, ``pnl`` and ``fees`` money, with ``fee_currency`` the quote asset.
        """
        metrics: dict[str, object] = {
            k: (None if isinstance(v, float) and math.isinf(v) else v)
            for k, v in self.metrics.as_dict().items()
        }
        metrics.update((k, numbers.money(v)) for k, v in asdict(self.money).items())
        metrics["liquidations"] = self.liquidations
        return {
            "metrics": metrics,
            "models": [asdict(m) for m in self.models],
            "trades": [self._trade_json(t, numbers) for t in self.trades],
            "equity": [
                [t, numbers.money(Decimal(repr(e)))]
                for t, e in zip(self.equity_time.tolist(), self.equity.tolist(), strict=True)
            ],
        }

    def _trade_json(self, t: Trade, numbers: NumberFormat) -> dict[str, object]:
        return {
            "symbol": t.symbol,
            "side": str(t.direction),
            "qty": numbers.qty(t.symbol, t.qty),
            "entry_time": t.entry_time,
            "entry_price": numbers.price(t.symbol, t.entry_price),
            "exit_time": t.exit_time,
            "exit_price": numbers.price(t.symbol, t.exit_price),
            "pnl": numbers.money(t.pnl),
            "fees": numbers.money(t.fees),
            "fee_currency": quote_asset(self.instruments, t.symbol),
            "exit_reason": str(t.exit_reason),
        }


def quote_asset(instruments: Mapping[str, Instrument], symbol: str) -> str:
    """The quote asset of ``symbol`` (its PnL and fees are paid in it); USDT when unknown."""
    rules = instruments.get(symbol)
    return rules.quote_asset if rules is not None else "USDT"


def breakdown_json(
    report: Breakdown, numbers: NumberFormat, instruments: Mapping[str, Instrument]
) -> dict[str, object]:
    """``--json``'s ``breakdown``: ``total``, ``by_symbol`` and ``by_side`` (``long``,
    ``short``) trade statistics, ``longest_losing_streak`` (trades) and
    ``buy_and_hold_return_pct`` (percent, per symbol and for the equally weighted ``basket``).

    Money (``pnl``, ``fees``, ``gross_profit``, ``gross_loss``, ``average_win``,
    ``average_loss``) is a decimal string at the quote asset's precision, in ``currency`` (fees
    also say ``fee_currency``); ``win_rate_pct`` is percent.
    """
    currencies = sorted({quote_asset(instruments, s) for s in report.by_symbol}) or ["USDT"]

    def stats(x: TradeStats, currency: str) -> dict[str, object]:
        return {
            "trades": x.trades,
            "wins": x.wins,
            "losses": x.losses,
            "win_rate_pct": 100.0 * x.win_rate,
            "pnl": numbers.money(x.pnl),
            "fees": numbers.money(x.fees),
            "fee_currency": currency,
            "gross_profit": numbers.money(x.gross_profit),
            "gross_loss": numbers.money(x.gross_loss),
            "average_win": numbers.money(x.average_win),
            "average_loss": numbers.money(x.average_loss),
            "currency": currency,
        }

    total_currency = ",".join(currencies)
    return {
        "total": stats(report.total, total_currency),
        "by_symbol": {
            s: stats(x, quote_asset(instruments, s)) for s, x in report.by_symbol.items()
        },
        "by_side": {str(d): stats(x, total_currency) for d, x in report.by_direction.items()},
        "longest_losing_streak": report.longest_losing_streak,
        "buy_and_hold_return_pct": {
            "symbols": {s: 100.0 * r for s, r in report.buy_and_hold.symbols.items()},
            "basket": 100.0 * report.buy_and_hold.basket,
        },
    }


def source_timeframe(target: str, stored: Iterable[str]) -> str | None:
    """The stored timeframe to build ``target`` bars from: ``target`` itself when stored, else
    the longest stored timeframe that divides it (the fewest bars to aggregate); None when no
    stored timeframe divides it.

    >>> source_timeframe("1h", ["1m", "5m", "2h"])
    '5m'

    Raises
    ------
    ConfigError
        When ``target`` or a stored name is not a timeframe.
    """
    names = set(stored)
    if target in names:
        return target
    target_ms = timeframe_ms(target)
    divisors = [n for n in names if target_ms % timeframe_ms(n) == 0]
    return max(divisors, key=timeframe_ms, default=None)


PROGRESS_STEP = 0.01
"""The least rise of a backtest's progress fraction between two calls of its callback."""


class ProgressClock:
    """The run's ``clock`` as the engine sees it during a backtest that reports progress:
    every call goes to ``clock``; moving it also tells ``progress`` the fraction of the
    expected batch's period passed (rising by :data:`PROGRESS_STEP` at least between calls)."""

    def __init__(self, clock: Clock, timeframe: str, progress: Callable[[float], None]) -> None:
        self._clock = clock
        self._tf_ms = timeframe_ms(timeframe)
        self._progress = progress
        self._span: tuple[int, int] | None = None
        self._next = 0.0
        self._told = 0.0

    def expect(self, batch: Mapping[str, Candles]) -> None:
        """Measure progress over ``batch``'s period: its first bar's open to its last close
        (ms UTC)."""
        opens = [c.open_time for c in batch.values() if len(c)]
        if opens:
            first = min(int(t[0]) for t in opens)
            self._span = (first, max(int(t[-1]) for t in opens) + self._tf_ms)
            self._next = self._told = 0.0

    def now_ms(self) -> int:
        """The run's clock, ms UTC."""
        return self._clock.now_ms()

    def now(self) -> datetime:
        """The run's clock as a timezone-aware UTC datetime."""
        return self._clock.now()

    def advance_to(self, ms: int) -> None:
        """Move the run's clock to ``ms``, then tell the progress when it rose enough."""
        self._clock.advance_to(ms)
        if self._span is None:
            return
        start, end = self._span
        fraction = min(max((ms - start) / max(end - start, 1), 0.0), 1.0)
        if fraction >= self._next:
            self._tell(fraction)

    def finish(self) -> None:
        """Tell the progress 1.0, unless the clock's last move did."""
        if self._told < 1.0:
            self._tell(1.0)

    def _tell(self, fraction: float) -> None:
        self._next = fraction + PROGRESS_STEP
        self._told = fraction
        self._progress(fraction)


def run_backtest(
    *,
    strategy: Strategy,
    feed: MarketData,
    venue: ExecutionClient,
    matcher: BarMatcher,
    clock: Clock,
    instruments: Mapping[str, Instrument],
    initial_cash: Decimal,
    run_id: str = "backtest",
    margin: MarginAccount | None = None,
    risk: RiskGate | None = None,
    progress: Callable[[float], None] | None = None,
) -> BacktestResult:
    """Run ``strategy`` over every batch of ``feed`` against the simulated ``venue`` (a fresh
    one holding ``initial_cash``; ``matcher`` is the same object); positions still open at the
    end close at the last bar's close. ``leverage`` is the venue's leverage per symbol (the
    strategy sees it; 1x when None). ``risk`` is the risk gate between the strategy and the
    venue (None: none). ``progress`` (None: not told) is called with the fraction of each
    batch's period (first bar open to last bar close) that the run's clock has passed, at most
    once per :data:`PROGRESS_STEP` and with 1.0 at the end: the backtest feed's one batch
    holds every bar, so it goes from 0 to 1 once. It only watches the clock; the result is the
    same with or without it. An exception it raises ends the backtest (a cancelled job).

    Raises
    ------
    DomainError
        On bad configuration (unknown symbol, invalid parameters).
    """
    meter = None if progress is None else ProgressClock(clock, feed.timeframe, progress)
    engine = Engine(
        strategy=strategy,
        execution=venue,
        matcher=matcher,
        clock=clock if meter is None else meter,
        instruments=instruments,
        symbols=feed.symbols,
        timeframe=feed.timeframe,
        run_id=run_id,
        ledger=Ledger(initial_cash),
        margin=margin,
        risk=risk,
    )
    engine.warm_up({s: feed.history(s) for s in feed.symbols})
    outcomes = []
    for batch in feed.batches():
        if meter is not None:
            meter.expect(batch)
        outcomes.append(engine.process(batch))
    final = engine.finish()
    if meter is not None:
        meter.finish()
    result = _result(outcomes, final, initial_cash, engine.ledger.cash, engine, instruments)
    if isinstance(strategy, UsesModels):
        result = replace(result, models=strategy.model_spans())
    return result if margin is None else replace(result, leverage=dict(margin.leverage))


def _result(
    outcomes: list[BatchOutcome],
    final: BatchOutcome,
    start: Decimal,
    end_cash: Decimal,
    engine: Engine,
    instruments: Mapping[str, Instrument],
) -> BacktestResult:
    time = np.concatenate([o.equity_time for o in outcomes] or [np.empty(0, np.int64)])
    equity = np.concatenate([o.equity for o in outcomes] or [np.empty(0)])
    exposed = np.concatenate([o.exposed for o in outcomes] or [np.empty(0, bool)])
    if len(equity):
        equity[-1] = float(end_cash)
    trades = [t for o in [*outcomes, final] for t in o.changes.trades]
    fills = [f for o in [*outcomes, final] for f in o.changes.fills]
    fundings = [p for o in [*outcomes, final] for p in o.changes.fundings]
    fees = sum((f.fee for f in fills), Decimal(0))
    realized = sum((f.realized_pnl for f in fills), Decimal(0))
    funding = sum((p.amount for p in fundings), Decimal(0))
    return BacktestResult(
        metrics=performance(time, equity, float(start), trades, float(fees), exposed),
        trades=trades,
        fills=fills,
        signals=[s for o in outcomes for s in o.signals],
        equity_time=time,
        equity=equity,
        bars=engine.candles_processed,
        rejections=[r for o in outcomes for r in o.rejections],
        money=MoneyTotals(start, end_cash, fees, realized, funding, end_cash),
        instruments=dict(instruments),
        fundings=fundings,
        pipeline_events=[e for o in outcomes for e in o.pipeline_events],
    )
