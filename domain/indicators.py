"""Indicators on float64 arrays (length n in, length n out, NaN where undefined).

Standard indicators come from TA-Lib (its documented definitions: Wilder's smoothing for RSI, ATR
and ADX; EMA seeded with the SMA of the first ``period`` values). VWAP anchored at 00:00 UTC is
ours. All are causal: value ``i`` uses inputs ``0..i`` only.
"""

from __future__ import annotations

import numpy as np
import talib

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


def _as_integers(values: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``values × 10^k`` as int64 for the smallest k <= 10 that makes them whole, or None."""
    for k in range(11):
        scaled = values * 10.0**k
        whole = np.round(scaled)
        if np.all(np.abs(scaled - whole) <= 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return whole.astype(np.int64), k
    return None


def sma_sign(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """Sign of ``SMA(fast) − SMA(slow)`` computed exactly: +1, −1, 0 for equal, NaN where the
    slow SMA is undefined (the first ``slow − 1`` bars).

    A running floating-point sum (TA-Lib's SMA) leaves errors near 1e-13 that turn exact ties of
    the two averages into false crossovers. Prices are decimal numbers, so they are scaled to
    integers and the window sums compared as ``sum_fast × slow`` vs ``sum_slow × fast`` in exact
    integer arithmetic (Python integers when int64 could overflow).
    """
    n = len(close)
    out = np.full(n, np.nan)
    if n < slow:
        return out
    converted = _as_integers(np.asarray(close, dtype=np.float64))
    if converted is None:
        return np.sign(sma(close, fast) - sma(close, slow))
    ints = converted[0]
    bound = int(np.abs(ints).max(initial=0)) * fast * slow
    if bound >= _INT64_SAFE:
        ints = ints.astype(object)
    csum = np.concatenate([np.zeros(1, dtype=ints.dtype), np.cumsum(ints)])
    t = np.arange(slow - 1, n)
    sum_fast = csum[t + 1] - csum[t + 1 - fast]
    sum_slow = csum[t + 1] - csum[t + 1 - slow]
    diff = sum_fast * slow - sum_slow * fast
    out[slow - 1 :] = np.sign(diff.astype(np.float64)) if diff.dtype == object else np.sign(diff)
    return out
