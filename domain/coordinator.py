"""Multi-timeframe data and the timeframe coordinator (issue 6, components 2 and 3).

Data (issue 6, "Multi-timeframe data"): the 5m, 15m, 1h and 4h series are built from the base
bars (5m) by resampling into complete epoch-aligned buckets (:mod:`domain.resample`: a bucket
with a missing base bar is dropped), so at a base bar's close ``t`` (ms UTC) a timeframe shows
its last bucket *completed* by ``t``, never one still forming. Its status at ``t``: MISSING
while no bucket is complete; STALE when the last complete one closed more than 2 periods before
``t`` (``t − (open + period) > 2 × period``; spec 001, "Data staleness"), e.g. after a gap in
the base data until a new bucket completes; OK otherwise. Only OK timeframes vote, count as
present and can be aligned; the others keep their last values for display.

Per timeframe, on its own bars (issue 6, "Timeframe coordinator"):

* trend: BULLISH when EMA(20) > EMA(50) and close > EMA(20), BEARISH when EMA(20) < EMA(50)
  and close < EMA(20), NEUTRAL otherwise, the warm-up included (EMA(50) needs 50 bars);
* momentum: the MACD(12, 26, 9) histogram (quote currency; NaN for the first 33 bars);
* volatility: ATR(14) / close (a fraction; NaN for the first 14 bars);
* volume trend: ratio = SMA(5) / SMA(20) of the volume, INCREASING above 1.1, DECREASING below
  0.9, STABLE otherwise, the warm-up (20 bars) and a zero SMA(20) (ratio NaN) included.

Vote (issue 6; spec 001, "Conflicting signals: weighted voting") over the OK timeframes with the
weights w (5m 0.1, 15m 0.2, 1h 0.3, 4h 0.4 by default): ``bull`` = Σ w of the BULLISH ones,
``bear`` = Σ w of the BEARISH ones, summed in the order 5m, 15m, 1h, 4h. The vote is LONG when
``bull − bear > 1e-9``, SHORT when ``< −1e-9``, FLAT otherwise (a tie, within rounding: 0.4
against 0.3 + 0.1 is a tie). ``aligned`` = number of OK timeframes whose trend is the vote's side
(0 for a FLAT vote). ``confidence`` = base × share with base 1.0 for 4 aligned, 0.7 for 3, 0 for
fewer, and share = Σ w of the OK timeframes / Σ w (exactly 1.0 when all four are OK).
``direction`` is the vote when at least 3 are aligned, FLAT (no signal, Property 7) otherwise.

Batch (:func:`coordinator_series`) and incremental (:class:`TimeframeCoordinator`) forms agree
exactly at every base bar when fed from the same first bar. Everything is recomputed from the
bars: there is no path-dependent state (:meth:`TimeframeCoordinator.state` is empty).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np

from domain import indicators
from domain.candles import Candles
from domain.errors import ConfigError
from domain.features import ATR, EMA, MACD, SMA, Bar, ResampleStepper
from domain.features.lifted import higher_bars
from domain.model import Direction
from domain.resample import check_multiple
from domain.thresholds import H1, M5, NO_TIME

M15 = 900_000
H4 = 14_400_000
TIMEFRAMES: tuple[tuple[str, int], ...] = (("5m", M5), ("15m", M15), ("1h", H1), ("4h", H4))
"""The four timeframes, name and period in ms, in the order of every (n, 4) array."""
NAMES = tuple(name for name, _ in TIMEFRAMES)
STALE_PERIODS = 2
TIE = 1e-9
_FAST, _SLOW, _MACD, _ATR = EMA(20), EMA(50), MACD(12, 26, 9), ATR(14)
_VFAST, _VSLOW = SMA(5), SMA(20)  # of the volume
_RISING, _FALLING = 1.1, 0.9
_BASE = (0.0, 0.0, 0.0, 0.7, 1.0)  # confidence before the share, by number aligned
_BASE_ARRAY = np.array(_BASE)


class Trend(StrEnum):
    """A timeframe's trend; ``TRENDS[code]`` maps the int8 codes +1, −1 and 0."""

    BULLISH = "BULLISH"
    BEARISH = "BEARISH"
    NEUTRAL = "NEUTRAL"


class VolumeTrend(StrEnum):
    """A timeframe's volume trend; ``VOLUME_TRENDS[code]`` maps the int8 codes +1, −1 and 0."""

    INCREASING = "INCREASING"
    DECREASING = "DECREASING"
    STABLE = "STABLE"


class TimeframeStatus(StrEnum):
    """Whether a timeframe counts (OK) or is skipped; ``STATUSES[code]`` maps codes 0, 1, 2."""

    OK = "OK"
    STALE = "STALE"
    MISSING = "MISSING"


# Indexed by the codes 0, +1, −1 (index −1 is the last entry).
TRENDS = (Trend.NEUTRAL, Trend.BULLISH, Trend.BEARISH)
VOLUME_TRENDS = (VolumeTrend.STABLE, VolumeTrend.INCREASING, VolumeTrend.DECREASING)
DIRECTIONS = (Direction.FLAT, Direction.LONG, Direction.SHORT)
STATUSES = (TimeframeStatus.OK, TimeframeStatus.STALE, TimeframeStatus.MISSING)
_OK, _STALE, _MISSING = range(3)


@dataclass(frozen=True, slots=True)
class CoordinatorConfig:
    """The vote's weight per timeframe (issue 6: 4h 0.4, 1h 0.3, 15m 0.2, 5m 0.1). Raises
    ConfigError naming the field: a weight that is not a finite number > 0 (``weight_4h``…), or
    weights that do not sum to 1 within 1e-9 (``weights``)."""

    weight_5m: float = 0.1
    weight_15m: float = 0.2
    weight_1h: float = 0.3
    weight_4h: float = 0.4

    def __post_init__(self) -> None:
        for name in NAMES:
            w = getattr(self, f"weight_{name}")
            if isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w < math.inf:
                raise ConfigError(f"weight_{name} must be a number > 0, was {w!r}",
                                  field=f"weight_{name}")  # fmt: skip
        if abs(math.fsum(self.weights) - 1.0) > TIE:
            raise ConfigError(f"timeframe weights must sum to 1, were {self.weights}",
                              field="weights")  # fmt: skip

    @property
    def weights(self) -> tuple[float, ...]:
        """The weights in :data:`TIMEFRAMES` order."""
        return tuple(float(getattr(self, f"weight_{name}")) for name in NAMES)


class Vote(NamedTuple):
    """The vote's outcome, scalars or arrays (n,): ``direction`` (FLAT below 3 aligned) and
    ``vote`` as codes into :data:`DIRECTIONS`, ``aligned`` (0-4), ``confidence`` in [0, 1]."""

    direction: Any
    vote: Any
    aligned: Any
    confidence: Any


def vote(trends: Sequence[int], counted: Sequence[bool], weights: Sequence[float]) -> Vote:
    """The weighted vote at one bar (rules in the module doc) from the four ``trends`` codes
    (+1, −1, 0), ``counted`` (status OK) and ``weights``, in :data:`TIMEFRAMES` order."""
    bull = bear = share = total = 0.0
    for code, ok, w in zip(trends, counted, weights, strict=True):
        total += w
        if ok:
            share += w
            if code > 0:
                bull += w
            elif code < 0:
                bear += w
    diff = bull - bear
    side = 1 if diff > TIE else -1 if diff < -TIE else 0
    aligned = sum(1 for c, ok in zip(trends, counted, strict=True) if ok and side and c == side)
    return Vote(side if aligned >= 3 else 0, side, aligned, _BASE[aligned] * (share / total))


def vote_arrays(trend: np.ndarray, counted: np.ndarray, weights: Sequence[float]) -> Vote:
    """:func:`vote` at n bars at once from ``trend`` int8 (n, 4) and ``counted`` bool (n, 4):
    the same numbers (the same operations in the same order)."""
    n = len(trend)
    bull, bear, share, total = np.zeros(n), np.zeros(n), np.zeros(n), 0.0
    for k, w in enumerate(weights):
        total += w
        ok = counted[:, k]
        share = share + np.where(ok, w, 0.0)
        bull = bull + np.where(ok & (trend[:, k] > 0), w, 0.0)
        bear = bear + np.where(ok & (trend[:, k] < 0), w, 0.0)
    diff = bull - bear
    side = np.where(diff > TIE, 1, np.where(diff < -TIE, -1, 0)).astype(np.int8)
    aligned = (counted & (trend == side[:, None]) & (side != 0)[:, None]).sum(axis=1)
    direction = np.where(aligned >= 3, side, 0).astype(np.int8)
    return Vote(direction, side, aligned.astype(np.int8), _BASE_ARRAY[aligned] * (share / total))


@dataclass(frozen=True, slots=True)
class TimeframeSnapshot:
    """One timeframe at a base bar's close: ``status``, ``bar_time`` (open of its last complete
    bucket, ms UTC; None when MISSING) and that bucket's ``trend``, ``momentum`` (MACD
    histogram, quote currency), ``volatility`` (ATR / close, a fraction), ``volume_ratio`` and
    ``volume_trend``; NaN, NEUTRAL or STABLE where undefined. Raises ValueError on an unknown
    ``timeframe``, or a ``bar_time`` that is None but the status is not MISSING or vice versa.
    """

    timeframe: str
    status: TimeframeStatus
    bar_time: int | None
    trend: Trend
    momentum: float
    volatility: float
    volume_ratio: float
    volume_trend: VolumeTrend

    def __post_init__(self) -> None:
        if self.timeframe not in NAMES:
            raise ValueError(f"timeframe must be one of {NAMES}, was {self.timeframe!r}")
        if (self.bar_time is None) != (self.status is TimeframeStatus.MISSING):
            raise ValueError(f"bar_time must be None exactly when MISSING, was {self!r}")

    @property
    def counted(self) -> bool:
        """Whether it votes and can be aligned (status OK)."""
        return self.status is TimeframeStatus.OK

    def to_json(self) -> dict[str, Any]:
        """The issue's keys (``trend``, ``momentum``, ``volatility``, ``volume_trend``) plus
        ``volume_ratio``, ``status`` and ``bar_time``; NaN as None."""
        return {"trend": self.trend.value, "momentum": _number(self.momentum),
                "volatility": _number(self.volatility), "volume_trend": self.volume_trend.value,
                "volume_ratio": _number(self.volume_ratio), "status": self.status.value,
                "bar_time": self.bar_time}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TimeframeAnalysis:
    """The coordinator at the close ``time`` (ms UTC) of a base bar: ``direction`` (the signal's,
    FLAT below 3 aligned), ``vote`` (the weighted vote's side), ``aligned`` (0-4),
    ``confidence`` in [0, 1] and the four ``timeframes`` in :data:`TIMEFRAMES` order. Raises
    ValueError when the timeframes are not the four in order, ``aligned`` or ``confidence`` is
    out of range, or ``direction`` is not FLAT with fewer than 3 aligned.
    """

    time: int
    direction: Direction
    vote: Direction
    aligned: int
    confidence: float
    timeframes: tuple[TimeframeSnapshot, ...]

    def __post_init__(self) -> None:
        if tuple(s.timeframe for s in self.timeframes) != NAMES:
            raise ValueError(f"timeframes must be {NAMES} in order, were {self.timeframes!r}")
        if not (0 <= self.aligned <= 4 and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"aligned {self.aligned} or confidence {self.confidence} invalid")
        if self.aligned < 3 and self.direction is not Direction.FLAT:
            raise ValueError(f"direction must be flat below 3 aligned, was {self.direction}")

    def __getitem__(self, timeframe: str) -> TimeframeSnapshot:
        """The snapshot of ``timeframe`` (``"5m"``…); KeyError for another name."""
        if timeframe not in NAMES:
            raise KeyError(timeframe)
        return self.timeframes[NAMES.index(timeframe)]

    def to_json(self) -> dict[str, Any]:
        """The analysis endpoint's ``timeframes`` object (issue 6, "Surfaces"): ``5m``, ``15m``,
        ``1h``, ``4h`` (:meth:`TimeframeSnapshot.to_json`), ``aligned``, ``confidence`` and
        ``direction``, plus ``vote`` and ``time``."""
        out: dict[str, Any] = {s.timeframe: s.to_json() for s in self.timeframes}
        return out | {"aligned": self.aligned, "confidence": self.confidence,
                      "direction": self.direction.value, "vote": self.vote.value,
                      "time": self.time}  # fmt: skip


def _number(x: float) -> float | None:
    return None if x != x else x


def _snapshot(name: str, status: int, bar_time: int | None, trend: int, momentum: float,
              volatility: float, ratio: float) -> TimeframeSnapshot:  # fmt: skip
    volume = 1 if ratio > _RISING else -1 if ratio < _FALLING else 0
    return TimeframeSnapshot(
        name, STATUSES[status], None if status == _MISSING else bar_time, TRENDS[trend],
        momentum, volatility, ratio, VOLUME_TRENDS[volume],
    )  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class CoordinatorSeries:
    """The batch form, one row per base bar: ``time`` (int64 ms UTC, the bar's close),
    ``direction``, ``vote`` (int8 codes into :data:`DIRECTIONS`), ``aligned`` (int8),
    ``confidence`` (float64); per timeframe, (n, 4) in :data:`TIMEFRAMES` order: ``status``
    (int8, :data:`STATUSES`), ``bar_time`` (int64 ms UTC, :data:`~domain.thresholds.NO_TIME`
    when MISSING), ``trend`` and ``volume_trend`` (int8, :data:`TRENDS`,
    :data:`VOLUME_TRENDS`), ``momentum`` (quote currency), ``volatility`` (a fraction) and
    ``volume_ratio`` (float64, NaN where undefined)."""

    time: np.ndarray
    direction: np.ndarray
    vote: np.ndarray
    aligned: np.ndarray
    confidence: np.ndarray
    status: np.ndarray
    bar_time: np.ndarray
    trend: np.ndarray
    volume_trend: np.ndarray
    momentum: np.ndarray
    volatility: np.ndarray
    volume_ratio: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    def analysis(self, i: int) -> TimeframeAnalysis:
        """Row ``i`` as a :class:`TimeframeAnalysis`, as the incremental form gives it."""
        snapshots = tuple(
            _snapshot(name, int(self.status[i, k]), int(self.bar_time[i, k]),
                      int(self.trend[i, k]), float(self.momentum[i, k]),
                      float(self.volatility[i, k]), float(self.volume_ratio[i, k]))
            for k, name in enumerate(NAMES)
        )  # fmt: skip
        return TimeframeAnalysis(int(self.time[i]), DIRECTIONS[self.direction[i]],
                                 DIRECTIONS[self.vote[i]], int(self.aligned[i]),
                                 float(self.confidence[i]), snapshots)  # fmt: skip


def coordinator_series(
    candles: Candles, config: CoordinatorConfig | None = None, *, source_ms: int = M5
) -> CoordinatorSeries:
    """The batch form over base bars ``candles`` of ``source_ms`` (ms) each, ``open_time``
    strictly increasing (ms UTC): the coordinator at every bar's close, vectorized (a loop over
    the four timeframes only). Row ``i`` uses bars ``0..i`` only. Raises ConfigError when a
    timeframe's period is not a whole multiple of ``source_ms``."""
    config = config or CoordinatorConfig()
    close_time = np.asarray(candles.open_time, dtype=np.int64) + source_ms
    columns = [_frame_batch(candles, source_ms, period, close_time) for _, period in TIMEFRAMES]
    status, bar_time, trend, momentum, volatility, ratio = (
        np.column_stack([c[j] for c in columns]) for j in range(6)
    )
    with np.errstate(invalid="ignore"):
        volume = np.where(ratio > _RISING, 1, np.where(ratio < _FALLING, -1, 0)).astype(np.int8)
    outcome = vote_arrays(trend, status == _OK, config.weights)
    return CoordinatorSeries(close_time, *outcome, status, bar_time, trend, volume, momentum,
                             volatility, ratio)  # fmt: skip


def _frame_batch(
    candles: Candles, source_ms: int, period: int, close_time: np.ndarray
) -> tuple[np.ndarray, ...]:
    """One timeframe's (status, bar_time, trend, momentum, volatility, volume ratio), (n,)."""
    higher = higher_bars(candles, source_ms, period)
    n, bars, known, pick = len(candles), higher.bars, higher.known, higher.pick
    if len(bars) == 0:
        nan, missing = np.full(n, np.nan), np.full(n, _MISSING, np.int8)
        return missing, np.full(n, NO_TIME, np.int64), np.zeros(n, np.int8), nan, nan, nan
    close = np.asarray(bars.close, dtype=np.float64)
    fast, slow = _FAST.batch(bars)["ema"], _SLOW.batch(bars)["ema"]
    vfast, vslow = (indicators.sma(bars.volume, p.period) for p in (_VFAST, _VSLOW))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(vslow > 0, vfast / vslow, np.nan)
    trend = np.where((fast > slow) & (close > fast), 1,
                     np.where((fast < slow) & (close < fast), -1, 0))  # fmt: skip
    trend = np.where(known, trend[pick], 0).astype(np.int8)
    momentum, volatility, ratio = (
        np.where(known, v[pick], np.nan)
        for v in (_MACD.batch(bars)["hist"], _ATR.batch(bars)["atr"] / close, ratio)
    )
    bar_time = np.where(known, bars.open_time[pick], NO_TIME).astype(np.int64)
    stale = close_time - (bar_time + period) > STALE_PERIODS * period
    status = np.where(~known, _MISSING, np.where(stale, _STALE, _OK)).astype(np.int8)
    return status, bar_time, trend, momentum, volatility, ratio


class _Frame:
    """One timeframe's incremental state: its resampler, indicator steppers and last values."""

    __slots__ = ("atr", "bar_time", "fast", "macd", "momentum", "period", "ratio", "resampler",
                 "slow", "trend", "vfast", "volatility", "vslow")  # fmt: skip

    def __init__(self, source_ms: int, period: int) -> None:
        self.period = period
        self.resampler = ResampleStepper(source_ms, period)
        self.fast, self.slow = _FAST.stepper(), _SLOW.stepper()
        self.macd, self.atr = _MACD.stepper(), _ATR.stepper()
        self.vfast, self.vslow = _VFAST.stepper(), _VSLOW.stepper()
        self.bar_time: int | None = None
        self.trend, self.momentum, self.volatility, self.ratio = 0, math.nan, math.nan, math.nan

    def update(self, bar: Bar) -> None:
        higher = self.resampler.update(bar)
        if higher is None:
            return
        close = higher.close
        fast, slow = self.fast.push(close), self.slow.push(close)
        self.trend = (1 if fast > slow and close > fast else
                      -1 if fast < slow and close < fast else 0)  # fmt: skip
        self.momentum = self.macd.update(higher)[2]
        self.volatility = self.atr.update(higher)[0] / close
        volume = higher._replace(close=higher.volume)  # the SMA steppers read the close
        vfast, vslow = self.vfast.update(volume)[0], self.vslow.update(volume)[0]
        self.ratio = vfast / vslow if vslow > 0 else math.nan
        self.bar_time = higher.open_time

    def status(self, time: int) -> int:
        if self.bar_time is None:
            return _MISSING
        return _STALE if time - (self.bar_time + self.period) > STALE_PERIODS * self.period else _OK


class TimeframeCoordinator:
    """The incremental form: one closed base bar in (:meth:`update`), the
    :class:`TimeframeAnalysis` at its close out; ``last`` holds the latest. Every value is
    rebuilt by feeding the bars from the same first bar as the batch form (the engine's
    warm-up): nothing is path-dependent, so :meth:`state` is empty. Raises ConfigError when a
    timeframe's period is not a whole multiple of ``source_ms``."""

    __slots__ = ("_frames", "_source", "_weights", "config", "last")

    def __init__(self, config: CoordinatorConfig | None = None, *, source_ms: int = M5) -> None:
        self.config = config or CoordinatorConfig()
        for _, period in TIMEFRAMES:
            check_multiple(source_ms, period)
        self._source, self._weights = source_ms, self.config.weights
        self._frames = tuple(_Frame(source_ms, period) for _, period in TIMEFRAMES)
        self.last: TimeframeAnalysis | None = None

    def update(self, bar: Bar) -> TimeframeAnalysis:
        """Take the next closed base bar; the analysis at its close (``open_time`` +
        ``source_ms``, ms UTC). Raises ValueError, changing nothing, on a bar off the
        ``source_ms`` grid or not after the previous one."""
        time = bar.open_time + self._source
        snapshots, trends, counted = [], [], []
        for name, frame in zip(NAMES, self._frames, strict=True):
            frame.update(bar)
            status = frame.status(time)
            trends.append(frame.trend)
            counted.append(status == _OK)
            snapshots.append(_snapshot(name, status, frame.bar_time, frame.trend, frame.momentum,
                                       frame.volatility, frame.ratio))  # fmt: skip
        v = vote(trends, counted, self._weights)
        self.last = TimeframeAnalysis(time, DIRECTIONS[v.direction], DIRECTIONS[v.vote],
                                      v.aligned, v.confidence, tuple(snapshots))  # fmt: skip
        return self.last

    def state(self) -> dict[str, Any]:
        """Path-dependent state: none (``{}``), see the class doc."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Accept :meth:`state` (empty); ValueError for anything else."""
        if state:
            raise ValueError(f"the timeframe coordinator has no state, was given {state!r}")
