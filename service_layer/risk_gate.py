"""The risk gate between a strategy's orders and the execution client.

It owns the account's :class:`~domain.risk.CircuitBreakers` and its :class:`RiskConfig`, and
answers the engine two things:

* :meth:`RiskGate.observe` at a decision time ``t``: the breakers are fed, in time order,
  everything since the last observation ``t0``: the equity at the closes in ``(t0, t)`` where the
  daily loss limit needs it (each UTC day's first close, the day's first close at or below the
  limit), from the book at ``t0`` and the fills and funding since
  (:func:`~service_layer.risk_inputs.segments`: one reduction of the closes per stretch of one
  book and one day, the exact path only where the limit is reached); the round trips closed;
  the bar closes at which a symbol's ATR percentile or RVOL crossed a breaker's level
  (:func:`~service_layer.risk_inputs.bar_events`, vectorized once per batch of bars); then the
  exact equity at ``t``. So the breakers move exactly as if fed every bar close, whenever the
  gate looks, for a cost per look that does not grow with the bars in between. The engine
  therefore looks only when the answer matters: at a decision with orders to screen and, with
  a daily-loss close-all on, at the close where the book it saw last trips the limit
  (:attr:`RiskGate.next_look`, one vectorized search) and after every change of the book. Paper
  and live runs also look at every batch's last close (:meth:`Engine.observe_risk`), so a trip
  is stored and pushed when it happens.
* :meth:`RiskGate.screen` for the orders a decision builds: an order the trading state does not
  admit, or an entry over the max open positions or the max leverage, is refused with the
  reason; with ``sizing`` on, an entry is first cut to what
  :func:`~domain.risk.size_position` allows (its stop distance from the order's exit plan).

A daily-loss trip with ``close_all`` makes :attr:`RiskGate.close_all_due` true: the engine
cancels the working orders and places :meth:`RiskGate.close_orders`, reduce-only market orders
closing every position at the trip's close (in a backtest as in paper and live).
The state (breakers, book, pending trades) is JSON (:meth:`RiskGate.state`).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from domain.execution import to_decimal
from domain.ledger import LedgerChanges
from domain.model import ZERO, Order, OrderType, Position, Side
from domain.orders import client_order_id
from domain.risk import (
    ACCOUNT,
    AlertKind,
    Breaker,
    CircuitBreakers,
    Hold,
    RiskAlert,
    RiskEvent,
    TradingState,
    admits,
    most_restrictive,
    position_after,
)
from domain.strategies.base import Portfolio
from domain.timeframes import timeframe_ms
from service_layer.history import CandleHistory
from service_layer.risk_config import RiskConfig
from service_layer.risk_inputs import (
    DAY_MS,
    BarEvent,
    Book,
    MarkGrid,
    Segment,
    Step,
    bar_events,
    close_after,
    equity_at,
    equity_bound,
    equity_extreme,
    mark_grid,
    segment_equity,
    segment_equity_at,
    segments,
)
from service_layer.risk_sizing import order_price as _price
from service_layer.risk_sizing import size_entry

RISK_TAG = "risk"
"""The tag of the orders the gate places itself (closing everything after a daily-loss trip)."""
_VERSION = 1
_BAR, _EQUITY, _TRADE = 0, 1, 2
_ORDER = itemgetter(0, 1)
"""The order the breakers are fed in: time, then bar flips before equity before trades."""
_NONE: frozenset[str] = frozenset()
_LASTING = (Breaker.DAILY_LOSS, Breaker.CONSECUTIVE_LOSSES, Breaker.MANUAL)
"""Breakers whose holds lift only at their expiry or by hand (a volatility hold lifts on the
bars: not known before the gate catches up)."""
"""Feed order at one instant: a bar's close comes before the fills at the next bar's open."""


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The equity curve as the gate saw it (every bar close it observed or computed): the
    ``peak`` (quote currency) and when, the ``current`` and ``max`` fall below the running
    peak (fractions) and the ``equity`` at ``time`` (ms UTC). Zeros before any observation."""

    peak: float = 0.0
    peak_time: int = 0
    current: float = 0.0
    max: float = 0.0
    equity: float = 0.0
    time: int = 0


@dataclass(frozen=True, slots=True)
class RiskStatus:
    """What the gate holds at ``time``: each scope's trading state (the account and every
    symbol with a state of its own), the holds with their reasons, the symbols whose volume
    is unusual now, the losing trades in a row, the config and the drawdown seen."""

    time: int
    account: TradingState
    symbols: dict[str, TradingState]
    holds: tuple[Hold, ...]
    loud: tuple[str, ...]
    consecutive_losses: int
    config: RiskConfig
    drawdown: Drawdown


class RiskGate:
    """The risk gate of one account; see the module docstring.

    Parameters
    ----------
    config:
        What to enforce (the default: nothing but manual halts).
    timeframe:
        The engine's bar timeframe.
    leverage:
        The venue's leverage (sizing's available-margin cap: margin = equity − gross /
        leverage).
    track_drawdown:
        Follow the drawdown at every observation, and at every close between two of them
        where a rule computes the equity anyway (for :meth:`status`: paper and live runs,
        which observe every bar close).
    """

    def __init__(
        self,
        config: RiskConfig | None = None,
        *,
        timeframe: str,
        leverage: Decimal = Decimal(1),
        track_drawdown: bool = False,
    ) -> None:
        self._config = config or RiskConfig()
        self.breakers = CircuitBreakers(self._config.breakers)
        self.tf_ms = timeframe_ms(timeframe)
        self.leverage = leverage
        self.track_drawdown = track_drawdown
        self.events: list[RiskEvent] = []
        """Events of the observations since the last :meth:`drain_events`."""
        self.close_all_due = False
        self._fed: int | None = None  # time of the last observation
        self._book: Book | None = None  # the account then
        self._steps: list[Step] = []  # its changes since
        self._trades: list[tuple[int, Decimal]] = []  # round trips closed since
        self._cash: Decimal | None = None  # cash after the last step
        self._source: LedgerChanges | None = None
        self._seen = (0, 0, 0)  # fills, trades, fundings of _source taken in
        self._key: tuple[int | None, ...] | None = None  # the bars the inputs were built on
        self._pending: list[tuple[int, int, BarEvent]] = []  # input flips (time, _BAR, flip)
        self._pending_times: list[int] = []  # their times, for the search
        self._next = 0  # fed up to here
        self._grid: MarkGrid | None = None
        self._day: int | None = None  # the breakers' day and its starting equity, mirrored
        self._day_start: float | None = None
        self._dd = Drawdown()
        self._holds = False
        self._moved = False  # a fill or a funding payment was seen
        self._look: int | None = None
        self._slack = 0.0

    # -- configuration ---------------------------------------------------------------------
    @property
    def config(self) -> RiskConfig:
        """What the gate enforces now."""
        return self._config

    def configure(self, config: RiskConfig, time: int) -> list[RiskEvent]:
        """Enforce ``config`` from ``time`` (ms UTC) on; returns the events of the holds that
        a disabled breaker lifts."""
        self._config = config
        self.breakers.config = config.breakers
        self._key, self._pending, self._pending_times = None, [], []  # inputs again: new levels
        self._next = 0
        self._book, self._cash, self._steps = None, None, []  # the path from the next one
        self._look = None
        return self._after(self.breakers.advance(time))

    # -- observation -----------------------------------------------------------------------
    def observe(
        self,
        t: int,
        portfolio: Portfolio,
        history: Mapping[str, CandleHistory],
        changes: LedgerChanges,
    ) -> None:
        """Feed the breakers everything from the last observation to ``t`` (ms UTC, a bar
        close); ``portfolio`` is the account at ``t``, ``history`` the engine's bar windows,
        ``changes`` the ledger changes of the current batch so far (the gate remembers how
        far it read them; a new batch of bars comes with a new object, and only then are the
        per-bar inputs built again). Events go to :attr:`events`."""
        new_batch = self._take(changes)
        cfg = self._config.breakers
        bars = cfg.volatility_spike.enabled or cfg.unusual_volume.enabled
        path = self._needs_path()
        if (bars or path) and (new_batch or self._key is None):
            self._prepare(history, bars, path)
        k = self._next
        end = bisect_right(self._pending_times, t, k)
        feed: list[tuple[int, int, Any]] = self._pending[k:end]  # in (time, kind) order
        self._next = end
        extra: list[tuple[int, int, Any]] = []
        if path and self._grid is not None and len(self._grid.times):
            start, book = self._fed, self._book
            if start is None and not self._moved and not portfolio.positions:
                # Nothing has filled yet: the account held its cash since the first bar.
                start, book = self._grid.times[0] - 1, Book(float(portfolio.cash), {})
            if start is not None and book is not None:
                extra = self._equity_points(t, start, book)
        if self._trades:
            extra += [(time, _TRADE, pnl) for time, pnl in self._trades]
            self._trades = []
        for point in extra:  # a few, into the many flips (a sort would key every flip)
            insort(feed, point, key=_ORDER)
        cb = self.breakers
        events: list[RiskEvent] = []
        for time, kind, item in feed:
            if kind == _BAR:
                events += cb.on_bar(item.symbol, time, item.atr_pct, item.rvol)
            elif kind == _EQUITY:
                events += self._equity(time, item)
            else:
                events += cb.on_trade(time, item)
        equity = portfolio.equity
        if cfg.daily_loss.enabled and not self._quiet(t, equity):
            events += self._equity(t, equity)
        elif self._holds:  # lift the holds that expired (each dated at its expiry)
            events += cb.advance(t)
        self._fed = t
        if self.track_drawdown or self._config.limits.drawdown_steps:
            self._seen_equity(t, float(equity))
        if path:
            self._book = Book(
                float(portfolio.cash),
                {s: (float(p.qty), float(p.entry_price)) for s, p in portfolio.positions.items()},
            )
            self._cash, self._steps = portfolio.cash, []
        if events:
            self.events += self._after(events)

    @property
    def watching(self) -> bool:
        """True when a daily-loss trip closes every position: the gate must then look at the
        account when the trip happens (:attr:`next_look`), not only when orders come."""
        daily = self._config.breakers.daily_loss
        return daily.enabled and daily.close_all

    @property
    def next_look(self) -> int | None:
        """The bar close (ms UTC) at which the gate must look again (:meth:`observe`) to close
        everything on time, as planned by the last :meth:`replan`: the first close at which
        that book trips the daily loss limit, else the first close a day on (the search goes on
        from there). None when nothing is held, no close is left or no close-all rule is on. A
        change of the book (a fill, a funding payment) makes it stale."""
        return self._look

    @property
    def slack(self) -> float:
        """At least how far (quote currency) the equity of the book the gate saw last stays
        above the daily-loss floor at every close before :attr:`next_look` (a bound from the
        days' extreme closes where that clears the floor; 0 when unknown): a funding
        payment smaller than this cannot make a trip come sooner."""
        return self._slack

    def drain_events(self) -> list[RiskEvent]:
        """The events since the last call, in time order."""
        events, self.events = self.events, []
        return events

    def _needs_path(self) -> bool:
        """Whether a rule needs the equity between observations (the drawdown followed for
        :meth:`status` does not: paper and live observe every bar close)."""
        cfg = self._config
        return cfg.breakers.daily_loss.enabled or (cfg.sizing and bool(cfg.limits.drawdown_steps))

    def _take(self, changes: LedgerChanges) -> bool:
        """Take in the fills, funding and round trips of ``changes`` not read yet (first the
        rest of the previous batch's, when ``changes`` is a new batch's: True then)."""
        new = changes is not self._source
        if new:
            if self._source is not None:
                self._read(self._source)
            self._source, self._seen = changes, (0, 0, 0)
        self._read(changes)
        return new

    def _read(self, changes: LedgerChanges) -> None:
        nf, nt, nu = self._seen
        fills, trades, fundings = changes.fills, changes.trades, changes.fundings
        if len(trades) > nt:
            self._trades += [(t.exit_time, t.pnl) for t in trades[nt:]]
        if (len(fills) > nf or len(fundings) > nu) and self._cash is not None:
            # The ledger records the position after each fill, one per fill, in order.
            moves = [
                (f.time, 0, f.symbol, p.qty, p.entry_price, f.realized_pnl - f.fee)
                for f, p in zip(fills[nf:], changes.positions[nf:], strict=False)
            ]
            if len(fundings) > nu:
                moves += [(p.time_ms, 1, "", ZERO, ZERO, -p.amount) for p in fundings[nu:]]
                moves.sort(key=itemgetter(0, 1))
            cash = self._cash
            for time, _, symbol, qty, entry, delta in moves:
                cash += delta
                self._steps.append(Step(time, symbol, float(qty), float(entry), float(cash)))
            self._cash = cash
        self._moved = self._moved or len(fills) > nf or len(fundings) > nu
        self._seen = (len(fills), len(trades), len(fundings))

    def _prepare(self, windows: Mapping[str, CandleHistory], bars: bool, path: bool) -> None:
        """Build the inputs on the bars the windows hold now (once per batch of bars)."""
        key = tuple(w.last_time for w in windows.values())
        if key == self._key:
            return
        self._key = key
        history = {s: w.candles for s, w in windows.items()}
        if path:
            self._grid = mark_grid(history, self.tf_ms, self._fed)
        if not bars:
            return
        cfg = self._config.breakers
        vol = cfg.volatility_spike
        levels = (vol.percentile_pct, vol.release) if vol.enabled else None
        volume = cfg.unusual_volume.rvol if cfg.unusual_volume.enabled else None
        held = {h.scope for h in self.breakers.holds_of(Breaker.VOLATILITY_SPIKE)}
        loud = set(self.breakers.state()["loud"]) if volume is not None else set()
        events: list[BarEvent] = []
        for symbol, candles in history.items():
            events += bar_events(
                symbol, candles, self.tf_ms, after=self._fed, inputs=self._config.inputs,
                volatility=levels, volume=volume, vol_held=symbol in held, loud=symbol in loud,
            )  # fmt: skip
        events.sort(key=attrgetter("time"))
        self._pending = [(e.time, _BAR, e) for e in events]
        self._pending_times, self._next = [e.time for e in events], 0

    def _equity_points(self, t: int, t0: int, book: Book) -> list[tuple[int, int, Any]]:
        """The closes in ``(t0, t)`` (``book`` held at ``t0``) the breakers must see: each UTC
        day's first close and the day's first close at or below the daily loss limit. Per
        stretch of one book and one day, the lowest equity is one reduction of the closes (one
        symbol held) and the path is computed only where it reaches the limit; the peak is
        followed likewise."""
        assert self._grid is not None
        grid = self._grid
        close, times, day_rows = grid.close_time, grid.times, grid.day_rows
        daily = self._config.breakers.daily_loss
        limit = 1.0 - float(daily.limit)
        exact = self.track_drawdown
        peak = exact or bool(self._config.limits.drawdown_steps)
        held_until = max(
            (h.until or 0 for h in self.breakers.holds_of(Breaker.DAILY_LOSS)), default=0
        )
        points: list[tuple[int, int, Any]] = []
        for seg in segments(grid, t0, t, book, self._steps):
            if exact:
                self._seen_path(close[seg.a : seg.b], segment_equity(grid, seg, seg.a, seg.b))
            a = seg.a
            while a < seg.b:
                day = times[a] // DAY_MS
                d = bisect_right(day_rows, a)  # the next day's index: its first row ends b
                b = min(seg.b, day_rows[d]) if d < len(day_rows) else seg.b
                d -= 1
                start = self._day_start
                if daily.enabled and (self._day is None or day > self._day):
                    start = equity_at(grid, seg, a)
                    points.append((times[a], _EQUITY, start))
                    self._day, self._day_start = day, start
                floor = start * limit if start is not None and start > 0 else None
                if not daily.enabled or held_until > times[a]:
                    floor = None
                # The day's extreme closes bound the rows' equity: the rows are reduced only
                # where the bound does not clear the peak or the floor (rarely).
                top_bound = equity_bound(grid, seg, d, high=True) if peak and not exact else 0.0
                if peak and not exact and not _below(top_bound, self._dd.peak):
                    top = equity_extreme(grid, seg, a, b, high=True)
                    if top > self._dd.peak:
                        self._seen_path(close[a:b], segment_equity(grid, seg, a, b))
                if (
                    floor is not None
                    and not _below(floor, equity_bound(grid, seg, d))
                    and equity_extreme(grid, seg, a, b) <= floor
                ):
                    hit = np.flatnonzero(segment_equity(grid, seg, a, b) <= floor)
                    if len(hit):  # (the bound and the path round alike but not identically)
                        i = a + int(hit[0])
                        points.append((times[i], _EQUITY, equity_at(grid, seg, i)))
                        held_until = (day + 1) * DAY_MS
                a = b
        return points

    @property
    def observed_at(self) -> int | None:
        """The bar close (ms UTC) of the last observation, None before the first."""
        return self._fed

    def replan(self, t: int, cash: Decimal, positions: Mapping[str, Position]) -> bool:
        """Plan :attr:`next_look` again for the book changed at ``t`` (ms UTC, a fill at a
        bar's open: ``cash`` and ``positions`` after it), without observing. False when it
        cannot (no close-all rule, or a UTC day has begun since the last observation: its
        start is not known); the caller looks at the next close then."""
        if not self.watching or self._day is None or t // DAY_MS != self._day:
            return False
        held = {s: (float(p.qty), float(p.entry_price)) for s, p in positions.items()}
        self._look = self._plan(t, Book(float(cash), held))
        return True

    def _plan(self, t: int, book: Book | None) -> int | None:
        """:attr:`next_look` for ``book`` held after ``t``: one vectorized pass over the
        closes of the next day, at most two UTC days: this one, whose start the breakers know
        (no trip while its daily-loss hold lasts), and the next, which starts at its first
        close. It errs towards looking (a tolerance on the float floor): a look that finds no
        trip only plans again."""
        grid, start = self._grid, self._day_start
        self._slack = 0.0
        if grid is None or book is None or not book.held or start is None:
            return None
        times, tf_ms = grid.times, self.tf_ms
        lo, hi = close_after(times, t, tf_ms), close_after(times, t + DAY_MS, tf_ms)
        end = times[hi] if hi < len(times) else None
        if lo >= hi:
            return end
        seg = Segment(lo, hi, book.cash, book.held)
        keep = 1.0 - float(self._config.breakers.daily_loss.limit)
        cut = close_after(times, (t // DAY_MS + 1) * DAY_MS - 1, tf_ms) - lo
        held = any(
            h.until is None or h.until > t for h in self.breakers.holds_of(Breaker.DAILY_LOSS)
        )
        slack = float("inf")
        for a, b, first in ((0, cut, start), (cut, hi - lo, None)):
            if a >= b or (first is not None and held):
                continue
            if first is None:
                first = segment_equity_at(grid, seg, lo + a)
            floor = first * keep * (1.0 + 1e-9) + 1e-9
            if first <= 0:
                continue
            # Each piece lies in one UTC day: the day's bound spares the rows' path (usually).
            low = equity_bound(grid, seg, bisect_right(grid.day_rows, lo + a) - 1)
            if not _below(floor, low):
                equity = segment_equity(grid, seg, lo + a, lo + b)
                low = float(equity.min())
                if low <= floor:
                    return times[lo + a + int(np.argmax(equity <= floor))]
            slack = min(slack, low - floor)
        self._slack = slack
        return end

    def _quiet(self, t: int, equity: Decimal) -> bool:
        """True when the daily loss limit's check of ``equity`` at ``t`` could only move the
        breakers' clock: same day as the last point, and equity clearly above the limit (or
        the limit held already)."""
        start = self._day_start
        if self._day != t // DAY_MS or start is None:
            return False
        if self.breakers.holds_of(Breaker.DAILY_LOSS):
            return True
        floor = start * (1.0 - float(self._config.breakers.daily_loss.limit))
        return float(equity) > floor * (1.0 + 1e-9) + 1e-9

    def _equity(self, time: int, equity: float | Decimal) -> list[RiskEvent]:
        value = equity if isinstance(equity, Decimal) else to_decimal(equity)
        day = time // DAY_MS
        if self._day is None or day > self._day:
            self._day, self._day_start = day, float(value)
        return self.breakers.on_equity(time, value)

    def _seen_path(self, times: np.ndarray, equity: np.ndarray) -> None:
        dd = self._dd
        top = int(np.argmax(equity))
        peak, peak_time = dd.peak, dd.peak_time
        if equity[top] >= peak:
            peak, peak_time = float(equity[top]), int(times[top])
        worst = dd.max
        if self.track_drawdown and len(equity) > 1:
            running = np.maximum.accumulate(np.maximum(equity, dd.peak))
            worst = max(worst, float(np.max(1.0 - equity / running)))
        self._dd = Drawdown(peak, peak_time, dd.current, worst, dd.equity, dd.time)

    def _seen_equity(self, t: int, equity: float) -> None:
        dd = self._dd
        peak, peak_time = (equity, t) if equity >= dd.peak else (dd.peak, dd.peak_time)
        current = max(0.0, 1.0 - equity / peak) if peak > 0 else 0.0
        self._dd = Drawdown(peak, peak_time, current, max(dd.max, current), equity, t)

    def _after(self, events: list[RiskEvent]) -> list[RiskEvent]:
        """Note what ``events`` change for the order checks."""
        if events:
            self._holds = bool(self.breakers.holds())
            if any(isinstance(e, RiskAlert) and e.kind is AlertKind.CLOSE_ALL for e in events):
                self.close_all_due = True
        return events

    # -- orders ----------------------------------------------------------------------------
    def certain_refusal(
        self, symbol: str, held: Decimal, side: Side, qty: Decimal, reduce_only: bool, time: int
    ) -> str | None:
        """Why an order on ``symbol`` (``qty`` > 0 base asset against the signed position
        ``held``) is refused at ``time`` (ms UTC) whatever the gate would see on catching up
        since its last observation: a hold that only time or a person lifts (daily loss,
        consecutive losses, by hand) live then, whose state does not admit the order; None
        when that is not certain. Reads the breakers, moves nothing."""
        live = self._lasting(symbol, time)
        if not live:
            return None
        refused = admits(most_restrictive(*(h.state for h in live)), held, side, qty, reduce_only)
        if refused is None:
            return None
        worst = max(live, key=lambda h: h.state.severity)
        return f"{symbol} at {time}: {symbol}: {refused} ({worst.reason}); dropped"

    def closed(self, symbols: Iterable[str], time: int) -> frozenset[str]:
        """Those of ``symbols`` on which no new exposure can open at ``time`` (ms UTC),
        whatever the gate would see on catching up: a hold that only time or a person lifts
        (daily loss, consecutive losses, by hand) holds them reducing or halted then. A
        strategy skips their entries (the gate would refuse them). Moves nothing."""
        if not self._holds:
            return _NONE
        return frozenset(
            s
            for s in symbols
            if any(h.state is not TradingState.ACTIVE for h in self._lasting(s, time))
        )

    def _lasting(self, symbol: str, time: int) -> list[Hold]:
        """The holds on ``symbol`` (its own or the account's) that only time or a person
        lifts, live at ``time``."""
        if not self._holds:
            return []
        return [
            h
            for h in self.breakers.holds()
            if h.source in _LASTING and h.scope in (ACCOUNT, symbol) and h.live_at(time)
        ]

    def check(
        self, order: Order, position_qty: Decimal, portfolio: Portfolio, time: int
    ) -> str | None:
        """None when ``order`` may go to the venue at ``time`` (ms UTC) against the signed
        position ``position_qty`` (base asset) and the account ``portfolio``; else why not."""
        return self._refusal(
            order, position_qty, portfolio, time, _open_count(portfolio), portfolio.margin_used
        )

    def screen(
        self, orders: Sequence[Order], portfolio: Portfolio, time: int
    ) -> tuple[list[Order], list[str]]:
        """The orders of one decision at ``time`` that may go, resized by the sizing rules
        when those are on, and one line for each order refused or cut. Entries are counted as
        they pass: two entries at once cannot both take the last open position."""
        cfg = self._config
        b = cfg.breakers
        limits = b.max_open_positions.enabled or b.max_leverage.enabled
        if not (self._holds or cfg.sizing or limits):
            return list(orders), []
        kept: list[Order] = []
        notes: list[str] = []
        count, gross = _open_count(portfolio), portfolio.margin_used
        for order in orders:
            held = _held(portfolio, order.symbol)
            if cfg.sizing and not order.reduce_only:
                sized, note = self._size(order, held, portfolio, gross)
                if note:
                    notes.append(f"{order.symbol} at {time}: {note}")
                if sized is None:
                    continue
                order = sized
            after = position_after(held, order.side, order.qty, order.reduce_only)
            adds = abs(after) > abs(held)
            # Only a hold refuses an order that adds no exposure.
            if self._holds or (adds and limits):
                refused = self._refusal(order, held, portfolio, time, count, gross)
                if refused is not None:
                    notes.append(f"{order.symbol} at {time}: {refused}; dropped")
                    continue
            kept.append(order)
            if adds:
                count += held == 0
                gross += (abs(after) - abs(held)) * _price(order, portfolio)
        return kept, notes

    def _refusal(
        self,
        order: Order,
        held: Decimal,
        portfolio: Portfolio,
        time: int,
        count: int,
        gross: Decimal,
    ) -> str | None:
        return self.breakers.refusal(
            time,
            order.symbol,
            position_qty=held,
            side=order.side,
            qty=order.qty,
            reduce_only=order.reduce_only,
            price=_price(order, portfolio),
            open_positions=count,
            gross_notional=gross,
            equity=portfolio.equity,
        )

    def _size(
        self, order: Order, held: Decimal, portfolio: Portfolio, gross: Decimal
    ) -> tuple[Order | None, str]:
        dd = self._dd
        equity = float(portfolio.equity)
        drawdown = Decimal(str(min(1.0, max(0.0, 1.0 - equity / dd.peak)))) if dd.peak > 0 else ZERO
        return size_entry(
            order, held, portfolio, gross, self._config.limits, self.leverage, drawdown
        )

    def close_orders(self, portfolio: Portfolio, time: int, run_id: str) -> list[Order]:
        """Reduce-only market orders closing every position, decided at ``time`` (ms UTC),
        with deterministic ids (a decision replayed after a restart places none twice)."""
        self.close_all_due = False
        orders = []
        for symbol, position in sorted(portfolio.positions.items()):
            if position.qty == 0:
                continue
            orders.append(
                Order(
                    id=client_order_id(run_id, RISK_TAG, symbol, time, 0),
                    symbol=symbol,
                    side=Side.SELL if position.qty > 0 else Side.BUY,
                    type=OrderType.MARKET,
                    qty=abs(position.qty),
                    created_time=time,
                    reduce_only=True,
                    tag=RISK_TAG,
                )
            )
        return orders

    # -- by hand ---------------------------------------------------------------------------
    def halt(
        self,
        time: int,
        reason: str,
        who: str,
        scope: str = ACCOUNT,
        state: TradingState = TradingState.HALTED,
    ) -> list[RiskEvent]:
        """Hold ``scope`` in ``state`` by hand until :meth:`resume` (the events returned, not
        queued: the caller stores them with ``who``)."""
        return self._after(self.breakers.halt(time, scope, f"{reason} ({who})", state))

    def resume(self, time: int, scope: str = ACCOUNT) -> list[RiskEvent]:
        """Lift the manual and consecutive-losses holds of ``scope`` (events returned)."""
        return self._after(self.breakers.resume(time, scope))

    # -- reading ---------------------------------------------------------------------------
    def status(self, time: int, symbols: Sequence[str]) -> RiskStatus:
        """The gate at ``time`` (ms UTC) for the traded ``symbols``."""
        cb = self.breakers
        return RiskStatus(
            time=time,
            account=cb.trading_state(ACCOUNT, time),
            symbols={s: cb.trading_state(s, time) for s in symbols},
            holds=tuple(h for h in cb.holds() if h.live_at(time)),
            loud=tuple(cb.state()["loud"]),
            consecutive_losses=cb.consecutive_losses,
            config=self._config,
            drawdown=self._dd,
        )

    # -- persistence -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The path-dependent state, JSON-serializable (after taking in the rest of the
        current batch's ledger changes)."""
        if self._source is not None:
            self._read(self._source)
        book = self._book
        dd = self._dd
        return {
            "version": _VERSION,
            "breakers": self.breakers.state(),
            "fed": self._fed,
            "book": None if book is None else {"cash": book.cash, "held": book.held},
            "cash": None if self._cash is None else str(self._cash),
            "steps": [list(s) for s in self._steps],
            "trades": [[t, str(p)] for t, p in self._trades],
            "day": [self._day, self._day_start],
            "drawdown": [dd.peak, dd.peak_time, dd.current, dd.max, dd.equity, dd.time],
            "close_all": self.close_all_due,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` of an earlier process.

        Raises
        ------
        ValueError
            When ``state`` is of another version or malformed.
        """
        if state.get("version") != _VERSION:
            raise ValueError(f"risk gate state version must be {_VERSION}, was {state!r}")
        try:
            self.breakers.restore(state["breakers"])
            book = state["book"]
            self._book = None if book is None else Book(
                float(book["cash"]), {s: (float(q), float(e)) for s, (q, e) in book["held"].items()}
            )  # fmt: skip
            self._fed = state["fed"]
            self._cash = None if state["cash"] is None else Decimal(state["cash"])
            self._steps = [Step(int(a), str(b), float(c), float(d), float(e))
                           for a, b, c, d, e in state["steps"]]  # fmt: skip
            self._trades = [(int(t), Decimal(p)) for t, p in state["trades"]]
            self._day, self._day_start = state["day"]
            self._dd = Drawdown(*state["drawdown"])
            self.close_all_due = bool(state["close_all"])
            self._moved = True
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"malformed risk gate state: {exc!r}") from exc
        self._source, self._seen, self._key = None, (0, 0, 0), None
        self._pending, self._pending_times, self._next, self._look = [], [], 0, None
        self._holds = bool(self.breakers.holds())


def _below(x: float, y: float) -> bool:
    """``x < y`` by more than float rounding could account for (False on NaN)."""
    return x + 1e-9 * (abs(x) + abs(y)) + 1e-9 < y


def _held(portfolio: Portfolio, symbol: str) -> Decimal:
    position = portfolio.positions.get(symbol)
    return ZERO if position is None else position.qty


def _open_count(portfolio: Portfolio) -> int:
    return sum(1 for p in portfolio.positions.values() if p.qty != 0)
