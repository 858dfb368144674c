"""Volume-weighted average price anchored at 00:00 UTC, batch via :func:`domain.indicators.vwap`.

Both forms restart the two sums (``Σ typical × volume`` and ``Σ volume``) at each UTC day's first
bar and add the bars in order, so they agree bit for bit, and a value depends on its own day's
bars only: a stepper started anywhere before midnight is exact from midnight on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain import indicators
from domain.candles import Candles
from domain.features.base import Bar

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class VWAP:
    """VWAP of the typical price ``(high + low + close) / 3`` since 00:00 UTC (quote currency).

    Output ``vwap``; defined from the first bar. Where the day has traded no volume yet
    (exchange maintenance) it is the bar's typical price.
    """

    @property
    def name(self) -> str:
        """``"vwap"``."""
        return "vwap"

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("vwap",)``."""
        return ("vwap",)

    @property
    def warmup(self) -> int:
        """1 bar."""
        return 1

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """``{"vwap": array (n,)}`` from :func:`domain.indicators.vwap`."""
        return {
            "vwap": indicators.vwap(
                candles.open_time, candles.high, candles.low, candles.close, candles.volume
            )
        }

    def stepper(self) -> VwapStepper:
        """Fresh incremental state."""
        return VwapStepper()


class VwapStepper:
    """Incremental :class:`VWAP`: the day's two running sums."""

    __slots__ = ("_day", "_pv", "_volume")

    def __init__(self) -> None:
        self._day = -1
        self._pv = 0.0
        self._volume = 0.0

    def update(self, bar: Bar) -> tuple[float]:
        """``(vwap,)`` after ``bar``."""
        typical = (bar.high + bar.low + bar.close) / 3.0
        pv = typical * bar.volume
        day = bar.open_time // DAY_MS
        if day != self._day:
            self._day = day
            self._pv = pv
            self._volume = bar.volume
        else:
            self._pv += pv
            self._volume += bar.volume
        return (self._pv / self._volume if self._volume > 0 else typical,)
