"""Indicators on float64 arrays (length n in, length n out, NaN where undefined).

Standard indicators come from TA-Lib (its documented definitions: Wilder's smoothing for RSI, ATR
and ADX; EMA seeded with the SMA of the first ``period`` values). VWAP anchored at 00:00 UTC is
ours, and so is the exact sign of an SMA difference. All are causal: value ``i`` uses inputs
``0..i`` only.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import talib

from domain.errors import ConfigError

_DAY_MS = 86_400_000
_INT64_SAFE = 2**62


def _f64(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def sma(close: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average; NaN for the first ``period − 1`` bars.

    >>> sma(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    array([nan, 1.5, 2.5, 3.5])
    """
    return talib.SMA(_f64(close), timeperiod=period)


def ema(close: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, ``α = 2 / (period + 1)``, seeded with the first SMA."""
    return talib.EMA(_f64(close), timeperiod=period)


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's Relative Strength Index in [0, 100]."""
    return talib.RSI(_f64(close), timeperiod=period)


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's Average True Range, in price units (quote currency)."""
    return talib.ATR(_f64(high), _f64(low), _f64(close), timeperiod=period)


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's Average Directional Index in [0, 100] (trend strength, not direction)."""
    return talib.ADX(_f64(high), _f64(low), _f64(close), timeperiod=period)


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram (Appel)."""
    line, sig, hist = talib.MACD(_f64(close), fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return line, sig, hist


def bollinger(
    close: np.ndarray, period: int = 20, k: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger Bands: upper, middle (SMA), lower at ``k`` population standard deviations."""
    upper, middle, lower = talib.BBANDS(_f64(close), timeperiod=period, nbdevup=k, nbdevdn=k)
    return upper, middle, lower


def vwap(
    open_time: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> np.ndarray:
    """Volume-weighted average price anchored at 00:00 UTC each day.

    ``VWAP_i = Σ typical·volume / Σ volume`` over the bars of bar ``i``'s UTC day up to ``i``,
    with ``typical = (high + low + close) / 3``. Where the day's volume so far is 0 (exchange
    maintenance), the typical price is used. Both sums restart at each day's first bar and add
    the bars in order, so a value depends on its own day only and an incremental form (see
    :class:`domain.features.vwap.VWAP`) reproduces it exactly.

    Parameters
    ----------
    open_time:
        Shape (n,), int64 ms UTC, increasing.
    high, low, close, volume:
        Shape (n,); prices in quote currency, volume in base asset.

    Returns
    -------
    numpy.ndarray
        Shape (n,), float64, quote currency.
    """
    typical = (_f64(high) + _f64(low) + _f64(close)) / 3.0
    vol = _f64(volume)
    day = np.asarray(open_time, dtype=np.int64) // _DAY_MS
    bounds = np.flatnonzero(np.r_[True, day[1:] != day[:-1], True])
    pv = typical * vol
    day_pv = np.empty_like(pv)
    day_v = np.empty_like(vol)
    for start, stop in pairwise(bounds.tolist()):
        np.cumsum(pv[start:stop], out=day_pv[start:stop])  # sequential, unlike np.sum
        np.cumsum(vol[start:stop], out=day_v[start:stop])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = day_pv / day_v
    return np.where(day_v > 0, out, typical)


def sma_sign(close: np.ndarray, fast: int, slow: int, *, tick: float) -> np.ndarray:
    """Sign of ``SMA(fast) − SMA(slow)`` of the close computed exactly: +1, −1, 0 for equal, NaN
    where the slow SMA is undefined (the first ``slow − 1`` bars).

    A running floating-point sum (TA-Lib's SMA) leaves errors near 1e-13 that turn exact ties of
    the two averages into false crossovers. So prices are counted in ticks, ``round(close /
    tick)`` (half to even; a price off the tick grid goes to the nearest tick), and the window
    sums compared as ``sum_fast × slow`` vs ``sum_slow × fast`` in exact integer arithmetic
    (int64, or Python integers where int64 could overflow).

    Parameters
    ----------
    close:
        Shape (n,), quote currency, finite.
    fast, slow:
        Window lengths in bars, ``1 <= fast < slow``.
    tick:
        The instrument's price increment (quote currency), e.g. 0.1 for Binance BTCUSDT
        perpetuals, 0.01 for BTCUSDT spot.

    Returns
    -------
    numpy.ndarray
        Shape (n,), float64 in {−1, 0, +1} or NaN.

    Raises
    ------
    ConfigError
        When ``fast < 1``, ``slow <= fast`` or ``tick`` is not a positive finite number.
    ValueError
        When a close is not finite.

    >>> sma_sign(np.array([95123.45, 95123.44, 95123.46]), 1, 2, tick=0.01).tolist()
    [nan, -1.0, 1.0]
    """
    check_sma_sign(fast, slow, tick)
    n = len(close)
    out = np.full(n, np.nan)
    if n < slow:
        return out
    scaled = np.round(np.asarray(close, dtype=np.float64) / tick)
    if not np.isfinite(scaled).all():
        bad = int(np.flatnonzero(~np.isfinite(scaled))[0])
        raise ValueError(f"close must be finite, was {close[bad]} at index {bad}")
    peak = float(np.abs(scaled).max())
    if peak * max(n, 2 * fast * slow) < _INT64_SAFE:
        ticks = scaled.astype(np.int64)
    else:
        ticks = np.array([int(v) for v in scaled.tolist()], dtype=object)
    csum = np.concatenate([np.zeros(1, dtype=ticks.dtype), np.cumsum(ticks)])
    t = np.arange(slow - 1, n)
    sum_fast = csum[t + 1] - csum[t + 1 - fast]
    sum_slow = csum[t + 1] - csum[t + 1 - slow]
    diff = sum_fast * slow - sum_slow * fast
    out[slow - 1 :] = np.sign(diff.astype(np.float64)) if diff.dtype == object else np.sign(diff)
    return out


def check_sma_sign(fast: int, slow: int, tick: float) -> None:
    """Refuse parameters that :func:`sma_sign` cannot use.

    Raises
    ------
    ConfigError
        When ``fast < 1``, ``slow <= fast`` or ``tick`` is not a positive finite number, naming
        the parameter and its value.
    """
    if fast < 1:
        raise ConfigError(f"fast must be >= 1, was {fast}", field="fast")
    if slow <= fast:
        raise ConfigError(f"slow must be > fast ({fast}), was {slow}", field="slow")
    if not (math.isfinite(tick) and tick > 0):
        raise ConfigError(f"tick must be a positive number, was {tick}", field="tick")
