"""The equity curve of a batch, computed vectorized from the fills' position log.

Equity at each bar close = cash + Σ qty × (close − entry) over the positions held then, with
cash, qty and entry stepping at each fill. Computing it per bar in Python would make every bar
cost time; here it costs one ``searchsorted`` per symbol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from domain.candles import Candles


class PositionStep(NamedTuple):
    """The account right after a fill at ``time`` (ms UTC, the bar's open): ``symbol``'s
    signed ``qty`` and ``entry`` price, and the wallet ``cash`` (quote currency)."""

    time: int
    symbol: str
    qty: float
    entry: float
    cash: float


class EquityCurve(NamedTuple):
    """Bar close ``time`` (ms UTC), ``equity`` and ``cash`` (quote currency) and whether any
    position was held (``exposed``), one row per distinct bar close of the batch."""

    time: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    exposed: np.ndarray


def equity_curve(
    history: Mapping[str, Candles],
    starts: Mapping[str, int],
    tf_ms: int,
    before: tuple[float, dict[str, tuple[float, float]]],
    log: list[PositionStep],
    fundings: Sequence[tuple[int, float]] = (),
) -> EquityCurve | None:
    """Equity at every bar close from ``starts[symbol]`` on (None when the batch is empty).

    ``before`` is ``(cash, {symbol: (qty, entry)})`` at the start of the batch; ``log`` the
    position steps of the batch in time order, their cash without the batch's funding;
    ``fundings`` the batch's funding payments ``(time, amount)`` (ms UTC, quote currency,
    positive: paid), taken off the cash and equity of the closes after their time.
    """
    one = _one_close(history, starts, tf_ms, before, log)
    curve = one if one is not None else _curve(history, starts, tf_ms, before, log)
    if curve is None or not fundings:
        return curve
    paid = sorted(fundings)
    when = np.array([t for t, _ in paid], dtype=np.int64)
    total = np.concatenate([[0.0], np.cumsum([a for _, a in paid])])
    owed = total[np.searchsorted(when, curve.time, "left")]
    return EquityCurve(curve.time, curve.equity - owed, curve.cash - owed, curve.exposed)


def _curve(
    history: Mapping[str, Candles],
    starts: Mapping[str, int],
    tf_ms: int,
    before: tuple[float, dict[str, tuple[float, float]]],
    log: list[PositionStep],
) -> EquityCurve | None:
    """:func:`equity_curve` of any batch, vectorized."""
    closes = {s: history[s].open_time[i:] + tf_ms for s, i in starts.items()}
    if not sum(len(c) for c in closes.values()):
        return None
    first, *others = closes.values()
    times = first
    if any(len(c) != len(times) or not np.array_equal(c, times) for c in others):
        times = np.unique(np.concatenate(list(closes.values())))
    start_cash, start_positions = before
    cash = _step_values(times, [e.time for e in log], [start_cash] + [e.cash for e in log])
    equity = cash.copy()
    exposed = np.zeros(len(times), dtype=bool)
    for symbol, candles in history.items():
        entries = [e for e in log if e.symbol == symbol]
        q0, e0 = start_positions.get(symbol, (0.0, 0.0))
        if not entries and q0 == 0:
            continue
        when = [e.time for e in entries]
        qty = _step_values(times, when, [q0] + [e.qty for e in entries])
        entry = _step_values(times, when, [e0] + [e.entry for e in entries])
        own = closes.get(symbol)
        if own is not None and (own is times or np.array_equal(own, times)):
            # Every time is one of this symbol's bar closes, in order: its closes are the marks.
            equity += qty * (candles.close[starts[symbol] :] - entry)
        else:
            at = np.searchsorted(candles.open_time, times - tf_ms, "right") - 1
            marks = candles.close[np.maximum(at, 0)]
            equity += np.where(at >= 0, qty * (marks - entry), 0.0)
        exposed |= qty != 0
    return EquityCurve(times, equity, cash, exposed)


def _one_close(
    history: Mapping[str, Candles],
    starts: Mapping[str, int],
    tf_ms: int,
    before: tuple[float, dict[str, tuple[float, float]]],
    log: list[PositionStep],
) -> EquityCurve | None:
    """:func:`equity_curve` of a batch whose bars all close at one time (a paper or live bar),
    in scalar arithmetic (the same float operations in the same order), or None for any other
    batch. A step counts when its time is before the close, as in :func:`_step_values`."""
    time = -1
    for symbol, i in starts.items():
        times = history[symbol].open_time
        if len(times) - i != 1 or (time >= 0 and int(times[i]) != time):
            return None
        time = int(times[i])
    if time < 0:
        return None
    close_time = time + tf_ms
    cash, positions = before
    last: dict[str, PositionStep] = {}
    for step in log:
        if step.time < close_time:
            cash = step.cash
            last[step.symbol] = step
    equity = cash
    exposed = False
    for symbol, candles in history.items():
        step = last.get(symbol)
        qty, entry = positions.get(symbol, (0.0, 0.0)) if step is None else (step.qty, step.entry)
        if qty == 0 and step is None:
            continue
        times = candles.open_time
        at = len(times) - 1 if symbol in starts else int(times.searchsorted(time, "right")) - 1
        if at >= 0:
            equity += qty * (float(candles.close[at]) - entry)
        exposed = exposed or qty != 0
    return EquityCurve(
        np.array([close_time], dtype=np.int64),
        np.array([equity]),
        np.array([cash]),
        np.array([exposed]),
    )


def _step_values(times: np.ndarray, when: list[int], values: list[float]) -> np.ndarray:
    """``values[k]`` at each time, where ``k`` counts the changes at ``when < time``
    (``values[0]`` is the value before the first change; ``when`` is sorted).

    Each value is repeated over the run of times it holds for: one search per change, not
    one per time."""
    ends = np.searchsorted(times, np.asarray(when, dtype=np.int64), "right")
    runs = np.diff(ends, prepend=0, append=len(times))
    return np.repeat(np.asarray(values, dtype=np.float64), runs)
