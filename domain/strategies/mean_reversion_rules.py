"""The rules of ``ml_mean_reversion`` (:mod:`domain.strategies.ml_mean_reversion`), pure and
vectorized: its parameters, the candidates the secondary indicators confirm, the reasons each
component gives, and the exit plan of an entry (stop in ATRs, take-profits towards the mean).

Formula sources: Bollinger bands (John Bollinger; SMA ± k population deviations, TA-Lib's
``BBANDS``), Wilder's RSI and ADX (*New Concepts in Technical Trading Systems*, 1978), as the
kernel's feature components compute them (:mod:`domain.features`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from domain.errors import ConfigError
from domain.execution import to_decimal
from domain.model import ExitPlan, Instrument, Reason, TakeProfit
from domain.pipeline_events import ML
from domain.strategies.features import FeatureBlock
from domain.strategies.params import param

if TYPE_CHECKING:  # scikit-learn loads only when the strategy is built (it takes a second)
    from domain.ml.predictor import Prediction

TAKE_PROFITS = ((Decimal("0.5"), Decimal("0.5")), (Decimal("1"), Decimal("0.5")))
"""(share of the distance to the middle band, fraction of the entry qty) of each take-profit."""


@dataclass(frozen=True, slots=True)
class MLMeanReversionParams:
    """Parameters; ``risk`` is a fraction of equity (0.01 = 1 % lost when a stop is hit),
    ``threshold`` a probability, RSI and ADX levels on their 0-100 scales.

    Raises
    ------
    ConfigError
        On a parameter outside its range (the message names it and its value).
    """

    threshold: float = param(
        0.6,
        "P(reversion) the model must give for an entry, 0.5 to 1 (reversion: the price moves "
        "half-way back to its 20-bar mean within 12 bars)",
    )
    adx_period: int = param(14, "ADX period, in bars (>= 2)")
    adx_max: float = param(20.0, "entries only while ADX is below this (a ranging market), 0-100")
    bb_period: int = param(20, "Bollinger band period: SMA and deviation of the close, bars (>= 2)")
    bb_width: float = param(2.0, "Bollinger band half-width, in standard deviations (0 < x <= 10)")
    rsi_period: int = param(14, "RSI period, in bars (>= 2)")
    rsi_low: float = param(30.0, "a long entry needs RSI below this (oversold), 0-100")
    rsi_high: float = param(70.0, "a short entry needs RSI above this (overbought), rsi_low-100")
    atr_period: int = param(14, "ATR period of the stop and the exits, in bars (>= 1)")
    stop_atr: float = param(2.0, "stop distance from the entry fill, in ATRs (0 < x <= 20)")
    risk: float = param(
        0.01, "fraction of equity lost when the stop is hit; sets the size (0 < risk <= 0.1)"
    )
    ml_train_days: int = param(
        0,
        "walk-forward: days of bars each weekly fit reads (0: the registry's active "
        "mean_reversion model per symbol; 2 to 365)",
    )
    ml_algo: str = param(
        "hgb",
        "the model walk-forward fits train: hgb (HistGradientBoosting), rf (random forest) or "
        "xgb (XGBoost: the fastest to predict; needs the ml extra)",
    )

    def __post_init__(self) -> None:
        checks = {
            "threshold": 0.5 <= self.threshold <= 1,
            "adx_period": self.adx_period >= 2,
            "adx_max": 0 < self.adx_max <= 100,
            "bb_period": self.bb_period >= 2,
            "bb_width": 0 < self.bb_width <= 10,
            "rsi_period": self.rsi_period >= 2,
            "rsi_low": 0 < self.rsi_low < 100,
            "rsi_high": self.rsi_low <= self.rsi_high < 100,
            "atr_period": self.atr_period >= 1,
            "stop_atr": 0 < self.stop_atr <= 20,
            "risk": 0 < self.risk <= 0.1,
            "ml_train_days": self.ml_train_days == 0 or 2 <= self.ml_train_days <= 365,
            "ml_algo": self.ml_algo in ("hgb", "rf", "xgb"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"{name} is out of range, was {getattr(self, name)}", field=name)


def candidate_sides(f: FeatureBlock, p: MLMeanReversionParams) -> np.ndarray:
    """Per bar of ``f`` (int8, shape ``(n,)``): +1 where a long candidate is confirmed (close
    below the lower band, RSI below ``rsi_low``, ADX below ``adx_max``), −1 for a short one
    (above the upper band, RSI above ``rsi_high``, the same ADX), else 0. NaN (warm-up)
    confirms nothing."""
    v, close = f.values, f.close
    ranging = v["adx"] < p.adx_max
    long = (close < v["bb.lower"]) & (v["rsi"] < p.rsi_low) & ranging
    short = (close > v["bb.upper"]) & (v["rsi"] > p.rsi_high) & ranging
    return long.astype(np.int8) - short.astype(np.int8)


def indicator_reasons(f: FeatureBlock, i: int, side: int, p: MLMeanReversionParams) -> list[Reason]:
    """The secondary indicators' reasons at row ``i`` of a ``side`` candidate, with their
    values (quote currency for prices, 0-100 for RSI and ADX)."""
    v = f.values
    close, upper = float(f.close[i]), float(v["bb.upper"][i])
    middle, lower = float(v["bb.middle"][i]), float(v["bb.lower"][i])
    rsi, adx = float(v["rsi"][i]), float(v["adx"][i])
    band = f"below the lower band {lower:.6g}" if side > 0 else f"above the upper band {upper:.6g}"
    extreme = f"oversold (< {p.rsi_low:g})" if side > 0 else f"overbought (> {p.rsi_high:g})"
    return [
        Reason(
            "bollinger",
            f"close {close:.6g} {band} (BB({p.bb_period}, {p.bb_width:g}), mean {middle:.6g})",
            {"close": close, "upper": upper, "middle": middle, "lower": lower},
        ),
        Reason(
            "rsi",
            f"RSI({p.rsi_period}) {rsi:.1f} {extreme}",
            {"rsi": rsi, "rsi_low": p.rsi_low, "rsi_high": p.rsi_high},
        ),
        Reason(
            "adx",
            f"ADX({p.adx_period}) {adx:.1f} < {p.adx_max:g}: ranging",
            {"adx": adx, "adx_max": p.adx_max},
        ),
    ]


def ml_reason(prediction: Prediction, threshold: float) -> Reason:
    """The model's say at a candidate: P(reversion) against ``threshold``, the top feature
    contributions in words (a contribution pushing against the call marked ``(against)``),
    the model id; values: ``probability``, ``threshold`` and ``contribution.<feature>``
    (probability units)."""
    from domain.ml.explanations import describe  # (scikit-learn: loaded with the model)

    p = prediction.probability
    sign = 1 if p > 0.5 else -1 if p < 0.5 else 0
    parts = [
        describe(c.feature, c.value) + (" (against)" if sign * c.contribution < 0 else "")
        for c in prediction.contributions[:3]
    ]
    verdict = f">= {threshold:g}: enter" if p >= threshold else f"< {threshold:g}: no entry"
    error = f" ({prediction.error})" if prediction.error else ""
    model = f" [{prediction.model_id}]" if prediction.model_id else ""
    because = f"; {', '.join(parts)}" if parts else ""
    values = {"probability": p, "threshold": threshold}
    values |= {f"contribution.{c.feature}": c.contribution for c in prediction.contributions}
    return Reason(ML, f"P(reversion) {p:.2f} {verdict}{error}{because}{model}", values)


def sizing_reason(p: MLMeanReversionParams, atr: float, distance: float, qty: Decimal) -> Reason:
    """How an entry was sized: ``risk`` of equity over a stop ``distance`` (``stop_atr`` ×
    ``atr``, quote currency) gave ``qty`` (base asset, after the caps and the lot step)."""
    return Reason(
        "sizing",
        f"risk {p.risk:.2%} of equity over a {p.stop_atr:g}×ATR stop {distance:.6g} → qty {qty}",
        {"atr": atr, "stop_distance": distance, "qty": float(qty)},
    )


def reversion_plan(stop_distance: float, gap: float, instrument: Instrument) -> ExitPlan:
    """The exits of an entry: a stop ``stop_distance`` against the position and take-profits
    towards the mean, ``gap`` being the distance from the signal's close to the middle band
    (quote currency): half the qty at half the gap, the rest at the gap
    (:data:`TAKE_PROFITS`). Distances are rounded up to the tick, each a little further than
    exact, as :func:`domain.exit_rules.exit_plan` rounds.

    Raises
    ------
    ValueError
        When ``stop_distance`` or ``gap`` is not finite and > 0.
    """
    if not all(math.isfinite(x) and x > 0 for x in (stop_distance, gap)):
        raise ValueError(
            f"stop_distance and gap must be finite and > 0, were {stop_distance}, {gap}"
        )
    stop, target = to_decimal(stop_distance), to_decimal(gap)
    return ExitPlan(
        stop_distance=instrument.round_price(stop, up=True),
        take_profits=tuple(
            TakeProfit(instrument.round_price(target * share, up=True), fraction)
            for share, fraction in TAKE_PROFITS
        ),
    )
