"""The AI signal page's signal views (issue 7, "Explanations"): per traded symbol the ML's
latest call and whether ML acts there (and why not), and the last ML signals with their
outcomes.

A signal the ML acted on carries an ``ml`` reason whose values are the prediction's
(the trend model's ``probability_up`` and ``probability_signal``, or the mean-reversion model's
``probability``, P(reversion); ``contribution.<feature>`` for the top features) and whose
message is the one-line explanation, the rule applied and the model id in brackets
(:func:`domain.ml.signal_input.with_prediction`,
:func:`domain.strategies.mean_reversion_rules.ml_reason`); an entry on a symbol where ML is off
carries an ``ml`` reason ``"ML off: <why>"`` instead. :func:`ml_call` and :func:`ml_off_reason`
read them back from the stored signals, so the page shows what ``GET /api/v1/signals`` holds.

A call's outcome (:func:`outcome`) is judged as the trend model's label is: the close
:data:`HORIZON_MS` after the signal's bar close against the close at it, both read from the bars
the engine keeps (the market clock's past only: in a paper replay the candle store also holds
bars the replay has not reached, which would judge a call before its time). Pure builders take
signals and bars; the ``*_context`` readers take a
:class:`~service_layer.trading.TradingService`. Times int ms UTC, moves and probabilities
fractions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from domain.candles import Candles
from domain.errors import UnknownSymbol
from domain.model import Direction, Reason, Signal
from domain.pipeline_events import ML, PipelineEvent
from domain.strategies.base import UsesModels
from service_layer.trading import TradingService

OFF_PREFIX = "ML off: "
HORIZON_MS = 4 * 3_600_000
"""How far ahead a call is judged: the trend label's horizon (the predictor's default
``MLRules.horizon_ms``, 4 hours of market time)."""
RECENT_SHOWN = 10
"""ML signals the list shows."""
EVENTS_SHOWN = 3
"""Stored ML pipeline events (a predictor that disabled itself) a symbol's card lists."""
SCAN_PAGE = 200
SCAN_MAX = 2_000
"""The most stored signals read (newest first) to find the ML calls: a symbol without any call
(no model) is not searched back to the run's first signal at every refresh."""
ACTIONS = {Direction.LONG: "buy", Direction.SHORT: "sell", Direction.FLAT: "hold"}
"""What a call's direction means to a trader (a FLAT call is an entry the ML filtered)."""
CONTRIBUTION = "contribution."
_MODEL_ID = re.compile(r"\[([^\[\]\s]+)\]\s*$")

OutcomeStatus = Literal["right", "wrong", "pending", "hold", "unknown"]


@dataclass(frozen=True, slots=True)
class Contribution:
    """How much ``feature`` moved the probability of a rise (signed, a fraction)."""

    feature: str
    value: float


@dataclass(frozen=True, slots=True)
class MLCall:
    """A stored signal the ML acted on: ``symbol``'s bar closing at ``time`` (ms UTC).

    ``action`` is ``buy``, ``sell`` or ``hold`` (the signal's ``direction``: ``long``, ``short``
    or ``flat``, an entry the ML filtered); ``confidence`` the signal's, after the ML; the
    model's ``probability`` of the event its ``question`` names: ``up`` (the trend model: P(the
    close 4 hours on is higher)) or ``reversion`` (the mean-reversion model: P(the stretch
    reverts)); ``probability_signal`` (P(the signal's direction is right); None for the
    mean-reversion model, whose probability is that already); ``explanation`` the ML reason's
    message; ``model_id`` the model that predicted (None when the message names none);
    ``contributions`` the top features, largest effect first.
    """

    symbol: str
    time: int
    direction: str
    action: str
    confidence: float
    probability: float
    question: Literal["up", "reversion"]
    probability_signal: float | None
    explanation: str
    model_id: str | None
    contributions: tuple[Contribution, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call at ``time`` turned out :data:`HORIZON_MS` later, at ``due`` (ms UTC).

    ``status``: ``right`` (the close at ``due`` moved the signal's way), ``wrong`` (it did not:
    an unchanged close is wrong too, a trade on it only pays fees), ``pending`` (``due`` not
    reached by the last bar: ``exit`` and ``move`` are then the latest close and the move so
    far), ``hold`` (a filtered call: no direction to judge; ``move`` still shown) or
    ``unknown`` (a bar it needs is not kept: ``note`` says which). ``entry`` and ``exit`` are
    closes (quote currency), ``move`` = exit / entry − 1.
    """

    status: OutcomeStatus
    due: int
    entry: float | None
    exit: float | None
    move: float | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class MLScan:
    """What :func:`scan` found in the stored signals, newest first: up to ``want`` ML
    ``calls``; per symbol the ``latest`` call and, where no call came after it, the ``off``
    reason (time ms UTC, why); how many signals were ``scanned`` and whether the scan stopped
    at its limit (``truncated``) before it found what it looked for."""

    calls: tuple[MLCall, ...]
    latest: Mapping[str, MLCall]
    off: Mapping[str, tuple[int, str]]
    scanned: int
    truncated: bool


def ml_reason(signal: Signal) -> Reason | None:
    """The ``ml`` reason of ``signal`` that carries a prediction (None: the ML did not act)."""
    for reason in signal.reasons:
        if reason.component == ML and (
            "probability_up" in reason.values or "probability" in reason.values
        ):
            return reason
    return None


def ml_off_reason(signal: Signal) -> str | None:
    """Why ML did not act on ``signal`` (its ``"ML off: <why>"`` reason), else None."""
    for reason in signal.reasons:
        if reason.component == ML and reason.message.startswith(OFF_PREFIX):
            return reason.message.removeprefix(OFF_PREFIX)
    return None


def ml_call(signal: Signal) -> MLCall | None:
    """``signal`` as an :class:`MLCall`, None when the ML did not act on it.

    The contributions are sorted by their absolute value, largest first (the stored values are
    a JSON object, whose key order a database need not keep), ties in stored order.
    """
    reason = ml_reason(signal)
    if reason is None:
        return None
    values = reason.values
    up = "probability_up" in values
    contributions = sorted(
        (
            Contribution(key.removeprefix(CONTRIBUTION), float(value))
            for key, value in values.items()
            if key.startswith(CONTRIBUTION)
        ),
        key=lambda c: -abs(c.value),
    )
    found = _MODEL_ID.search(reason.message)
    p_signal = values.get("probability_signal")
    return MLCall(
        symbol=signal.symbol,
        time=signal.time,
        direction=signal.direction.value,
        action=ACTIONS[signal.direction],
        confidence=signal.confidence,
        probability=float(values["probability_up" if up else "probability"]),
        question="up" if up else "reversion",
        probability_signal=None if p_signal is None else float(p_signal),
        explanation=reason.message,
        model_id=None if found is None else found.group(1),
        contributions=tuple(contributions),
    )


def close_at(candles: Candles, time: int, tf_ms: int) -> float | None:
    """The close of the bar of ``candles`` (``tf_ms`` apart) closing at ``time`` (ms UTC), None
    when it is not among them."""
    key = time - tf_ms
    i = int(np.searchsorted(candles.open_time, key))
    if i < len(candles) and int(candles.open_time[i]) == key:
        return float(candles.close[i])
    return None


def outcome(
    time: int, direction: str, candles: Candles, tf_ms: int, horizon_ms: int = HORIZON_MS
) -> Outcome:
    """The :class:`Outcome` of a ``direction`` (``long``, ``short``, ``flat``) call on the bar
    closing at ``time`` (ms UTC), judged on ``candles`` (bars ``tf_ms`` apart, oldest first,
    the last one the latest closed).

    >>> bars = Candles(np.array([0, 300_000, 600_000]), *[np.array([100.0, 99.0, 102.0])] * 5)
    >>> outcome(600_000, "long", bars, 300_000, horizon_ms=300_000).status
    'right'
    """
    due = time + horizon_ms
    entry = close_at(candles, time, tf_ms)
    last_close = int(candles.open_time[-1]) + tf_ms if len(candles) else None
    if last_close is None or due > last_close:
        latest = None if last_close is None else float(candles.close[-1])
        move = None if entry is None or latest is None else latest / entry - 1.0
        return Outcome("pending", due, entry, latest, move)
    exit_ = close_at(candles, due, tf_ms)
    if entry is None or exit_ is None:
        note = "the bars at the signal are no longer kept" if entry is None else "no bar then"
        return Outcome("unknown", due, entry, exit_, None, note)
    move = exit_ / entry - 1.0
    if direction == Direction.LONG:
        status: OutcomeStatus = "right" if exit_ > entry else "wrong"
    elif direction == Direction.SHORT:
        status = "right" if exit_ < entry else "wrong"
    else:
        status = "hold"
    return Outcome(status, due, entry, exit_, move)


def scan(
    signals: Iterable[Signal],
    *,
    want: int = RECENT_SHOWN,
    symbols: Sequence[str] = (),
    max_scan: int = SCAN_MAX,
) -> MLScan:
    """Read ``signals`` (newest first) until ``want`` ML calls are found and every one of
    ``symbols`` has its latest call, or ``max_scan`` signals were read (``truncated``)."""
    calls: list[MLCall] = []
    latest: dict[str, MLCall] = {}
    off: dict[str, tuple[int, str]] = {}
    scanned = 0
    for signal in signals:
        if len(calls) >= want and all(s in latest for s in symbols):
            return MLScan(tuple(calls), latest, off, scanned, truncated=False)
        if scanned >= max_scan:
            return MLScan(tuple(calls), latest, off, scanned, truncated=True)
        scanned += 1
        call = ml_call(signal)
        if call is not None:
            if len(calls) < want:
                calls.append(call)
            latest.setdefault(call.symbol, call)
            continue
        why = ml_off_reason(signal)
        if why is not None and signal.symbol not in latest:
            off.setdefault(signal.symbol, (signal.time, why))
    return MLScan(tuple(calls), latest, off, scanned, truncated=False)


def symbol_card(
    symbol: str,
    *,
    call: MLCall | None,
    call_outcome: Outcome | None,
    off: tuple[int, str] | None,
    state: str | None,
    events: Sequence[PipelineEvent] = (),
) -> dict[str, Any]:
    """What a symbol's card shows: its latest ML ``call`` with its outcome, whether ML acts on
    it and why not.

    ``state`` is the strategy's own (``on``, ``off``, ``failed``; None when it does not say,
    e.g. before its first bar): without it, the latest stored reason says ``on`` (a call) or
    ``off`` (an ``ML off`` reason after the latest call). ``off`` is the latest ``ML off``
    reason after the latest call, ``events`` the symbol's stored ML pipeline events, newest
    first. ``why`` (None while ML is on) is the newer of the off reason and the latest event.
    """
    if state is None:
        if off is not None:
            state = "off"
        elif call is not None:
            state = "on"
    why = None
    if state != "on":
        candidates = ([off] if off is not None else []) + [(e.time, e.message) for e in events[:1]]
        if candidates:
            why = max(candidates, key=lambda c: c[0])[1]
    return {
        "symbol": symbol,
        "call": call,
        "outcome": call_outcome,
        "state": state,
        "why": why,
        "off_time": None if off is None else off[0],
        "events": [{"time": e.time, "message": e.message} for e in events],
    }


def recent_rows(
    calls: Sequence[MLCall], bars: Mapping[str, Candles], tf_ms: int
) -> list[dict[str, Any]]:
    """One row per call (newest first): ``{"call", "outcome"}``, the outcome judged on the
    ``bars`` of its symbol (none: pending or unknown)."""
    empty = Candles.empty()
    return [
        {"call": c, "outcome": outcome(c.time, c.direction, bars.get(c.symbol, empty), tf_ms)}
        for c in calls
    ]


def tally(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many of ``rows`` (:func:`recent_rows`) are in each outcome status."""
    counts = dict.fromkeys(("right", "wrong", "pending", "hold", "unknown"), 0)
    for row in rows:
        counts[row["outcome"].status] += 1
    return counts


# -- readers of the service ---------------------------------------------------------------------


def stored_signals(service: TradingService, symbol: str | None = None) -> Iterator[Signal]:
    """The run's stored signals (of ``symbol`` when given), newest first, read a page at a time
    as they are consumed."""
    cursor = None
    while True:
        page = service.signals(symbol=symbol, limit=SCAN_PAGE, cursor=cursor)
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return


def uses_ml(service: TradingService) -> bool:
    """Whether the run's strategy takes an ML probability as an input: it reads models (the
    registry's active ones, :attr:`UsesModels.wants_models`, or its own walk-forward fits) and
    has no ``ml`` toggle turned off (``adaptive`` needs ``ml=true``; ``ml_mean_reversion``,
    without the toggle, always does, its walk-forward fits with ``ml_train_days`` too)."""
    strategy = service.engine.strategy
    if not isinstance(strategy, UsesModels):
        return False
    return bool(strategy.wants_models) or strategy.params().get("ml", True) is True


def symbol_bars(service: TradingService, symbol: str) -> Candles:
    """Every bar of ``symbol`` the engine keeps, oldest first (none: a symbol the run no
    longer trades)."""
    try:
        return service.recent_candles(symbol)
    except UnknownSymbol:  # a signal of a symbol the run no longer trades
        return Candles.empty()


def page_context(service: TradingService) -> dict[str, Any]:
    """The page's frame: the traded ``symbols``, the ``strategy``'s name and whether it
    ``uses_ml``, the outcome ``horizon_h`` (hours) and the list's length."""
    status = service.status()
    return {
        "symbols": status.symbols,
        "strategy": status.strategy,
        "uses_ml": uses_ml(service),
        "horizon_h": HORIZON_MS // 3_600_000,
        "recent_shown": RECENT_SHOWN,
    }


def symbols_context(service: TradingService) -> dict[str, Any]:
    """A :func:`symbol_card` per traded symbol (its ML state from the strategy's pipeline view;
    ``off`` everywhere for a strategy without ML), with the page frame's ``uses_ml`` and
    ``strategy`` and the scan's ``scanned`` and ``truncated``."""
    status = service.status()
    on = uses_ml(service)
    states = {v.symbol: v.features.get(ML) for v in service.pipeline_view()}
    found = scan(stored_signals(service), want=0, symbols=status.symbols if on else ())
    tf_ms = service.engine.tf_ms
    cards = []
    for symbol in status.symbols:
        call = found.latest.get(symbol)
        judged = None
        if call is not None:
            judged = outcome(call.time, call.direction, symbol_bars(service, symbol), tf_ms)
        card = symbol_card(
            symbol,
            call=call,
            call_outcome=judged,
            off=found.off.get(symbol),
            state=states.get(symbol) if on else "off",
            events=service.pipeline_events(symbol=symbol, kind=ML, limit=EVENTS_SHOWN).items,
        )
        cards.append(card)
    return {
        "cards": cards,
        "uses_ml": on,
        "strategy": status.strategy,
        "horizon_h": HORIZON_MS // 3_600_000,
        "scanned": found.scanned,
        "truncated": found.truncated,
    }


def signals_context(service: TradingService, symbol: str | None = None) -> dict[str, Any]:
    """The last :data:`RECENT_SHOWN` ML calls (of ``symbol`` when given) as
    :func:`recent_rows`, their :func:`tally`, the ``symbol`` filter and the traded
    ``symbols``."""
    found = scan(stored_signals(service, symbol), want=RECENT_SHOWN)
    bars = {s: symbol_bars(service, s) for s in {c.symbol for c in found.calls}}
    rows = recent_rows(found.calls, bars, service.engine.tf_ms)
    return {
        "rows": rows,
        "counts": tally(rows),
        "symbol": symbol,
        "symbols": service.status().symbols,
        "horizon_h": HORIZON_MS // 3_600_000,
        "scanned": found.scanned,
        "truncated": found.truncated,
        "uses_ml": uses_ml(service),
    }
