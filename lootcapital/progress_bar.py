"""The console's progress bar of a long backtest (``lootcapital backtest``, on stderr)."""

from __future__ import annotations

from typing import TextIO


class ProgressBar:
    """A progress callback that draws ``backtest [#########-----------]  45 %`` on one line of
    ``stream``, redrawn in place (a carriage return) each time the fraction passes another
    whole percent, and ends the line at 100 %; the next run (an A/B's) draws a new bar.

    Parameters
    ----------
    stream:
        Where to draw (stderr: the report goes to stdout).
    label:
        The text before the bar.
    width:
        The bar's length in characters.
    """

    def __init__(self, stream: TextIO, label: str = "backtest", width: int = 30) -> None:
        self._stream = stream
        self._label = label
        self._width = width
        self._shown = -1

    def __call__(self, fraction: float) -> None:
        """Show ``fraction`` (0 to 1; outside, clipped) done."""
        percent = int(100 * min(max(fraction, 0.0), 1.0))
        if percent == self._shown:
            return
        self._shown = percent
        filled = self._width * percent // 100
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {percent:3d} %")
        if percent == 100:
            self._stream.write("\n")
            self._shown = -1
        self._stream.flush()
