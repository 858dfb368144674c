"""The kernel: one event loop for backtest, paper and live trading.

The engine owns the bar window of each symbol, the run's strategy instance, its ledger (orders,
positions, cash from execution events) and the pending wake-ups. A batch of closed bars (the
whole history in a backtest, one bar per symbol in paper) is processed as a sequence of events
in time order, so the cost is per decision and per fill, not per bar:

* a **decision event** at a bar close ``t``: one call of ``strategy.decide`` for every symbol
  due at ``t`` (its candidates, its fired wake-ups) with the whole portfolio;
* a **fill event** at bar ``j``'s open: the simulated venue matches the orders bar ``j``
  triggers and the engine applies the execution events it answers with. Each symbol has at
  most one pending fill event, its first trigger; a decision renews it only for the symbols
  whose orders it touched.

At one instant, decisions on the bars that close then come before fills on the bars that open
then, so an order decided on bar ``t``'s close fills at bar ``t+1``'s open at the earliest.
Orders decided at the batch's last close are not sent by :meth:`Engine.process`: they wait in
:attr:`BatchOutcome.outbox` until the caller has committed them (store, then send) and calls
:meth:`Engine.send`. The engine never knows the mode: only the clock, the feed and the
execution client differ.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import numpy as np

from domain.candles import Candles
from domain.errors import UnknownSymbol
from domain.execution import DecimalMarks, to_decimal
from domain.ledger import Ledger, LedgerChanges
from domain.model import (
    ZERO,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Side,
    Signal,
    fast_constructor,
)
from domain.orders import END_OF_RUN_TAG, ExecutionEvent, submission_order
from domain.orders import ExecutionEventKind as K
from domain.pipeline_events import PipelineEvent
from domain.ports import BarMatcher, Clock, ExecutionClient, MarginAccount
from domain.risk import RiskEvent
from domain.strategies.base import (
    Decision,
    DecisionContext,
    OrderIntent,
    Portfolio,
    ReportsEvents,
    Strategy,
)
from domain.timeframes import timeframe_ms
from service_layer.equity import PositionStep, equity_curve
from service_layer.exits import exit_orders
from service_layer.history import CandleHistory
from service_layer.intents import orders_for
from service_layer.risk_gate import RiskGate
from service_layer.risk_looks import LOOK, RiskLooks
from service_layer.wakeups import WakeBook

logger = logging.getLogger(__name__)

_DECIDE, _FILL = 0, 2
"""Event phases at one instant: decisions on the bars closing, the risk gate's look at that
close (:data:`~service_layer.risk_looks.LOOK`), fills at the bars opening."""
_REFUSALS = (K.REJECTED, K.MODIFY_REJECTED, K.CANCEL_REJECTED)
"""Venue answers that refuse what was asked: reported with the batch's rejections."""


@dataclass(slots=True)
class BatchOutcome:
    """What one batch did.

    ``changes`` holds orders in their new states, fills, trades and positions; ``outbox`` the
    orders stored as ``pending_new`` and not yet sent; ``rejections`` the intents dropped and
    orders the venue rejected, with reasons (and the orders the risk gate refused or cut);
    ``skipped`` the feed's duplicate or out-of-order bars. ``equity_time`` holds bar close
    times (ms UTC), ``equity`` and ``cash`` the account value there (float, quote currency).
    ``risk_events`` are the risk gate's trading-state changes and alerts, in time order;
    ``pipeline_events`` the strategy's threshold adjustments and regime changes on these bars
    and what its decisions reported (an ML predictor disabled).
    """

    bars: dict[str, Candles]
    signals: list[Signal] = field(default_factory=list)
    changes: LedgerChanges = field(default_factory=LedgerChanges)
    outbox: list[Order] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    equity_time: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    equity: np.ndarray = field(default_factory=lambda: np.empty(0))
    cash: np.ndarray = field(default_factory=lambda: np.empty(0))
    exposed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    risk_events: list[RiskEvent] = field(default_factory=list)
    pipeline_events: list[PipelineEvent] = field(default_factory=list)


class Engine:
    """Drives one strategy instance and one execution client through bars of ``symbols``.

    Parameters
    ----------
    execution:
        Where orders go; ``matcher`` is the simulated venue's bar matching (the same object in
        backtest and paper mode, None for a live venue).
    ledger:
        The run's orders, positions and cash (restored from storage on a restart).
    window:
        Bars kept per symbol (None keeps all, as a backtest does); paper and live keep a bounded
        window so memory and per-bar cost do not grow with the run.
    margin:
        The account's futures margining (the simulated venue's, or a live venue's): the
        strategy sees its leverage per symbol in its portfolio (1x for a symbol it does not
        name, and for every symbol without one), the API its balance breakdown.
    leverage:
        Without ``margin``: the account's leverage per symbol as a live venue confirmed it
        (a read-only view the venue keeps current), what the strategy sees; None: none (1x,
        no futures margining).
    risk:
        The risk gate between the strategy's orders and the execution client (None: none,
        at no cost): it catches up at each decision that places orders and screens them;
        with a daily-loss close-all on, it also looks where it says a trip may happen
        (:attr:`RiskGate.next_look`) and at the close of every bar that changed the book.

    Raises
    ------
    UnknownSymbol
        When a symbol has no instrument rules.
    """

    def __init__(
        self,
        *,
        strategy: Strategy,
        execution: ExecutionClient,
        matcher: BarMatcher | None,
        clock: Clock,
        instruments: Mapping[str, Instrument],
        symbols: tuple[str, ...],
        timeframe: str,
        run_id: str,
        ledger: Ledger,
        window: int | None = None,
        margin: MarginAccount | None = None,
        leverage: Mapping[str, int] | None = None,
        risk: RiskGate | None = None,
    ) -> None:
        missing = [s for s in symbols if s not in instruments]
        if missing:
            raise UnknownSymbol(f"no instrument rules for {', '.join(missing)}", field="symbols")
        self.strategy = strategy
        self.instruments = dict(instruments)
        strategy.prepare(symbols, self.instruments)
        self.execution = execution
        self.matcher = matcher
        self.clock = clock
        self.symbols = symbols
        self.timeframe = timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.run_id = run_id
        self.ledger = ledger
        self.margin = margin
        self.leverage: Mapping[str, int] = (
            margin.leverage if margin is not None else leverage or MappingProxyType({})
        )
        limit = None if window is None else max(window, strategy.warmup_bars()) + 2
        self.history = {s: CandleHistory(limit=limit) for s in symbols}
        self.wakes = WakeBook()
        self._prices: dict[str, float] = {}  # the marks, kept as floats
        self.marks: Mapping[str, Decimal] = DecimalMarks(self._prices)
        self.candles_processed = 0
        self._touched: set[str] = set()
        self._trailing = False  # a trailing stop was seen: see _renew_fills
        self._funding_start = ZERO  # funding paid before the batch being processed
        self.risk = risk
        self.looks = None if risk is None else RiskLooks(risk, matcher, self.tf_ms)
        # A live venue's answers applied between batches (flush), which the risk gate reads
        # with the next batch's changes (it reads one batch's changes as they grow).
        self._between = LedgerChanges()
        self._batch: BatchOutcome | None = None
        self._gate_changes: LedgerChanges | None = None

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The kernel's and the strategy's path-dependent state (JSON-serializable)."""
        state = {"strategy": self.strategy.state(), "wakes": self.wakes.to_json()}
        if self.matcher is not None:
            state["venue"] = self.matcher.state()
        if self.risk is not None:
            state["risk"] = self.risk.state()
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` of an earlier process."""
        self.strategy.restore(state.get("strategy", {}))
        self.wakes = WakeBook.from_json(state.get("wakes", []))
        if self.matcher is not None:
            self.matcher.restore_state(state.get("venue", {}))
        if self.risk is not None and "risk" in state:
            self.risk.restore(state["risk"])

    def warm_up(self, history: Mapping[str, Candles]) -> None:
        """Feed bars that are never traded on (indicator warm-up, or the bars a restored run
        already processed) to the strategy and the windows."""
        fresh = {s: self._fresh(s, bars, None) for s, bars in history.items()}
        for symbol, bars in fresh.items():
            self.history[symbol].append(bars)
        self.strategy.on_bars(fresh)
        if isinstance(self.strategy, ReportsEvents):
            self.strategy.drain_events()  # reported when first processed, or never traded on
        self._mark_last_closes(fresh)

    def last_bar_time(self, symbol: str) -> int | None:
        """open_time (ms UTC) of the last bar of ``symbol`` seen, or None."""
        return self.history[symbol].last_time

    def portfolio(self, time: int | None = None) -> Portfolio:
        """The account at the latest marks (what the strategy and the API see).

        Positions, open orders and marks are read-only views of the engine's book, not copies:
        read them before the engine processes more events.
        """
        ledger = self.ledger
        account = ledger.account
        prices = self._prices
        equity = account.cash
        gross = ZERO
        for symbol, position in account.positions.items():
            price = prices.get(symbol)
            mark = position.entry_price if price is None else to_decimal(price)
            equity += position.qty * (mark - position.entry_price)
            gross += abs(position.qty) * mark
        return _portfolio(
            self.clock.now_ms() if time is None else time,
            equity,
            account.cash,
            gross,
            MappingProxyType(account.positions),
            ledger.open_by_symbol(),
            self.marks,
            self.instruments,
            self.leverage,
        )

    # -- processing -------------------------------------------------------------------------
    def process(self, batch: Mapping[str, Candles]) -> BatchOutcome:
        """Process newly closed bars (``{symbol: Candles}``) and return what happened.

        A bar not after the last one seen for its symbol (a feed's duplicate or out-of-order
        bar) is skipped with a log line.
        """
        outcome = self._batch = BatchOutcome(bars={})
        self._gate_changes = self._take_between()
        starts: dict[str, int] = {}
        for symbol, bars in batch.items():
            if symbol not in self.history:
                raise UnknownSymbol(f"bars for untraded symbol {symbol!r}", field="symbol")
            fresh = self._fresh(symbol, bars, outcome)
            if len(fresh):
                self.history[symbol].append(fresh)
                starts[symbol] = len(self.history[symbol]) - len(fresh)
                outcome.bars[symbol] = fresh
        candidates = self.strategy.on_bars(outcome.bars)
        if isinstance(self.strategy, ReportsEvents):
            outcome.pipeline_events = self.strategy.drain_events()
        before = self._snapshot()
        self._funding_start = self.ledger.account.funding_paid
        log = self._run_events(starts, candidates, outcome)
        if isinstance(self.strategy, ReportsEvents):  # what its decisions found (ML alerts)
            outcome.pipeline_events += self.strategy.drain_events()
        self._mark_last_closes(outcome.bars)
        self._apply_events(outcome, self.clock.now_ms())  # funding settled by the marks
        self._drain(outcome)
        fundings = [(p.time_ms, float(p.amount)) for p in outcome.changes.fundings]
        curve = equity_curve(
            {s: self.history[s].candles for s in self.symbols},
            starts,
            self.tf_ms,
            before,
            log,
            fundings,
        )
        if curve is not None:
            outcome.equity_time, outcome.equity, outcome.cash, outcome.exposed = curve
        self.candles_processed += sum(len(b) for b in outcome.bars.values())
        return outcome

    def send(self, orders: list[Order]) -> LedgerChanges:
        """Send stored ``pending_new`` orders to the execution client and apply its answers."""
        for order in orders:
            self._submit(order)
        return self.flush()

    def flush(self) -> LedgerChanges:
        """Apply what the execution client has said since the last call (answers to orders
        sent, cancels and amendments asked for between bars, events of a reconciliation; a
        live venue's fills as they come). The risk gate reads a live venue's fills applied
        here with the next batch, as it reads the simulated venue's fills on the bars."""
        outcome = BatchOutcome(bars={})
        self._apply_events(outcome, self.clock.now_ms())
        self._drain(outcome)
        outcome.changes.refused.extend(outcome.rejections)
        if self.risk is not None and self.matcher is None:  # a live venue's fills
            between, changes = self._between, outcome.changes
            between.fills += changes.fills
            between.positions += changes.positions
            between.trades += changes.trades
            between.fundings += changes.fundings
        return outcome.changes

    def submit_now(self, orders: list[Order]) -> None:
        """Record ``orders`` as ``pending_new`` in the ledger (the caller stores, then
        :meth:`send` s them)."""
        for order in orders:
            self.ledger.add(order)

    def request_cancel(self, order_id: str) -> None:
        """Ask the execution client to cancel ``order_id`` (answered by events)."""
        order = self.ledger.get(order_id)
        if order is not None and order.status is OrderStatus.PENDING_NEW:
            self.ledger.apply(ExecutionEvent(K.CANCELED, order_id, self.clock.now_ms()))
            return
        self._touch(order)
        self.execution.cancel(order_id)

    def request_modify(
        self,
        order_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        """Ask the execution client to amend ``order_id``: ``qty`` (base asset), ``price`` or
        ``stop_price`` (quote currency), None keeping a value (answered by events:
        ``modified`` or ``modify_rejected``)."""
        self._touch(self.ledger.get(order_id))
        self.execution.modify(order_id, qty=qty, price=price, stop_price=stop_price)

    def reconcile(self) -> list[str]:
        """Bring every non-final order in line with the execution client (at start, before any
        new decision): a ``pending_new`` order the venue does not know is sent (same client
        id), a known one takes the venue's state, a working order the venue lost is canceled.
        Returns what was done, one line each."""
        done: list[str] = []
        now = self.clock.now_ms()
        resend: list[Order] = []
        for order in self.ledger.open_orders():
            venue = self.execution.fetch_order(order.id)
            if venue is None and order.status is OrderStatus.PENDING_NEW:
                resend.append(order)
                done.append(f"order {order.id} was never acknowledged: sent again")
            elif venue is None:
                why = "the venue does not know the order"
                self.ledger.apply(ExecutionEvent(K.CANCELED, order.id, now, reason=why))
                done.append(f"order {order.id}: {why}; canceled")
            elif venue.status is not order.status and order.status is OrderStatus.PENDING_NEW:
                self.ledger.apply(ExecutionEvent(K.ACCEPTED, order.id, now, venue.venue_order_id))
                done.append(f"order {order.id} was acknowledged by the venue")
        held = {s: p.qty for s, p in self.ledger.account.positions.items()}
        for order in submission_order(resend, held):
            self._submit(order)
        return done

    def finish(self) -> BatchOutcome:
        """End of a backtest: cancel open orders and close positions at the last close."""
        outcome = BatchOutcome(bars={})
        assert self.matcher is not None, "finish() settles on the simulated venue"
        for symbol in self.symbols:
            candles = self.history[symbol].candles
            if not len(candles):
                continue
            end = int(candles.open_time[-1]) + self.tf_ms
            self.clock.advance_to(max(self.clock.now_ms(), end))
            for order in self.ledger.open_orders(symbol):
                self.request_cancel(order.id)
            self._apply_events(outcome, end)
            held = self.ledger.position(symbol).qty
            if held != 0:
                close = Order(
                    id=f"{self.run_id[:8]}-end-{symbol}"[:36],
                    symbol=symbol,
                    side=_closing_side(held),
                    type=OrderType.MARKET,
                    qty=abs(held),
                    created_time=end,
                    reduce_only=True,
                    tag=END_OF_RUN_TAG,
                )
                self.ledger.add(close)
                self.matcher.settle(close, to_decimal(candles.close[-1]), end)
                self._apply_events(outcome, end)
        self._drain(outcome)
        return outcome

    # -- the event loop ---------------------------------------------------------------------
    def _run_events(
        self,
        starts: Mapping[str, int],
        candidates: Mapping[str, np.ndarray],
        outcome: BatchOutcome,
    ) -> list[PositionStep]:
        due = _due_by_time(candidates, starts)
        last_close = max(
            (int(self.history[s].candles.open_time[-1]) + self.tf_ms for s in starts), default=0
        )
        # The candidates' decisions, in time order, merged with a heap of the other events
        # (fills, fired wake-ups): at one instant, decisions come first.
        decisions = sorted(due)
        k = 0
        heap: list[tuple[int, int, str, int]] = []
        self.wakes.schedule(self.history, self.tf_ms, heap)
        cursors = dict(starts)
        for symbol in starts:
            self._push_fill(heap, symbol, cursors)
        self._touched.clear()
        self._trailing = self._trailing or any(
            o.type is OrderType.TRAILING_STOP for o in self.ledger.open_orders()
        )
        log: list[PositionStep] = []
        decided: set[int] = set()
        looks = self.looks
        if looks is not None:
            if looks.look is not None:
                heapq.heappush(heap, (looks.look, LOOK, "", 0))
            elif any(len(self.history[s]) - i > 1 for s, i in starts.items()):
                first = min(int(self.history[s].candles.open_time[i]) for s, i in starts.items())
                looks.changed(first, heap)  # from the batch's first close on (a paper run
                # looks at the close of every one-bar batch: observe_risk)
        while heap or k < len(decisions):
            if k < len(decisions) and (not heap or decisions[k] <= heap[0][0]):
                t, phase, symbol, j = decisions[k], _DECIDE, "", 0
                k += 1
            else:
                t, phase, symbol, j = heapq.heappop(heap)
            if phase == LOOK:
                assert looks is not None
                stale = looks.take(t)
                if stale is None or t > last_close:
                    continue  # superseded by a sooner look, or past the batch
                self.clock.advance_to(t)
                self._look(t, stale, outcome, heap, send=t < last_close)
            elif phase == _FILL:
                self.clock.advance_to(t)
                if j == self._next_fill(symbol, cursors):  # else a stale event
                    self._fill_bar(symbol, j, log, outcome)
                    cursors[symbol] = j + 1
                    self._push_fill(heap, symbol, cursors)
                    self._touched.discard(symbol)
                    if looks is not None:
                        looks.changed(t, heap, held=bool(self.ledger.account.positions))
                continue
            elif t not in decided:
                self.clock.advance_to(t)
                decided.add(t)
                self._decide(t, due.get(t, set()), outcome, heap, send=t < last_close)
            if self._touched or self._trailing:
                self._renew_fills(t, cursors, heap)
        return log

    def _look(self, t: int, stale: bool, outcome: BatchOutcome, heap: list, *, send: bool) -> None:
        """The risk gate's look at the close ``t`` that no decision made: when the book
        changed since the plan (``stale``), plan again from it first, and look only when the
        gate cannot say or says the trip is here. A look that finds the daily-loss limit
        reached with close-all closes everything there, as paper trading (which looks at every
        close) does; the next look is planned from it."""
        looks = self.looks
        assert looks is not None
        if stale:
            planned, look = looks.plan(t - 1, self.ledger, self.history)  # closes from t on
            if planned and look != t:
                looks.push(heap, look)
                return
        self._mark_at(t)
        self._apply_events(outcome, t)
        self._observe(t, self.portfolio(t), outcome, send=send)
        self._apply_events(outcome, t)
        looks.push(heap, looks.plan(t, self.ledger, self.history)[1])

    def _renew_fills(self, t: int, cursors: dict[str, int], heap: list) -> None:
        """Push the next fill event of each symbol whose working orders the decision at ``t``
        touched. The pending event of any other symbol still names its first trigger (at or
        after ``t``: an earlier one would have been processed before the decision), except that
        a search also moves a trailing stop's level over the bars passed: symbols with one are
        searched again too, in symbol order, as every symbol once was."""
        for symbol in cursors:
            if symbol in self._touched or (
                self._trailing and self.ledger.has_open(symbol, OrderType.TRAILING_STOP)
            ):
                cursors[symbol] = max(cursors[symbol], self._first_open_after(symbol, t))
                self._push_fill(heap, symbol, cursors)
        self._touched.clear()

    def _first_open_after(self, symbol: str, t: int) -> int:
        """Index of the first bar of ``symbol`` that opens at or after ``t``."""
        times = self.history[symbol].candles.open_time
        i = _bar_at(times, t, self.tf_ms)
        return i if i >= 0 else int(times.searchsorted(t, "left"))

    def _next_fill(self, symbol: str, cursors: Mapping[str, int]) -> int | None:
        if self.matcher is None:
            return None
        return self.matcher.next_trigger(symbol, self.history[symbol].candles, cursors[symbol])

    def _push_fill(self, heap: list, symbol: str, cursors: Mapping[str, int]) -> None:
        j = self._next_fill(symbol, cursors)
        if j is not None:
            heapq.heappush(heap, (int(self.history[symbol].candles.open_time[j]), _FILL, symbol, j))

    def _fill_bar(
        self, symbol: str, j: int, log: list[PositionStep], outcome: BatchOutcome
    ) -> None:
        """Match bar ``j`` of ``symbol`` (which the caller found triggers an order) until no
        order fills on it any more, and log the position after it."""
        assert self.matcher is not None
        candles = self.history[symbol].candles
        time = int(candles.open_time[j])
        hit: int | None = j
        while hit == j:
            self.matcher.process_bar(symbol, candles, j)
            self._apply_events(outcome, time)
            hit = self.matcher.next_trigger(symbol, candles, j)
        position = self.ledger.position(symbol)
        # The cash of the fills alone: the batch's funding, settled whenever the venue met it,
        # is taken off the curve at its own times (equity_curve's ``fundings``).
        funded = self.ledger.account.funding_paid - self._funding_start
        cash = float(self.ledger.cash + funded)
        log.append(
            PositionStep(time, symbol, float(position.qty), float(position.entry_price), cash)
        )

    def _apply_events(self, outcome: BatchOutcome, time: int) -> None:
        """Apply the execution client's events; place the exits of filled entries."""
        while events := self.execution.drain_events():
            for event in events:
                order = self.ledger.apply(event)
                if order is None:
                    continue
                if event.kind in _REFUSALS:
                    what = "" if event.kind is K.REJECTED else f"{event.kind} of {order.id}: "
                    outcome.rejections.append(f"{order.symbol} at {time}: {what}{event.reason}")
                elif event.fill is not None and order.exits is not None:
                    position = self.ledger.position(order.symbol)
                    instrument = self.instruments[order.symbol]
                    for exit_order in exit_orders(order, position, instrument, time):
                        self.ledger.add(exit_order)
                        self._submit(exit_order)

    def _decide(
        self, t: int, due: set[str], outcome: BatchOutcome, heap: list, *, send: bool
    ) -> None:
        woken = self.wakes.fire(t) if self.wakes else ()
        if not due and not woken:
            return
        self._mark_at(t)  # the venue settles the funding due by t on the marks
        self._apply_events(outcome, t)  # what the venue said since: the strategy sees it
        portfolio = self.portfolio(t)
        risk = self.risk
        closed = _NOTHING_CLOSED if risk is None else risk.closed(due, t)
        ctx = _context(t, self.timeframe, portfolio, frozenset(due), woken, closed)
        decision: Decision = self.strategy.decide(ctx)
        outcome.signals.extend(decision.signals)
        for order_id in decision.cancel:
            self.request_cancel(order_id)
        for change in decision.modify:
            self._touch(self.ledger.get(change.order_id))
            self.execution.modify(
                change.order_id, qty=change.qty, price=change.price, stop_price=change.stop_price
            )
        if decision.wake or decision.drop_wakes:  # else the wake-ups and their search stand
            self.wakes.update(decision.wake, decision.drop_wakes, t)
            self.wakes.schedule(self.history, self.tf_ms, heap)
        # The gate catches up on everything since its last look only when it has orders to
        # screen (its inputs are exact whenever it looks) that it does not refuse for sure;
        # a close-all has looks of its own.
        orders = decision.orders
        if self.risk is not None and orders and self._refused_for_sure(orders, t, outcome):
            orders = ()
        if self.risk is not None and orders:
            self._observe(t, portfolio, outcome, send=send)
        if orders:
            self._place(orders, t, outcome, send=send, portfolio=portfolio)
            if self.looks is not None:
                self.looks.changed(t, heap, held=bool(self.ledger.account.positions))
        self._apply_events(outcome, t)

    def _refused_for_sure(
        self, intents: tuple[OrderIntent, ...], t: int, outcome: BatchOutcome
    ) -> bool:
        """True (and the refusals noted) when the risk gate refuses every one of ``intents``
        at ``t`` whatever it would see on catching up (a lasting hold: see
        :meth:`RiskGate.certain_refusal`): the decision then places nothing, without the
        gate's look."""
        risk = self.risk
        assert risk is not None
        positions = self.ledger.account.positions
        notes = []
        for intent in intents:
            position = positions.get(intent.symbol)
            held = ZERO if position is None else position.qty
            note = None if intent.qty <= 0 else risk.certain_refusal(
                intent.symbol, held, intent.side, intent.qty, intent.reduce_only, t
            )  # fmt: skip
            if note is None:
                return False
            notes.append(note)
        outcome.rejections.extend(notes)
        return True

    def observe_risk(self, outcome: BatchOutcome) -> None:
        """Let the risk gate see the account at the last close of the batch ``outcome``
        describes (paper and live call it after :meth:`process`, so that a trip is stored and
        pushed when it happens, not at the next decision); its events join the outcome, and a
        daily-loss close-all goes to the outbox (a backtest closes at the trip's close too:
        see :attr:`RiskGate.next_look`)."""
        if self.risk is None or not outcome.bars:
            return
        t = max(int(b.open_time[-1]) for b in outcome.bars.values() if len(b)) + self.tf_ms
        # process() drained the ledger into the outcome; a close-all adds to it again.
        if self._observe(t, self.portfolio(t), outcome, send=False, drain=False):
            self._drain(outcome)
        if self.looks is not None:  # this run looks at every batch's close: none planned
            self.looks.look, self.looks.stale = None, False

    def _observe(
        self,
        t: int,
        portfolio: Portfolio,
        outcome: BatchOutcome,
        *,
        send: bool,
        drain: bool = True,
    ) -> bool:
        """The risk gate's observation at ``t`` (after draining the ledger into ``outcome``:
        the fills and round trips since the last one); a daily-loss close-all cancels the
        working orders and closes every position (True then)."""
        risk = self.risk
        assert risk is not None
        if drain:
            self._drain(outcome)
        changes = outcome.changes if self._gate_changes is None else self._gate_changes
        risk.observe(t, portfolio, self.history, changes)
        closed = risk.close_all_due
        if closed:
            for order in self.ledger.open_orders():
                self.request_cancel(order.id)
            closing = risk.close_orders(portfolio, t, self.run_id)
            self._place((), t, outcome, send=send, first=closing)
        outcome.risk_events.extend(risk.drain_events())
        return closed

    def _place(
        self,
        intents: tuple[OrderIntent, ...],
        t: int,
        outcome: BatchOutcome,
        *,
        send: bool,
        portfolio: Portfolio | None = None,
        first: list[Order] | None = None,
    ) -> None:
        """Record the orders of ``intents`` decided at ``t``, as far as the risk gate lets
        them (``portfolio``: the account at ``t``); send them, or leave them in the outbox.
        ``first`` are orders of the engine's own (the risk gate's closes), placed before."""
        orders, dropped = orders_for(
            intents,
            run_id=self.run_id,
            strategy=self.strategy.name,
            time=t,
            ledger=self.ledger,
            instruments=self.instruments,
            marks=self.marks,
        )
        outcome.rejections.extend(dropped)
        if self.risk is not None and orders:
            orders, refused = self.risk.screen(orders, portfolio or self.portfolio(t), t)
            outcome.rejections.extend(refused)
        if first:
            orders = [o for o in first if self.ledger.get(o.id) is None] + orders
        for order in orders:
            self.ledger.add(order)
            if send:
                self._submit(order)
                self._apply_events(outcome, t)
            else:
                outcome.outbox.append(order)

    def _submit(self, order: Order) -> None:
        """Send ``order`` to the execution client (its symbol's fill event is renewed)."""
        self._touched.add(order.symbol)
        self._trailing = self._trailing or order.type is OrderType.TRAILING_STOP
        self.execution.submit(order)

    def _touch(self, order: Order | None) -> None:
        """Note that the venue's working orders of ``order``'s symbol may change (of every
        symbol when the ledger does not know the order)."""
        if order is None:
            self._touched.update(self.symbols)
        else:
            self._touched.add(order.symbol)

    # -- marks ------------------------------------------------------------------------------
    def _mark_at(self, t: int) -> None:
        """Mark every symbol at its last close at or before ``t``."""
        tf_ms = self.tf_ms
        bar_time = t - tf_ms
        prices = self._prices
        mark = None if self.matcher is None else self.matcher.mark
        i = -1
        for symbol in self.symbols:
            candles = self.history[symbol].candles
            times = candles.open_time
            # Symbols on one time grid share the index of the bar closing at t.
            if not (0 <= i < len(times) and times[i] == bar_time):
                i = _bar_at(times, bar_time, tf_ms)
            if i >= 0:  # the common case, inline: every decision marks every symbol
                price = prices[symbol] = float(candles.close[i])
                if mark is not None:
                    mark(symbol, price, t)
                continue
            last = int(times.searchsorted(bar_time, "right")) - 1
            if last >= 0:
                self._set_mark(symbol, float(candles.close[last]), int(times[last]) + tf_ms)

    def _mark_last_closes(self, bars_by_symbol: Mapping[str, Candles]) -> None:
        """Mark each symbol at its last close and move the clock to the latest close time."""
        for symbol, bars in bars_by_symbol.items():
            if len(bars):
                close_time = int(bars.open_time[-1]) + self.tf_ms
                self._set_mark(symbol, float(bars.close[-1]), close_time)
                self.clock.advance_to(max(self.clock.now_ms(), close_time))

    def _set_mark(self, symbol: str, price: float, time: int) -> None:
        self._prices[symbol] = price
        if self.matcher is not None:
            self.matcher.mark(symbol, price, time)

    # -- helpers ----------------------------------------------------------------------------
    def _fresh(self, symbol: str, bars: Candles, outcome: BatchOutcome | None) -> Candles:
        """``bars`` without those not after the last bar seen (logged, never fatal)."""
        last = self.history[symbol].last_time
        if last is None or not len(bars) or int(bars.open_time[0]) > last:
            return bars
        keep = int(bars.open_time.searchsorted(last, "right"))
        note = f"{symbol}: skipped {keep} duplicate or out-of-order bar(s) at or before {last}"
        logger.warning(note)
        if outcome is not None:
            outcome.skipped.append(note)
        return bars.slice(keep, len(bars))

    def _snapshot(self) -> tuple[float, dict[str, tuple[float, float]]]:
        positions = {
            s: (float(p.qty), float(p.entry_price))
            for s, p in self.ledger.account.positions.items()
        }
        return float(self.ledger.cash), positions

    def _drain(self, outcome: BatchOutcome) -> None:
        changes = self.ledger.drain()
        for refused in changes.refused:
            logger.warning("execution event refused: %s", refused)
        _extend(outcome.changes, changes)
        if self._gate_changes is not None and outcome is self._batch:
            _extend(self._gate_changes, changes)

    def _take_between(self) -> LedgerChanges | None:
        """What the risk gate reads this batch when a live venue's answers were applied
        between batches: those first, then the batch's own changes as they come (None: the
        batch's changes alone)."""
        between = self._between
        if not (between.fills or between.trades or between.fundings):
            return None
        self._between = LedgerChanges()
        return between


# Built once per decision, with every field given: they have no checks to skip.
_portfolio = fast_constructor(Portfolio, validate=False)
_context = fast_constructor(DecisionContext, validate=False)
_NOTHING_CLOSED: frozenset[str] = frozenset()


def _extend(into: LedgerChanges, changes: LedgerChanges) -> None:
    """Append ``changes`` to ``into``, list by list."""
    into.orders.extend(changes.orders)
    into.fills.extend(changes.fills)
    into.fundings.extend(changes.fundings)
    into.trades.extend(changes.trades)
    into.positions.extend(changes.positions)
    into.refused.extend(changes.refused)


def _closing_side(held: Decimal) -> Side:
    return Side.SELL if held > 0 else Side.BUY


def _due_by_time(
    candidates: Mapping[str, np.ndarray], starts: Mapping[str, int]
) -> dict[int, set[str]]:
    """The symbols due at each candidate close time (ms UTC), for the symbols with bars."""
    due: dict[int, set[str]] = {}
    for symbol, times in candidates.items():
        if symbol in starts:
            for t in times.tolist():
                due.setdefault(t, set()).add(symbol)
    return due


def _bar_at(times: np.ndarray, time: int, tf_ms: int) -> int:
    """Index of the bar opening at ``time`` (ms UTC) when ``times`` has no gap before it, found
    without a search; -1 otherwise (no such bar, or a gap: search instead)."""
    if not len(times):
        return -1
    i = (time - int(times[0])) // tf_ms
    return i if 0 <= i < len(times) and times[i] == time else -1
