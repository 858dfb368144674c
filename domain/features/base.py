"""The two forms of a market-data feature: a vectorized batch and an incremental stepper.

A :class:`Component` computes its outputs over a whole :class:`~domain.candles.Candles` series at
once (backtests) and also hands out a :class:`Stepper` that takes one closed :class:`Bar` at a
time and returns the values after it (paper and live trading). Both forms give the same numbers
bar for bar (tested in ``tests/unit/test_feature_forms.py``): a stepper fed bars ``0..i`` returns
``batch(candles)[...][i]``, provided it was started at the same first bar as the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError

NAN = float("nan")


class Bar(NamedTuple):
    """One closed bar: ``open_time`` in ms UTC (the bar start), prices in quote currency,
    ``volume`` in base asset."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class Stepper(Protocol):
    """Incremental state of one component: one closed bar in, the updated values out."""

    def update(self, bar: Bar) -> tuple[float, ...]:
        """Values after ``bar``, in :attr:`Component.outputs` order; NaN while undefined.

        Bars must arrive in time order, each exactly once.
        """
        ...


class Component(Protocol):
    """A feature with a batch form and an incremental form that give the same values."""

    @property
    def name(self) -> str:
        """Short label with the parameters, e.g. ``"ema(50)"``."""
        ...

    @property
    def outputs(self) -> tuple[str, ...]:
        """Names of the output series, e.g. ``("ema",)`` or ``("macd", "signal", "hist")``."""
        ...

    @property
    def warmup(self) -> int:
        """Input bars needed before the first defined output (output ``warmup − 1`` is the first
        one that is not NaN)."""
        ...

    def batch(self, candles: Candles) -> dict[str, np.ndarray]:
        """Every output over ``candles`` (length n): one float64 array of length n per name in
        :attr:`outputs`, NaN where undefined; value ``i`` uses bars ``0..i`` only."""
        ...

    def stepper(self) -> Stepper:
        """Fresh incremental state, to be fed from the same first bar as :meth:`batch`."""
        ...


def iter_bars(candles: Candles) -> Iterator[Bar]:
    """The bars of ``candles`` in order, as :class:`Bar` tuples of Python numbers.

    Use it to warm a stepper up on history before feeding it live bars.
    """
    columns = (candles.open_time, candles.open, candles.high, candles.low, candles.close)
    for row in zip(*(c.tolist() for c in columns), candles.volume.tolist(), strict=True):
        yield Bar(*row)


def require_min(field: str, value: int, minimum: int) -> None:
    """Refuse an integer parameter below ``minimum``.

    Raises
    ------
    ConfigError
        Naming ``field`` and the bad value, when ``value < minimum``.
    """
    if value < minimum:
        raise ConfigError(f"{field} must be >= {minimum}, was {value}", field=field)
