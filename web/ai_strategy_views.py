"""The AI signal page's strategy calls (issue 10, "AI signal panel"): per traded symbol the
strategy's own latest call (buy, sell or hold, its confidence and its explanation) and its last
signals with their outcomes, whether or not it takes an ML input.

A call is a stored signal as the strategy decided it: ``direction`` and ``confidence`` as
stored, the explanation its ``reasons`` (each component's message, with its numbers: the
``adaptive`` strategy's timeframe alignment, regime, thresholds, volume profile and, with ML
on, the ML's reason; ``sma_cross``'s averages). A FLAT entry decision is a hold (the
``adaptive`` strategy stores one at each bar where an entry might pass its gates and did not);
a signal of the exit rules (an ``exits`` reason) closes (FLAT) or keeps the open position.
Signals that only report a failed feature (``isolation`` reasons) are no call. A strategy
stores signals only at its decisions, so a call holds from its time until the next one: the
page shows the call's time beside the engine's clock.

Outcomes are judged as the ML calls' are (:func:`web.ai_views.outcome`: the close
:data:`web.ai_views.HORIZON_MS` after the signal's bar against the close at it, from the bars
the engine keeps); a hold, a close or a kept position is not judged (status ``hold``, the move
still shown). Times int ms UTC, moves and confidences fractions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.candles import Candles
from domain.exit_rules import COMPONENT as EXITS
from domain.model import Direction, Reason, Signal
from service_layer.trading import TradingService
from web.ai_views import (
    ACTIONS,
    HORIZON_MS,
    RECENT_SHOWN,
    SCAN_MAX,
    Outcome,
    outcome,
    stored_signals,
    symbol_bars,
    tally,
    uses_ml,
)

ISOLATION = "isolation"
"""The component of a failed feature's reason (the strategy went on without the feature)."""
ENTRY_ACTIONS = frozenset(ACTIONS.values())
"""The actions of an entry decision (``buy``, ``sell``, ``hold``), not of the exit rules."""


@dataclass(frozen=True, slots=True)
class StrategyCall:
    """A stored signal of the strategy on ``symbol``'s bar closing at ``time`` (ms UTC).

    ``action``: ``buy`` / ``sell`` (an entry LONG / SHORT), ``hold`` (a FLAT entry decision:
    no entry), ``close`` (the exit rules closed the position) or ``keep`` (the exit rules acted
    on the open position, e.g. moved its stop, and kept it; ``direction`` is the position's).
    ``confidence`` is the stored one (a fraction; 0 for a hold), ``reasons`` the stored
    reasons less the failed features' (:data:`ISOLATION`), ``judged`` the direction its outcome
    is judged on (``flat``, not judged, for every action but ``buy`` and ``sell``).
    """

    symbol: str
    time: int
    strategy: str
    direction: str
    action: str
    confidence: float
    reasons: tuple[Reason, ...]
    judged: str


@dataclass(frozen=True, slots=True)
class StrategyScan:
    """What :func:`scan_calls` found in the stored signals, newest first: up to ``want``
    ``calls``, per symbol the ``latest`` call and the latest ``entry`` decision (buy, sell or
    hold; the same call unless the exit rules spoke since), how many signals were ``scanned``
    and whether the scan stopped at its limit (``truncated``) before it found what it looked
    for."""

    calls: tuple[StrategyCall, ...]
    latest: Mapping[str, StrategyCall]
    entry: Mapping[str, StrategyCall]
    scanned: int
    truncated: bool


def strategy_call(signal: Signal) -> StrategyCall | None:
    """``signal`` as a :class:`StrategyCall`, None when it only reports failed features."""
    reasons = tuple(r for r in signal.reasons if r.component != ISOLATION)
    if not reasons:
        return None
    if any(r.component == EXITS for r in reasons):
        action = "close" if signal.direction is Direction.FLAT else "keep"
        judged = Direction.FLAT.value
    else:
        action = ACTIONS[signal.direction]
        judged = signal.direction.value
    return StrategyCall(
        symbol=signal.symbol,
        time=signal.time,
        strategy=signal.strategy,
        direction=signal.direction.value,
        action=action,
        confidence=signal.confidence,
        reasons=reasons,
        judged=judged,
    )


def scan_calls(
    signals: Iterable[Signal],
    *,
    want: int = RECENT_SHOWN,
    symbols: Sequence[str] = (),
    max_scan: int = SCAN_MAX,
) -> StrategyScan:
    """Read ``signals`` (newest first) until ``want`` calls are found and every one of
    ``symbols`` has its latest call and its latest entry decision, or ``max_scan`` signals
    were read (``truncated``)."""
    calls: list[StrategyCall] = []
    latest: dict[str, StrategyCall] = {}
    entry: dict[str, StrategyCall] = {}
    scanned = 0
    for signal in signals:
        if len(calls) >= want and all(s in entry for s in symbols):
            return StrategyScan(tuple(calls), latest, entry, scanned, truncated=False)
        if scanned >= max_scan:
            return StrategyScan(tuple(calls), latest, entry, scanned, truncated=True)
        scanned += 1
        call = strategy_call(signal)
        if call is None:
            continue
        if len(calls) < want:
            calls.append(call)
        latest.setdefault(call.symbol, call)
        if call.action in ENTRY_ACTIONS:
            entry.setdefault(call.symbol, call)
    return StrategyScan(tuple(calls), latest, entry, scanned, truncated=False)


def judge(call: StrategyCall, bars: Candles, tf_ms: int) -> Outcome:
    """The :class:`~web.ai_views.Outcome` of ``call`` on its symbol's ``bars`` (``tf_ms``
    apart, oldest first)."""
    return outcome(call.time, call.judged, bars, tf_ms)


def strategy_context(service: TradingService) -> dict[str, Any]:
    """The strategy's calls as the page shows them: per traded symbol a card (``{"symbol",
    "call", "outcome", "entry", "entry_outcome"}``: its latest call, None when the scan found
    none, and, when that is the exit rules', its latest entry decision, else None), the last
    :data:`RECENT_SHOWN` calls as rows (``{"call", "outcome"}``, newest first) and their
    :func:`~web.ai_views.tally`, the engine's ``clock_time`` (ms UTC), the ``strategy``,
    whether it ``uses_ml``, the outcome ``horizon_h`` (hours) and the scan's ``scanned`` and
    ``truncated``."""
    status = service.status()
    found = scan_calls(stored_signals(service), want=RECENT_SHOWN, symbols=status.symbols)
    tf_ms = service.engine.tf_ms
    wanted = set(found.latest) | {c.symbol for c in found.calls}
    bars = {s: symbol_bars(service, s) for s in sorted(wanted)}
    cards = []
    for symbol in status.symbols:
        call = found.latest.get(symbol)
        judged = None if call is None else judge(call, bars[symbol], tf_ms)
        entry = found.entry.get(symbol)
        if entry is call:
            entry = None
        entry_judged = None if entry is None else judge(entry, bars[symbol], tf_ms)
        cards.append(
            {
                "symbol": symbol,
                "call": call,
                "outcome": judged,
                "entry": entry,
                "entry_outcome": entry_judged,
            }
        )
    rows = [{"call": c, "outcome": judge(c, bars[c.symbol], tf_ms)} for c in found.calls]
    return {
        "cards": cards,
        "rows": rows,
        "counts": tally(rows),
        "clock_time": status.clock_time,
        "strategy": status.strategy,
        "uses_ml": uses_ml(service),
        "horizon_h": HORIZON_MS // 3_600_000,
        "recent_shown": RECENT_SHOWN,
        "scanned": found.scanned,
        "truncated": found.truncated,
    }
