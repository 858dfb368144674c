"""Correlation of symbols' hourly log returns (issue 6 component 7: Pearson correlation of 1h
log returns over 30 days), for the portfolio manager's caps (:mod:`domain.allocation`). Pure:
no I/O, no clock; times int ms UTC, math float64.

Pearson, of the log returns ``ln(close_h / close_{h-1})`` of consecutive complete
epoch-aligned 1h buckets resampled from 5m bars (:mod:`domain.resample`) closing in
``(t − 720 h, t]``, on the hours common to all symbols (listwise: a valid correlation matrix).
With fewer than ``min_overlap`` common hours, or a constant series, a pair is unknown (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np

from domain.candles import Candles
from domain.resample import resample

M5, H1 = 300_000, 3_600_000


@dataclass(frozen=True, slots=True, eq=False)
class CorrelationMatrix:
    """Correlations of ``symbols`` (in that order) at ``time`` (ms UTC; None when undated).

    ``values`` shape (k, k), symmetric, ones on the diagonal, NaN for an unknown pair;
    ``volatility`` shape (k,), standard deviation of the hourly log returns used (per hour, NaN
    when unknown); ``observations`` the number of common hours used. Arrays are read-only.

    Raises
    ------
    ValueError
        On shapes that do not fit ``symbols``, an asymmetric matrix or a value outside [-1, 1].
    """

    symbols: tuple[str, ...]
    values: np.ndarray
    volatility: np.ndarray
    observations: int = 0
    time: int | None = None

    def __post_init__(self) -> None:
        k = len(self.symbols)
        values = np.array(self.values, dtype=np.float64)
        vol = np.array(self.volatility, dtype=np.float64)
        if values.shape != (k, k) or vol.shape != (k,):
            raise ValueError(
                f"shapes must be ({k}, {k}) and ({k},), were {values.shape}, {vol.shape}"
            )
        if not np.array_equal(values, values.T, equal_nan=True):
            raise ValueError(f"correlation matrix must be symmetric, was {values.tolist()}")
        if np.any(np.abs(values[~np.isnan(values)]) > 1.0):
            raise ValueError(f"correlations must be in [-1, 1], were {values.tolist()}")
        np.fill_diagonal(values, 1.0)
        values.flags.writeable = vol.flags.writeable = False
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "volatility", vol)

    @classmethod
    def unknown(cls, symbols: Sequence[str], time: int | None = None) -> CorrelationMatrix:
        """Every pair unknown (not enough data yet)."""
        k = len(symbols)
        return cls(tuple(symbols), np.full((k, k), np.nan), np.full(k, np.nan), 0, time)

    def get(self, a: str, b: str) -> float:
        """ρ(a, b): 1.0 when ``a == b``, NaN when unknown or a symbol is not in the matrix."""
        if a == b:
            return 1.0
        if a not in self.symbols or b not in self.symbols:
            return math.nan
        return float(self.values[self.symbols.index(a), self.symbols.index(b)])

    def effective(self, a: str, b: str) -> float:
        """ρ(a, b) as the caps use it: an unknown pair counts as perfectly correlated (1.0)."""
        value = self.get(a, b)
        return 1.0 if math.isnan(value) else value

    def to_dict(self) -> dict[str, dict[str, float | None]]:
        """``{a: {b: ρ}}`` for JSON (None for unknown)."""
        rows = zip(self.symbols, self.values.tolist(), strict=True)
        return {a: dict(zip(self.symbols, [None if math.isnan(v) else v for v in row], strict=True))
                for a, row in rows}  # fmt: skip


def pearson_matrix(returns: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix of the columns of ``returns`` (shape (n, k), float64),
    vectorized: ``cov / (σ σᵀ)``. Shape (k, k), symmetric, ones on the diagonal, values clipped
    to [-1, 1]; NaN for a pair with a constant column, and off the diagonal when ``n < 2``.

    >>> pearson_matrix(np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0]])).round(6).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    x = np.asarray(returns, dtype=np.float64)
    k = x.shape[1]
    out = np.full((k, k), np.nan)
    if x.shape[0] >= 2:
        centered = x - x.mean(axis=0)
        cov = centered.T @ centered
        std = np.sqrt(np.diag(cov))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.clip(cov / np.outer(std, std), -1.0, 1.0)
        out[std == 0, :] = out[:, std == 0] = np.nan
        out = (out + out.T) / 2.0  # a matrix product need not be bit-symmetric
    np.fill_diagonal(out, 1.0)
    return out


def hourly_log_returns(candles: Candles, base_ms: int = M5) -> tuple[np.ndarray, np.ndarray]:
    """``(times, returns)`` of the complete 1h buckets of ``candles`` (``base_ms`` bars):
    ``times`` int64, the close time (ms UTC, open + 1 h) of the later of two consecutive
    complete buckets; ``returns`` float64, ``ln(close / previous close)``. No return spans a
    missing or incomplete hour. Raises ConfigError when 1 h is not a multiple of ``base_ms``.
    """
    hourly = resample(candles, base_ms, H1)
    ot = hourly.open_time
    consecutive = np.diff(ot) == H1
    returns = np.log(hourly.close[1:] / hourly.close[:-1])[consecutive]
    return (ot[1:] + H1)[consecutive], returns


def correlation_at(
    histories: Mapping[str, Candles],
    symbols: Sequence[str],
    time: int,
    *,
    window: int = 720,
    min_overlap: int = 168,
    base_ms: int = M5,
) -> CorrelationMatrix:
    """The correlation matrix of ``symbols`` at ``time`` (ms UTC) from their ``base_ms`` bars.

    Uses only bars closed by ``time`` (``open_time + base_ms ≤ time``): causal, a later bar may
    change or vanish without changing the result. Returns closing in ``(time − window h,
    time]`` (``window`` hours), on the hours common to all symbols; fewer than ``min_overlap``
    of them (or a symbol without history) gives :meth:`CorrelationMatrix.unknown`. Raises
    ConfigError when 1 h is not a multiple of ``base_ms``.
    """
    series = []
    for symbol in symbols:
        bars = histories.get(symbol, Candles.empty())
        # Two hours before the window: the first return's bucket and the one before it.
        bars = bars.between(time - (window + 2) * H1, time - base_ms + 1)
        series.append(returns_in_window(*hourly_log_returns(bars, base_ms), time, window))
    return correlation_of(series, symbols, time, min_overlap=min_overlap)


def returns_in_window(
    times: np.ndarray, returns: np.ndarray, time: int, window: int = 720
) -> tuple[np.ndarray, np.ndarray]:
    """The returns of :func:`hourly_log_returns` that :func:`correlation_at` reads at ``time``
    (ms UTC): those closing in ``(time − window h, time]``. The same whether ``times`` and
    ``returns`` were computed from the window's bars or from any longer history holding them
    (a return depends only on its two complete buckets, both inside the window)."""
    lo = np.searchsorted(times, time - window * H1, "right")
    hi = np.searchsorted(times, time, "right")
    return times[lo:hi], returns[lo:hi]


def correlation_of(
    series: Sequence[tuple[np.ndarray, np.ndarray]],
    symbols: Sequence[str],
    time: int,
    *,
    min_overlap: int = 168,
) -> CorrelationMatrix:
    """The correlation matrix at ``time`` (ms UTC) of ``symbols``' hourly returns ``series``
    (``(times, returns)`` per symbol, in the window: :func:`returns_in_window`), on the hours
    common to all; fewer than ``min_overlap`` of them gives :meth:`CorrelationMatrix.unknown`."""
    times = [t for t, _ in series]
    same = bool(times) and all(np.array_equal(t, times[0]) for t in times[1:])  # no gaps
    if same:
        common = times[0]
    else:
        common = (
            reduce(lambda a, b: np.intersect1d(a, b, assume_unique=True), times)
            if times
            else np.empty(0, dtype=np.int64)
        )
    if len(common) < min_overlap:
        return CorrelationMatrix.unknown(symbols, time)
    x = np.column_stack([r if same else r[np.searchsorted(t, common)] for t, r in series])
    return CorrelationMatrix(tuple(symbols), pearson_matrix(x), x.std(0, ddof=1), len(common), time)
