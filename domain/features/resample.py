"""Bars to a higher timeframe, incrementally: the stepper form of :func:`domain.resample.resample`.

Buckets are aligned to the Unix epoch and labelled by their start. A bucket is emitted when its
last source bar (``open_time == bucket_start + target_ms − source_ms``) arrives and the bucket
holds all ``target_ms // source_ms`` source bars; a bucket with a missing bar, or the partial
first bucket of a stream, is never emitted, exactly as in the batch form.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.candles import Candles
from domain.features.base import Bar
from domain.resample import check_multiple, resample


@dataclass(frozen=True, slots=True)
class Resampler:
    """Aggregation of ``source_ms`` bars into complete epoch-aligned ``target_ms`` bars.

    Per bucket: first open, max high, min low, last close, summed volume.

    Raises
    ------
    ConfigError
        When ``target_ms`` is not a positive multiple of ``source_ms``.
    """

    source_ms: int
    target_ms: int

    def __post_init__(self) -> None:
        check_multiple(self.source_ms, self.target_ms)

    def batch(self, candles: Candles) -> Candles:
        """The complete higher bars of ``candles`` (see :func:`domain.resample.resample`)."""
        return resample(candles, self.source_ms, self.target_ms)

    def stepper(self) -> ResampleStepper:
        """Fresh incremental state."""
        return ResampleStepper(self.source_ms, self.target_ms)


class ResampleStepper:
    """Incremental :class:`Resampler`: one source bar in, the completed higher bar or None out.

    Raises
    ------
    ValueError
        On a bar whose ``open_time`` is not on the ``source_ms`` grid or not after the previous
        bar's (a replayed or duplicated bar would otherwise corrupt the bucket).
    """

    __slots__ = (
        "_count", "_high", "_last_slot", "_last_time", "_low", "_open", "_per", "_source",
        "_start", "_target", "_volumes",
    )  # fmt: skip

    def __init__(self, source_ms: int, target_ms: int) -> None:
        self._source = source_ms
        self._target = target_ms
        self._per = check_multiple(source_ms, target_ms)
        self._last_slot = target_ms - source_ms  # offset of a bucket's last bar
        self._last_time: int | None = None
        self._start: int | None = None  # the current bucket's start (ms UTC)
        self._count = 0
        self._open = self._high = self._low = 0.0
        self._volumes = [0.0] * self._per

    def update(self, bar: Bar) -> Bar | None:
        """The higher bar that ``bar`` completes, or None."""
        t = bar.open_time
        if t % self._source or (self._last_time is not None and t <= self._last_time):
            raise ValueError(
                f"bar open_time must be on the {self._source} ms grid and after "
                f"{self._last_time}, was {t}"
            )
        self._last_time = t
        offset = t % self._target
        start = t - offset
        if start != self._start:
            self._start = start
            self._count = 0
            self._open, self._high, self._low = bar.open, bar.high, bar.low
        else:
            if bar.high > self._high:
                self._high = bar.high
            if bar.low < self._low:
                self._low = bar.low
        self._volumes[self._count] = bar.volume
        self._count += 1
        # On the grid and in order, the last slot with a full count means no bar is missing.
        if offset != self._last_slot or self._count != self._per:
            return None
        return Bar(start, self._open, self._high, self._low, bar.close, _numpy_sum(self._volumes))


def _numpy_sum(values: list[float]) -> float:
    """``values[0] + pairwise(values[1:])``: the order in which ``np.add.reduceat`` (the batch
    form) sums a bucket, so that volumes agree bit for bit. NumPy's pairwise summation adds
    fewer than 8 values in a row and larger blocks on 8 accumulators (blocks over 128 split in
    two halves, each a multiple of 8)."""
    return values[0] + _pairwise(values, 1, len(values))


def _pairwise(values: list[float], lo: int, hi: int) -> float:
    n = hi - lo
    if n < 8:
        total = 0.0
        for i in range(lo, hi):
            total += values[i]
        return total
    if n <= 128:
        acc = values[lo : lo + 8]
        i = lo + 8
        while i < hi - n % 8:
            for j in range(8):
                acc[j] += values[i + j]
            i += 8
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        for k in range(i, hi):
            total += values[k]
        return total
    half = n // 2
    half -= half % 8
    return _pairwise(values, lo, lo + half) + _pairwise(values, lo + half, hi)
