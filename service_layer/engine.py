"""The trading engine: one loop for backtest, paper and (later) live trading.

The engine owns the bar history of each symbol and drives the strategy and the broker through
bars in time order. A batch of bars (the whole history in a backtest, one bar per symbol in a
replay) is processed as a sequence of *events*, so the cost is per decision and per fill, not per
bar:

* a **fill event** at bar ``j``'s open: the broker fills the orders bar ``j`` triggers (orders
  decided on an earlier close; protective stops placed on a fill can fill on the same bar);
* a **decision event** at bar ``j``'s close, for the bars the strategy marked as candidates.

At one instant, decisions on the bars that close then come before fills on the bars that open
then, so an order decided on bar ``t``'s close fills at bar ``t+1``'s open at the earliest.
Equity at each bar close is computed vectorized from the fills of the batch.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from domain.candles import Candles
from domain.errors import DomainError, UnknownSymbol
from domain.execution import to_decimal
from domain.model import Fill, Instrument, Order, OrderType, Position, Side, Signal, Trade
from domain.ports import Broker, Clock
from domain.strategies.base import Decision, DecisionContext, Evaluation, OrderIntent, Strategy
from domain.timeframes import timeframe_ms
from service_layer.history import CandleHistory

_DECIDE, _FILL = 0, 1


@dataclass(slots=True)
class BatchOutcome:
    """What one batch did. ``equity_time`` holds bar close times (ms UTC), ``equity`` and
    ``cash`` the account value there (float, quote currency)."""

    bars: dict[str, Candles]
    signals: list[Signal] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    equity_time: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    equity: np.ndarray = field(default_factory=lambda: np.empty(0))
    cash: np.ndarray = field(default_factory=lambda: np.empty(0))
    exposed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))


@dataclass(slots=True)
class _SymbolRun:
    """Per-symbol cursors while a batch is processed."""

    evaluation: Evaluation
    candidates: list[int]
    next_candidate: int = 0
    fill_cursor: int = 0
    fill_version: int = 0


class Engine:
    """Drives ``strategy`` and ``broker`` through bars of ``symbols`` on ``timeframe``.

    Parameters
    ----------
    allocation:
        Fraction of equity each symbol may use (default ``1 / len(symbols)``).
    """

    def __init__(
        self,
        *,
        strategy: Strategy,
        broker: Broker,
        clock: Clock,
        instruments: Mapping[str, Instrument],
        symbols: tuple[str, ...],
        timeframe: str,
        allocation: Decimal | None = None,
    ) -> None:
        missing = [s for s in symbols if s not in instruments]
        if missing:
            raise UnknownSymbol(f"no instrument rules for {', '.join(missing)}", field="symbols")
        self.strategy = strategy
        self.broker = broker
        self.clock = clock
        self.instruments = instruments
        self.symbols = symbols
        self.timeframe = timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.allocation = allocation or Decimal(1) / Decimal(len(symbols))
        self.history = {s: CandleHistory() for s in symbols}
        self.candles_processed = 0

    # -- public -----------------------------------------------------------------------------
    def warm_up(self, history: Mapping[str, Candles]) -> None:
        """Add bars that are never traded on (indicator warm-up, or bars of a resumed run)."""
        for symbol, bars in history.items():
            self.history[symbol].append(bars)
        self._mark_last_closes(history)

    def last_bar_time(self, symbol: str) -> int | None:
        """open_time (ms UTC) of the last bar of ``symbol`` seen, or None."""
        candles = self.history[symbol].candles
        return int(candles.open_time[-1]) if len(candles) else None

    def process(self, batch: Mapping[str, Candles]) -> BatchOutcome:
        """Process newly closed bars (``{symbol: Candles}``) and return what happened."""
        starts: dict[str, int] = {}
        for symbol, bars in batch.items():
            if symbol not in self.history:
                raise UnknownSymbol(f"bars for untraded symbol {symbol!r}", field="symbol")
            starts[symbol] = len(self.history[symbol])
            self.history[symbol].append(bars)
        outcome = BatchOutcome(bars=dict(batch))
        before = self._snapshot()
        log = self._run_events(starts, outcome)
        self._collect(outcome)
        self._equity_curve(starts, before, log, outcome)
        self._mark_last_closes(batch)
        self.candles_processed += sum(len(b) for b in batch.values())
        return outcome

    def _mark_last_closes(self, bars_by_symbol: Mapping[str, Candles]) -> None:
        """Mark each symbol at its last close and move the clock to the latest close time."""
        for symbol, bars in bars_by_symbol.items():
            if len(bars):
                self.broker.mark(symbol, float(bars.close[-1]))
                close_time = int(bars.open_time[-1]) + self.tf_ms
                self.clock.advance_to(max(self.clock.now_ms(), close_time))

    def finish(self) -> BatchOutcome:
        """End of a backtest: cancel open orders and close positions at the last close."""
        outcome = BatchOutcome(bars={})
        for symbol in self.symbols:
            candles = self.history[symbol].candles
            if not len(candles):
                continue
            end = int(candles.open_time[-1]) + self.tf_ms
            for order in self.broker.open_orders(symbol):
                self.broker.cancel(order.id, end)
            self.broker.close_position(symbol, to_decimal(candles.close[-1]), end)
        self._collect(outcome)
        return outcome

    def submit(
        self, intent: OrderIntent, symbol: str, tag: str, client_id: str | None = None
    ) -> Order:
        """Place ``intent`` for ``symbol`` now (strategy or API order, named by ``tag``).

        Raises
        ------
        DomainError
            When the broker refuses the order (``InvalidOrder``, ``InsufficientMargin``...).
        """
        order = Order(
            id=self.broker.next_id(),
            symbol=symbol,
            side=intent.side,
            type=intent.type,
            qty=intent.qty,
            price=intent.price,
            stop_price=intent.stop_price,
            created_time=self.clock.now_ms(),
            client_order_id=client_id,
            reduce_only=intent.reduce_only,
            tag=tag,
            stop_distance=intent.stop_distance,
        )
        return self.broker.submit(order)

    # -- the event loop ---------------------------------------------------------------------
    def _run_events(self, starts: Mapping[str, int], outcome: BatchOutcome) -> list[tuple]:
        runs: dict[str, _SymbolRun] = {}
        heap: list[tuple[int, int, str, int, int]] = []
        for symbol, start in starts.items():
            candles = self.history[symbol].candles
            evaluation = self.strategy.evaluate(candles, start)
            run = _SymbolRun(evaluation, evaluation.candidates.tolist(), fill_cursor=start)
            runs[symbol] = run
            self._push_decision(heap, symbol, run, candles)
            self._push_fill(heap, symbol, run, candles)
        log: list[tuple] = []
        while heap:
            t, phase, symbol, j, version = heapq.heappop(heap)
            run = runs[symbol]
            candles = self.history[symbol].candles
            self.clock.advance_to(t)
            if phase == _FILL:
                if version != run.fill_version:
                    continue
                self._fill_bar(symbol, candles, j, log)
                run.fill_cursor = j + 1
            else:
                self._decide(symbol, candles, j, run.evaluation, outcome)
                run.fill_cursor = max(run.fill_cursor, j + 1)
                run.next_candidate += 1
                self._push_decision(heap, symbol, run, candles)
            run.fill_version += 1
            self._push_fill(heap, symbol, run, candles)
        return log

    def _push_decision(self, heap: list, symbol: str, run: _SymbolRun, candles: Candles) -> None:
        if run.next_candidate < len(run.candidates):
            j = run.candidates[run.next_candidate]
            t = int(candles.open_time[j]) + self.tf_ms
            heapq.heappush(heap, (t, _DECIDE, symbol, j, 0))

    def _push_fill(self, heap: list, symbol: str, run: _SymbolRun, candles: Candles) -> None:
        j = self.broker.next_trigger(symbol, candles, run.fill_cursor)
        if j is not None:
            heapq.heappush(heap, (int(candles.open_time[j]), _FILL, symbol, j, run.fill_version))

    def _fill_bar(self, symbol: str, candles: Candles, j: int, log: list[tuple]) -> None:
        while self.broker.next_trigger(symbol, candles, j) == j:
            for fill in self.broker.execute(symbol, candles, j):
                self._on_fill(fill)
        position = self.broker.position(symbol)
        log.append(
            (
                int(candles.open_time[j]),
                symbol,
                float(position.qty),
                float(position.entry_price),
                float(self.broker.cash),
            )
        )

    def _on_fill(self, fill: Fill) -> None:
        distance = self.broker.get_order(fill.order_id).stop_distance
        if distance is None or self.broker.position(fill.symbol).qty == 0:
            return
        stop = fill.price - distance if fill.side is Side.BUY else fill.price + distance
        if stop <= 0:
            return
        intent = OrderIntent(
            fill.side.opposite,
            abs(self.broker.position(fill.symbol).qty),
            type=OrderType.STOP,
            stop_price=stop,
            reduce_only=True,
        )
        self.submit(intent, fill.symbol, tag=f"{self.strategy.name}:stop")

    def _decide(
        self, symbol: str, candles: Candles, j: int, ev: Evaluation, outcome: BatchOutcome
    ) -> None:
        now = int(candles.open_time[j]) + self.tf_ms
        self.broker.mark(symbol, float(candles.close[j]))
        self._mark_positions(now, symbol, j)
        ctx = DecisionContext(
            symbol=symbol,
            timeframe=self.timeframe,
            time=now,
            position=self.broker.position(symbol),
            equity=self.broker.equity(),
            allocation=self.allocation,
            instrument=self.instruments[symbol],
            open_orders=tuple(self.broker.open_orders(symbol)),
        )
        decision: Decision = ev.decide(j, ctx)
        if decision.signal is not None:
            outcome.signals.append(decision.signal)
        for order_id in decision.cancel:
            self.broker.cancel(order_id, now)
        for intent in decision.orders:
            try:
                self.submit(intent, symbol, tag=self.strategy.name)
            except DomainError as exc:
                outcome.rejections.append(f"{symbol} at {now}: {exc.message}")

    def _mark_positions(self, now: int, marked: str, j: int) -> None:
        """Mark every other open position at its last close at ``now`` (bar ``j`` when the
        symbols share a time grid, the common case, else a binary search)."""
        bar_time = now - self.tf_ms
        for position in self.broker.positions():
            if position.symbol == marked:
                continue
            candles = self.history[position.symbol].candles
            times = candles.open_time
            if j < len(times) and times[j] == bar_time:
                i = j
            else:
                i = int(np.searchsorted(times, bar_time, "right")) - 1
            if i >= 0:
                self.broker.mark(position.symbol, float(candles.close[i]))

    def _collect(self, outcome: BatchOutcome) -> None:
        orders, fills, trades, positions = self.broker.drain_events()
        outcome.orders.extend(orders)
        outcome.fills.extend(fills)
        outcome.trades.extend(trades)
        outcome.positions.extend(positions)

    # -- equity -----------------------------------------------------------------------------
    def _snapshot(self) -> tuple[float, dict[str, tuple[float, float]]]:
        positions = {
            p.symbol: (float(p.qty), float(p.entry_price)) for p in self.broker.positions()
        }
        return float(self.broker.cash), positions

    def _equity_curve(
        self,
        starts: Mapping[str, int],
        before: tuple[float, dict[str, tuple[float, float]]],
        log: list[tuple],
        outcome: BatchOutcome,
    ) -> None:
        closes = [self.history[s].candles.open_time[i:] + self.tf_ms for s, i in starts.items()]
        if not sum(len(c) for c in closes):
            return
        times = closes[0]
        if any(len(c) != len(times) or not np.array_equal(c, times) for c in closes[1:]):
            times = np.unique(np.concatenate(closes))
        start_cash, start_positions = before
        cash = _step_values(times, [e[0] for e in log], [start_cash] + [e[4] for e in log])
        equity = cash.copy()
        exposed = np.zeros(len(times), dtype=bool)
        for symbol in self.symbols:
            entries = [e for e in log if e[1] == symbol]
            q0, e0 = start_positions.get(symbol, (0.0, 0.0))
            if not entries and q0 == 0:
                continue
            candles = self.history[symbol].candles
            at = np.searchsorted(candles.open_time, times - self.tf_ms, "right") - 1
            marks = candles.close[np.maximum(at, 0)]
            when = [e[0] for e in entries]
            qty = _step_values(times, when, [q0] + [e[2] for e in entries])
            entry = _step_values(times, when, [e0] + [e[3] for e in entries])
            equity += np.where(at >= 0, qty * (marks - entry), 0.0)
            exposed |= qty != 0
        outcome.equity_time, outcome.equity, outcome.cash = times, equity, cash
        outcome.exposed = exposed


def _step_values(times: np.ndarray, when: list[int], values: list[float]) -> np.ndarray:
    """``values[k]`` at each time, where ``k`` counts the changes at ``when < time``
    (``values[0]`` is the value before the first change)."""
    k = np.searchsorted(np.asarray(when, dtype=np.int64), times, "left")
    return np.asarray(values, dtype=np.float64)[k]
