"""A component computed on a higher timeframe and seen from the base bars, without lookahead.

At each base bar the value is the component's value on the last higher bar *completed* by that
bar's close (:func:`domain.resample.completed_index`); a higher bar still forming is never seen.
Batch: resample, compute, map back (components lifted to one timeframe can share the resampled
bars, :func:`higher_bars`). Incremental: a :class:`~domain.features.resample.ResampleStepper`
feeding the component's stepper, holding its last values between completed buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from domain.candles import Candles
from domain.features.base import NAN, Bar, Component, Stepper
from domain.features.resample import ResampleStepper
from domain.resample import check_multiple, completed_index, resample

_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


@dataclass(frozen=True, slots=True)
class Lifted:
    """``component`` on complete ``target_ms`` bars built from ``source_ms`` bars.

    Outputs are the component's, NaN until the first higher bar on which the component is
    defined has completed.

    Raises
    ------
    ConfigError
        When ``target_ms`` is not a positive multiple of ``source_ms``.
    """

    component: Component
    source_ms: int
    target_ms: int

    def __post_init__(self) -> None:
        check_multiple(self.source_ms, self.target_ms)

    @property
    def name(self) -> str:
        """``"<component>@<timeframe>"``, e.g. ``"ema(50)@1h"``."""
        return f"{self.component.name}@{_label(self.target_ms)}"

    @property
    def outputs(self) -> tuple[str, ...]:
        """The component's outputs."""
        return self.component.outputs

    @property
    def warmup(self) -> int:
        """Base bars needed on a gap-free series in the worst alignment: the component's warm-up
        in whole buckets, plus a partial first bucket of ``per − 1`` bars."""
        per = self.target_ms // self.source_ms
        return self.component.warmup * per + per - 1

    def batch(self, candles: Candles, higher: HigherBars | None = None) -> dict[str, np.ndarray]:
        """Each output as an array (n,) over the base bars, NaN where nothing is known yet.

        ``higher`` is ``higher_bars(candles, source_ms, target_ms)`` when the caller has it
        already (several components lifted to one timeframe share it).
        """
        if higher is None:
            higher = higher_bars(candles, self.source_ms, self.target_ms)
        if len(higher.bars) == 0:
            return {name: np.full(len(candles), np.nan) for name in self.outputs}
        values = self.component.batch(higher.bars)
        known, pick = higher.known, higher.pick
        return {name: np.where(known, values[name][pick], np.nan) for name in self.outputs}

    def stepper(self) -> LiftedStepper:
        """Fresh incremental state."""
        return LiftedStepper(
            ResampleStepper(self.source_ms, self.target_ms),
            self.component.stepper(),
            (NAN,) * len(self.outputs),
        )


class HigherBars(NamedTuple):
    """The complete higher bars of a base series and, per base bar, whether one is complete at
    its close (``known``) and the index of the last such (``pick``, 0 where none is)."""

    bars: Candles
    known: np.ndarray
    pick: np.ndarray


def higher_bars(candles: Candles, source_ms: int, target_ms: int) -> HigherBars:
    """``candles`` (``source_ms`` bars) resampled to complete ``target_ms`` bars, mapped back.

    Raises
    ------
    ConfigError
        When ``target_ms`` is not a positive multiple of ``source_ms``.
    """
    higher = resample(candles, source_ms, target_ms)
    if len(higher) == 0:
        unknown = np.zeros(len(candles), dtype=bool)
        return HigherBars(higher, unknown, np.zeros(len(candles), dtype=np.int64))
    where = completed_index(higher.open_time, target_ms, candles.open_time, source_ms)
    known = where >= 0
    return HigherBars(higher, known, np.where(known, where, 0))


class LiftedStepper:
    """Incremental :class:`Lifted`: resample, step the component on each completed bucket."""

    __slots__ = ("_inner", "_resampler", "_values")

    def __init__(
        self, resampler: ResampleStepper, inner: Stepper, initial: tuple[float, ...]
    ) -> None:
        self._resampler = resampler
        self._inner = inner
        self._values = initial

    def update(self, bar: Bar) -> tuple[float, ...]:
        """The component's values on the last higher bar completed by ``bar``."""
        higher = self._resampler.update(bar)
        if higher is not None:
            self._values = self._inner.update(higher)
        return self._values


def _label(ms: int) -> str:
    for unit, size in _UNITS:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
