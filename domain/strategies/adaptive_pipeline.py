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
from itertools import islice

import numpy as np

from domain.analysis import RVOL_PERIOD, PipelineConfig
from domain.candles import Candles
from domain.coordinator import (
    DIRECTIONS,
    CoordinatorConfig,
    CoordinatorSeries,
    TimeframeAnalysis,
    TimeframeCoordinator,
    coordinator_series,
)
from domain.correlation import hourly_log_returns, returns_in_window
from domain.features.base import Bar
from domain.isolation import FeatureGuard
from domain.regime import REGIMES, Regime, RegimeConfig, RegimeDetector, regime_series
from domain.risk import relative_volume
from domain.thresholds import AdaptiveThresholds, ThresholdConfig, threshold_series
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
    the whole history; in incremental form each bar steps the components and only the last 30
    days of bars are kept (the correlation's window). Each component runs under ``guard``
    (:class:`~domain.isolation.FeatureGuard`): one that raises gives neutral values instead
    (the timeframes: no direction; the thresholds: the base ones and no ATR; the regime: none,
    and no 1h ADX or MACD), which stop entries but let the exits go on.
    """

    def __init__(
        self,
        config: PipelineConfig,
        tf_ms: int,
        *,
        incremental: bool,
        guard: FeatureGuard,
    ) -> None:
        self.config = config
        self.guard = guard
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
        self._returns: tuple[np.ndarray, np.ndarray] | None = None  # of every bar (batch)

    def update(self, bars: Candles) -> PipelineRows:
        """Take the next ``bars`` (after every bar seen) and return the values on them."""
        if self.incremental:
            return _stack([self._step(row) for row in _rows(bars)])
        self._bars = self._bars.concat(bars) if len(self._bars) else bars
        self._returns = None
        return self._batch(len(self._bars) - len(bars))

    # -- at a decision ---------------------------------------------------------------------
    def analysis(self, time: int) -> TimeframeAnalysis:
        """The coordinator's analysis at the bar closing at ``time`` (ms UTC) of the last block
        (KeyError when none)."""
        return self._analyses[time]

    def keep_analyses(self, times: np.ndarray) -> None:
        """Keep the coordinator's analyses at the bar closes ``times`` (ms UTC) of the last
        block (the bars a decision may read them at) and let the rest of its batch go: the
        per-timeframe columns of a year of bars weigh tens of MB."""
        series, self._series = self._series, None
        if series is None or self.incremental:
            return
        rows = np.searchsorted(series.time, times)
        self._analyses = {int(series.time[i]): series.analysis(int(i)) for i in rows}

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

    def hourly_returns(self, time: int, window: int) -> tuple[np.ndarray, np.ndarray]:
        """The hourly log returns the correlation reads at ``time`` (ms UTC): those closing in
        the ``window`` hours before it (:func:`~domain.correlation.returns_in_window`). The
        batch form computes the returns of all its bars once per block and slices them."""
        if self.incremental:
            found = hourly_log_returns(self.history(time), self.tf_ms)
        else:
            if self._returns is None:
                self._returns = hourly_log_returns(self._bars, self.tf_ms)
            found = self._returns
        return returns_in_window(*found, time, window)

    def _recent(self, time: int, span_ms: int) -> Candles:
        if self.incremental:  # the window's last bars only (the deque holds 30 days)
            count = min(len(self._window), span_ms // self.tf_ms + 2)
            last = list(islice(reversed(self._window), count))[::-1]
            kept = Candles(*(np.array(column) for column in zip(*last, strict=True)))
        else:
            kept = self._bars
        return kept.between(time - span_ms - self.tf_ms, time - self.tf_ms + 1)

    # -- the two forms ---------------------------------------------------------------------
    def _batch(self, start: int) -> PipelineRows:
        bars, config, tf, guard = self._bars, self.config, self.tf_ms, self.guard
        close_time = bars.open_time[start:] + tf
        n, time = len(close_time), int(close_time[-1]) if len(close_time) else 0
        series = self._series = guard.call(
            "timeframes", _timeframe_rows, bars, config.coordinator, tf,
            fallback=None, time_ms=time,
        )  # fmt: skip
        levels = guard.call(
            "thresholds", _threshold_rows, bars, config.thresholds, tf, close_time,
            fallback=None, time_ms=time,
        )  # fmt: skip
        regimes = guard.call(
            "regime", _regime_rows, bars, config.regime, tf, close_time,
            fallback=None, time_ms=time,
        )  # fmt: skip
        none, nan = np.zeros(n, dtype=np.int8), np.full(n, np.nan)
        return PipelineRows(
            close_time=close_time,
            close=bars.close[start:],
            direction=none
            if series is None
            else np.asarray(DIRECTION_SIGN, dtype=np.int8)[series.direction[start:]],
            aligned=none if series is None else series.aligned[start:],
            confidence=np.zeros(n) if series is None else series.confidence[start:],
            volatility_pct=np.full(n, 50.0) if levels is None else levels[0],
            multiplier=np.ones(n) if levels is None else levels[1],
            atr=nan if levels is None else levels[2],
            regime=np.full(n, NO_REGIME, dtype=np.int8) if regimes is None else regimes[0],
            adx=nan if regimes is None else regimes[1],
            macd_hist=nan if regimes is None else regimes[2],
            rvol=relative_volume(bars.volume, RVOL_PERIOD)[start:],
        )

    def _step(self, bar: Bar) -> tuple[float, ...]:
        time, guard = bar.open_time + self.tf_ms, self.guard
        analysis = guard.call(
            "timeframes", self._coordinator.update, bar, fallback=None, time_ms=time
        )
        guard.call("thresholds", self._thresholds.update, bar, fallback=None, time_ms=time)
        changed = guard.call("regime", self._regime.update, bar, fallback=False, time_ms=time)
        self._volumes.append(bar.volume)
        self._window.append(tuple(bar))  # type: ignore[arg-type]
        levels = self._thresholds.current if guard.is_active("thresholds") else None
        self._analyses = {} if analysis is None else {time: analysis}
        inputs = self._regime.last_inputs if changed is not False else None
        adx = math.nan if inputs is None else float(inputs.adx[0])
        macd = math.nan if inputs is None else float(inputs.macd_hist[0])
        rvol = float(relative_volume(np.array(self._volumes), RVOL_PERIOD)[-1])
        direction = 0 if analysis is None else DIRECTION_SIGN[DIRECTIONS.index(analysis.direction)]
        regime = (
            REGIMES.index(self._regime.hysteresis.current) if changed is not False else NO_REGIME
        )
        return (
            time, bar.close, direction,
            0 if analysis is None else analysis.aligned,
            0.0 if analysis is None else analysis.confidence,
            50.0 if levels is None else levels.volatility_pct,
            1.0 if levels is None else levels.multiplier,
            math.nan if levels is None else levels.atr,
            regime, adx, macd, rvol,
        )  # fmt: skip


DIRECTION_SIGN = (0, 1, -1)
"""The coordinator's direction codes (:data:`~domain.coordinator.DIRECTIONS`) as signs."""
NO_REGIME = -1
"""The ``regime`` code of a bar without one (the regime failed, or before the first bar)."""


def regime_of(code: int) -> Regime | None:
    """The regime of a :class:`PipelineRows` ``regime`` code (None for :data:`NO_REGIME`)."""
    return None if code == NO_REGIME else REGIMES[int(code)]


def _timeframe_rows(bars: Candles, config: CoordinatorConfig, tf_ms: int) -> CoordinatorSeries:
    """The coordinator's batch form over ``bars``."""
    return coordinator_series(bars, config, source_ms=tf_ms)


def _threshold_rows(
    bars: Candles, config: ThresholdConfig, tf_ms: int, close_time: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The thresholds' volatility percentile, band multiplier and 1h ATR at ``close_time``."""
    levels = threshold_series(bars, config, source_ms=tf_ms).at(close_time)
    return levels.volatility_pct, levels.multiplier, levels.atr


def _regime_rows(
    bars: Candles, config: RegimeConfig, tf_ms: int, close_time: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The confirmed regime codes and the last complete hour's ADX and MACD histogram at
    ``close_time``."""
    regimes = regime_series(bars, config, source_ms=tf_ms)
    hour = np.searchsorted(regimes.inputs.time, close_time, "right") - 1
    current = regimes.at(close_time).current
    return current, _at_hour(regimes.inputs.adx, hour), _at_hour(regimes.inputs.macd_hist, hour)


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


def _stack(rows: list[tuple[float, ...]]) -> PipelineRows:
    columns = list(zip(*rows, strict=True)) if rows else [()] * 12
    ints = {0: np.int64, 2: np.int8, 3: np.int8, 8: np.int8}
    arrays = [np.array(c, dtype=ints.get(k, np.float64)) for k, c in enumerate(columns)]
    return PipelineRows(*arrays)
