"""Moving averages of the close: simple (SMA) and exponential (EMA), batch via TA-Lib.

The steppers repeat TA-Lib's floating-point operations in TA-Lib's order, so the two forms agree
bit for bit:

* SMA (``TA_SMA``): one running total; each bar adds the new close, the output is
  ``total / period``, then the close leaving the window is subtracted.
* EMA (``TA_EMA``): seeded at bar ``period − 1`` with the plain sum of the first ``period``
  closes divided by ``period``, then ``ema = fma(close − ema, k, ema)`` with
  ``k = 2 / (period + 1)`` (one rounding, see :mod:`domain.features.fma`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain import indicators
from domain.candles import Candles
from domain.features.base import NAN, Bar, require_min
from domain.features.fma import fma


@dataclass(frozen=True, slots=True)
class SMA:
    """Simple moving average of the close over ``period`` bars (quote currency).

    Output ``sma``; the first ``period − 1`` values are NaN.

    Raises
    ------
    ConfigError
        When ``period < 2`` (TA-Lib's range).
    """

    period: int

    def __post_init__(self) -> None:
        require_min("period", self.period, 2)

    @property
    def name(self) -> str:
        """``"sma(<period>)"``."""
        return f"sma({self.period})"

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("sma",)``."""
        return ("sma",)

    @property
    def warmup(self) -> int:
        """``period`` bars."""
        return self.period

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """``{"sma": array (n,)}`` from :func:`domain.indicators.sma`."""
        return {"sma": indicators.sma(candles.close, self.period)}

    def stepper(self) -> SmaStepper:
        """Fresh incremental state."""
        return SmaStepper(self.period)


class SmaStepper:
    """Incremental :class:`SMA`: a ring of the last ``period`` closes and TA-Lib's running total."""

    __slots__ = ("_count", "_period", "_ring", "_slot", "_total")

    def __init__(self, period: int) -> None:
        self._period = period
        self._ring = [0.0] * period
        self._slot = 0
        self._count = 0
        self._total = 0.0

    def update(self, bar: Bar) -> tuple[float]:
        """``(sma,)`` after ``bar``; NaN before ``period`` bars."""
        x = bar.close
        ring, slot = self._ring, self._slot
        ring[slot] = x
        slot += 1
        if slot == self._period:
            slot = 0
        self._slot = slot
        self._total += x
        if self._count < self._period - 1:
            self._count += 1
            return (NAN,)
        total = self._total
        self._total = total - ring[slot]  # ring[slot] is now the oldest close in the window
        return (total / self._period,)


@dataclass(frozen=True, slots=True)
class EMA:
    """Exponential moving average of the close, ``k = 2 / (period + 1)`` (quote currency).

    Output ``ema``; seeded at bar ``period − 1`` with the SMA of the first ``period`` closes
    (TA-Lib's classic seed), NaN before.

    Raises
    ------
    ConfigError
        When ``period < 2``.
    """

    period: int

    def __post_init__(self) -> None:
        require_min("period", self.period, 2)

    @property
    def name(self) -> str:
        """``"ema(<period>)"``."""
        return f"ema({self.period})"

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("ema",)``."""
        return ("ema",)

    @property
    def warmup(self) -> int:
        """``period`` bars."""
        return self.period

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """``{"ema": array (n,)}`` from :func:`domain.indicators.ema`."""
        return {"ema": indicators.ema(candles.close, self.period)}

    def stepper(self) -> EmaStepper:
        """Fresh incremental state."""
        return EmaStepper(self.period)


class EmaStepper:
    """Incremental :class:`EMA` in TA-Lib's order of operations.

    ``skip`` values are ignored before the seed window starts: TA-Lib's MACD seeds its fast EMA
    on the ``fast`` values that end where the slow EMA's seed ends. :meth:`push` takes a bare
    float, for components built on an EMA.
    """

    __slots__ = ("_k", "_pending", "_period", "_value")

    def __init__(self, period: int, skip: int = 0) -> None:
        self._period = period
        self._k = 2.0 / (period + 1)
        self._pending = skip + period  # values still to come before the first output
        self._value = 0.0  # the seed sum until then, the EMA afterwards

    def push(self, x: float) -> float:
        """The EMA after value ``x``; NaN until the seed window is complete."""
        if self._pending:
            self._pending -= 1
            if self._pending >= self._period:
                return NAN
            self._value += x
            if self._pending:
                return NAN
            self._value /= self._period
            return self._value
        value = fma(x - self._value, self._k, self._value)
        self._value = value
        return value

    def update(self, bar: Bar) -> tuple[float]:
        """``(ema,)`` after ``bar``."""
        return (self.push(bar.close),)
