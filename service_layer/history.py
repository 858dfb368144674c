"""Per-symbol bar windows with amortized appends (no copy of the past per bar)."""

from __future__ import annotations

import numpy as np

from domain.candles import OHLCV_COLUMNS, Candles
from domain.model import fast_constructor

_candles = fast_constructor(Candles, validate=False)
"""Views of columns of one length: no check to run."""


class CandleHistory:
    """An append-only bar window; :attr:`candles` is a zero-copy view of the bars kept.

    Parameters
    ----------
    capacity:
        Initial allocation in bars.
    limit:
        Most bars kept (None: all, as a backtest does). Past it the oldest bars are dropped,
        amortized: the window is compacted only when it reaches twice the limit, so memory and
        per-bar cost stay bounded however long a paper or live run lasts.

    Raises
    ------
    ValueError
        When appended bars do not start after the last stored ``open_time``.
    """

    def __init__(self, capacity: int = 1024, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1, was {limit}")
        self.limit = limit
        self._time = np.empty(capacity, dtype=np.int64)
        self._cols = {name: np.empty(capacity, dtype=np.float64) for name in OHLCV_COLUMNS}
        self._lo = 0
        self._n = 0
        self.candles = Candles.empty()

    def __len__(self) -> int:
        return self._n - self._lo

    @property
    def last_time(self) -> int | None:
        """open_time (ms UTC) of the last bar, or None when empty."""
        return int(self._time[self._n - 1]) if self._n else None

    def append(self, bars: Candles) -> None:
        """Add ``bars`` (time-ordered, all after the last stored bar)."""
        k = len(bars)
        if k == 0:
            return
        if self._n and int(bars.open_time[0]) <= int(self._time[self._n - 1]):
            raise ValueError(
                f"bar at {int(bars.open_time[0])} does not follow {int(self._time[self._n - 1])}"
            )
        need = self._n + k
        if self._n == 0 and k > len(self._time) and _native(bars):
            # A backtest's one block: keep the caller's columns (immutable, as Candles are)
            # instead of a copy. Writes only ever go past the last bar, so the next append
            # grows into arrays of its own first.
            self._time = bars.open_time
            self._cols = {name: getattr(bars, name) for name in OHLCV_COLUMNS}
            self._n = k
            self._lo = 0 if self.limit is None else max(0, k - self.limit)
            self._set_view()
            return
        if need > len(self._time) and self._lo > 0:
            self._compact(extra=k)
            need = self._n + k
        if need > len(self._time):
            size = max(need, 2 * len(self._time))
            self._time = np.resize(self._time, size)
            self._cols = {name: np.resize(col, size) for name, col in self._cols.items()}
        n = self._n
        if k == 1:  # a paper or live bar: item assignment costs less than a slice's
            self._time[n] = bars.open_time[0]
            for name, col in self._cols.items():
                col[n] = getattr(bars, name)[0]
        else:
            self._time[n:need] = bars.open_time
            for name, col in self._cols.items():
                col[n:need] = getattr(bars, name)
        self._n = need
        if self.limit is not None and self._n - self._lo > self.limit:
            self._lo = self._n - self.limit
        self._set_view()

    def _set_view(self) -> None:
        lo, n, cols = self._lo, self._n, self._cols
        self.candles = _candles(
            self._time[lo:n],
            cols["open"][lo:n],
            cols["high"][lo:n],
            cols["low"][lo:n],
            cols["close"][lo:n],
            cols["volume"][lo:n],
        )

    def _compact(self, extra: int) -> None:
        """Move the kept bars to the front of arrays with room for ``extra`` more and at least
        as many again (so compaction happens once per ``limit`` appends at most)."""
        lo, n = self._lo, self._n
        size = max(len(self._time), 2 * (n - lo) + extra, 16)
        time = np.empty(size, dtype=np.int64)
        time[: n - lo] = self._time[lo:n]
        cols = {}
        for name, col in self._cols.items():
            cols[name] = np.empty(size, dtype=np.float64)
            cols[name][: n - lo] = col[lo:n]
        self._time, self._cols = time, cols
        self._lo, self._n = 0, n - lo


def _native(bars: Candles) -> bool:
    """Whether ``bars`` has the window's own dtypes (int64 times, float64 columns)."""
    return bars.open_time.dtype == np.int64 and all(
        getattr(bars, name).dtype == np.float64 for name in OHLCV_COLUMNS
    )
