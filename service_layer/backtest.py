"""Backtest use case: run a strategy over a historical feed as fast as possible."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from domain.ledger import Ledger
from domain.metrics import PerformanceMetrics, performance
from domain.model import Fill, Instrument, Signal, Trade
from domain.ports import BarMatcher, Clock, ExecutionClient, MarketData
from domain.strategies.base import Strategy
from service_layer.engine import BatchOutcome, Engine


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Outcome of a backtest: statistics, round-trip trades, fills, signals and the equity curve
    (``equity_time`` bar close times in ms UTC, ``equity`` in quote currency)."""

    metrics: PerformanceMetrics
    trades: list[Trade]
    fills: list[Fill]
    signals: list[Signal]
    equity_time: np.ndarray
    equity: np.ndarray
    bars: int
    rejections: list[str]

    def to_json(self) -> dict[str, object]:
        """The documented ``--json`` shape: metrics, trades and ``[[time, equity], ...]``
        (an infinite profit factor is ``null``: JSON has no infinity)."""
        return {
            "metrics": {
                k: (None if isinstance(v, float) and math.isinf(v) else v)
                for k, v in self.metrics.as_dict().items()
            },
            "trades": [
                {
                    "symbol": t.symbol,
                    "side": str(t.side),
                    "qty": str(t.qty),
                    "entry_time": t.entry_time,
                    "entry_price": str(t.entry_price),
                    "exit_time": t.exit_time,
                    "exit_price": str(t.exit_price),
                    "pnl": str(t.pnl),
                    "fees": str(t.fees),
                }
                for t in self.trades
            ],
            "equity": [
                [int(t), float(e)] for t, e in zip(self.equity_time, self.equity, strict=True)
            ],
        }


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
) -> BacktestResult:
    """Run ``strategy`` over every batch of ``feed`` against the simulated ``venue`` (a fresh
    one holding ``initial_cash``; ``matcher`` is the same object); positions still open at the
    end close at the last bar's close.

    Raises
    ------
    DomainError
        On bad configuration (unknown symbol, invalid parameters).
    """
    engine = Engine(
        strategy=strategy,
        execution=venue,
        matcher=matcher,
        clock=clock,
        instruments=instruments,
        symbols=feed.symbols,
        timeframe=feed.timeframe,
        run_id=run_id,
        ledger=Ledger(initial_cash),
    )
    engine.warm_up({s: feed.history(s) for s in feed.symbols})
    outcomes = [engine.process(batch) for batch in feed.batches()]
    final = engine.finish()
    return _result(outcomes, final, float(initial_cash), float(engine.ledger.cash), engine)


def _result(
    outcomes: list[BatchOutcome],
    final: BatchOutcome,
    start: float,
    end_cash: float,
    engine: Engine,
) -> BacktestResult:
    time = np.concatenate([o.equity_time for o in outcomes] or [np.empty(0, np.int64)])
    equity = np.concatenate([o.equity for o in outcomes] or [np.empty(0)])
    exposed = np.concatenate([o.exposed for o in outcomes] or [np.empty(0, bool)])
    if len(equity):
        equity[-1] = end_cash
    trades = [t for o in [*outcomes, final] for t in o.changes.trades]
    fills = [f for o in [*outcomes, final] for f in o.changes.fills]
    fees = float(sum((f.fee for f in fills), Decimal(0)))
    return BacktestResult(
        metrics=performance(time, equity, start, trades, fees, exposed),
        trades=trades,
        fills=fills,
        signals=[s for o in outcomes for s in o.signals],
        equity_time=time,
        equity=equity,
        bars=engine.candles_processed,
        rejections=[r for o in outcomes for r in o.rejections],
    )
