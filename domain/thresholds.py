"""Adaptive ADX and RVOL thresholds from the 1h volatility percentile (issue 6, component 1).

Rules (issue 6, "Adaptive thresholds", refining spec 001's "Adaptive Threshold Manager"):

* ATR(24) (Wilder, :class:`domain.features.ATR`) on complete epoch-aligned 1h buckets resampled
  from the base bars: a bucket counts once its last base bar has closed; one with a missing
  base bar is dropped (:mod:`domain.resample`).
* ``volatility_pct = 100 × #{ATR values ≤ the current one} / #{ATR values}`` over the defined
  ATR values of the last ``window`` (720 = 30 days) buckets, the current one included: in
  (0, 100]. (:func:`domain.risk.atr_percentile` ranks among the values *before* the current one
  and is undefined until its window is full, so it does not fit these rules.)
* Multiplier by band: [0, 20) 0.7, [20, 40) 0.85, [40, 60) 1.0, [60, 80) 1.15, [80, 100] 1.3;
  ``adx = clamp(base_adx × multiplier, adx_min, adx_max)``, the same for RVOL.
* Warm-up: until the ATR is defined (fewer than 24 hourly candles, and the 24th, which has no
  previous close for a Wilder ATR(24)), percentile 50 and the base thresholds.
* Recomputed at the close of every complete bucket, ``time`` = bucket open + 1 h (ms UTC), the
  close of the base bar completing it; an incomplete bucket's hour keeps the previous values.
* A recompute that changes ``adx`` or ``rvol`` yields a :class:`ThresholdChange` (old and new
  values, percentile: Property 4); the first "old" values are the base ones. With ``enabled``
  off the multiplier is 1 (base thresholds, no events); the percentile is still computed.

Batch (:func:`threshold_series`) and incremental (:class:`AdaptiveThresholds`) forms give the same
numbers bit for bit when fed from the same first bar.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError
from domain.features import ATR, Bar, ResampleStepper
from domain.resample import resample
from domain.rolling import PercentileWindow, volatility_percentile

M5 = 300_000
H1 = 3_600_000
NO_TIME = -1
"""``time`` in the batch arrays before the first recompute (there is none yet)."""
_EDGES = (20.0, 40.0, 60.0, 80.0)
_MULTIPLIERS = (0.7, 0.85, 1.0, 1.15, 1.3)
_MULTIPLIER_ARRAY = np.array(_MULTIPLIERS)
_WARMUP_PCT = 50.0
_VERSION = 1
_COLUMNS = ("atr", "volatility_pct", "multiplier", "adx", "rvol")


@dataclass(frozen=True, slots=True)
class ThresholdConfig:
    """Settings of the adaptive thresholds. ADX values are in ADX points (0-100), RVOL values are
    ratios (1.5 = one and a half times the usual volume).

    Defaults (the issue fixes none): ADX 25 in [15, 40], RVOL 1.5 in [1.0, 3.0].

    Raises
    ------
    ConfigError
        Naming the field: a bound or base that is not a finite number >= 0, an ADX value above
        100, ``*_min > *_max`` (field ``adx_min`` / ``rvol_min``), a base outside its bounds
        (``base_adx`` / ``base_rvol``), ``atr_period < 1`` or ``window < 1``.
    """

    enabled: bool = True
    base_adx: float = 25.0
    adx_min: float = 15.0
    adx_max: float = 40.0
    base_rvol: float = 1.5
    rvol_min: float = 1.0
    rvol_max: float = 3.0
    atr_period: int = 24
    window: int = 720

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = []
        for kind, top in (("adx", 100.0), ("rvol", math.inf)):
            lo, base, hi = (
                getattr(self, n) for n in (f"{kind}_min", f"base_{kind}", f"{kind}_max")
            )
            checks += [
                (f"{kind}_min", math.isfinite(lo) and lo >= 0, "must be a finite number >= 0"),
                (f"{kind}_max", math.isfinite(hi) and hi <= top, f"must be finite and <= {top}"),
                (f"{kind}_min", lo <= hi, f"must be <= {kind}_max ({hi})"),
                (f"base_{kind}", lo <= base <= hi, f"must be within [{lo}, {hi}]"),
            ]
        checks += [(n, getattr(self, n) >= 1, "must be >= 1") for n in ("atr_period", "window")]
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"{name} {rule}, was {getattr(self, name)}", field=name)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The thresholds in effect after the recompute at ``time`` (ms UTC close of its hourly
    bucket; None before the first recompute). ``volatility_pct`` in percent [0, 100], ``atr``
    in quote currency (NaN in the warm-up), ``adx`` in ADX points, ``rvol`` a ratio.

    Raises
    ------
    ValueError
        When ``volatility_pct`` is outside [0, 100].
    """

    time: int | None
    volatility_pct: float
    multiplier: float
    atr: float
    adx: float
    rvol: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.volatility_pct <= 100.0:
            raise ValueError(f"volatility_pct must be in [0, 100], was {self.volatility_pct}")


@dataclass(frozen=True, slots=True)
class ThresholdChange:
    """An adjustment of the thresholds at ``time`` (ms UTC, the hourly bucket's close): the old
    and new ADX (points) and RVOL (ratio), with the volatility percentile (percent) and band
    multiplier that caused it (issue 6: "each adjustment emits an event")."""

    time: int
    old_adx: float
    old_rvol: float
    new_adx: float
    new_rvol: float
    volatility_pct: float
    multiplier: float


def multiplier_for(volatility_pct: float) -> float:
    """The issue's band multiplier of a percentile (percent): [0, 20) 0.7, [20, 40) 0.85,
    [40, 60) 1.0, [60, 80) 1.15, [80, 100] 1.3.

    >>> multiplier_for(19.9), multiplier_for(20.0), multiplier_for(100.0)
    (0.7, 0.85, 1.3)
    """
    return _MULTIPLIERS[bisect_right(_EDGES, volatility_pct)]


def thresholds_for(
    volatility_pct: float, config: ThresholdConfig, factor: float = 1.0
) -> tuple[float, float]:
    """``(adx, rvol)``: each base × band multiplier × ``factor``, clamped to its [min, max].

    ``factor`` is an extra multiplier (a regime's, e.g. 1.3 when VOLATILE); the clamp keeps the
    result within bounds whatever it is (Property 2). With ``config.enabled`` off the band
    multiplier is 1.
    """
    m = multiplier_for(volatility_pct) if config.enabled else 1.0
    adx = min(max(config.base_adx * m * factor, config.adx_min), config.adx_max)
    rvol = min(max(config.base_rvol * m * factor, config.rvol_min), config.rvol_max)
    return adx, rvol


@dataclass(frozen=True, slots=True)
class ThresholdSeries:
    """The batch form: one entry per recompute (complete hourly bucket), arrays of length m.

    ``time`` int64 ms UTC (bucket close), ``atr`` quote currency, ``volatility_pct`` percent,
    ``multiplier``, ``adx`` ADX points, ``rvol`` ratio. ``initial`` is what is in effect before
    the first recompute (the base thresholds, percentile 50).
    """

    time: np.ndarray
    atr: np.ndarray
    volatility_pct: np.ndarray
    multiplier: np.ndarray
    adx: np.ndarray
    rvol: np.ndarray
    initial: Thresholds

    def __len__(self) -> int:
        return len(self.time)

    def at(self, close_time: np.ndarray) -> ThresholdSeries:
        """The values in effect at each of ``close_time`` (ms UTC, sorted; e.g. the base bars'
        close times): those of the last recompute at or before it, ``initial`` before any
        (``time`` :data:`NO_TIME` there). Arrays of ``len(close_time)``."""
        pick = np.searchsorted(self.time, np.asarray(close_time, dtype=np.int64), side="right")
        start = self.initial
        time = np.r_[NO_TIME, self.time][pick].astype(np.int64)
        values = (np.r_[getattr(start, n), getattr(self, n)][pick] for n in _COLUMNS)
        return ThresholdSeries(time, *values, start)

    def changes(self) -> list[ThresholdChange]:
        """Every adjustment (a recompute whose ``adx`` or ``rvol`` differs from the previous
        one's, or from the base ones for the first), in time order."""
        old_adx = np.r_[self.initial.adx, self.adx[:-1]]
        old_rvol = np.r_[self.initial.rvol, self.rvol[:-1]]
        moved = np.flatnonzero((self.adx != old_adx) | (self.rvol != old_rvol))
        return [
            ThresholdChange(
                int(self.time[i]), float(old_adx[i]), float(old_rvol[i]), float(self.adx[i]),
                float(self.rvol[i]), float(self.volatility_pct[i]), float(self.multiplier[i]),
            )
            for i in moved.tolist()
        ]  # fmt: skip


def initial_thresholds(config: ThresholdConfig) -> Thresholds:
    """What is in effect before the first recompute: base thresholds, percentile 50."""
    return Thresholds(None, _WARMUP_PCT, 1.0, math.nan, config.base_adx, config.base_rvol)


def threshold_series(
    candles: Candles, config: ThresholdConfig | None = None, *, source_ms: int = M5
) -> ThresholdSeries:
    """The batch form: the thresholds at every hourly recompute of ``candles``.

    ``candles`` are base bars of ``source_ms`` (ms) each, ``open_time`` strictly increasing
    (ms UTC); they are resampled to complete 1h buckets. Recompute ``i`` uses buckets ``0..i``
    only (no lookahead).

    Raises
    ------
    ConfigError
        When 1 h is not a whole multiple of ``source_ms``.
    """
    config = config or ThresholdConfig()
    hours = resample(candles, source_ms, H1)
    atr = ATR(config.atr_period).batch(hours)["atr"]
    pct = volatility_percentile(atr, config.window)
    pct[np.isnan(pct)] = _WARMUP_PCT
    if config.enabled:
        mult = _MULTIPLIER_ARRAY[np.searchsorted(_EDGES, pct, side="right")]
    else:
        mult = np.ones(len(pct))
    adx = np.minimum(np.maximum(config.base_adx * mult, config.adx_min), config.adx_max)
    rvol = np.minimum(np.maximum(config.base_rvol * mult, config.rvol_min), config.rvol_max)
    return ThresholdSeries(
        hours.open_time + H1, atr, pct, mult, adx, rvol, initial_thresholds(config)
    )


class AdaptiveThresholds:
    """The incremental form: base bars (:meth:`update`) or complete hourly buckets
    (:meth:`update_hour`) in, a :class:`ThresholdChange` out when the thresholds move.

    Path-dependent state (:meth:`state`) is the thresholds in effect with their recompute
    time; the ATR and its window are rebuilt by feeding the bars again from the same first bar
    (the engine's warm-up). After :meth:`restore`, hours up to the restored time still step the
    ATR but change nothing and emit nothing, so a restore may come before or after that replay.

    Raises
    ------
    ConfigError
        When 1 h is not a whole multiple of ``source_ms``.
    """

    __slots__ = ("_atr", "_current", "_percentile", "_resampler", "config")

    def __init__(self, config: ThresholdConfig | None = None, *, source_ms: int = M5) -> None:
        self.config = config or ThresholdConfig()
        self._resampler = ResampleStepper(source_ms, H1)
        self._atr = ATR(self.config.atr_period).stepper()
        self._percentile = PercentileWindow(self.config.window)
        self._current = initial_thresholds(self.config)

    @property
    def current(self) -> Thresholds:
        """The thresholds in effect now."""
        return self._current

    def update(self, bar: Bar) -> ThresholdChange | None:
        """Take the next closed base bar; the adjustment it causes, if any. Raises ValueError
        on a bar off the ``source_ms`` grid or not after the previous one."""
        hour = self._resampler.update(bar)
        return None if hour is None else self.update_hour(hour)

    def update_hour(self, hour: Bar) -> ThresholdChange | None:
        """Take the next complete 1h bucket (``open_time`` = bucket start, ms UTC) directly,
        instead of base bars; the adjustment it causes, if any."""
        atr = self._atr.update(hour)[0]
        pct = self._percentile.push(atr)
        time, old = hour.open_time + H1, self._current
        if old.time is not None and time <= old.time:
            return None  # an hour taken in before the restored state: replayed for the ATR only
        if pct != pct:
            pct = _WARMUP_PCT
        config = self.config
        mult = multiplier_for(pct) if config.enabled else 1.0
        adx, rvol = thresholds_for(pct, config)
        self._current = Thresholds(time, pct, mult, atr, adx, rvol)
        if adx == old.adx and rvol == old.rvol:
            return None
        return ThresholdChange(time, old.adx, old.rvol, adx, rvol, pct, mult)

    def state(self) -> dict[str, Any]:
        """Path-dependent state, JSON-serializable (NaN as null)."""
        c = self._current
        atr = None if c.atr != c.atr else c.atr
        return {"version": _VERSION, "current": [c.time, c.volatility_pct, c.multiplier, atr,
                                                 c.adx, c.rvol]}  # fmt: skip

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` of an earlier process; ValueError when it is of another
        version or malformed."""
        if state.get("version") != _VERSION:
            raise ValueError(f"threshold state version must be {_VERSION}, was {state!r}")
        try:
            time, pct, mult, atr, adx, rvol = state["current"]
            self._current = Thresholds(
                None if time is None else int(time), float(pct), float(mult),
                math.nan if atr is None else float(atr), float(adx), float(rvol),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed threshold state: {exc!r}") from exc
