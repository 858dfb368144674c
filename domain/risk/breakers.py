"""Circuit breakers: rules that move the account's or a symbol's trading state, each with a reason.

:class:`CircuitBreakers` is a state machine fed, in time order, with the equity at bar closes
(:meth:`~CircuitBreakers.on_equity`), closed trades (:meth:`~CircuitBreakers.on_trade`) and each
symbol's bar features (:meth:`~CircuitBreakers.on_bar`). A tripped breaker places a *hold* on a
scope (the account or a symbol); a scope's state is the most restrictive of its holds, and every
change of it is a :class:`~domain.risk.states.StateChange` event with a human reason:

==================  ==========================================  ===========================
breaker             trips when                                  lifts
==================  ==========================================  ===========================
daily_loss          equity ≤ start-of-day equity × (1 − limit)  at the next 00:00 UTC
consecutive_losses  ``count`` losing trades in a row            :meth:`resume`, or cooldown
volatility_spike    ATR percentile > threshold (per symbol)     percentile < release level
unusual_volume      RVOL > threshold: a :class:`RiskAlert`      (no hold)
max_open_positions  a check on a new entry (:meth:`refusal`)    (no hold)
max_leverage        a check on a new entry (:meth:`refusal`)    (no hold)
==================  ==========================================  ===========================

Days are UTC days of the given times (ms UTC), never of a clock: the equity at the first point at
or after 00:00 (the close at 00:00 with 5m bars) is the day's starting equity, and a hold "until
00:00" is lifted before that point is judged. A daily-loss trip with ``close_all`` also emits a
``close_all`` :class:`RiskAlert`: the risk gate then closes every position with reduce-only
market orders of its own. Times may arrive slightly out of order (a venue's late fill report):
holds are timed at the latest time seen, and an equity point of a day already over is ignored.

The inputs :func:`~domain.risk.inputs.relative_volume` and
:func:`~domain.risk.inputs.atr_percentile` are in :mod:`domain.risk.inputs`; the settings in
:mod:`domain.risk.breaker_rules`.
All state is JSON-serializable (:meth:`CircuitBreakers.state` / :meth:`~CircuitBreakers.restore`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.model import Side
from domain.risk.breaker_rules import (
    AlertKind,
    Breaker,
    BreakerConfig,
    RiskAlert,
    RiskEvent,
)
from domain.risk.states import (
    ACCOUNT,
    StateChange,
    TradingState,
    admits,
    most_restrictive,
    position_after,
)

DAY_MS = 86_400_000
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Hold:
    """A tripped breaker holding ``scope`` in ``state`` since ``since`` (ms UTC), until
    ``until`` (exclusive; None: until a condition or a person lifts it), with its reason."""

    scope: str
    source: Breaker
    state: TradingState
    reason: str
    since: int
    until: int | None = None

    def live_at(self, time: int) -> bool:
        """True while the hold applies at ``time`` (ms UTC)."""
        return self.until is None or time < self.until


def _utc(time: int) -> str:
    return datetime.fromtimestamp(time / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


class CircuitBreakers:
    """The breakers of one account; see the module docstring for the rules.

    Feed it in time order at every bar close: :meth:`on_bar` for each symbol, then
    :meth:`on_equity`, and :meth:`on_trade` for each round trip closed since. Each returns the
    events it caused (state changes and alerts, in time order). Ask :meth:`refusal` before
    passing an order on.
    """

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self._holds: list[Hold] = []
        self._last_time: int | None = None
        self._day: int | None = None
        self._day_start: Decimal | None = None
        self._losses = 0
        self._loud: set[str] = set()  # symbols whose RVOL is above the threshold

    # -- queries ---------------------------------------------------------------------------
    def holds(self, scope: str | None = None) -> tuple[Hold, ...]:
        """The holds in place (of ``scope`` only, when given), oldest first."""
        return tuple(h for h in self._holds if scope is None or h.scope == scope)

    def trading_state(self, scope: str, time: int) -> TradingState:
        """``scope``'s own state at ``time`` (ms UTC): the most restrictive live hold."""
        if not self._holds:  # the common case, asked on every order: no hold anywhere
            return TradingState.ACTIVE
        return most_restrictive(
            *(h.state for h in self._holds if h.scope == scope and h.live_at(time))
        )

    def effective_state(self, symbol: str, time: int) -> TradingState:
        """What orders on ``symbol`` face at ``time``: the account's or the symbol's state,
        whichever is more restrictive."""
        if not self._holds:
            return TradingState.ACTIVE
        return most_restrictive(self.trading_state(ACCOUNT, time), self.trading_state(symbol, time))

    @property
    def consecutive_losses(self) -> int:
        """Losing trades in a row so far (reset by a winning trade and when a halt lifts)."""
        return self._losses

    def refusal(
        self,
        time: int,
        symbol: str,
        *,
        position_qty: Decimal,
        side: Side,
        qty: Decimal,
        reduce_only: bool,
        price: Decimal,
        open_positions: int,
        gross_notional: Decimal,
        equity: Decimal,
    ) -> str | None:
        """None when a new order may pass the breakers at ``time``; else the reason.

        ``position_qty`` is the signed position in ``symbol`` (base asset), ``qty`` > 0 the
        order's quantity at ``price`` (quote currency), ``open_positions`` the non-flat
        positions of the account, ``gross_notional`` their ``Σ |qty| × mark`` (quote currency)
        and ``equity`` the account's equity. The trading state is checked first
        (:func:`~domain.risk.states.admits`); an order that leaves ``|position|`` larger then
        faces the max-open-positions check (when it opens a position) and the max-leverage
        check on ``(gross_notional − |position| × price + |position after| × price) / equity``.
        Cancels are never refused.

        Raises
        ------
        ValueError
            When ``qty`` is not > 0.
        """
        state = self.effective_state(symbol, time)
        refused = admits(state, position_qty, side, qty, reduce_only)
        if refused is not None:
            return f"{symbol}: {refused} ({self._why(symbol, time)})"
        after = position_after(position_qty, side, qty, reduce_only)
        if abs(after) <= abs(position_qty):
            return None
        positions = self.config.max_open_positions
        if positions.enabled and position_qty == 0 and open_positions >= positions.limit:
            return f"{symbol}: max open positions: {open_positions} open ≥ limit {positions.limit}"
        leverage = self.config.max_leverage
        if leverage.enabled:
            gross = gross_notional + (abs(after) - abs(position_qty)) * price
            if equity <= 0 or gross > leverage.limit * equity:
                shown = "∞" if equity <= 0 else f"{gross / equity:.2f}"
                return (
                    f"{symbol}: max leverage: gross notional {gross:,.2f} on equity "
                    f"{equity:,.2f} would be {shown}× > limit {leverage.limit}×"
                )
        return None

    def _why(self, symbol: str, time: int) -> str:
        live = [h for h in self._holds if h.scope in (ACCOUNT, symbol) and h.live_at(time)]
        worst = max(live, key=lambda h: h.state.severity)
        return worst.reason

    # -- inputs ----------------------------------------------------------------------------
    def advance(self, time: int) -> list[RiskEvent]:
        """Move to ``time`` (ms UTC): lift the holds that expired by then (each event at its
        expiry time) and those of breakers disabled since."""
        now = self._at(time)
        if not self._holds:  # the usual case: nothing to lift
            return []
        done = [h for h in self._holds if not h.live_at(now) or not self.config.enabled(h.source)]
        events: list[RiskEvent] = []
        for hold in sorted(done, key=lambda h: now if h.until is None else min(h.until, now)):
            if not self.config.enabled(hold.source):
                at, why = now, f"{hold.source} breaker disabled"
            else:
                at = hold.until if hold.until is not None else now
                why = f"{hold.source} hold ended at {_utc(at)} UTC"
            events += self._lift(hold, at, why)
        return events

    def _at(self, time: int) -> int:
        """The latest time seen, ``time`` included (and remembered)."""
        now = time if self._last_time is None else max(self._last_time, time)
        self._last_time = now
        return now

    def on_equity(self, time: int, equity: Decimal) -> list[RiskEvent]:
        """Take the account's equity (quote currency) at the bar close ``time`` (ms UTC); may
        trip the daily loss limit."""
        events = self.advance(time)
        day = time // DAY_MS
        if self._day is None or day > self._day:
            self._day, self._day_start = day, equity
        elif day < self._day:
            return events  # a late point of a day already over
        cfg, start = self.config.daily_loss, self._day_start
        if not cfg.enabled or start is None or start <= 0 or self.holds_of(Breaker.DAILY_LOSS):
            return events
        loss = (start - equity) / start
        if loss >= cfg.limit:
            until = (day + 1) * DAY_MS
            what = "no new entries" if cfg.state is TradingState.REDUCING else "halted"
            reason = (
                f"daily loss −{loss * 100:.1f} % of start-of-day equity {start:,.2f} ≥ limit "
                f"{float(cfg.limit * 100):g} %: {what} until {_utc(until)} UTC"
            )
            now = self._at(time)
            events += self._place(Hold(ACCOUNT, Breaker.DAILY_LOSS, cfg.state, reason, now, until))
            if cfg.close_all:
                events.append(RiskAlert(ACCOUNT, AlertKind.CLOSE_ALL, reason, now, float(loss)))
        return events

    def on_trade(self, time: int, pnl: Decimal) -> list[RiskEvent]:
        """Take a round trip closed at ``time`` (ms UTC) with net ``pnl`` (quote currency, after
        fees); may trip the consecutive-losses breaker. A trade with ``pnl >= 0`` resets the
        count."""
        events = self.advance(time)
        cfg = self.config.consecutive_losses
        if not cfg.enabled:
            return events
        self._losses = self._losses + 1 if pnl < 0 else 0
        if self._losses >= cfg.count and not self.holds_of(Breaker.CONSECUTIVE_LOSSES):
            now = self._at(time)
            until = None if cfg.cooldown_ms is None else now + cfg.cooldown_ms
            ends = "until resumed by hand" if until is None else f"until {_utc(until)} UTC"
            reason = (
                f"{self._losses} consecutive losing trades (last pnl {pnl:,.2f}) ≥ limit "
                f"{cfg.count}: {cfg.state} {ends}"
            )
            hold = Hold(ACCOUNT, Breaker.CONSECUTIVE_LOSSES, cfg.state, reason, now, until)
            events += self._place(hold)
        return events

    def on_bar(
        self, symbol: str, time: int, atr_percentile_pct: float, rvol: float
    ) -> list[RiskEvent]:
        """Take ``symbol``'s features at its bar close ``time`` (ms UTC): the ATR percentile
        (percent, :func:`atr_percentile`) and the RVOL (:func:`relative_volume`); NaN (still
        warming up) changes nothing."""
        events = self.advance(time) if self._holds else []  # (nothing to lift: the usual case)
        now = self._at(time)
        vol = self.config.volatility_spike
        if vol.enabled and not math.isnan(atr_percentile_pct):
            held = [h for h in self.holds_of(Breaker.VOLATILITY_SPIKE) if h.scope == symbol]
            if not held and atr_percentile_pct > vol.percentile_pct:
                reason = (
                    f"volatility spike: ATR percentile {atr_percentile_pct:.2f} > "
                    f"{vol.percentile_pct:g}: {vol.state} on {symbol}"
                )
                events += self._place(
                    Hold(symbol, Breaker.VOLATILITY_SPIKE, vol.state, reason, now)
                )
            elif held and atr_percentile_pct < vol.release:
                why = f"ATR percentile {atr_percentile_pct:.2f} back under {vol.release:g}"
                events += self._lift(held[0], now, why)
        volume = self.config.unusual_volume
        if volume.enabled and not math.isnan(rvol):
            if rvol > volume.rvol and symbol not in self._loud:
                self._loud.add(symbol)
                message = f"unusual volume on {symbol}: RVOL {rvol:.1f} > {volume.rvol:g}"
                events.append(RiskAlert(symbol, AlertKind.UNUSUAL_VOLUME, message, now, rvol))
            elif rvol <= volume.rvol:
                self._loud.discard(symbol)
        return events

    def halt(
        self, time: int, scope: str, reason: str, state: TradingState = TradingState.HALTED
    ) -> list[RiskEvent]:
        """Hold ``scope`` in ``state`` by hand (the panel's stop button) until :meth:`resume`.

        Raises
        ------
        ValueError
            When ``state`` is active.
        """
        if state is TradingState.ACTIVE:
            raise ValueError("a manual hold cannot be active; use resume()")
        events = self.advance(time)
        for hold in self.holds(scope):
            if hold.source is Breaker.MANUAL:
                events += self._lift(hold, self._at(time), "manual hold replaced")
        return events + self._place(
            Hold(scope, Breaker.MANUAL, state, f"by hand: {reason}", self._at(time))
        )

    def resume(self, time: int, scope: str = ACCOUNT) -> list[RiskEvent]:
        """Lift by hand the holds of ``scope`` that wait for a person: manual holds and the
        consecutive-losses halt (whose count restarts at 0). The daily loss limit still lifts
        only at 00:00 UTC, and a volatility hold only when the percentile falls back."""
        events = self.advance(time)
        for hold in self.holds(scope):
            if hold.source in (Breaker.MANUAL, Breaker.CONSECUTIVE_LOSSES):
                events += self._lift(hold, self._at(time), "resumed by hand")
        return events

    # -- holds -----------------------------------------------------------------------------
    def holds_of(self, source: Breaker) -> tuple[Hold, ...]:
        """The holds placed by ``source``."""
        if not self._holds:  # the usual case, asked on every observation and look
            return ()
        return tuple(h for h in self._holds if h.source is source)

    def _own_state(self, scope: str) -> TradingState:
        return most_restrictive(*(h.state for h in self._holds if h.scope == scope))

    def _place(self, hold: Hold) -> list[RiskEvent]:
        before = self._own_state(hold.scope)
        self._holds.append(hold)
        after = self._own_state(hold.scope)
        if after is before:
            return []
        return [StateChange(hold.scope, before, after, hold.reason, hold.since, hold.source)]

    def _lift(self, hold: Hold, time: int, why: str) -> list[RiskEvent]:
        before = self._own_state(hold.scope)
        self._holds.remove(hold)
        if hold.source is Breaker.CONSECUTIVE_LOSSES:
            self._losses = 0
        after = self._own_state(hold.scope)
        if after is before:
            return []
        reason = f"{why} ({hold.reason})"
        if after is not TradingState.ACTIVE:
            rest = [h for h in self._holds if h.scope == hold.scope and h.state is after]
            reason += f"; still {after}: {rest[0].reason}"
        return [StateChange(hold.scope, before, after, reason, time, hold.source)]

    # -- persistence -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The path-dependent state, JSON-serializable (Decimals as strings)."""
        return {
            "version": _STATE_VERSION,
            "last_time": self._last_time,
            "day": self._day,
            "day_start": None if self._day_start is None else str(self._day_start),
            "losses": self._losses,
            "loud": sorted(self._loud),
            "holds": [
                {
                    "scope": h.scope,
                    "source": h.source.value,
                    "state": h.state.value,
                    "reason": h.reason,
                    "since": h.since,
                    "until": h.until,
                }
                for h in self._holds
            ],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (as returned by :meth:`state`) after a restart.

        Raises
        ------
        ValueError
            When ``state`` is of another version or malformed.
        """
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"breaker state version must be {_STATE_VERSION}, was {state!r}")
        try:
            holds = [
                Hold(h["scope"], Breaker(h["source"]), TradingState(h["state"]), h["reason"],
                     int(h["since"]), None if h["until"] is None else int(h["until"]))
                for h in state["holds"]
            ]  # fmt: skip
            start = state["day_start"]
            self._day_start = None if start is None else Decimal(start)
            self._last_time, self._day = state["last_time"], state["day"]
            self._losses = int(state["losses"])
            self._loud = set(state["loud"])
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"malformed breaker state: {exc!r}") from exc
        self._holds = holds
