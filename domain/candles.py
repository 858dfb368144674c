"""OHLCV candles, one bar (:class:`Candle`) and a columnar series (:class:`Candles`).

Times are ``open_time`` in int milliseconds UTC (the bar start); prices are float64 in quote
currency; volumes are float64 in base asset (``quote_volume`` in quote currency).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from domain.model import fast_constructor

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed bar of ``timeframe`` starting at ``open_time`` (ms UTC)."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __post_init__(self) -> None:
        if self.high < self.low:
            raise ValueError(f"high must be >= low, was high={self.high} low={self.low}")
        if min(self.open, self.high, self.low, self.close) <= 0:
            raise ValueError(f"prices must be > 0, was {self}")
        if self.volume < 0:
            raise ValueError(f"volume must be >= 0, was {self.volume}")


@dataclass(frozen=True, slots=True, eq=False)
class Candles:
    """A time-ordered series of bars as parallel numpy arrays (length n each).

    ``open_time`` is int64 ms UTC, strictly increasing; the price and volume columns are float64.
    ``extra`` holds optional float64 columns (``quote_volume``, ``trades``, ``taker_buy_base``,
    ``taker_buy_quote``) of the same length.

    Raises
    ------
    ValueError
        When the columns have different lengths.
    """

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.open_time)
        for name in OHLCV_COLUMNS:
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, expected {n}")
        for name, column in self.extra.items():
            if len(column) != n:
                raise ValueError(f"column {name} has {len(column)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.open_time)

    @classmethod
    def empty(cls) -> Candles:
        """A series with no bars."""
        z = np.empty(0, dtype=np.float64)
        return cls(np.empty(0, dtype=np.int64), z, z, z, z, z)

    @classmethod
    def from_candles(cls, bars: list[Candle]) -> Candles:
        """Build a series from a list of :class:`Candle` (already time-ordered)."""
        return cls(
            open_time=np.array([b.open_time for b in bars], dtype=np.int64),
            open=np.array([b.open for b in bars], dtype=np.float64),
            high=np.array([b.high for b in bars], dtype=np.float64),
            low=np.array([b.low for b in bars], dtype=np.float64),
            close=np.array([b.close for b in bars], dtype=np.float64),
            volume=np.array([b.volume for b in bars], dtype=np.float64),
        )

    def candle(self, i: int) -> Candle:
        """Bar ``i`` as a :class:`Candle`."""
        return Candle(
            int(self.open_time[i]),
            float(self.open[i]),
            float(self.high[i]),
            float(self.low[i]),
            float(self.close[i]),
            float(self.volume[i]),
        )

    def slice(self, start: int, stop: int) -> Candles:
        """Bars ``[start, stop)`` (views, no copy)."""
        return _view(
            self.open_time[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
            {k: v[start:stop] for k, v in self.extra.items()},
        )

    def between(self, start_ms: int | None, end_ms: int | None) -> Candles:
        """Bars with ``start_ms <= open_time < end_ms`` (either bound may be None)."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.open_time, start_ms, "left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.open_time, end_ms, "left"))
        return self.slice(lo, hi)

    def concat(self, other: Candles) -> Candles:
        """This series followed by ``other`` (extra columns kept only when both have them)."""
        keys = self.extra.keys() & other.extra.keys()
        return Candles(
            np.concatenate([self.open_time, other.open_time]),
            np.concatenate([self.open, other.open]),
            np.concatenate([self.high, other.high]),
            np.concatenate([self.low, other.low]),
            np.concatenate([self.close, other.close]),
            np.concatenate([self.volume, other.volume]),
            {k: np.concatenate([self.extra[k], other.extra[k]]) for k in keys},
        )


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing bars between two present ones: ``first_missing`` .. ``last_missing`` (ms UTC)."""

    first_missing: int
    last_missing: int
    bars: int


def find_gaps(open_time: np.ndarray, step_ms: int) -> list[Gap]:
    """Gaps in a strictly increasing ``open_time`` array on a grid of ``step_ms``.

    Returns one :class:`Gap` per run of missing bars; never fills anything.

    >>> find_gaps(np.array([0, 300_000, 1_200_000]), 300_000)
    [Gap(first_missing=600000, last_missing=900000, bars=2)]
    """
    if len(open_time) < 2:
        return []
    diffs = np.diff(open_time)
    idx = np.flatnonzero(diffs > step_ms)
    return [
        Gap(
            int(open_time[i]) + step_ms,
            int(open_time[i + 1]) - step_ms,
            int(diffs[i] // step_ms) - 1,
        )
        for i in idx
    ]


_view = fast_constructor(Candles, validate=False)
"""Slices of a series: columns of one length already, nothing to check (a paper feed slices a
bar of every symbol for every bar time)."""
