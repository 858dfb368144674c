"""Wilder's smoothed indicators: RSI, ATR and ADX (J. Welles Wilder, *New Concepts in Technical
Trading Systems*, 1978), batch via TA-Lib.

Wilder smoothing is ``avg = (avg × (period − 1) + x) / period``, seeded with the plain average of
the first ``period`` inputs. The steppers repeat the floating-point operations of the TA-Lib build
we use (0.8; unstable period 0, default compatibility) in its order, so the two forms agree bit
for bit. That build spells the smoothing three ways:

* RSI: ``(avg × (period − 1) + x) × (1 / period)``, the seed multiplied by ``1 / period`` too;
* ATR: ``fma(β, avg, α × x)`` with ``β = (period − 1) / period`` and ``α = 1 − β``;
* ADX: ``avg − avg / period + x`` for the directional movements and true range, and
  ``(adx × (period − 1) + dx) / period`` for the ADX.

Its tests for a flat window (a zero denominator) are exact comparisons with 0, and so are ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain import indicators
from domain.candles import Candles
from domain.features.base import NAN, Bar, require_min
from domain.features.fma import fma


@dataclass(frozen=True, slots=True)
class RSI:
    """Wilder's Relative Strength Index of the close, in [0, 100].

    Output ``rsi``: ``100 × gain / (gain + loss)`` of the smoothed average gain and loss, 0 when
    both are 0; NaN for the first ``period`` bars (the first change is at bar 1).

    Raises
    ------
    ConfigError
        When ``period < 2``.
    """

    period: int = 14

    def __post_init__(self) -> None:
        require_min("period", self.period, 2)

    @property
    def name(self) -> str:
        """``"rsi(<period>)"``."""
        return f"rsi({self.period})"

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("rsi",)``."""
        return ("rsi",)

    @property
    def warmup(self) -> int:
        """``period + 1`` bars."""
        return self.period + 1

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """``{"rsi": array (n,)}`` from :func:`domain.indicators.rsi`."""
        return {"rsi": indicators.rsi(candles.close, self.period)}

    def stepper(self) -> RsiStepper:
        """Fresh incremental state."""
        return RsiStepper(self.period)


class RsiStepper:
    """Incremental :class:`RSI` (the TA-Lib build's order of operations)."""

    __slots__ = ("_count", "_gain", "_inverse", "_loss", "_period", "_prev")

    def __init__(self, period: int) -> None:
        self._period = period
        self._inverse = 1.0 / period
        self._count = 0
        self._prev = 0.0
        self._gain = 0.0  # sums of the gains and losses until the seed, their averages afterwards
        self._loss = 0.0

    def update(self, bar: Bar) -> tuple[float]:
        """``(rsi,)`` after ``bar``."""
        x = bar.close
        change = x - self._prev
        self._prev = x
        gain = change if change > 0.0 else 0.0
        loss = gain - change
        count = self._count
        if count <= self._period:  # bar 0 has no change; bars 1..period build the seed
            self._count = count + 1
            if count == 0:
                return (NAN,)
            self._gain += gain
            self._loss += loss
            if count < self._period:
                return (NAN,)
            self._gain *= self._inverse
            self._loss *= self._inverse
        else:
            keep = self._period - 1
            self._gain = (self._gain * keep + gain) * self._inverse
            self._loss = (loss + self._loss * keep) * self._inverse
        total = self._gain + self._loss
        return (100.0 * (self._gain / total) if total > 0.0 else 0.0,)


@dataclass(frozen=True, slots=True)
class ATR:
    """Wilder's Average True Range, in price units (quote currency).

    Output ``atr``; true range ``max(high − low, |prev close − high|, |prev close − low|)`` from
    bar 1, seeded at bar ``period`` with the mean of the first ``period`` true ranges, NaN before.

    Raises
    ------
    ConfigError
        When ``period < 1`` (``period = 1`` is the bare true range).
    """

    period: int = 14

    def __post_init__(self) -> None:
        require_min("period", self.period, 1)

    @property
    def name(self) -> str:
        """``"atr(<period>)"``."""
        return f"atr({self.period})"

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("atr",)``."""
        return ("atr",)

    @property
    def warmup(self) -> int:
        """``period + 1`` bars."""
        return self.period + 1

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """``{"atr": array (n,)}`` from :func:`domain.indicators.atr`."""
        return {"atr": indicators.atr(candles.high, candles.low, candles.close, self.period)}

    def stepper(self) -> AtrStepper:
        """Fresh incremental state."""
        return AtrStepper(self.period)


def true_range(high: float, low: float, prev_close: float) -> float:
    """Wilder's true range of one bar, compared in TA-Lib's order (quote currency)."""
    greatest = high - low
    up = abs(prev_close - high)
    if up > greatest:
        greatest = up
    down = abs(prev_close - low)
    if down > greatest:
        greatest = down
    return greatest


class AtrStepper:
    """Incremental :class:`ATR` (the TA-Lib build's order of operations)."""

    __slots__ = ("_alpha", "_atr", "_beta", "_count", "_period", "_prev_close")

    def __init__(self, period: int) -> None:
        self._period = period
        self._beta = (period - 1) / period
        self._alpha = 1.0 - self._beta  # exactly 1 − β (Sterbenz), so α + β == 1
        self._count = 0
        self._prev_close = 0.0
        self._atr = 0.0  # the seed sum until bar ``period``, the ATR afterwards

    def update(self, bar: Bar) -> tuple[float]:
        """``(atr,)`` after ``bar``."""
        prev_close = self._prev_close
        self._prev_close = bar.close
        count = self._count
        if count <= self._period:  # bar 0 has no true range; bars 1..period build the seed
            self._count = count + 1
            if count == 0:
                return (NAN,)
            self._atr += true_range(bar.high, bar.low, prev_close)
            if count < self._period:
                return (NAN,)
            self._atr /= self._period
            return (self._atr,)
        self._atr = fma(
            self._beta, self._atr, self._alpha * true_range(bar.high, bar.low, prev_close)
        )
        return (self._atr,)


@dataclass(frozen=True, slots=True)
class ADX:
    """Wilder's Average Directional Index in [0, 100] (trend strength, not direction).

    Output ``adx``; NaN for the first ``2 × period − 1`` bars: ``period − 1`` bars seed the
    smoothed +DM, −DM and true range, ``period`` more seed the ADX as the mean DX.

    Raises
    ------
    ConfigError
        When ``period < 2``.
    """

    period: int = 14

    def __post_init__(self) -> None:
        require_min("period", self.period, 2)

    @property
    def name(self) -> str:
        """``"adx(<period>)"``."""
        return f"adx({self.period})"

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("adx",)``."""
        return ("adx",)

    @property
    def warmup(self) -> int:
        """``2 × period`` bars."""
        return 2 * self.period

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """``{"adx": array (n,)}`` from :func:`domain.indicators.adx`."""
        return {"adx": indicators.adx(candles.high, candles.low, candles.close, self.period)}

    def stepper(self) -> AdxStepper:
        """Fresh incremental state."""
        return AdxStepper(self.period)


class AdxStepper:
    """Incremental :class:`ADX` (the TA-Lib build's order of operations)."""

    __slots__ = (
        "_adx", "_count", "_minus_dm", "_period", "_plus_dm", "_prev_close", "_prev_high",
        "_prev_low", "_tr",
    )  # fmt: skip

    def __init__(self, period: int) -> None:
        self._period = period
        self._count = 0
        self._prev_high = self._prev_low = self._prev_close = 0.0
        self._plus_dm = self._minus_dm = self._tr = 0.0
        self._adx = 0.0  # the sum of the first DX values until the seed, the ADX afterwards

    def update(self, bar: Bar) -> tuple[float]:
        """``(adx,)`` after ``bar``."""
        high, low = bar.high, bar.low
        up = high - self._prev_high
        down = self._prev_low - low
        tr = true_range(high, low, self._prev_close)
        self._prev_high, self._prev_low, self._prev_close = high, low, bar.close
        minus = down if down > 0 and up < down else 0.0  # at most one of the two moves counts
        plus = up if up > 0 and up > down else 0.0
        count = self._count
        period = self._period
        if count < period:  # bar 0 only sets the previous bar; bars 1..period-1 sum
            self._count = count + 1
            if count:
                self._minus_dm += minus
                self._plus_dm += plus
                self._tr += tr
            return (NAN,)
        self._minus_dm = self._minus_dm - self._minus_dm / period + minus
        self._plus_dm = self._plus_dm - self._plus_dm / period + plus
        self._tr = self._tr - self._tr / period + tr
        dx = directional_index(self._plus_dm, self._minus_dm, self._tr)
        if count < 2 * period:  # bars period..2·period-1 sum the DX for the seed
            self._count = count + 1
            if dx is not None:
                self._adx += dx
            if count < 2 * period - 1:
                return (NAN,)
            self._adx /= period
        elif dx is not None:
            self._adx = (self._adx * (period - 1) + dx) / period
        return (self._adx,)


def directional_index(plus_dm: float, minus_dm: float, tr: float) -> float | None:
    """Wilder's DX in [0, 100] from the smoothed +DM, −DM and true range, ``|+DI − −DI| / (+DI +
    −DI)`` in percent; None on a flat window (no range, or no directional movement)."""
    if tr == 0.0:
        return None
    minus_di = 100.0 * (minus_dm / tr)
    plus_di = 100.0 * (plus_dm / tr)
    total = minus_di + plus_di
    if total == 0.0:
        return None
    return 100.0 * (abs(minus_di - plus_di) / total)
