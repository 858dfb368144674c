"""MACD (Gerald Appel): the fast EMA minus the slow EMA of the close, its signal EMA and the
histogram, batch via TA-Lib's ``TA_MACD``.

TA-Lib aligns the two EMAs at the slow one's first bar: the fast EMA is seeded there too, with the
mean of the last ``fast`` closes (not of the first ``fast`` closes, as a stand-alone EMA would be),
so its values differ from :class:`~domain.features.moving.EMA` (``fast``) until the seed fades.
The signal EMA is seeded with the mean of the first ``signal`` MACD values, and all three outputs
start together, at bar ``slow + signal − 2``. The stepper composes three
:class:`~domain.features.moving.EmaStepper` seeded the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain import indicators
from domain.candles import Candles
from domain.errors import ConfigError
from domain.features.base import NAN, Bar, require_min
from domain.features.moving import EmaStepper


@dataclass(frozen=True, slots=True)
class MACD:
    """Moving Average Convergence/Divergence of the close, in price units (quote currency).

    Outputs ``macd`` (EMA(fast) − EMA(slow)), ``signal`` (EMA(signal) of ``macd``) and ``hist``
    (``macd − signal``); all three NaN for the first ``slow + signal − 2`` bars.

    Raises
    ------
    ConfigError
        When ``fast < 2``, ``slow <= fast`` or ``signal < 1``.
    """

    fast: int = 12
    slow: int = 26
    signal: int = 9

    def __post_init__(self) -> None:
        require_min("fast", self.fast, 2)
        require_min("signal", self.signal, 1)
        if self.slow <= self.fast:
            raise ConfigError(f"slow must be > fast ({self.fast}), was {self.slow}", field="slow")

    @property
    def name(self) -> str:
        """``"macd(<fast>,<slow>,<signal>)"``."""
        return f"macd({self.fast},{self.slow},{self.signal})"

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("macd", "signal", "hist")``."""
        return ("macd", "signal", "hist")

    @property
    def warmup(self) -> int:
        """``slow + signal − 1`` bars."""
        return self.slow + self.signal - 1

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """The three outputs, arrays (n,), from :func:`domain.indicators.macd`."""
        line, signal, hist = indicators.macd(candles.close, self.fast, self.slow, self.signal)
        return {"macd": line, "signal": signal, "hist": hist}

    def stepper(self) -> MacdStepper:
        """Fresh incremental state."""
        return MacdStepper(self.fast, self.slow, self.signal)


class MacdStepper:
    """Incremental :class:`MACD` (``TA_MACD``'s seeding and order of operations)."""

    __slots__ = ("_fast", "_signal", "_slow")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self._slow = EmaStepper(slow)
        self._fast = EmaStepper(fast, skip=slow - fast)
        self._signal = EmaStepper(signal)

    def update(self, bar: Bar) -> tuple[float, float, float]:
        """``(macd, signal, hist)`` after ``bar``."""
        x = bar.close
        slow = self._slow.push(x)
        fast = self._fast.push(x)
        if slow != slow:  # NaN: the slow EMA is not seeded yet
            return (NAN, NAN, NAN)
        line = fast - slow
        signal = self._signal.push(line)
        if signal != signal:
            return (NAN, NAN, NAN)
        return (line, signal, line - signal)
