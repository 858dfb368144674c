"""The adaptive pipeline of one symbol, bar by bar, in the kernel's two forms: a batch over the
whole history (backtests) and steppers fed one bar at a time (paper and live). Both give the
same values at every bar (each component is proven so; the glue here reads them alike).

For each block of new bars, :meth:`SymbolPipeline.update` returns a :class:`PipelineRows`: per
bar, the timeframe coordinator's direction, alignment and confidence, the volatility percentile
and 1h ATR(24) of the adaptive thresholds, the confirmed regime, the 1h ADX and MACD histogram
of the regime's inputs and the 5m RVOL; the full analysis objects and the volume profile are
built on demand, at a decision only.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from domain.analysis import RVOL_PERIOD, PipelineConfig
from domain.candles import Candles
from domain.coordinator import (
    DIRECTIONS,
    CoordinatorSeries,
    TimeframeAnalysis,
    TimeframeCoordinator,
)
from domain.coordinator import coordinator_series as _coordinator_series
from domain.features.base import Bar
from domain.regime import REGIMES, Regime, RegimeDetector, regime_series
from domain.risk import relative_volume
from domain.thresholds import AdaptiveThresholds, threshold_series
from domain.volume_profile import VolumeProfile, profile_at

_PROFILE_MS = 7 * 86_400_000 + 4 * 3_600_000
"""The bars a volume profile in effect may read: its 7-day window, which ends at the last
4-hourly recompute instant (up to 4 hours back)."""
_HISTORY_MS = 30 * 86_400_000 + 2 * 3_600_000
"""The bars the correlation of hourly returns reads (30 days, and the two hours before the
first return), also enough for the volume profile: what the incremental form keeps."""


@dataclass(frozen=True, slots=True)
class PipelineRows:
    """Per bar of a block (arrays of length n): ``close_time`` (ms UTC), ``close``,
    ``direction`` (+1 long, −1 short, 0 flat), ``aligned`` (0-4), ``confidence`` [0, 1],
    ``volatility_pct`` (percent), ``multiplier`` (the thresholds' band), ``atr`` (1h ATR(24),
    quote currency), ``regime`` (codes into :data:`domain.regime.REGIMES`), ``adx`` (1h ADX
    points), ``macd_hist`` (1h MACD histogram) and ``rvol`` (5m RVOL); NaN while undefined."""

    close_time: np.ndarray
    close: np.ndarray
    direction: np.ndarray
    aligned: np.ndarray
    confidence: np.ndarray
    volatility_pct: np.ndarray
    multiplier: np.ndarray
    atr: np.ndarray
    regime: np.ndarray
    adx: np.ndarray
    macd_hist: np.ndarray
    rvol: np.ndarray

    def __len__(self) -> int:
        return len(self.close_time)


class SymbolPipeline:
    """The components of one symbol over its bars of ``tf_ms`` (ms).

    In batch form every bar is kept and each block recomputes the components' batch forms over
    the whole history; in incremental form each bar steps the components and only the last 7
    days of bars are kept (the volume profile's window).
    """

    def __init__(self, config: PipelineConfig, tf_ms: int, *, incremental: bool) -> None:
        self.config = config
        self.tf_ms = tf_ms
        self.incremental = incremental
        self._bars = Candles.empty()
        self._coordinator = TimeframeCoordinator(config.coordinator, source_ms=tf_ms)
        self._thresholds = AdaptiveThresholds(config.thresholds, source_ms=tf_ms)
        self._regime = RegimeDetector(config.regime, source_ms=tf_ms)
        self._volumes: deque[float] = deque(maxlen=RVOL_PERIOD + 1)
        self._window: deque[tuple[int, float, float, float, float, float]] = deque(
            maxlen=_HISTORY_MS // tf_ms + 1
        )
        self._analyses: dict[int, TimeframeAnalysis] = {}
        self._profiles: dict[int, VolumeProfile | None] = {}
        self._series: CoordinatorSeries | None = None

    def update(self, bars: Candles) -> PipelineRows:
        """Take the next ``bars`` (after every bar seen) and return the values on them."""
        if self.incremental:
            return _stack([self._step(row) for row in _rows(bars)], bars)
        self._bars = self._bars.concat(bars) if len(self._bars) else bars
        return self._batch(len(self._bars) - len(bars))

    # -- at a decision ---------------------------------------------------------------------
    def analysis(self, time: int) -> TimeframeAnalysis:
        """The coordinator's analysis at the bar closing at ``time`` (ms UTC) of the last block
        (KeyError when none)."""
        if self.incremental:
            return self._analyses[time]
        assert self._series is not None
        series = self._series
        return series.analysis(int(np.searchsorted(series.time, time)))

    def profile(self, time: int) -> VolumeProfile | None:
        """The volume profile in effect at ``time`` (ms UTC), None when off or unavailable."""
        if not self.config.volume_profile:
            return None
        instant = time // self.config.profile.every_ms * self.config.profile.every_ms
        if instant not in self._profiles:  # one per 4-hourly recompute instant
            bars = self._recent(time, _PROFILE_MS)
            found = profile_at(bars, time, self.config.profile) if len(bars) else None
            self._profiles = {instant: found}
        return self._profiles[instant]

    def history(self, time: int) -> Candles:
        """The bars closed by ``time`` (ms UTC) in the 30 days and 2 hours before it (the
        correlation's window)."""
        return self._recent(time, _HISTORY_MS)

    def _recent(self, time: int, span_ms: int) -> Candles:
        if self.incremental:
            kept = Candles(*(np.array(column) for column in zip(*self._window, strict=True)))
        else:
            kept = self._bars
        return kept.between(time - span_ms - self.tf_ms, time - self.tf_ms + 1)

    # -- the two forms ---------------------------------------------------------------------
    def _batch(self, start: int) -> PipelineRows:
        bars, config, tf = self._bars, self.config, self.tf_ms
        close_time = bars.open_time[start:] + tf
        series = self._series = _coordinator_series(bars, config.coordinator, source_ms=tf)
        levels = threshold_series(bars, config.thresholds, source_ms=tf).at(close_time)
        regimes = regime_series(bars, config.regime, source_ms=tf)
        hour = np.searchsorted(regimes.inputs.time, close_time, "right") - 1
        return PipelineRows(
            close_time=close_time,
            close=bars.close[start:],
            direction=np.asarray(DIRECTION_SIGN)[series.direction[start:]],
            aligned=series.aligned[start:],
            confidence=series.confidence[start:],
            volatility_pct=levels.volatility_pct,
            multiplier=levels.multiplier,
            atr=levels.atr,
            regime=regimes.at(close_time).current,
            adx=_at_hour(regimes.inputs.adx, hour),
            macd_hist=_at_hour(regimes.inputs.macd_hist, hour),
            rvol=relative_volume(bars.volume, RVOL_PERIOD)[start:],
        )

    def _step(self, bar: Bar) -> tuple[float, ...]:
        time = bar.open_time + self.tf_ms
        analysis = self._coordinator.update(bar)
        self._thresholds.update(bar)
        self._regime.update(bar)
        self._volumes.append(bar.volume)
        self._window.append(tuple(bar))  # type: ignore[arg-type]
        levels = self._thresholds.current
        self._analyses = {time: analysis}
        inputs = self._regime.last_inputs
        adx = math.nan if inputs is None else float(inputs.adx[0])
        macd = math.nan if inputs is None else float(inputs.macd_hist[0])
        rvol = float(relative_volume(np.array(self._volumes), RVOL_PERIOD)[-1])
        return (
            time, bar.close, DIRECTION_SIGN[DIRECTIONS.index(analysis.direction)],
            analysis.aligned, analysis.confidence, levels.volatility_pct, levels.multiplier,
            levels.atr, REGIMES.index(self._regime.hysteresis.current), adx, macd, rvol,
        )  # fmt: skip


DIRECTION_SIGN = (0, 1, -1)
"""The coordinator's direction codes (:data:`~domain.coordinator.DIRECTIONS`) as signs."""


def regime_of(code: int) -> Regime:
    """The regime of a :class:`PipelineRows` ``regime`` code."""
    return REGIMES[int(code)]


def _at_hour(values: np.ndarray, hour: np.ndarray) -> np.ndarray:
    out = np.full(len(hour), np.nan)
    ok = hour >= 0
    out[ok] = values[hour[ok]]
    return out


def _rows(bars: Candles) -> list[Bar]:
    return [
        Bar(*row)
        for row in zip(
            bars.open_time.tolist(), bars.open.tolist(), bars.high.tolist(),
            bars.low.tolist(), bars.close.tolist(), bars.volume.tolist(), strict=True,
        )
    ]  # fmt: skip


def _stack(rows: list[tuple[float, ...]], bars: Candles) -> PipelineRows:
    columns = list(zip(*rows, strict=True)) if rows else [()] * 12
    ints = {0: np.int64, 2: np.int8, 3: np.int8, 8: np.int8}
    arrays = [np.array(c, dtype=ints.get(k, np.float64)) for k, c in enumerate(columns)]
    return PipelineRows(*arrays)
