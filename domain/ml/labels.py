"""Training labels of the ML predictors: what happened after each bar, read from the future on
purpose.

A label of bar ``t`` is known only ``horizon`` bars after ``t``'s close, so the last ``horizon``
rows are NaN (unknown), and a walk-forward split must embargo ``horizon`` bars between its
training and test rows. Labels are float64 arrays of shape ``(n,)`` holding 1.0, 0.0 or NaN
(``~np.isnan(labels)`` is the mask of known rows). Horizons count bars; the data is expected
gap-free (a gap stretches a horizon in time). Both labels read closes only: a bar's close is the
price at which a signal computed on it can act (at the next bar's open at the earliest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from domain import indicators
from domain.errors import ConfigError


def _require_int(field: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field} must be an integer >= {minimum}, was {value!r}", field=field)


@dataclass(frozen=True, slots=True)
class TrendLabel:
    """The trend predictor's label: 1 when the close ``horizon`` bars after bar ``t`` is above
    bar ``t``'s close, else 0 (a tie is 0). Spec 001, "ML Predictor": "Target: 1 if price higher
    in 4 hours"; the default 48 bars are 4 hours of 5m bars.

    Raises
    ------
    ConfigError
        Field ``horizon`` when it is not an integer >= 1.
    """

    horizon: int = 48

    def __post_init__(self) -> None:
        _require_int("horizon", self.horizon, 1)

    def compute(self, close: np.ndarray) -> np.ndarray:
        """Labels of every bar: shape ``(n,)`` float64 in {0, 1}, NaN for the last ``horizon``
        bars (their future is not in ``close``).

        ``close`` is shape ``(n,)``, quote currency.

        >>> TrendLabel(horizon=2).compute(np.array([1.0, 2.0, 3.0, 1.0, 1.0])).tolist()
        [1.0, 0.0, 0.0, nan, nan]
        """
        c = np.asarray(close, dtype=np.float64)
        out = np.full(len(c), np.nan)
        h = self.horizon
        if len(c) > h:
            out[: len(c) - h] = c[h:] > c[: len(c) - h]
        return out


@dataclass(frozen=True, slots=True)
class MeanReversionLabel:
    """The mean-reversion model's label: 1 when price reverts toward its ``period``-bar mean by
    at least ``threshold`` of the gap within ``horizon`` bars, else 0.

    At bar ``t`` the gap is ``g = close_t − SMA(period)_t``; the target is the mean's level at
    ``t`` (where a reversion trade entered at ``t`` aims), fixed thereafter. The label is 1 when
    some close in bars ``t+1 .. t+horizon`` is within ``(1 − threshold) × |g|`` of that level or
    beyond it (crossed the mean), i.e. has moved toward it by at least ``threshold × |g|``:

    * ``g > 0``: ``close_t − min(close_(t+1..t+horizon)) >= threshold × g``;
    * ``g < 0``: ``max(close_(t+1..t+horizon)) − close_t >= threshold × |g|``.

    A fixed level, not the moving mean, so that a label of 1 means a move of the price that a
    trade can earn, not a mean that drifted to a price standing still. Defaults: the 20-bar mean
    of spec 004's Bollinger-based mean reversion, half the gap, within 12 bars (1 hour of 5m
    bars).

    Raises
    ------
    ConfigError
        Field ``period`` when it is not an integer >= 2, ``threshold`` when it is not a number
        in (0, 1], ``horizon`` when it is not an integer >= 1.
    """

    period: int = 20
    threshold: float = 0.5
    horizon: int = 12

    def __post_init__(self) -> None:
        _require_int("period", self.period, 2)
        _require_int("horizon", self.horizon, 1)
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not (0 < t <= 1):
            raise ConfigError(f"threshold must be a number in (0, 1], was {t!r}", field="threshold")

    def compute(self, close: np.ndarray) -> np.ndarray:
        """Labels of every bar: shape ``(n,)`` float64 in {0, 1}; NaN for the first
        ``period − 1`` bars (no mean yet), for the last ``horizon`` bars (future unknown) and
        where the close equals its mean (no gap to revert).

        ``close`` is shape ``(n,)``, quote currency.

        >>> MeanReversionLabel(period=2, threshold=0.5, horizon=1).compute(
        ...     np.array([10.0, 14.0, 12.0, 11.0])).tolist()
        [nan, 1.0, 0.0, nan]
        """
        c = np.asarray(close, dtype=np.float64)
        n, h = len(c), self.horizon
        out = np.full(n, np.nan)
        if n <= h:
            return out
        m = n - h
        gap = (c - indicators.sma(c, self.period))[:m]
        future = sliding_window_view(c[1:], h)  # row t: closes t+1 .. t+h, for t < n − h
        need = self.threshold * np.abs(gap)
        reverted = np.where(
            gap > 0, c[:m] - future.min(axis=1) >= need, future.max(axis=1) - c[:m] >= need
        )
        out[:m] = np.where(np.abs(gap) > 0, reverted, np.nan)
        return out
