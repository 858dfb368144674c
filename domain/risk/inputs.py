"""The circuit breakers' per-bar inputs, batch form: relative volume (RVOL) and the percentile of
ATR within a trailing window."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from domain.errors import ConfigError


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=name)


_FEW = 8
"""Up to this many windows, :func:`relative_volume` sums them as Python floats."""


def relative_volume(volume: np.ndarray, period: int = 20) -> np.ndarray:
    """Relative volume: each bar's volume over the mean volume of the ``period`` bars before it.

    ``rvol[i] = volume[i] / mean(volume[i − period : i])``; NaN for ``i < period`` and where
    that mean is 0 (Binance's zero-volume maintenance bars). Shape ``(n,)`` float64 in, same
    out; a ratio (5.0 = five times the usual volume). Source: StockCharts ChartSchool,
    "Relative Volume (RVOL)" (current volume over its average on a look-back period).

    >>> relative_volume(np.array([1.0, 3.0, 2.0, 8.0]), period=2).tolist()[2:]
    [1.0, 3.2]

    Raises
    ------
    ConfigError
        When ``period < 1``.
    """
    _check(period >= 1, "period", f"period must be >= 1, was {period}")
    v = np.asarray(volume, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    n = len(v)
    # Each window is summed in window order, left to right: its sum depends on its values
    # alone (as a paper run's bounded window needs; a difference of running sums would depend
    # on the bars before), and the two paths below give the same bits.
    if n - period > _FEW:  # one shifted slice at a time: a fifth of a window-view reduction
        total = v[: n - period].copy()
        for k in range(1, period):
            total += v[k : n - period + k]
        mean = total / period
        np.divide(v[period:], mean, out=out[period:], where=mean > 0)
    elif n > period:  # a few windows (a paper run's one new bar): plain floats, no array ops
        values = v.tolist()
        for i in range(n - period):
            running = values[i]
            for x in values[i + 1 : i + period]:
                running += x
            mean = running / period
            if mean > 0:
                out[period + i] = values[period + i] / mean
    return out


def atr_percentile(atr: np.ndarray, window: int, chunk: int = 1024) -> np.ndarray:
    """Percentile rank of each ATR value among the ``window`` values before it, in percent.

    ``pct[i] = 100 × #{j in [i − window, i) : atr[j] <= atr[i]} / window``, the "weak"
    percentile of score (``scipy.stats.percentileofscore(kind="weak")``), in [0, 100]: 100
    when ``atr[i]`` is the highest of the window. NaN for ``i < window`` or when ``atr[i]`` or
    a window value is NaN. Shape ``(n,)`` float64 in and out; ``chunk`` rows are compared at
    once (memory ``chunk × window`` bytes). For 5m bars a 30-day window is 8,640.

    >>> atr_percentile(np.array([1.0, 2.0, 3.0, 0.5, 2.5]), window=3).tolist()[3:]
    [0.0, 66.66666666666667]

    Raises
    ------
    ConfigError
        When ``window < 1`` or ``chunk < 1``.
    """
    _check(window >= 1, "window", f"window must be >= 1, was {window}")
    _check(chunk >= 1, "chunk", f"chunk must be >= 1, was {chunk}")
    a = np.asarray(atr, dtype=np.float64)
    out = np.full(a.shape, np.nan)
    if len(a) <= window:
        return out
    # Each value is replaced by its rank among all of them (equal values, equal ranks): the
    # comparisons give the same answers on 16-bit ranks as on the floats, at a quarter of the
    # bytes (half the time). NaNs rank last; their rows and windows are NaN below anyway.
    _, inverse = np.unique(a, return_inverse=True)
    ranks = inverse.reshape(a.shape).astype(np.int16 if len(a) < 2**15 else np.int32)
    windows = sliding_window_view(ranks, window)[:-1]  # row k: ranks[k : k + window]
    nans = np.r_[0, np.cumsum(np.isnan(a))]
    clean = (nans[window:-1] - nans[: len(a) - window]) == 0
    # Compared window position by window position (``now`` against the transposed rows: no
    # broadcast of each value across its row) and summed as bytes into 16-bit counts where
    # the window allows (a bool sum widens every comparison to 64 bits first): the same
    # counts in less than half the instructions.
    wide = np.uint16 if window < 2**16 else np.int64
    for lo in range(0, len(windows), chunk):
        rows = windows[lo : lo + chunk]
        now = ranks[window + lo : window + lo + len(rows)]
        below = (now >= rows.T).view(np.uint8).sum(0, dtype=wide)
        out[window + lo : window + lo + len(rows)] = 100.0 * below / window
    out[window:][~clean | np.isnan(a[window:])] = np.nan
    return out
