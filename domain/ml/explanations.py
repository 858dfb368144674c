"""One-line texts for ML predictions: ``"long 0.74: RSI 24 oversold, close 1.8% below VWAP,
4h trend up"``, built from a prediction's top feature contributions.

Each known feature of :mod:`domain.ml.features` has a phrase with its unit (fractions shown as
percent, RSI and ADX on their 0–100 scale, hours in UTC); an unknown one reads ``name=value``,
a missing value (NaN) ``name n/a``. A contribution that pushes against the prediction's side is
marked ``(against)``. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from domain.ml.models import Contribution

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _pct(v: float, digits: int = 2) -> str:
    return f"{v * 100:+.{digits}f}%"


def _trend(hours: int) -> Callable[[float], str]:
    def phrase(v: float) -> str:
        word = "up" if v > 0 else "down" if v < 0 else "flat"
        return f"{hours}h trend {word} ({_pct(math.expm1(v), 1)})"  # log return → simple

    return phrase


def _vwap(v: float) -> str:
    side = "above" if v >= 0 else "below"
    return f"close {abs(v) * 100:.1f}% {side} VWAP"


def _rsi(v: float) -> str:
    state = " oversold" if v < 30 else " overbought" if v > 70 else ""
    return f"RSI {v:.0f}{state}"


def _adx(v: float) -> str:
    state = " trending" if v > 25 else " ranging" if v < 20 else ""
    return f"ADX {v:.0f}{state}"


def _ema_spread(v: float) -> str:
    return f"EMA20 {'above' if v >= 0 else 'below'} EMA50 by {abs(v):.1f} ATR"


_PHRASES: dict[str, Callable[[float], str]] = {
    "ret_1h": _trend(1),
    "ret_4h": _trend(4),
    "ret_24h": _trend(24),
    "close_vs_vwap": _vwap,
    "rvol": lambda v: f"volume {v:.1f}x its 20-bar mean",
    "volume_trend": lambda v: f"volume SMA5/SMA20 {v:.2f}",
    "atr_frac": lambda v: f"ATR {v * 100:.2f}% of price",
    "atr_pct": lambda v: f"ATR at the {v:.0f}th percentile of 7 days",
    "bb_width": lambda v: f"Bollinger width {v * 100:.1f}%",
    "rsi": _rsi,
    "macd_hist": lambda v: f"MACD histogram {_pct(v, 3)} of price",
    "squeeze_on": lambda v: "squeeze on" if v >= 0.5 else "squeeze off",
    "squeeze_mom": lambda v: f"squeeze momentum {_pct(v)}",
    "adx": _adx,
    "trend_strength": _ema_spread,
    "hour": lambda v: f"hour {v:.0f} UTC",
    "dow": lambda v: _DAYS[int(v)] if 0 <= v < 7 else f"day {v:g}",
    "ret_lag_1": lambda v: f"previous bar {_pct(v)}",
    "ret_lag_2": lambda v: f"bar t-2 {_pct(v)}",
    "ret_lag_3": lambda v: f"bar t-3 {_pct(v)}",
    "ret_mean_5": lambda v: f"5-bar mean return {_pct(v, 3)}",
    "ret_std_5": lambda v: f"5-bar return std {v * 100:.2f}%",
    "roc_1": lambda v: f"1-bar change {_pct(v)}",
    "roc_3": lambda v: f"3-bar change {_pct(v)}",
    "roc_5": lambda v: f"5-bar change {_pct(v)}",
    "roc_10": lambda v: f"10-bar change {_pct(v)}",
    "volume_roc": lambda v: f"volume {_pct(v, 0)} on the previous bar",
    "taker_imbalance": lambda v: f"taker buys {(v + 1) * 50:.0f}% of volume",
}


def describe(feature: str, value: float) -> str:
    """A short readable phrase for ``feature`` at ``value`` (the unit of
    :data:`domain.ml.features.FEATURE_DOCS`): ``describe("rsi", 24.2) == "RSI 24 oversold"``,
    ``describe("close_vs_vwap", -0.018) == "close 1.8% below VWAP"``; an unknown name gives
    ``"name=value"`` (as does a value no phrase can show) and NaN ``"name n/a"``."""
    if math.isnan(value):
        return f"{feature} n/a"
    phrase = _PHRASES.get(feature)
    try:
        return phrase(value) if phrase is not None else f"{feature}={value:.4g}"
    except (OverflowError, ValueError):  # a value far outside the feature's range
        return f"{feature}={value:.4g}"


def side_of(probability: float) -> str:
    """``"long"`` when P(up) ``> 0.5``, ``"short"`` when ``< 0.5``, else ``"neutral"``."""
    return "long" if probability > 0.5 else "short" if probability < 0.5 else "neutral"


def explanation_text(
    side: str,
    contributions: Sequence[Contribution],
    *,
    probability: float | None = None,
    limit: int = 3,
) -> str:
    """One line: ``"<side>[ <probability>]: <phrase>, <phrase>, ..."`` for the first ``limit``
    ``contributions`` (given largest first, as :meth:`Predictor.explain` returns them). A
    contribution of the wrong sign for ``side`` (negative for ``"long"``, positive for
    ``"short"``: contributions are towards P(up)) is marked ``(against)``.

    >>> explanation_text("long", [Contribution("rsi", 24.0, 0.03),
    ...                           Contribution("close_vs_vwap", -0.018, 0.02)])
    'long: RSI 24 oversold, close 1.8% below VWAP'
    """
    head = side if probability is None else f"{side} {probability:.2f}"
    parts = []
    for c in list(contributions)[: max(limit, 0)]:
        against = (side == "long" and c.contribution < 0) or (
            side == "short" and c.contribution > 0
        )
        parts.append(describe(c.feature, c.value) + (" (against)" if against else ""))
    return f"{head}: {', '.join(parts)}" if parts else head
