"""Advanced exits (issue 6, component 6): partial profits, breakeven, trailing, time and regime.

The rules (issue 6, "Advanced exits", refining spec 001's "Advanced Exit Manager", Properties
19-22), in multiples of the ATR frozen at entry (quote currency): take-profits at 1.5, 3.0 and
5.0 ATR closing 33 %, 33 % and the rest, with the stop at the regime's multiple (the entry's
:func:`exit_plan`, placed by the engine as linked reduce-only orders); the stop to breakeven at
2.0 ATR (:func:`start`'s price wake-up, then :func:`breakeven`); once momentum reverses in profit,
the stop trailing the close at 0.5 ATR (:func:`trail`); a close after 24 h when no profit level
was reached (:func:`time_exit`); every position closed when the regime goes from TRENDING_* to
RANGING (:func:`regime_exit`, :func:`close_positions`). :func:`manage` runs what is due.

Pure: a strategy keeps one :class:`ExitState` per open position in its persisted state and merges
the :class:`ExitActions` returned into its ``Decision``. Prices are ``Decimal`` quote currency on
the tick, a stop rounded away from the position and only ever tightened; quantities are rounded
down to the lot step, never more than is open; times are int ms UTC.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Any, NamedTuple

from domain.model import ExitPlan, Instrument, Order, OrderType, Position, Reason, Side, TakeProfit
from domain.regime import Regime
from domain.strategies.base import Modify, OrderIntent, WakeUp

COMPONENT = "exits"
PROFIT_LEVELS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal("1.5"), Decimal("0.33")),
    (Decimal("3.0"), Decimal("0.33")),
    (Decimal("5.0"), Decimal("0.34")),
)
"""(distance in ATRs, fraction of the entry qty) of each take-profit; fractions sum to 1."""
BREAKEVEN_ATR = Decimal("2.0")
TRAIL_ATR = Decimal("0.5")
TIME_LIMIT_MS = 24 * 3_600_000
FILLED_TAG, BREAKEVEN_TAG = "exit:filled", "exit:breakeven"
TIME_TAG, TRAIL_TAG = "exit:time", "exit:trail"
TAGS = (FILLED_TAG, BREAKEVEN_TAG, TIME_TAG, TRAIL_TAG)
"""Wake-up tags of the exit rules (one of each per symbol)."""
_TRENDING = frozenset({Regime.TRENDING_BULLISH, Regime.TRENDING_BEARISH})


def _to_decimal(name: str, value: float | Decimal) -> Decimal:
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be finite and > 0, was {value}")
    return value if isinstance(value, Decimal) else Decimal(repr(number))


def _reason(message: str, **values: float | Decimal) -> Reason:
    return Reason(COMPONENT, message, {k: float(v) for k, v in values.items()})


def exit_plan(atr: float, stop_multiplier: float, instrument: Instrument) -> ExitPlan:
    """The exits to attach to an entry: a stop at ``stop_multiplier × atr`` and take-profits at
    1.5, 3.0 and 5.0 × ``atr`` closing 33 %, 33 % and the rest (34 %) of the entry qty.

    ``atr`` is the ATR at entry (quote currency), frozen in the plan; ``stop_multiplier`` the
    regime's (2.5 trending, 1.0 ranging: :data:`domain.regime.REGIME_PARAMETERS`). Distances
    are rounded up to the tick, every level a little further from the entry than exact (as
    :mod:`service_layer.exits` rounds levels). The fractions sum to 1, so the engine gives the
    last level what the lot-rounded first two leave (issue 6, "Advanced exits"; Property 19).

    Raises
    ------
    ValueError
        When ``atr`` or ``stop_multiplier`` is not finite and > 0.
    """
    unit = _to_decimal("atr", atr)
    stop = unit * _to_decimal("stop_multiplier", stop_multiplier)
    return ExitPlan(
        stop_distance=instrument.round_price(stop, up=True),
        take_profits=tuple(
            TakeProfit(instrument.round_price(unit * m, up=True), f) for m, f in PROFIT_LEVELS
        ),
    )


def fill_wake(symbol: str, now: int) -> WakeUp:
    """The wake-up to set with a market entry decided at ``now`` (ms UTC): decide again at the
    next bar close, once the entry has filled at that bar's open, to :func:`start` its exits."""
    return WakeUp(symbol, FILLED_TAG, at_time=now + 1)


@dataclass(frozen=True, slots=True)
class ExitState:
    """The exit rules' memory of one open position (kept in the strategy's persisted state).

    ``side`` is the entry's (buy = long); ``entry_time`` ms UTC; ``entry_price`` (quote
    currency) and ``entry_qty`` (base asset) the filled entry; ``atr`` the ATR frozen at entry
    (quote currency). ``breakeven_done``: the stop went to the entry; ``profit_reached``: a
    profit level was reached (no time exit then); ``trailing``: the stop follows the close.

    Raises
    ------
    ValueError
        On an empty symbol, or an entry price, qty or ATR that is not finite and > 0.
    """

    symbol: str
    side: Side
    entry_time: int
    entry_price: Decimal
    entry_qty: Decimal
    atr: Decimal
    breakeven_done: bool = False
    profit_reached: bool = False
    trailing: bool = False

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("symbol must not be empty")
        for name in ("entry_price", "entry_qty", "atr"):
            _to_decimal(name, getattr(self, name))

    @property
    def long(self) -> bool:
        """True for a long position."""
        return self.side is Side.BUY

    def to_json(self) -> dict[str, Any]:
        """This state as a JSON-serializable dict (Decimals as strings)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: str(v) if isinstance(v, Decimal | Side) else v for k, v in values.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExitState:
        """The state :meth:`to_json` wrote. Raises KeyError on a missing key, ValueError on a
        bad value."""
        return cls(
            str(data["symbol"]), Side(data["side"]), int(data["entry_time"]),
            Decimal(data["entry_price"]), Decimal(data["entry_qty"]), Decimal(data["atr"]),
            bool(data["breakeven_done"]), bool(data["profit_reached"]), bool(data["trailing"]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExitActions:
    """What the exit rules want done: the position's new ``state`` (None: forget it, as the
    position is flat, stale or being closed), reduce-only ``orders``, ``modify`` of working
    stops, ``wake`` and ``drop_wakes`` (``(symbol, tag)``) for the ``Decision``, and the
    ``reasons`` (which rule fired, with its numbers)."""

    state: ExitState | None
    orders: tuple[OrderIntent, ...] = ()
    modify: tuple[Modify, ...] = ()
    wake: tuple[WakeUp, ...] = ()
    drop_wakes: tuple[tuple[str, str], ...] = ()
    reasons: tuple[Reason, ...] = ()

    def then(self, other: ExitActions) -> ExitActions:
        """These actions followed by ``other``'s (``other``'s state; a later amendment of the
        same order replaces an earlier one)."""
        modify = {m.order_id: m for m in (*self.modify, *other.modify)}
        return ExitActions(
            other.state, self.orders + other.orders, tuple(modify.values()),
            self.wake + other.wake, self.drop_wakes + other.drop_wakes,
            self.reasons + other.reasons,
        )  # fmt: skip


class Bar(NamedTuple):
    """The bar closing at a decision: ``close`` (quote currency) and the MACD histogram at this
    close (``macd_hist``) and at the one before (``macd_hist_prev``)."""

    close: float
    macd_hist: float
    macd_hist_prev: float


def _forget(
    symbol: str, reason: Reason | None = None, orders: tuple[OrderIntent, ...] = ()
) -> ExitActions:
    reason = reason or _reason(f"{symbol}: position closed, exits forgotten")
    return ExitActions(None, orders, drop_wakes=tuple((symbol, t) for t in TAGS), reasons=(reason,))


def start(
    position: Position, atr: float, now: int, *, entry_qty: Decimal | None = None
) -> ExitActions:
    """Arm the exits of a newly filled ``position``: its state and two wake-ups, at the price
    ``entry ± 2.0 × atr`` in the position's favour (breakeven) and at ``entry + 24 h`` (time
    exit). ``atr`` is the one the entry's plan used (quote currency); ``now`` the decision
    time (ms UTC), the entry time when the position has no ``opened_time``; ``entry_qty`` the
    entry's filled qty (default the position's, which a take-profit already filled
    understates).

    Raises
    ------
    ValueError
        When ``position`` is flat or ``atr`` is not finite and > 0.
    """
    if position.qty == 0:
        raise ValueError(f"no exits to arm for the flat position in {position.symbol}")
    side = Side.BUY if position.qty > 0 else Side.SELL
    entry_time = position.opened_time if position.opened_time is not None else now
    qty = abs(position.qty) if entry_qty is None else entry_qty
    unit = _to_decimal("atr", atr)
    state = ExitState(position.symbol, side, entry_time, position.entry_price, qty, unit)
    trigger = float(position.entry_price + side.sign * BREAKEVEN_ATR * unit)
    deadline = entry_time + TIME_LIMIT_MS
    wakes = (
        WakeUp(position.symbol, BREAKEVEN_TAG, **{"above" if state.long else "below": trigger}),
        WakeUp(position.symbol, TIME_TAG, at_time=deadline),
    )
    reason = _reason(
        f"exits armed: breakeven at {trigger:.10g} (entry {position.entry_price} ± 2.0 ATR "
        f"{unit}), time exit at {deadline} unless a profit level is reached",
        entry=position.entry_price, atr=unit, breakeven_trigger=trigger, deadline_ms=deadline,
    )  # fmt: skip
    return ExitActions(state, wake=wakes, reasons=(reason,))


def entry_fill(orders: Iterable[Order], intended: Decimal) -> Decimal:
    """The qty (base asset) the entry of a newly filled position filled, for :func:`start`'s
    ``entry_qty``: its working stop exit's (placed for the whole fill when the entry filled,
    :func:`service_layer.exits.exit_orders`), at most ``intended`` (what the strategy asked);
    ``intended`` when no stop works. The risk gate may have cut the entry below ``intended``:
    taken as the entry, the shortfall would pass for a take-profit already filled. ``orders``
    are the symbol's working orders (``Portfolio.open_orders[symbol]``)."""
    stops = [
        o.qty
        for o in orders
        if o.type is OrderType.STOP and o.reduce_only and (o.tag or "").endswith(":stop")
    ]
    return min(intended, max(stops)) if stops else intended


def observe(state: ExitState, position: Position, orders: Iterable[Order]) -> ExitState | None:
    """``state`` brought up to date with ``position`` and the symbol's working ``orders``
    (``Portfolio.open_orders[symbol]``): None when the position is flat or on the other side
    (the state is stale); ``profit_reached`` once a take-profit has filled (the position is
    below the entry qty, or a take-profit order is partly filled)."""
    if position.qty == 0 or (position.qty > 0) != state.long:
        return None
    filled = abs(position.qty) < state.entry_qty or any(
        o.type is OrderType.TAKE_PROFIT and o.filled_qty > 0 for o in orders
    )
    return replace(state, profit_reached=True) if filled and not state.profit_reached else state


def _stops(state: ExitState, orders: Iterable[Order]) -> list[Order]:
    """The working reduce-only stop orders that close ``state``'s position."""
    closing = state.side.opposite
    return [
        o for o in orders
        if o.type is OrderType.STOP and o.reduce_only and o.side is closing and o.stop_price
    ]  # fmt: skip


def _tighten(state: ExitState, stops: list[Order], level: Decimal) -> tuple[Modify, ...]:
    """Amendments moving each of ``stops`` to ``level`` where that tightens it."""
    tighter = [o for o in stops if state.side.sign * (level - (o.stop_price or level)) > 0]
    return tuple(Modify(o.id, stop_price=level) for o in tighter)


def breakeven(
    state: ExitState, position: Position, orders: Iterable[Order], instrument: Instrument
) -> ExitActions:
    """On the breakeven wake-up (the price reached 2.0 ATR in the position's favour): move the
    position's stops to the entry price rounded to the tick away from the position (a long's
    down) where that tightens them; a tighter stop stays (issue 6, "Stop to breakeven at 2.0";
    Property 20). The first profit level (1.5 ATR) was passed on the way: recorded as
    reached."""
    orders = tuple(orders)
    current = observe(state, position, orders)
    if current is None:
        return _forget(state.symbol)
    level = instrument.round_price(current.entry_price, up=not current.long)
    stops = _stops(current, orders)
    modify = _tighten(current, stops, level)
    moved = "moved to" if modify else "already at or past" if stops else "none to move to"
    reason = _reason(
        f"breakeven: price reached entry {current.entry_price} ± 2.0 ATR {current.atr}; stop "
        f"{moved} {level}",
        entry=current.entry_price, atr=current.atr, stop=level,
        **{f"previous_stop_{k}": o.stop_price or 0 for k, o in enumerate(stops)},
    )  # fmt: skip
    done = replace(current, breakeven_done=True, profit_reached=True)
    return ExitActions(done, modify=modify, reasons=(reason,))


def trail(
    state: ExitState, position: Position, orders: Iterable[Order], instrument: Instrument,
    bar: Bar, now: int,
) -> ExitActions:  # fmt: skip
    """At a bar close (``now``, ms UTC): trailing starts when the position is in profit
    (``bar.close`` beyond the entry) and momentum reverses, the MACD histogram crossing zero
    strictly against the position (``prev > 0 > hist`` for a long, a cross as
    :func:`~domain.strategies.base.zero_crossings` counts it; NaN never crosses). Once on, it
    moves the stops to ``close ∓ 0.5 ATR`` (rounded away from the position) where that
    tightens them and asks to decide again at the next bar close (issue 6, "trail the stop at
    0.5 ATR")."""
    orders = tuple(orders)
    current = observe(state, position, orders)
    if current is None:
        return _forget(state.symbol)
    if not math.isfinite(bar.close):
        return ExitActions(current)
    sign, close = current.side.sign, Decimal(repr(float(bar.close)))
    prev, hist = bar.macd_hist_prev, bar.macd_hist
    reasons: tuple[Reason, ...] = ()
    in_profit = sign * (close - current.entry_price) > 0
    if not current.trailing and in_profit and sign * prev > 0 > sign * hist:
        current = replace(current, trailing=True)
        reasons = (_reason(
            f"trailing on: in profit at {close} (entry {current.entry_price}), MACD histogram "
            f"{prev:.6g} -> {hist:.6g}",
            close=close, entry=current.entry_price, macd_hist=hist, macd_hist_prev=prev,
        ),)  # fmt: skip
    if not current.trailing:
        return ExitActions(current)
    level = instrument.round_price(close - sign * TRAIL_ATR * current.atr, up=not current.long)
    modify = _tighten(current, _stops(current, orders), level) if level > 0 else ()
    if modify:
        message = f"trailing: stop to {level} = close {close} ∓ 0.5 ATR {current.atr}"
        reasons += (_reason(message, close=close, atr=current.atr, stop=level),)
    wake = (WakeUp(current.symbol, TRAIL_TAG, at_time=now + 1),)
    return ExitActions(current, modify=modify, wake=wake, reasons=reasons)


def close_position(
    position: Position, instrument: Instrument, leg: str | None = None
) -> tuple[OrderIntent, ...]:
    """Reduce-only market orders closing ``position``: its size rounded down to the lot step
    (never more than is open), split at the instrument's market order maximum; empty when
    flat. ``leg`` (``time``, ``regime``) names the rule, for the trade's exit reason."""
    qty = instrument.round_qty(abs(position.qty))
    cap = instrument.max_order_qty(OrderType.MARKET)
    side = Side.SELL if position.qty > 0 else Side.BUY
    intents = []
    while qty > 0:
        part = qty if cap is None or cap <= 0 else min(qty, cap)
        intents.append(OrderIntent(position.symbol, side, part, reduce_only=True, leg=leg))
        qty -= part
    return tuple(intents)


def time_exit(
    state: ExitState, position: Position, orders: Iterable[Order], instrument: Instrument,
    now: int,
) -> ExitActions:  # fmt: skip
    """On the time wake-up at ``now`` (ms UTC): when 24 h have passed since the entry and no
    profit level was reached (no take-profit filled, no breakeven), close the whole position at
    market (:func:`close_position`); before 24 h, ask again at the deadline (issue 6, "Close
    after 24 hours if no profit level was reached"; Property 21)."""
    current = observe(state, position, orders)
    if current is None:
        return _forget(state.symbol)
    deadline = current.entry_time + TIME_LIMIT_MS
    if now < deadline:
        return ExitActions(current, wake=(WakeUp(current.symbol, TIME_TAG, at_time=deadline),))
    hours = (now - current.entry_time) / 3_600_000
    if current.profit_reached:
        held = _reason(f"time: {hours:.1f} h in, a profit level was reached: held", hours=hours)
        return ExitActions(current, reasons=(held,))
    qty = abs(position.qty)
    reason = _reason(
        f"time exit: {hours:.1f} h since entry, no profit level reached: close {qty} at market",
        hours=hours,
        qty=qty,
    )
    return _forget(current.symbol, reason, close_position(position, instrument, "time"))


def regime_exit(previous: Regime | None, new: Regime) -> bool:
    """True when the regime changes from TRENDING_BULLISH or TRENDING_BEARISH to RANGING, False
    for every other pair and for no previous regime (issue 6, "Close all positions when the
    regime changes from TRENDING_* to RANGING"; Property 22)."""
    return previous in _TRENDING and new is Regime.RANGING


def close_positions(
    previous: Regime | None,
    new: Regime,
    positions: Mapping[str, Position],
    instruments: Mapping[str, Instrument],
) -> ExitActions | None:
    """The regime exit: None unless :func:`regime_exit`; else reduce-only market closes of
    every non-flat position in ``positions`` (the portfolio's to close all, or one symbol's),
    each symbol's exit wake-ups dropped, and ``state`` None (forget the closed symbols' states).

    Raises
    ------
    KeyError
        When a position's symbol has no instrument.
    """
    if not regime_exit(previous, new):
        return None
    held = [p for p in positions.values() if p.qty != 0]
    orders = tuple(i for p in held for i in close_position(p, instruments[p.symbol], "regime"))
    drops = tuple((p.symbol, tag) for p in held for tag in TAGS)
    names = ", ".join(p.symbol for p in held) or "nothing"
    reason = _reason(f"regime exit: {previous} -> {new}: close {names}", positions=len(held))
    return ExitActions(None, orders, drop_wakes=drops, reasons=(reason,))


def manage(
    state: ExitState, position: Position, orders: Iterable[Order], instrument: Instrument,
    bar: Bar, now: int, woken: Collection[str],
) -> ExitActions:  # fmt: skip
    """Every rule due at one decision at ``now`` (ms UTC) on one position: :func:`breakeven`
    if :data:`BREAKEVEN_TAG` is in ``woken`` (the tags of the symbol's fired wake-ups),
    :func:`time_exit` if :data:`TIME_TAG` is (a close ends there), then :func:`trail` on
    ``bar``, which sees the stops as the earlier rules moved them."""
    orders = tuple(orders)
    done = ExitActions(state)
    if BREAKEVEN_TAG in woken:
        done = done.then(breakeven(state, position, orders, instrument))
    if done.state is not None and TIME_TAG in woken:
        done = done.then(time_exit(done.state, position, orders, instrument, now))
    if done.state is None:
        return done
    moved = {m.order_id: m.stop_price for m in done.modify}
    orders = tuple(replace(o, stop_price=moved[o.id]) if o.id in moved else o for o in orders)
    return done.then(trail(done.state, position, orders, instrument, bar, now))
