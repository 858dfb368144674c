"""Pending wake-ups: a strategy's requests to decide again at a market time or a price level.

Each wake-up is searched for vectorized over the bars that opened after it was set (never bar by
bar), so a breakeven move or a time exit costs one decision. Fired wake-ups are removed; the rest
are part of the run's persisted state.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.candles import Candles
from domain.strategies.base import WakeUp
from service_layer.history import CandleHistory

_DECIDE = 0


@dataclass(slots=True)
class _Pending:
    """A wake-up set at ``since`` (ms UTC, the decision time): bars opening at or after it
    count; bars up to ``checked`` (open time) were searched without a hit; ``fires_at`` is the
    bar close time at which it fires, once found."""

    wake: WakeUp
    since: int
    checked: int = -1
    fires_at: int | None = None


class WakeBook:
    """The pending wake-ups of a run, keyed by ``(symbol, tag)``."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def update(self, wakes: Iterable[WakeUp], drops: Iterable[tuple[str, str]], time: int) -> None:
        """Drop the ``(symbol, tag)`` pairs in ``drops``, then set ``wakes`` (replacing any with
        the same symbol and tag) from decision time ``time`` (ms UTC)."""
        for key in drops:
            self._pending.pop(key, None)
        for wake in wakes:
            self._pending[(wake.symbol, wake.tag)] = _Pending(wake, since=time)

    def schedule(self, history: Mapping[str, CandleHistory], tf_ms: int, heap: list) -> None:
        """Search the bars not yet searched and push a decision event ``(close time, 0, "", 0)``
        on ``heap`` for each wake-up that fires in them."""
        for pending in self._pending.values():
            if pending.fires_at is not None:
                continue
            candles = history[pending.wake.symbol].candles
            times = candles.open_time
            lo = int(times.searchsorted(max(pending.since, pending.checked + 1), "left"))
            if lo >= len(times):
                continue
            found = _first_hit(pending.wake, candles, lo, tf_ms)
            if found is not None:
                pending.fires_at = int(times[found]) + tf_ms
                heapq.heappush(heap, (pending.fires_at, _DECIDE, "", 0))
            else:
                pending.checked = int(times[-1])

    def fire(self, time: int) -> tuple[WakeUp, ...]:
        """Remove and return the wake-ups that fire at bar close ``time`` (ms UTC)."""
        keys = [k for k, p in self._pending.items() if p.fires_at == time]
        return tuple(self._pending.pop(k).wake for k in keys)

    def to_json(self) -> list[dict[str, Any]]:
        """The pending wake-ups as JSON-serializable dicts."""
        return [
            {
                "symbol": p.wake.symbol,
                "tag": p.wake.tag,
                "at_time": p.wake.at_time,
                "above": p.wake.above,
                "below": p.wake.below,
                "since": p.since,
                "checked": p.checked,
            }
            for p in self._pending.values()
        ]

    @classmethod
    def from_json(cls, items: Iterable[Mapping[str, Any]]) -> WakeBook:
        """A book from :meth:`to_json` output."""
        book = cls()
        for item in items:
            wake = WakeUp(
                item["symbol"], item["tag"], item.get("at_time"), item.get("above"),
                item.get("below"),
            )  # fmt: skip
            book._pending[(wake.symbol, wake.tag)] = _Pending(
                wake, since=int(item["since"]), checked=int(item.get("checked", -1))
            )
        return book


_FIRST_CHUNK = 512
"""Bars a price wake-up's search reads first; each further read is 8 times longer (most
wake-ups fire within hours, so a backtest rarely reads a year of bars for one)."""


def _first_hit(wake: WakeUp, candles: Candles, lo: int, tf_ms: int) -> int | None:
    """Index of the first bar ``>= lo`` of ``candles`` on which ``wake`` fires (its close at or
    after ``at_time``, its high at or above ``above``, its low at or below ``below``), None
    when none does. The time is one search; the prices are read only up to it."""
    times = candles.open_time
    n = len(times)
    end = n
    if wake.at_time is not None:
        end = max(lo, int(times.searchsorted(wake.at_time - tf_ms, "left")))
    if wake.above is not None or wake.below is not None:
        a, size = lo, _FIRST_CHUNK
        while a < end:
            b = min(end, a + size)
            hit = np.zeros(b - a, dtype=bool)
            if wake.above is not None:
                hit |= candles.high[a:b] >= wake.above
            if wake.below is not None:
                hit |= candles.low[a:b] <= wake.below
            if hit.any():
                return a + int(hit.argmax())
            a, size = b, size * 8
    return end if end < n else None
