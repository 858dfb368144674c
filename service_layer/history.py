"""Growing per-symbol bar history with amortized appends (no copy of the past per bar)."""

from __future__ import annotations

import numpy as np

from domain.candles import OHLCV_COLUMNS, Candles


class CandleHistory:
    """An append-only bar history; :attr:`candles` is a zero-copy view of bars ``0..n-1``.

    Raises
    ------
    ValueError
        When appended bars do not start after the last stored ``open_time``.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._time = np.empty(capacity, dtype=np.int64)
        self._cols = {name: np.empty(capacity, dtype=np.float64) for name in OHLCV_COLUMNS}
        self._n = 0
        self.candles = Candles.empty()

    def __len__(self) -> int:
        return self._n

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
        if need > len(self._time):
            size = max(need, 2 * len(self._time))
            self._time = np.resize(self._time, size)
            self._cols = {name: np.resize(col, size) for name, col in self._cols.items()}
        self._time[self._n : need] = bars.open_time
        for name, col in self._cols.items():
            col[self._n : need] = getattr(bars, name)
        self._n = need
        self.candles = Candles(self._time[:need], *(self._cols[c][:need] for c in OHLCV_COLUMNS))
