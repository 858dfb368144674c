"""Per-symbol feature values for a strategy, from the batch or the incremental form.

A strategy names its components (:mod:`domain.features`); :class:`SymbolFeatures` feeds them the
symbol's bars block by block and returns each block's values. In *batch* mode (backtests) it
keeps every bar and recomputes the vectorized form over the whole history; in *incremental*
mode (paper and live) it steps each new bar through the components' steppers, keeping no bars
at all. Both give the same values (tested per component), so a strategy's logic, written once
over the block's arrays, trades the same in both modes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from domain.candles import Candles
from domain.features.base import Bar, Component
from domain.features.lifted import HigherBars, Lifted, higher_bars


class FeatureBlock:
    """Feature values over one block of bars: ``close_time`` (ms UTC, length n), ``close``
    and one float64 array per output (``values["rsi"]``...), plus ``previous``: each output's
    value on the bar before the block (NaN when none)."""

    __slots__ = ("_first", "_step", "close", "close_time", "previous", "values")

    def __init__(
        self,
        close_time: np.ndarray,
        close: np.ndarray,
        values: dict[str, np.ndarray],
        previous: dict[str, float],
    ) -> None:
        self.close_time = close_time
        self.close = close
        self.values = values
        self.previous = previous
        self._first = int(close_time[0]) if len(close_time) else 0
        self._step = int(close_time[1] - close_time[0]) if len(close_time) > 1 else 1

    def __len__(self) -> int:
        return len(self.close_time)

    def lagged(self, name: str) -> np.ndarray:
        """``values[name]`` shifted by one bar (the value on the bar before each bar)."""
        column = self.values[name]
        return np.r_[self.previous.get(name, np.nan), column[:-1]]

    def index(self, close_time: int) -> int:
        """The row of the bar closing at ``close_time``.

        Raises
        ------
        KeyError
            When no bar of the block closes then.
        """
        times = self.close_time
        i = (close_time - self._first) // self._step  # the row when no bar is missing before
        if 0 <= i < len(times) and times[i] == close_time:
            return i
        i = int(times.searchsorted(close_time))
        if i >= len(times) or times[i] != close_time:
            raise KeyError(f"no bar closes at {close_time} in this block")
        return i


class SymbolFeatures:
    """The components' values for one symbol, block by block.

    Parameters
    ----------
    components:
        Output name prefix → component; an output ``o`` of component ``name`` is published as
        ``name`` when the component has one output, else ``f"{name}.{o}"``.
    tf_ms:
        Bar length in ms (close time = open time + ``tf_ms``).
    incremental:
        True for paper and live (steppers), False for backtests (batch over all bars).
    """

    def __init__(self, components: Mapping[str, Component], tf_ms: int, incremental: bool) -> None:
        self.components = dict(components)
        self.tf_ms = tf_ms
        self.incremental = incremental
        self._steppers = {name: c.stepper() for name, c in self.components.items()}
        self._keys = {name: _keys(name, c) for name, c in self.components.items()}
        self._bars = Candles.empty()
        self._last: dict[str, float] = {}

    def update(self, bars: Candles) -> FeatureBlock:
        """Take the next ``bars`` and return the features on them."""
        if self.incremental and len(bars) == 1:
            return self._step_one(bars)
        values = self._step(bars) if self.incremental else self._recompute(bars)
        block = FeatureBlock(bars.open_time + self.tf_ms, bars.close, values, dict(self._last))
        if len(bars):
            self._last = {k: float(v[-1]) for k, v in values.items()}
        return block

    def _step_one(self, bars: Candles) -> FeatureBlock:
        """:meth:`update` with one bar (a paper or live bar): the outputs are views of one
        read-only row, and the next block's ``previous`` is the values as the steppers gave
        them."""
        bar = Bar(
            bars.open_time.item(), bars.open.item(), bars.high.item(),
            bars.low.item(), bars.close.item(), bars.volume.item(),
        )  # fmt: skip
        last: dict[str, float] = {}
        for name, stepper in self._steppers.items():
            for key, value in zip(self._keys[name], stepper.update(bar), strict=True):
                last[key] = value
        row = np.array(list(last.values()))
        row.flags.writeable = False
        values = {key: row[j : j + 1] for j, key in enumerate(last)}
        previous, self._last = self._last, last
        return FeatureBlock(bars.open_time + self.tf_ms, bars.close, values, previous)

    def _step(self, bars: Candles) -> dict[str, np.ndarray]:
        """The incremental form: each bar through every stepper."""
        n = len(bars)
        columns = {key: np.empty(n) for keys in self._keys.values() for key in keys}
        rows = zip(
            bars.open_time.tolist(), bars.open.tolist(), bars.high.tolist(),
            bars.low.tolist(), bars.close.tolist(), bars.volume.tolist(), strict=True,
        )  # fmt: skip
        for i, row in enumerate(rows):
            bar = Bar(*row)
            for name, stepper in self._steppers.items():
                for key, value in zip(self._keys[name], stepper.update(bar), strict=True):
                    columns[key][i] = value
        return columns

    def _recompute(self, bars: Candles) -> dict[str, np.ndarray]:
        """The batch form over every bar kept; components lifted to one timeframe share its
        resampled bars."""
        self._bars = self._bars.concat(bars) if len(self._bars) else bars
        start = len(self._bars) - len(bars)
        shared: dict[tuple[int, int], HigherBars] = {}
        values: dict[str, np.ndarray] = {}
        for name, component in self.components.items():
            if isinstance(component, Lifted):
                pair = (component.source_ms, component.target_ms)
                if pair not in shared:
                    shared[pair] = higher_bars(self._bars, *pair)
                computed = component.batch(self._bars, shared[pair])
            else:
                computed = component.batch(self._bars)
            for key, output in zip(self._keys[name], component.outputs, strict=True):
                values[key] = computed[output][start:]
        return values


def _keys(name: str, component: Component) -> list[str]:
    outputs = component.outputs
    return [name] if len(outputs) == 1 else [f"{name}.{o}" for o in outputs]
