"""Bollinger Bands (John Bollinger): the SMA of the close ± ``k`` population standard deviations,
batch via TA-Lib's ``TA_BBANDS`` (SMA middle band).

The TA-Lib build we use computes the variance on shifted data, which avoids the cancellation of
``E[x²] − E[x]²`` at prices far from zero: running sums of ``x − shift`` and ``(x − shift)²``
over the window, with ``shift`` first the window's first close and then, at a *reseed*, the mean
of the current window (when the variance falls below 1e-6 of the mean square, when a squared
deviation leaving the window dwarfs the sum, or every ``32 × period`` bars). The stepper keeps
the window in a ring and repeats those operations in that order, reseeds included, so the two
forms agree bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from domain import indicators
from domain.candles import Candles
from domain.errors import ConfigError
from domain.features.base import NAN, Bar, require_min

_RESEED_EVERY = 32  # bars per period between two reseeds, at the latest
_RESEED_BELOW = 1e-6  # reseed when the variance falls below this share of the mean square
_RESEED_JUMP = 1e6  # ... or when a squared deviation leaving the window exceeds the sum this much
_FLOOR = 1e-12  # a reseeded variance below this share of the mean square is 0


@dataclass(frozen=True, slots=True)
class Bollinger:
    """Bollinger Bands of the close over ``period`` bars at ``k`` standard deviations.

    Outputs ``upper``, ``middle`` (the SMA) and ``lower``, in quote currency; NaN for the first
    ``period − 1`` bars. The deviation is the population one (divided by ``period``).

    Raises
    ------
    ConfigError
        When ``period < 2`` or ``k`` is not a positive finite number.
    """

    period: int = 20
    k: float = 2.0

    def __post_init__(self) -> None:
        require_min("period", self.period, 2)
        if not (math.isfinite(self.k) and self.k > 0):
            raise ConfigError(f"k must be a positive number, was {self.k}", field="k")

    @property
    def name(self) -> str:
        """``"bollinger(<period>,<k>)"``."""
        return f"bollinger({self.period},{self.k:g})"

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("upper", "middle", "lower")``."""
        return ("upper", "middle", "lower")

    @property
    def warmup(self) -> int:
        """``period`` bars."""
        return self.period

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """The three bands, arrays (n,), from :func:`domain.indicators.bollinger`."""
        upper, middle, lower = indicators.bollinger(candles.close, self.period, self.k)
        return {"upper": upper, "middle": middle, "lower": lower}

    def stepper(self) -> BollingerStepper:
        """Fresh incremental state."""
        return BollingerStepper(self.period, self.k)


class BollingerStepper:
    """Incremental :class:`Bollinger` (the TA-Lib build's order of operations)."""

    __slots__ = (
        "_count", "_inverse", "_k", "_period", "_ring", "_shift", "_since_reseed", "_slot",
        "_sum", "_sum_dev", "_sum_sq",
    )  # fmt: skip

    def __init__(self, period: int, k: float) -> None:
        self._period = period
        self._k = float(k)
        self._inverse = 1.0 / period
        self._ring = [0.0] * period
        self._slot = 0
        self._count = 0
        self._sum = 0.0  # the SMA's running total
        self._shift = 0.0
        self._sum_dev = 0.0  # Σ (x − shift) over the window
        self._sum_sq = 0.0  # Σ (x − shift)² over the window
        self._since_reseed = 0  # bars left before the next periodic reseed

    def update(self, bar: Bar) -> tuple[float, float, float]:
        """``(upper, middle, lower)`` after ``bar``."""
        x = bar.close
        ring, slot, period = self._ring, self._slot, self._period
        ring[slot] = x
        slot = slot + 1 if slot + 1 < period else 0
        self._slot = slot  # ring[slot] is now the oldest close in the window
        if self._count == 0:
            self._shift = x
        self._sum += x
        dev = x - self._shift
        self._sum_dev += dev
        self._sum_sq += dev * dev
        if self._count < period - 1:
            self._count += 1
            return (NAN, NAN, NAN)
        if self._count == period - 1:
            self._count = period
            self._since_reseed = _RESEED_EVERY * period
        inverse = self._inverse
        mean_dev = self._sum_dev * inverse
        variance = self._sum_sq * inverse - mean_dev * mean_dev
        middle = self._sum / period
        oldest = ring[slot]
        self._sum -= oldest
        dev = oldest - self._shift
        self._sum_dev -= dev
        dev *= dev
        self._sum_sq -= dev
        self._since_reseed -= 1
        if (
            variance < _RESEED_BELOW * (self._sum_sq * inverse)
            or dev > _RESEED_JUMP * self._sum_sq
            or self._since_reseed <= 0
        ):
            variance = self._reseed()
        spread = (math.sqrt(variance) if variance != 0.0 else 0.0) * self._k
        return (middle + spread, middle, middle - spread)

    def _reseed(self) -> float:
        """Shift to the window's mean, rebuild the sums without the oldest close; the variance."""
        ring, slot, inverse = self._ring, self._slot, self._inverse
        self._since_reseed = _RESEED_EVERY * self._period
        window = ring[slot:] + ring[:slot]  # oldest first
        total = 0.0
        for x in window:
            total += x
        shift = total * inverse
        sum_dev = sum_sq = 0.0
        for x in window:
            dev = x - shift
            sum_dev += dev
            sum_sq += dev * dev
        mean_dev = sum_dev * inverse
        variance = sum_sq * inverse - mean_dev * mean_dev
        if variance < _FLOOR * (sum_sq * inverse):
            variance = 0.0
        dev = window[0] - shift
        self._shift = shift
        self._sum_dev = sum_dev - dev
        self._sum_sq = sum_sq - dev * dev
        return variance
