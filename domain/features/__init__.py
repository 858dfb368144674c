"""Market-data features in two forms that agree bar for bar: a vectorized batch for backtests and
an incremental stepper for paper and live trading (see :mod:`domain.features.base`).

>>> from domain.features import SMA, Bar
>>> stepper = SMA(2).stepper()
>>> [stepper.update(Bar(t, 1.0, 1.0, 1.0, close, 5.0)) for t, close in [(0, 1.0), (300_000, 2.0)]]
[(nan,), (1.5,)]
"""

from __future__ import annotations

from domain.features.bands import Bollinger
from domain.features.base import Bar, Component, Stepper, iter_bars
from domain.features.lifted import Lifted
from domain.features.macd import MACD
from domain.features.moving import EMA, SMA
from domain.features.resample import Resampler, ResampleStepper
from domain.features.sma_sign import SmaSign
from domain.features.vwap import VWAP
from domain.features.wilder import ADX, ATR, RSI

__all__ = [
    "ADX", "ATR", "EMA", "MACD", "RSI", "SMA", "VWAP", "Bar", "Bollinger", "Component", "Lifted",
    "ResampleStepper", "Resampler", "SmaSign", "Stepper", "iter_bars", "standard_components",
]  # fmt: skip

_M5 = 300_000
_H1 = 3_600_000


def standard_components(tick: float) -> list[Component]:
    """The components a 5m strategy typically uses, with their usual parameters.

    ``tick`` is the instrument's price increment (quote currency), for :class:`SmaSign`. The list
    is also what ``tests/unit/test_feature_forms.py`` proves equal in both forms.

    Raises
    ------
    ConfigError
        When ``tick`` is not a positive finite number.
    """
    return [
        SMA(50),
        SMA(200),
        EMA(50),
        EMA(200),
        RSI(14),
        ATR(14),
        ADX(14),
        MACD(12, 26, 9),
        Bollinger(20, 2.0),
        VWAP(),
        SmaSign(50, 200, tick),
        Lifted(EMA(50), _M5, _H1),
        Lifted(ADX(14), _M5, _H1),
    ]
