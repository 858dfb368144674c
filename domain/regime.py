"""Market regime on 1h candles, confirmed after 15 minutes of market time (issue 6, component 5).

Classification (issue 6, "Market regime", refining spec 001's "Market Regime Detector"), at the
close of every complete epoch-aligned 1h bucket resampled from the base bars, first match wins:

1. VOLATILE: ATR percentile > 80 (:func:`domain.rolling.volatility_percentile` of ATR(24)
   over 720 hours) and Bollinger width > 2 × its mean over the last 720 hours. The width is
   ``(upper − lower) / middle`` of Bollinger(20, 2) on the close (a fraction of the price).
2. TRENDING_BULLISH: ADX(14) > 30, close > VWAP (UTC-day anchored) and MACD(12, 26, 9)
   histogram > 0. TRENDING_BEARISH: ADX > 30, close < VWAP and histogram < 0.
3. RANGING: ADX < 20 and ATR percentile < 40.
4. UNCERTAIN otherwise, including any comparison with an undefined (NaN, warm-up) input.

Hysteresis (:class:`Hysteresis`, path-dependent). The *raw* regime changes only at a bucket's
close ``T`` (ms UTC, bucket open + 1 h = the close of the base bar completing it); the
*candidate* is the latest raw regime, ``since`` the ``T`` at which it last changed. At each base
bar close ``t``, after taking in the bucket that bar completes, a candidate other than the
confirmed regime takes effect at ``t`` once ``t − since >= hold_ms`` (15 min). So with gap-free
5m bars a raw change at ``T`` takes effect at the close of the bar opening at ``T + 10 min``;
after a gap, at the first bar closing later; never if the raw regime changes again first. The
start is UNCERTAIN, confirmed, with no ``since``.

Parameters (:data:`REGIME_PARAMETERS`: stop in ATRs, size and threshold multipliers, new
entries, strategy). The issue fixes the stops 2.5 trending and 1.0 ranging, VOLATILE's size
0.5 and thresholds 1.3, and UNCERTAIN's "no new entries"; the rest are chosen here: TRENDING_*
2.5, 1, 1, yes, TREND_FOLLOWING; RANGING 1.0, 1, 1, yes, MEAN_REVERSION; VOLATILE 2.0, 0.5,
1.3, yes, TREND_FOLLOWING; UNCERTAIN 2.0, 0, 1, no, NONE.

Batch (:func:`regime_series`) and incremental (:class:`RegimeDetector`) forms agree bit for bit
when fed from the same first bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError
from domain.features import ADX, ATR, MACD, VWAP, Bar, Bollinger, ResampleStepper
from domain.resample import resample
from domain.rolling import PercentileWindow, WindowMean, volatility_percentile, window_mean
from domain.thresholds import H1, M5, NO_TIME

_VERSION = 1
_ATR, _ADX, _BANDS, _MACD = ATR(24), ADX(14), Bollinger(20, 2.0), MACD(12, 26, 9)


class Regime(StrEnum):
    """The five market regimes; ``REGIMES[code]`` maps the batch form's int8 codes."""

    TRENDING_BULLISH = "TRENDING_BULLISH"
    TRENDING_BEARISH = "TRENDING_BEARISH"
    RANGING = "RANGING"
    VOLATILE = "VOLATILE"
    UNCERTAIN = "UNCERTAIN"


REGIMES: tuple[Regime, ...] = tuple(Regime)
_BULL, _BEAR, _RANGE, _VOLATILE, _UNCERTAIN = range(5)
_TRENDING = frozenset({Regime.TRENDING_BULLISH, Regime.TRENDING_BEARISH})


class StrategyType(StrEnum):
    """The kind of trading a regime calls for."""

    TREND_FOLLOWING = "TREND_FOLLOWING"
    MEAN_REVERSION = "MEAN_REVERSION"
    NONE = "NONE"


@dataclass(frozen=True, slots=True)
class RegimeParameters:
    """How a regime adjusts trading: ``stop_multiplier`` (stop distance in ATRs),
    ``size_multiplier`` (fraction of the normal position size), ``threshold_multiplier``
    (factor on the adaptive ADX/RVOL thresholds, see
    :func:`domain.thresholds.thresholds_for`), whether ``new_entries`` are allowed. Raises
    ValueError on a negative or non-finite multiplier, or a stop multiplier of 0.
    """

    stop_multiplier: float
    size_multiplier: float
    threshold_multiplier: float
    new_entries: bool
    strategy: StrategyType

    def __post_init__(self) -> None:
        values = (self.stop_multiplier, self.size_multiplier, self.threshold_multiplier)
        if not all(math.isfinite(v) and v >= 0 for v in values) or self.stop_multiplier == 0:
            raise ValueError(f"multipliers must be finite and >= 0 (stop > 0), were {values}")


_TREND = RegimeParameters(2.5, 1.0, 1.0, True, StrategyType.TREND_FOLLOWING)
REGIME_PARAMETERS: Mapping[Regime, RegimeParameters] = MappingProxyType({
    Regime.TRENDING_BULLISH: _TREND,
    Regime.TRENDING_BEARISH: _TREND,
    Regime.RANGING: RegimeParameters(1.0, 1.0, 1.0, True, StrategyType.MEAN_REVERSION),
    Regime.VOLATILE: RegimeParameters(2.0, 0.5, 1.3, True, StrategyType.TREND_FOLLOWING),
    Regime.UNCERTAIN: RegimeParameters(2.0, 0.0, 1.0, False, StrategyType.NONE),
})  # fmt: skip
NEUTRAL_PARAMETERS = RegimeParameters(2.0, 1.0, 1.0, True, StrategyType.TREND_FOLLOWING)
"""What applies with the regime feature disabled: no adjustment, entries allowed."""


@dataclass(frozen=True, slots=True)
class RegimeConfig:
    """Settings of the regime detector: ADX levels in ADX points, percentile levels in percent,
    ``hold_ms`` in ms of market time, ``window`` in hourly buckets (720 = 30 days).

    Raises
    ------
    ConfigError
        Naming the field, e.g. ``adx_ranging > adx_trending``, ``ranging_pct > volatile_pct``,
        a level outside [0, 100], ``hold_ms < 0`` or ``window < 1``.
    """

    enabled: bool = True
    hold_ms: int = 900_000
    adx_trending: float = 30.0
    adx_ranging: float = 20.0
    volatile_pct: float = 80.0
    ranging_pct: float = 40.0
    width_factor: float = 2.0
    window: int = 720

    def __post_init__(self) -> None:
        checks = {
            "hold_ms": self.hold_ms >= 0,
            "adx_ranging": 0 <= self.adx_ranging <= self.adx_trending,
            "adx_trending": self.adx_trending <= 100,
            "ranging_pct": 0 <= self.ranging_pct <= self.volatile_pct,
            "volatile_pct": self.volatile_pct <= 100,
            "width_factor": math.isfinite(self.width_factor) and self.width_factor > 0,
            "window": self.window >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"{name} is out of range, was {getattr(self, name)}", field=name)


def parameters_for(regime: Regime, config: RegimeConfig) -> RegimeParameters:
    """The parameters of ``regime`` (:data:`REGIME_PARAMETERS`), or :data:`NEUTRAL_PARAMETERS`
    when the feature is disabled."""
    return REGIME_PARAMETERS[regime] if config.enabled else NEUTRAL_PARAMETERS


@dataclass(frozen=True, slots=True)
class RegimeChange:
    """The confirmed regime changed at ``time`` (ms UTC, a base bar's close) from
    ``from_regime`` to ``to_regime``, whose raw classification started at ``since`` (ms UTC)."""

    time: int
    from_regime: Regime
    to_regime: Regime
    since: int

    @property
    def trending_to_ranging(self) -> bool:
        """True for a TRENDING_* → RANGING change (exits close every position: Property 22)."""
        return self.from_regime in _TRENDING and self.to_regime is Regime.RANGING


class RegimeInputs(NamedTuple):
    """The classification's inputs per complete 1h bucket, float64 arrays (m,): ``time`` (int64
    ms UTC, bucket close), ``close`` and ``vwap`` (quote currency), ``volatility_pct``
    (percent), ``bb_width`` and ``bb_width_mean`` (fractions of the price), ``adx`` (points),
    ``macd_hist`` (quote currency); NaN in each one's warm-up."""

    time: np.ndarray
    close: np.ndarray
    volatility_pct: np.ndarray
    bb_width: np.ndarray
    bb_width_mean: np.ndarray
    adx: np.ndarray
    vwap: np.ndarray
    macd_hist: np.ndarray


def regime_inputs(hours: Candles, config: RegimeConfig) -> RegimeInputs:
    """The batch inputs over complete 1h buckets ``hours`` (``open_time`` = bucket start)."""
    bands = _BANDS.batch(hours)
    width = (bands["upper"] - bands["lower"]) / bands["middle"]
    return RegimeInputs(
        hours.open_time + H1,
        np.asarray(hours.close, dtype=np.float64),
        volatility_percentile(_ATR.batch(hours)["atr"], config.window),
        width,
        window_mean(width, config.window),
        _ADX.batch(hours)["adx"],
        VWAP().batch(hours)["vwap"],
        _MACD.batch(hours)["hist"],
    )


def classify(inputs: RegimeInputs, config: RegimeConfig) -> np.ndarray:
    """The raw regime per bucket as int8 codes into :data:`REGIMES` (rules in the module doc)."""
    c, pct, adx = config, inputs.volatility_pct, inputs.adx
    with np.errstate(invalid="ignore"):
        volatile = (pct > c.volatile_pct) & (
            inputs.bb_width > c.width_factor * inputs.bb_width_mean
        )
        trending = adx > c.adx_trending
        bull = trending & (inputs.close > inputs.vwap) & (inputs.macd_hist > 0)
        bear = trending & (inputs.close < inputs.vwap) & (inputs.macd_hist < 0)
        ranging = (adx < c.adx_ranging) & (pct < c.ranging_pct)
    codes = np.select(
        [volatile, bull, bear, ranging], [_VOLATILE, _BULL, _BEAR, _RANGE], _UNCERTAIN
    )
    return codes.astype(np.int8)


def confirm_changes(
    time: np.ndarray, raw: np.ndarray, close_time: np.ndarray, hold_ms: int
) -> list[RegimeChange]:
    """The batch hysteresis: confirmed changes from the raw codes ``raw`` classified at ``time``
    (int64 ms UTC, sorted) and the base bars' closes ``close_time`` (sorted, ms UTC), a loop
    over the raw changes only (rules in the module doc)."""
    moved = np.flatnonzero(raw != np.r_[_UNCERTAIN, raw[:-1]])
    starts, codes = time[moved].tolist(), raw[moved].tolist()
    due = np.searchsorted(close_time, np.asarray(starts, dtype=np.int64) + hold_ms).tolist()
    confirmed, changes = _UNCERTAIN, []
    for j, (since, code, at) in enumerate(zip(starts, codes, due, strict=True)):
        if code == confirmed:
            continue
        if at == len(close_time):
            break  # still pending at the end of the history
        t = int(close_time[at])
        if j + 1 < len(starts) and t >= starts[j + 1]:
            continue  # the raw regime changed again first
        changes.append(RegimeChange(t, REGIMES[confirmed], REGIMES[code], since))
        confirmed = code
    return changes


class RegimeAt(NamedTuple):
    """Per base bar: ``current`` and ``candidate`` int8 codes into :data:`REGIMES`, ``since``
    int64 ms UTC (:data:`~domain.thresholds.NO_TIME` before the first raw change)."""

    current: np.ndarray
    candidate: np.ndarray
    since: np.ndarray


@dataclass(frozen=True, slots=True)
class RegimeSeries:
    """The batch form: ``inputs`` and ``raw`` codes per complete 1h bucket, and every confirmed
    change (the regime history) in time order."""

    inputs: RegimeInputs
    raw: np.ndarray
    changes: tuple[RegimeChange, ...]

    def at(self, close_time: np.ndarray) -> RegimeAt:
        """The hysteresis state after each of ``close_time`` (ms UTC, sorted base bar closes)."""
        t = np.asarray(close_time, dtype=np.int64)
        moved = np.flatnonzero(self.raw != np.r_[_UNCERTAIN, self.raw[:-1]])
        changed = np.array([c.time for c in self.changes], dtype=np.int64)
        to = np.array([_UNCERTAIN] + [REGIMES.index(c.to_regime) for c in self.changes], np.int8)
        return RegimeAt(
            to[np.searchsorted(changed, t, "right")],
            np.r_[_UNCERTAIN, self.raw][np.searchsorted(self.inputs.time, t, "right")],
            np.r_[NO_TIME, self.inputs.time[moved]][
                np.searchsorted(self.inputs.time[moved], t, "right")
            ].astype(np.int64),
        )


def regime_series(
    candles: Candles, config: RegimeConfig | None = None, *, source_ms: int = M5
) -> RegimeSeries:
    """The batch form over base bars ``candles`` of ``source_ms`` (ms) each, resampled to
    complete 1h buckets; bucket ``i``'s regime uses buckets ``0..i`` only.

    Raises
    ------
    ConfigError
        When 1 h is not a whole multiple of ``source_ms``.
    """
    config = config or RegimeConfig()
    inputs = regime_inputs(resample(candles, source_ms, H1), config)
    raw = classify(inputs, config)
    close = np.asarray(candles.open_time, dtype=np.int64) + source_ms
    changes = confirm_changes(inputs.time, raw, close, config.hold_ms)
    return RegimeSeries(inputs, raw, tuple(changes))


class Hysteresis:
    """The path-dependent part: the confirmed regime ``current``, the ``candidate`` (the latest
    raw regime) and ``since`` (ms UTC, when it started; None before any change). :meth:`step`
    ignores bar closes up to ``last_time``, so bars replayed after :meth:`restore` do nothing.
    """

    __slots__ = ("candidate", "current", "hold_ms", "last_time", "since")

    def __init__(self, hold_ms: int) -> None:
        self.hold_ms = hold_ms
        self.current = self.candidate = Regime.UNCERTAIN
        self.since: int | None = None
        self.last_time: int | None = None

    def step(self, time: int, raw: Regime | None) -> RegimeChange | None:
        """A base bar closed at ``time`` (ms UTC) with ``raw``, the regime of the bucket it
        completed (None when it completed none); the change it confirms, if any."""
        if self.last_time is not None and time <= self.last_time:
            return None
        self.last_time = time
        if raw is not None and raw is not self.candidate:
            self.candidate, self.since = raw, time
        if self.candidate is self.current or self.since is None:
            return None
        if time - self.since < self.hold_ms:
            return None
        change = RegimeChange(time, self.current, self.candidate, self.since)
        self.current = self.candidate
        return change

    def state(self) -> dict[str, Any]:
        """JSON-serializable state."""
        return {"version": _VERSION, "current": self.current.value,
                "candidate": self.candidate.value, "since": self.since,
                "last_time": self.last_time}  # fmt: skip

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state`; ValueError when it is of another version or malformed."""
        if state.get("version") != _VERSION:
            raise ValueError(f"regime state version must be {_VERSION}, was {state!r}")
        try:
            current, candidate = Regime(state["current"]), Regime(state["candidate"])
            since, last = state["since"], state["last_time"]
            since, last = (None if v is None else int(v) for v in (since, last))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed regime state: {exc!r}") from exc
        self.current, self.candidate, self.since, self.last_time = current, candidate, since, last


class RegimeDetector:
    """The incremental form: base bars in (:meth:`update`), a :class:`RegimeChange` out when
    the confirmed regime changes. ``hysteresis`` holds the current and candidate regimes,
    ``history`` the changes seen by this instance, ``last_inputs`` the last bucket's inputs.

    :meth:`state` holds the :class:`Hysteresis` only; the indicators are rebuilt by feeding the
    bars again from the same first bar (the engine's warm-up), before or after :meth:`restore`.
    Raises ConfigError when 1 h is not a whole multiple of ``source_ms``.
    """

    __slots__ = ("_adx", "_atr", "_bands", "_macd", "_mean", "_pct", "_resampler",
                 "_source", "_vwap", "config", "history", "hysteresis", "last_inputs")  # fmt: skip

    def __init__(self, config: RegimeConfig | None = None, *, source_ms: int = M5) -> None:
        c = self.config = config or RegimeConfig()
        self._source = source_ms
        self._resampler = ResampleStepper(source_ms, H1)
        self._atr, self._pct = _ATR.stepper(), PercentileWindow(c.window)
        self._bands, self._mean = _BANDS.stepper(), WindowMean(c.window)
        self._adx, self._vwap, self._macd = _ADX.stepper(), VWAP().stepper(), _MACD.stepper()
        self.hysteresis = Hysteresis(c.hold_ms)
        self.history: list[RegimeChange] = []
        self.last_inputs: RegimeInputs | None = None

    @property
    def parameters(self) -> RegimeParameters:
        """The parameters of the confirmed regime (:func:`parameters_for`)."""
        return parameters_for(self.hysteresis.current, self.config)

    def update(self, bar: Bar) -> RegimeChange | None:
        """Take the next closed base bar; the confirmed change it brings, if any. Raises
        ValueError on a bar off the ``source_ms`` grid or not after the previous one."""
        hour = self._resampler.update(bar)
        raw = None if hour is None else self._classify(hour)
        change = self.hysteresis.step(bar.open_time + self._source, raw)
        if change is not None:
            self.history.append(change)
        return change

    def _classify(self, hour: Bar) -> Regime:
        upper, middle, lower = self._bands.update(hour)
        width = (upper - lower) / middle
        values = (hour.close, self._pct.push(self._atr.update(hour)[0]), width,
                  self._mean.push(width), self._adx.update(hour)[0], self._vwap.update(hour)[0],
                  self._macd.update(hour)[2])  # fmt: skip
        time = np.array([hour.open_time + H1], dtype=np.int64)
        inputs = RegimeInputs(time, *(np.array([v]) for v in values))
        self.last_inputs = inputs
        return REGIMES[int(classify(inputs, self.config)[0])]

    def state(self) -> dict[str, Any]:
        """Path-dependent state, JSON-serializable."""
        return self.hysteresis.state()

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` of an earlier process (see :meth:`Hysteresis.restore`)."""
        self.hysteresis.restore(state)
