"""Market-data feeds over stored bars: all at once (backtest) or replayed bar by bar (paper).

Both implement the :class:`domain.ports.MarketData` port. A feed never reads the wall clock
itself: :class:`ReplayFeed` paces against an injected clock and sleeps through an injected
callable, so tests drive it with a fake clock and production with the system clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError, UnknownSymbol
from domain.ports import END_OF_DATA, Clock
from domain.timeframes import timeframe_ms

STOPPED = "stopped"
MAX_SLEEP_S = 0.1
"""Longest single sleep of a :class:`ReplayFeed`: a ``stop()`` is honoured within this time."""


class HistoricalFeed:
    """Every bar in one batch: the backtest feed.

    Parameters
    ----------
    candles_by_symbol:
        Bars to trade per symbol (open_time ms UTC, strictly increasing).
    timeframe:
        Bar length name, e.g. ``"5m"``.
    history_by_symbol:
        Warm-up bars per symbol, returned by :meth:`history` (never traded on).

    Raises
    ------
    ConfigError
        When ``timeframe`` is not a timeframe name, or history names a symbol not traded.
    """

    def __init__(
        self,
        candles_by_symbol: Mapping[str, Candles],
        timeframe: str,
        history_by_symbol: Mapping[str, Candles] | None = None,
    ) -> None:
        timeframe_ms(timeframe)
        self.symbols: tuple[str, ...] = tuple(candles_by_symbol)
        self.timeframe = timeframe
        self._candles = dict(candles_by_symbol)
        self._history = dict(history_by_symbol or {})
        _check_known(self._history, self.symbols, "history_by_symbol")
        self._stop = threading.Event()
        self._finished_reason: str | None = None

    def history(self, symbol: str) -> Candles:
        """Warm-up bars of ``symbol`` (empty when none were given).

        Raises
        ------
        UnknownSymbol
            When ``symbol`` is not one of :attr:`symbols`.
        """
        _check_symbol(symbol, self.symbols)
        return self._history.get(symbol, Candles.empty())

    def batches(self) -> Iterator[dict[str, Candles]]:
        """Yield ``{symbol: all bars}`` once, unless stopped before."""
        self._finished_reason = None
        if not self._stop.is_set():
            yield dict(self._candles)
        self._finished_reason = STOPPED if self._stop.is_set() else END_OF_DATA

    def stop(self) -> None:
        """Make :meth:`batches` end; safe to call from any thread."""
        self._stop.set()

    @property
    def finished_reason(self) -> str | None:
        """``"end of data"`` or ``"stopped"`` once :meth:`batches` has ended, else None."""
        return self._finished_reason

    @property
    def exhausted(self) -> bool:
        """True when there is no candle to yield."""
        return not any(len(candles) for candles in self._candles.values())


class ReplayFeed:
    """Replays stored bars one bar time at a time, paced against a clock: the paper feed.

    Each batch holds, for every symbol with a bar at the next open_time, that one bar:
    ``{symbol: Candles of length 1}``. Batch ``k`` is released when the clock reaches
    ``t0 + (open_time_k - open_time_0) / speed`` (ms), ``t0`` being the clock at the first
    batch, so slow consumers or long sleeps never accumulate drift.

    Parameters
    ----------
    candles_by_symbol:
        Bars per symbol (open_time ms UTC, strictly increasing).
    timeframe:
        Bar length name, e.g. ``"5m"``.
    speed:
        Market seconds per wall second (300 replays one 5m bar per second); ``math.inf``
        replays without waiting.
    clock:
        Anything with ``now_ms() -> int`` (ms); the system clock in production.
    start_after:
        Per symbol, the open_time (ms UTC) of the last bar already processed: replay resumes
        after it and :meth:`history` returns the bars up to and including it.
    sleep:
        Called with seconds to wait, at most :data:`MAX_SLEEP_S` at a time. Defaults to
        waiting on the feed's stop event, which returns at once on :meth:`stop`.

    Raises
    ------
    ConfigError
        When ``speed`` is not > 0, ``timeframe`` is not a timeframe name, or ``start_after``
        names a symbol not replayed.
    """

    def __init__(
        self,
        candles_by_symbol: Mapping[str, Candles],
        timeframe: str,
        *,
        speed: float,
        clock: Clock,
        start_after: Mapping[str, int] | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        timeframe_ms(timeframe)
        if not speed > 0:  # also rejects NaN
            raise ConfigError(f"speed must be > 0, was {speed}", field="speed")
        self.symbols: tuple[str, ...] = tuple(candles_by_symbol)
        self.timeframe = timeframe
        self._speed = speed
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._finished_reason: str | None = None
        after = dict(start_after or {})
        _check_known(after, self.symbols, "start_after")
        self._history: dict[str, Candles] = {}
        self._pending: dict[str, Candles] = {}
        for symbol, candles in candles_by_symbol.items():
            cut = 0
            if symbol in after:
                cut = int(np.searchsorted(candles.open_time, after[symbol], side="right"))
            self._history[symbol] = candles.slice(0, cut)
            self._pending[symbol] = candles.slice(cut, len(candles))

    def history(self, symbol: str) -> Candles:
        """Bars up to and including ``start_after[symbol]`` (empty when not resuming).

        Raises
        ------
        UnknownSymbol
            When ``symbol`` is not one of :attr:`symbols`.
        """
        _check_symbol(symbol, self.symbols)
        return self._history[symbol]

    def batches(self) -> Iterator[dict[str, Candles]]:
        """Yield one batch per distinct open_time, in time order, paced by ``speed``."""
        self._finished_reason = None
        times = [c.open_time for c in self._pending.values()]
        steps = np.unique(np.concatenate(times)) if times else np.empty(0, np.int64)
        cursors = dict.fromkeys(self._pending, 0)
        start_wall = self._clock.now_ms()
        for open_time in steps.tolist():
            due = start_wall + (open_time - int(steps[0])) / self._speed
            if not self._wait_until(due):
                self._finished_reason = STOPPED
                return
            yield self._batch_at(open_time, cursors)
        self._finished_reason = STOPPED if self._stop.is_set() else END_OF_DATA

    def stop(self) -> None:
        """Make :meth:`batches` end within :data:`MAX_SLEEP_S`; safe from any thread."""
        self._stop.set()

    @property
    def finished_reason(self) -> str | None:
        """``"end of data"`` or ``"stopped"`` once :meth:`batches` has ended, else None."""
        return self._finished_reason

    @property
    def exhausted(self) -> bool:
        """True when no bar follows the history (nothing to replay)."""
        return not any(len(candles) for candles in self._pending.values())

    def _wait_until(self, due_ms: float) -> bool:
        """Sleep until the clock reaches ``due_ms``; False when stopped first."""
        while not self._stop.is_set():
            remaining_s = (due_ms - self._clock.now_ms()) / 1000
            if remaining_s <= 0:
                return True
            self._sleep(min(remaining_s, MAX_SLEEP_S))
        return False

    def _batch_at(self, open_time: int, cursors: dict[str, int]) -> dict[str, Candles]:
        batch: dict[str, Candles] = {}
        for symbol, candles in self._pending.items():
            k = cursors[symbol]
            if k < len(candles) and candles.open_time[k] == open_time:
                batch[symbol] = candles.slice(k, k + 1)
                cursors[symbol] = k + 1
        return batch


def _check_symbol(symbol: str, symbols: tuple[str, ...]) -> None:
    if symbol not in symbols:
        raise UnknownSymbol(f"symbol {symbol!r} is not in this feed {symbols}", field="symbol")


def _check_known(keyed: Mapping[str, object], symbols: tuple[str, ...], name: str) -> None:
    unknown = sorted(set(keyed) - set(symbols))
    if unknown:
        raise ConfigError(f"{name} names symbols not in the feed: {unknown}", field=name)


def history_cut(candles_by_symbol: Mapping[str, Candles], history_ms: int) -> dict[str, int] | None:
    """Where a new replay starts when the first ``history_ms`` (ms) of the stored bars are
    history: per symbol, the open_time (ms UTC) of the last bar within ``history_ms`` of its
    first bar, as :class:`ReplayFeed`'s ``start_after``; those bars warm the strategy up and
    are charted, never traded on. At most half of a symbol's bars become history, so a short
    store still replays; None when no bar does (``history_ms`` 0, or empty stores).

    Raises
    ------
    ConfigError
        When ``history_ms < 0``.
    """
    if history_ms < 0:
        raise ConfigError(f"history must be >= 0 ms, was {history_ms}", field="history_days")
    cut: dict[str, int] = {}
    for symbol, candles in candles_by_symbol.items():
        times = candles.open_time
        if not len(times) or not history_ms:
            continue
        within = int(np.searchsorted(times, int(times[0]) + history_ms, "left"))
        k = min(within, len(times) // 2)
        if k > 0:
            cut[symbol] = int(times[k - 1])
    return cut or None
