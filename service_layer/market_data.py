"""Market-data use cases: importing kline files into the candle store, listing what is stored.

The file reader and the name parser are injected (the composition root passes the Binance CSV
adapter), so this module depends only on the domain and its ports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domain.candles import Candles, Gap, find_gaps
from domain.errors import ConfigError, DataError
from domain.ports import CandleStore, StoredSeries
from domain.timeframes import timeframe_ms

CandleReader = Callable[[Path], Candles]
"""Reads and validates one file; raises ``DataError`` naming the file and row."""

NameParser = Callable[[Path], tuple[str | None, str | None]]
"""Guesses ``(symbol, timeframe)`` from a file name; None for what it cannot tell."""


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What one imported file held, and the stored series after the merge.

    ``rows``, ``first_open_time``, ``last_open_time`` (ms UTC) and ``gaps`` describe the file;
    ``stored`` is the whole series in the store afterwards.
    """

    path: str
    exchange: str
    symbol: str
    timeframe: str
    rows: int
    first_open_time: int
    last_open_time: int
    gaps: tuple[Gap, ...]
    stored: StoredSeries


@dataclass(frozen=True, slots=True)
class _Checked:
    path: Path
    symbol: str
    timeframe: str
    candles: Candles


def import_files(
    paths: Sequence[str | Path],
    *,
    reader: CandleReader,
    store: CandleStore,
    exchange: str,
    symbol: str | None = None,
    timeframe: str | None = None,
    infer: NameParser | None = None,
) -> list[ImportReport]:
    """Read, validate and store kline files, all or nothing.

    Every file is read and checked before anything is written, so one bad file writes
    nothing at all. Gaps are reported, never filled.

    Parameters
    ----------
    paths:
        Kline files (any layout ``reader`` understands).
    reader:
        Reads one file into :class:`Candles`, raising ``DataError`` on a bad row.
    store:
        Where the bars go (merged: a bar with a stored open_time replaces it).
    exchange:
        Store key, e.g. ``"binance_usdm"``.
    symbol, timeframe:
        Apply to every file; when None, taken from each file name through ``infer``.
    infer:
        File-name parser used for what ``symbol``/``timeframe`` leave open.

    Returns
    -------
    list of ImportReport
        One per file, in the order given.

    Raises
    ------
    ConfigError
        When a symbol or timeframe is neither given nor inferable from a file's name (the
        message names the file), or the timeframe name is invalid.
    DataError
        When a file fails validation (file and row named) or is empty, or its bar spacing
        does not fit the timeframe.
    """
    checked = [_check_file(Path(p), reader, symbol, timeframe, infer) for p in paths]
    reports = []
    for item in checked:
        stored = store.write(exchange, item.symbol, item.timeframe, item.candles)
        reports.append(_report(item, exchange, stored))
    return reports


def list_series(store: CandleStore) -> list[StoredSeries]:
    """Every stored series with its first/last open_time (ms UTC), rows and gaps."""
    return store.list()


def _check_file(
    path: Path,
    reader: CandleReader,
    symbol: str | None,
    timeframe: str | None,
    infer: NameParser | None,
) -> _Checked:
    guessed_symbol, guessed_timeframe = infer(path) if infer else (None, None)
    symbol = symbol or guessed_symbol
    timeframe = timeframe or guessed_timeframe
    if not symbol or not timeframe:
        missing = " and ".join(
            n for n, v in (("symbol", symbol), ("timeframe", timeframe)) if not v
        )
        raise ConfigError(
            f"cannot infer the {missing} of {path} from its name; give it explicitly",
            field="symbol" if not symbol else "timeframe",
        )
    timeframe_ms(timeframe)  # a bad timeframe fails before the file is read
    candles = reader(path)
    if len(candles) == 0:
        raise DataError("file has no bars", source=str(path))
    check_spacing(candles.open_time, timeframe, str(path))
    return _Checked(path, symbol.upper(), timeframe, candles)


def check_spacing(open_time: np.ndarray, timeframe: str, source: str) -> None:
    """Bars (``open_time`` ms UTC) must sit a whole number of ``timeframe`` steps apart, and
    some exactly one step apart.

    Raises
    ------
    DataError
        Naming ``source`` and the first off-grid row, or saying the file is not that timeframe.
    """
    step = timeframe_ms(timeframe)
    diffs = np.diff(open_time)
    off_grid = np.flatnonzero(diffs % step != 0)
    if len(off_grid):
        i = int(off_grid[0]) + 1
        raise DataError(
            f"open_time {open_time[i]} is {diffs[i - 1]} ms after the previous bar, not a "
            f"multiple of the {timeframe} timeframe ({step} ms)",
            source=source,
            row=i + 1,
        )
    if len(diffs) and diffs.min() != step:
        raise DataError(
            f"no two bars are {step} ms apart (smallest spacing {diffs.min()} ms): the file is "
            f"not {timeframe} data",
            source=source,
        )


def _report(item: _Checked, exchange: str, stored: StoredSeries) -> ImportReport:
    step = timeframe_ms(item.timeframe)
    open_time = item.candles.open_time
    return ImportReport(
        path=str(item.path),
        exchange=exchange,
        symbol=item.symbol,
        timeframe=item.timeframe,
        rows=len(open_time),
        first_open_time=int(open_time[0]),
        last_open_time=int(open_time[-1]),
        gaps=tuple(find_gaps(open_time, step)),
        stored=stored,
    )
