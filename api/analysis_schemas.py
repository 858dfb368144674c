"""The body of ``GET /api/v1/analysis/{symbol}``: the adaptive pipeline's snapshot of a symbol
(:func:`domain.analysis.snapshot`). Percentiles are percent, fractions are fractions, ADX in
points, RVOL a ratio, prices in the quote currency as floats (indicator values, not money),
times int ms UTC; an undefined value (indicator warm-up) is null."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Trend = Literal["BULLISH", "BEARISH", "NEUTRAL"]
Side = Literal["long", "short", "flat"]


class ThresholdsOut(BaseModel):
    """The adaptive thresholds in effect: the volatility percentile (ATR(24) on 1h over 30
    days, percent), its band multiplier, and the ADX and RVOL an entry must reach (with the
    regime's factor)."""

    volatility_percentile: float = Field(ge=0, le=100)
    multiplier: float
    adx: float | None
    rvol: float | None


class RegimeOut(BaseModel):
    """The confirmed market regime, the candidate waiting out its 15 minutes, and when the
    candidate appeared (null before any); ``enabled`` false when the feature is off."""

    current: str
    candidate: str
    since: int | None
    enabled: bool


class TimeframeOut(BaseModel):
    """One timeframe's last complete bar: trend, MACD histogram (``momentum``), ATR / close
    (``volatility``, a fraction), SMA(5)/SMA(20) of volume and its trend; OK, STALE or
    MISSING."""

    trend: Trend
    momentum: float | None
    volatility: float | None
    volume_trend: Literal["INCREASING", "DECREASING", "STABLE"]
    volume_ratio: float | None
    status: Literal["OK", "STALE", "MISSING"]
    bar_time: int | None


class TimeframesOut(BaseModel):
    """The four timeframes and their weighted vote: ``aligned`` timeframes agree with it,
    ``confidence`` (1.0 for 4, 0.7 for 3, else 0, × the weight share present) and the
    ``direction`` (flat below 3 aligned)."""

    model_config = ConfigDict(populate_by_name=True)

    m5: TimeframeOut = Field(alias="5m")
    m15: TimeframeOut = Field(alias="15m")
    h1: TimeframeOut = Field(alias="1h")
    h4: TimeframeOut = Field(alias="4h")
    aligned: int = Field(ge=0, le=4)
    confidence: float = Field(ge=0, le=1)
    direction: Side
    vote: Side
    time: int


class VolumeProfileOut(BaseModel):
    """The 7-day volume profile in effect (recomputed every 4 hours): point of control, value
    area high and low, bin width (quote currency), total volume (base asset) and whether the
    price is within 0.5 % of one of the three levels."""

    poc: float
    vah: float
    val: float
    bin_width: float
    total_volume: float
    at_key_level: bool


class AllocationOut(BaseModel):
    """The fraction of equity the portfolio manager gives this signal alone, the size factor
    of the regime and the volume profile, and why."""

    fraction: float = Field(ge=0, le=1)
    size_factor: float = Field(ge=0)
    reason: str | None


class AnalysisReasonOut(BaseModel):
    """What one component said, with its numbers."""

    component: str
    message: str
    values: dict[str, float | None]


class AnalysisSignalOut(BaseModel):
    """The assembled signal: direction and confidence (flat and 0 when no entry is allowed),
    whether an entry is allowed, the stop distance in ATRs, and every component's reason."""

    direction: Side
    confidence: float = Field(ge=0, le=1)
    enter: bool
    stop_multiplier: float
    reasons: list[AnalysisReasonOut]


class AnalysisOut(BaseModel):
    """The pipeline at the bar of ``symbol`` closing at ``time`` (close ``price``); with the
    run's strategy ``adaptive``, ``features`` holds the state of each of its features for this
    symbol (``on``, ``off`` by configuration, ``failed``: disabled after 3 failures in a row
    until restart), else null."""

    symbol: str
    time: int
    price: float
    thresholds: ThresholdsOut
    regime: RegimeOut
    timeframes: TimeframesOut
    volume_profile: VolumeProfileOut | None
    allocation: AllocationOut
    signal: AnalysisSignalOut
    features: dict[str, Literal["on", "off", "failed"]] | None = None


class PipelineEventOut(BaseModel):
    """A stored change in a symbol's adaptive pipeline: a thresholds adjustment (``values``:
    ``old_adx``, ``new_adx`` in ADX points, ``old_rvol``, ``new_rvol`` ratios,
    ``volatility_pct`` percent, ``multiplier``) or a regime change (``values``: ``from``,
    ``to``; ``from`` null for the first regime) or an ML predictor disabling itself below its
    minimum accuracy (``values``: ``model_id``, ``accuracy``, ``min_accuracy`` fractions,
    ``window``) or a failed prediction taken as 0.5 (``values``: ``model_id``, ``error``), at
    ``time`` (ms UTC, the bar close from which it holds), with the one-line
    ``message`` the log shows."""

    time: int
    symbol: str
    kind: Literal["thresholds", "regime", "ml", "ml_error"]
    values: dict[str, float | str | None]
    message: str
