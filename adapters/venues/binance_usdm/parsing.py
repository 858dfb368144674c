"""The venue's payloads into domain values: ccxt's OHLCV rows and the kline stream's events
into :class:`~domain.candles.Candles`, validated as imported kline files are.

Nothing here returns the venue's JSON: the rest of the system sees Candles only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from adapters.marketdata.binance_csv import kline_problems, raise_first_bad
from domain.candles import Candles
from domain.errors import DataError

OhlcvRow = Sequence[Any]
"""ccxt's OHLCV row: ``[open_time ms, open, high, low, close, volume]``."""


class Parsed(NamedTuple):
    """Validated bars and how many duplicate rows (an open_time already seen) were dropped."""

    candles: Candles
    duplicates: int


class StreamKline(NamedTuple):
    """One kline-stream update: ``symbol`` (venue spelling), ``interval`` (``"5m"``), whether
    the bar is ``closed`` (its final update) and the bar as one row of Candles."""

    symbol: str
    interval: str
    closed: bool
    bar: Candles


def ohlcv_candles(rows: Sequence[OhlcvRow], *, source: str, after_ms: int | None = None) -> Parsed:
    """ccxt's OHLCV rows as validated Candles, duplicates dropped.

    Parameters
    ----------
    rows:
        ``[open_time, open, high, low, close, volume]`` in time order (open_time int ms UTC,
        prices in quote currency, volume in base asset).
    source:
        What the rows are, for error messages (e.g. ``"binance-usdm BTCUSDT 5m klines"``).
    after_ms:
        Rows with an open_time at or before it are duplicates of bars already had.

    Returns
    -------
    Parsed
        The bars (``extra`` empty) and the count of dropped duplicates: rows with the
        open_time of the row before them or at or before ``after_ms``.

    Raises
    ------
    DataError
        Naming ``source`` and the 1-based row: a row that is not 6 numbers, a non-integer
        time, a time before the previous row's, a price <= 0, ``high < low``,
        ``high < max(open, close)``, ``low > min(open, close)`` or a negative volume.
    """
    table = _table(rows, source)
    times = table[:, 0]
    previous = np.concatenate(([-np.inf], times[:-1]))
    floor = -np.inf if after_ms is None else after_ms
    if (bad := np.flatnonzero(times < previous)).size:
        i = int(bad[0])
        raise DataError(
            f"open_time {int(times[i])} is before the previous row's {int(previous[i])}",
            source=source,
            row=i + 1,
        )
    candles = _candles(table, source)
    keep = np.flatnonzero((times > previous) & (times > floor))
    if len(keep) < len(candles):
        candles = _take(candles, keep)
    return Parsed(candles, len(rows) - len(keep))


def stream_kline(event: Mapping[str, Any], *, source: str) -> StreamKline:
    """A kline-stream event (``{"e": "kline", "s": ..., "k": {...}}``) as a :class:`StreamKline`.

    Raises
    ------
    DataError
        When a field is missing or not a number, or the bar fails the checks of
        :func:`ohlcv_candles`.
    """
    try:
        k = event["k"]
        row = [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"]]
        symbol, interval, closed = str(k["s"]), str(k["i"]), bool(k["x"])
    except (KeyError, TypeError) as exc:
        raise DataError(f"kline event lacks field {exc}: {event!r:.200}", source=source) from None
    table = _table([row], source)
    return StreamKline(symbol, interval, closed, _candles(table, source))


def _table(rows: Sequence[OhlcvRow], source: str) -> np.ndarray:
    """Rows as an (n, 6) float64 array with integral, finite times."""
    for i, row in enumerate(rows):
        if len(row) < 6:
            message = f"expected 6 values, found {len(row)}: {row!r}"
            raise DataError(message, source=source, row=i + 1)
    try:
        table = np.array([[float(v) for v in row[:6]] for row in rows], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"not a number: {exc}", source=source) from None
    table = table.reshape(len(rows), 6)
    if (bad := np.flatnonzero(~np.isfinite(table).all(axis=1))).size:
        i = int(bad[0])
        raise DataError(f"not a finite number: {list(rows[i])!r}", source=source, row=i + 1)
    if (bad := np.flatnonzero(table[:, 0] != np.floor(table[:, 0]))).size:
        i = int(bad[0])
        raise DataError(f"open_time is not an integer: {rows[i][0]!r}", source=source, row=i + 1)
    return table


def _candles(table: np.ndarray, source: str) -> Candles:
    """Validated Candles from an (n, 6) table (rows numbered from 1 in errors)."""
    names = ("open", "high", "low", "close", "volume")
    values = {name: table[:, j] for j, name in enumerate(names, 1)}
    raise_first_bad(kline_problems(values), source)
    return Candles(table[:, 0].astype(np.int64), *(values[name].copy() for name in names))


def _take(candles: Candles, index: np.ndarray) -> Candles:
    return Candles(
        candles.open_time[index],
        candles.open[index],
        candles.high[index],
        candles.low[index],
        candles.close[index],
        candles.volume[index],
    )
