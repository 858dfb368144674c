"""The exact sign of ``SMA(fast) − SMA(slow)`` of the close, batch via
:func:`domain.indicators.sma_sign`.

Prices are counted in ticks (``round(close / tick)``, half to even, in both forms) and the two
window sums compared in integer arithmetic, so an exact tie of the averages is 0 and never a false
crossover; the stepper keeps Python integers, which cannot overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain import indicators
from domain.candles import Candles
from domain.features.base import NAN, Bar


@dataclass(frozen=True, slots=True)
class SmaSign:
    """+1 where SMA(``fast``) > SMA(``slow``) of the close, −1 where below, 0 where equal.

    Output ``sign``; NaN for the first ``slow − 1`` bars. ``tick`` is the instrument's price
    increment in quote currency (prices off that grid go to the nearest tick).

    Raises
    ------
    ConfigError
        When ``fast < 1``, ``slow <= fast`` or ``tick`` is not a positive finite number.
    """

    fast: int
    slow: int
    tick: float

    def __post_init__(self) -> None:
        indicators.check_sma_sign(self.fast, self.slow, self.tick)

    @property
    def name(self) -> str:
        """``"sma_sign(<fast>,<slow>)"``."""
        return f"sma_sign({self.fast},{self.slow})"

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("sign",)``."""
        return ("sign",)

    @property
    def warmup(self) -> int:
        """``slow`` bars."""
        return self.slow

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """``{"sign": array (n,)}`` from :func:`domain.indicators.sma_sign`."""
        return {"sign": indicators.sma_sign(candles.close, self.fast, self.slow, tick=self.tick)}

    def stepper(self) -> SmaSignStepper:
        """Fresh incremental state."""
        return SmaSignStepper(self.fast, self.slow, self.tick)


class SmaSignStepper:
    """Incremental :class:`SmaSign`: a ring of the last ``slow`` prices in ticks, two sums.

    Raises ``ValueError`` (NaN) or ``OverflowError`` (infinity) on a close that is not finite.
    """

    __slots__ = ("_count", "_fast", "_ring", "_slot", "_slow", "_sum_fast", "_sum_slow", "_tick")

    def __init__(self, fast: int, slow: int, tick: float) -> None:
        self._fast = fast
        self._slow = slow
        self._tick = tick
        self._ring = [0] * slow  # zeros stand for the bars before the first one
        self._slot = 0
        self._count = 0
        self._sum_fast = 0
        self._sum_slow = 0

    def update(self, bar: Bar) -> tuple[float]:
        """``(sign,)`` after ``bar``."""
        ticks = round(bar.close / self._tick)
        ring, slot, slow = self._ring, self._slot, self._slow
        self._sum_fast += ticks - ring[slot - self._fast]  # the close leaving the fast window
        self._sum_slow += ticks - ring[slot]  # the close leaving the slow window
        ring[slot] = ticks
        self._slot = slot + 1 if slot + 1 < slow else 0
        if self._count < slow - 1:
            self._count += 1
            return (NAN,)
        diff = self._sum_fast * slow - self._sum_slow * self._fast
        return (1.0 if diff > 0 else -1.0 if diff < 0 else 0.0,)
