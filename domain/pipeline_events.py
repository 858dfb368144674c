"""What the adaptive pipeline reports as it runs (issue 6): each adjustment of a symbol's
adaptive thresholds ("each adjustment emits an event with old values, new values and the
percentile"), and each change of its confirmed market regime ("regime history is stored").

Pure: events are found in the per-bar values the pipeline computed anyway, the same arrays in
its batch and incremental forms, so a backtest and a paper run report the same events at the
same bars. Times are int ms UTC (the close of the bar from which the new value holds), ADX in
points, RVOL a ratio, the volatility percentile in percent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from domain.regime import REGIMES, Regime
from domain.thresholds import ThresholdChange

THRESHOLDS = "thresholds"
REGIME = "regime"
ML = "ml"
ML_ERROR = "ml_error"


@dataclass(frozen=True, slots=True)
class PipelineEvent:
    """One change in ``symbol``'s pipeline at ``time`` (ms UTC).

    ``kind`` :data:`THRESHOLDS`: ``values`` holds ``old_adx``, ``new_adx`` (points),
    ``old_rvol``, ``new_rvol`` (ratios), ``volatility_pct`` (percent) and ``multiplier`` (the
    band's). ``kind`` :data:`REGIME`: ``values`` holds ``from`` and ``to``, regime names (``from``
    None for the first regime confirmed). ``kind`` :data:`ML`: the symbol's ML predictor
    disabled itself (Property 14): ``values`` holds ``model_id``, ``accuracy`` and
    ``min_accuracy`` (fractions) and ``window`` (resolved predictions). ``kind``
    :data:`ML_ERROR`: a prediction failed and was taken as 0.5: ``values`` holds ``model_id``
    and ``error``.
    """

    time: int
    symbol: str
    kind: str
    values: Mapping[str, float | str | None]

    @property
    def message(self) -> str:
        """One line for the user (and the log)."""
        v = self.values
        if self.kind == REGIME:
            return f"{self.symbol} regime {v['from'] or 'none'} -> {v['to'] or 'none'}"
        if self.kind == ML_ERROR:
            return f"{self.symbol} ML model {v['model_id']}: {v['error']}; taken as 0.5"
        if self.kind == ML:
            return (
                f"{self.symbol} ML predictor {v['model_id']} disabled: accuracy "
                f"{float(v['accuracy'] or 0):.1%} over the last {v['window']} resolved "
                f"predictions is below {float(v['min_accuracy'] or 0):.1%}"
            )
        return (
            f"{self.symbol} thresholds ADX {v['old_adx']:.4g} -> {v['new_adx']:.4g}, RVOL "
            f"{v['old_rvol']:.4g} -> {v['new_rvol']:.4g} (volatility percentile "
            f"{v['volatility_pct']:.1f}, multiplier {v['multiplier']:.4g})"
        )


def threshold_event(symbol: str, change: ThresholdChange) -> PipelineEvent:
    """``change`` of ``symbol``'s thresholds as a stored event."""
    return PipelineEvent(
        change.time,
        symbol,
        THRESHOLDS,
        {
            "old_adx": change.old_adx, "new_adx": change.new_adx,
            "old_rvol": change.old_rvol, "new_rvol": change.new_rvol,
            "volatility_pct": change.volatility_pct, "multiplier": change.multiplier,
        },
    )  # fmt: skip


def regime_event(symbol: str, time: int, old: Regime | None, new: Regime | None) -> PipelineEvent:
    """``symbol``'s confirmed regime changed from ``old`` to ``new`` at ``time``."""
    values = {"from": None if old is None else old.value, "to": None if new is None else new.value}
    return PipelineEvent(time, symbol, REGIME, values)


@dataclass(frozen=True, slots=True)
class LastValues:
    """A symbol's thresholds (ADX points, RVOL ratio) and confirmed regime code (an index
    into :data:`~domain.regime.REGIMES`, negative for none) at the bar before a block."""

    adx: float
    rvol: float
    regime: int


def find_events(
    symbol: str,
    close_time: np.ndarray,
    adx: np.ndarray,
    rvol: np.ndarray,
    volatility_pct: np.ndarray,
    multiplier: np.ndarray,
    regime: np.ndarray,
    before: LastValues,
) -> list[PipelineEvent]:
    """The events of a block of n bars (arrays of length n: bar close times, the thresholds in
    effect, the volatility percentile and band multiplier behind them, the confirmed regime
    codes), given the values at the bar before (``before``), in time order (at one bar, the
    thresholds before the regime)."""
    n = len(close_time)
    if n == 0:
        return []
    adx_prev = np.r_[before.adx, adx[:-1]]
    rvol_prev = np.r_[before.rvol, rvol[:-1]]
    regime_prev = np.r_[before.regime, regime[:-1]]
    events: list[tuple[int, int, PipelineEvent]] = []
    for i in np.flatnonzero((adx != adx_prev) | (rvol != rvol_prev)).tolist():
        change = ThresholdChange(
            int(close_time[i]), float(adx_prev[i]), float(rvol_prev[i]), float(adx[i]),
            float(rvol[i]), float(volatility_pct[i]), float(multiplier[i]),
        )  # fmt: skip
        events.append((i, 0, threshold_event(symbol, change)))
    for i in np.flatnonzero(regime != regime_prev).tolist():
        old, new = _regime(int(regime_prev[i])), _regime(int(regime[i]))
        events.append((i, 1, regime_event(symbol, int(close_time[i]), old, new)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e for _, _, e in events]


def _regime(code: int) -> Regime | None:
    return REGIMES[code] if 0 <= code < len(REGIMES) else None
