"""Rolling windows over hourly series, each in two forms that agree value for value: a
vectorized batch over a whole history and an incremental ring fed one value at a time.

* :func:`volatility_percentile` / :class:`PercentileWindow`: the percentile of a value among
  the last ``window`` ones, itself included (the adaptive thresholds' and the regime's
  volatility percentile).
* :func:`window_mean` / :class:`WindowMean`: the mean of the last ``window`` values (the
  regime's mean Bollinger width).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from domain.errors import ConfigError


def volatility_percentile(atr: np.ndarray, window: int = 720, chunk: int = 2048) -> np.ndarray:
    """Percentile of each value among the defined values of the last ``window`` ones, itself
    included, in percent: ``100 × #{j in (i − window, i] : atr[j] <= atr[i]} / #{j in (i −
    window, i] : atr[j] defined}``; NaN where ``atr[i]`` is NaN. Shape ``(n,)`` float64 in and
    out; ``chunk`` rows are compared at once (memory ``chunk × window`` bytes).

    >>> volatility_percentile(np.array([np.nan, 2.0, 1.0, 3.0, 2.5]), window=3).tolist()
    [nan, 100.0, 50.0, 100.0, 66.66666666666667]

    Raises
    ------
    ConfigError
        When ``window < 1`` or ``chunk < 1``.
    """
    for name, value in (("window", window), ("chunk", chunk)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, was {value}", field=name)
    a = np.asarray(atr, dtype=np.float64)
    out = np.full(a.shape, np.nan)
    if len(a) == 0:
        return out
    rows = sliding_window_view(np.r_[np.full(window - 1, np.nan), a], window)
    for lo in range(0, len(a), chunk):
        block, now = rows[lo : lo + chunk], a[lo : lo + chunk]
        counts = (block <= now[:, None]).sum(axis=1)
        sizes = (~np.isnan(block)).sum(axis=1)
        out[lo : lo + chunk] = 100.0 * counts / np.maximum(sizes, 1)
    out[np.isnan(a)] = np.nan
    return out


class PercentileWindow:
    """Incremental :func:`volatility_percentile`: the last ``window`` values in a ring."""

    __slots__ = ("_ring",)

    def __init__(self, window: int) -> None:
        self._ring: deque[float] = deque(maxlen=window)

    def push(self, value: float) -> float:
        """Take the next value; its percentile (percent), NaN when ``value`` is NaN."""
        ring = self._ring
        ring.append(value)
        if value != value:
            return math.nan
        count = size = 0
        for v in ring:
            if v <= value:
                count += 1
            if v == v:
                size += 1
        return 100.0 * count / size


def window_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the defined values among the last ``window`` ones (the current one included),
    NaN where none is defined. Window sums are differences of one running total (NumPy's
    sequential ``cumsum``, NaN counted as 0), which :class:`WindowMean` repeats bit for bit.

    >>> window_mean(np.array([np.nan, 1.0, 2.0, 6.0]), window=2).tolist()
    [nan, 1.0, 1.5, 4.0]
    """
    v = np.asarray(values, dtype=np.float64)
    defined = ~np.isnan(v)
    total, count = np.cumsum(np.where(defined, v, 0.0)), np.cumsum(defined)
    lag_total, lag_count = np.zeros(len(v)), np.zeros(len(v), dtype=np.int64)
    lag_total[window:], lag_count[window:] = total[:-window], count[:-window]
    n = count - lag_count
    out = np.full(len(v), np.nan)
    np.divide(total - lag_total, n, out=out, where=n > 0)
    return out


class WindowMean:
    """Incremental :func:`window_mean`."""

    __slots__ = ("_count", "_lags", "_total", "_window")

    def __init__(self, window: int) -> None:
        self._window = window
        self._total, self._count = 0.0, 0
        self._lags: deque[tuple[float, int]] = deque(maxlen=window + 1)

    def push(self, value: float) -> float:
        """Take the next value; the mean of the window ending with it."""
        if value == value:
            self._total += value
            self._count += 1
        self._lags.append((self._total, self._count))
        lag_total, lag_count = self._lags[0] if len(self._lags) > self._window else (0.0, 0)
        n = self._count - lag_count
        return (self._total - lag_total) / n if n > 0 else math.nan
