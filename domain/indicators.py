"""Indicators on float64 arrays (length n in, length n out, NaN where undefined).

Standard indicators come from TA-Lib (its documented definitions: Wilder's smoothing for RSI, ATR
and ADX; EMA seeded with the SMA of the first ``period`` values). VWAP anchored at 00:00 UTC is
ours. All are causal: value ``i`` uses inputs ``0..i`` only.
"""

from __future__ import annotations

import numpy as np
import talib

_DAY_MS = 86_400_000


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
    maintenance), the typical price is used.
    """
    typical = (_f64(high) + _f64(low) + _f64(close)) / 3.0
    vol = _f64(volume)
    day = np.asarray(open_time, dtype=np.int64) // _DAY_MS
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    pv = np.cumsum(typical * vol)
    cv = np.cumsum(vol)
    seg = np.repeat(starts, np.diff(np.r_[starts, len(day)]))
    base_pv = np.where(seg > 0, pv[seg - 1], 0.0)
    base_cv = np.where(seg > 0, cv[seg - 1], 0.0)
    day_pv = pv - base_pv
    day_cv = cv - base_cv
    with np.errstate(invalid="ignore", divide="ignore"):
        out = day_pv / day_cv
    return np.where(day_cv > 0, out, typical)
