"""Candle storage in Parquet files: one file per exchange/symbol/timeframe.

Layout: ``<root>/candles/<exchange>/<SYMBOL>/<timeframe>.parquet`` with columns ``open_time``
(int64 ms UTC), ``open, high, low, close, volume`` and any extra columns (float64), sorted by
``open_time`` without duplicates. Writes are atomic: a temporary file in the same folder is
renamed over the old one (``os.replace``), so a failed write leaves the old file as it was.
"""

from __future__ import annotations

import builtins
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from domain.candles import OHLCV_COLUMNS, Candles, find_gaps
from domain.errors import ConfigError, DataError, UnknownSymbol
from domain.ports import StoredSeries
from domain.timeframes import timeframe_ms

_SAFE_NAME = re.compile(r"^\w[\w.-]*$")

TableWriter = Callable[[pa.Table, str], None]
"""Writes a table to a file path; ``pyarrow.parquet.write_table`` unless a test injects one."""


class ParquetCandleStore:
    """The :class:`domain.ports.CandleStore` port on Parquet files under ``root``.

    Parameters
    ----------
    root:
        Folder holding ``candles/``; created on the first write.
    write_table:
        How a table reaches a file. Defaults to ``pyarrow.parquet.write_table``; tests pass a
        failing writer to show that a failed write keeps the old file.

    Notes
    -----
    Symbols are stored upper-case. Not safe for two processes writing the same series at once
    (last rename wins); one process with one store is the intended use.
    """

    def __init__(self, root: Path, *, write_table: TableWriter = pq.write_table) -> None:
        self.root = Path(root)
        self._write_table = write_table

    def write(self, exchange: str, symbol: str, timeframe: str, candles: Candles) -> StoredSeries:
        """Merge ``candles`` into the stored series and save it atomically.

        Bars with an ``open_time`` already stored replace the stored ones; the result is sorted.
        Extra columns are kept only when both the stored series and ``candles`` have them.

        Parameters
        ----------
        exchange, symbol, timeframe:
            Series key, e.g. ``"binance_usdm"``, ``"BTCUSDT"``, ``"5m"``.
        candles:
            Bars to store, ``open_time`` strictly increasing (ms UTC).

        Returns
        -------
        StoredSeries
            The whole stored series after the merge: first/last open_time, rows and gaps.

        Raises
        ------
        ConfigError
            When a key is not a safe file name or ``timeframe`` is not a timeframe name.
        DataError
            When ``candles`` is not strictly increasing, or nothing is stored and it is empty.
        """
        path = self._path(exchange, symbol, timeframe)
        step = timeframe_ms(timeframe)
        bad = np.flatnonzero(np.diff(candles.open_time) <= 0)
        if len(bad):
            raise DataError(
                f"open_time must be strictly increasing, row {bad[0] + 2} is "
                f"{candles.open_time[bad[0] + 1]} after {candles.open_time[bad[0]]}",
                source=_key(exchange, symbol, timeframe),
            )
        merged = _merge(_read_file(path), candles) if path.exists() else candles
        if len(merged) == 0:
            raise DataError("no candles to write", source=_key(exchange, symbol, timeframe))
        self._replace(path, _to_table(merged))
        return _series(exchange, symbol.upper(), timeframe, merged.open_time, step)

    def read(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Candles:
        """Stored bars with ``start_ms <= open_time < end_ms`` (ms UTC; None = unbounded).

        Returns
        -------
        Candles
            The bars in range (possibly none), with the stored extra columns.

        Raises
        ------
        UnknownSymbol
            When nothing is stored for ``exchange/symbol/timeframe``.
        ConfigError
            When a key is not a safe file name.
        """
        path = self._path(exchange, symbol, timeframe)
        if not path.exists():
            raise UnknownSymbol(
                f"no candles stored for {_key(exchange, symbol, timeframe)}", field="symbol"
            )
        return _read_file(path).between(start_ms, end_ms)

    def list(self) -> builtins.list[StoredSeries]:
        """Every stored series, sorted by exchange, symbol, timeframe, with first/last and gaps.

        Files whose name is not a timeframe are skipped.
        """
        found: builtins.list[StoredSeries] = []
        for path in sorted((self.root / "candles").glob("*/*/*.parquet")):
            timeframe = path.stem
            try:
                step = timeframe_ms(timeframe)
            except ConfigError:
                continue
            open_time = pq.read_table(path, columns=["open_time"])["open_time"].to_numpy()
            if len(open_time):
                exchange, symbol = path.parent.parent.name, path.parent.name
                found.append(_series(exchange, symbol, timeframe, open_time, step))
        return found

    def _path(self, exchange: str, symbol: str, timeframe: str) -> Path:
        for label, name in (("exchange", exchange), ("symbol", symbol), ("timeframe", timeframe)):
            if not _SAFE_NAME.match(name):
                raise ConfigError(f"{label} {name!r} is not a valid name", field=label)
        return self.root / "candles" / exchange / symbol.upper() / f"{timeframe}.parquet"

    def _replace(self, path: Path, table: pa.Table) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            self._write_table(table, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _key(exchange: str, symbol: str, timeframe: str) -> str:
    return f"{exchange}/{symbol.upper()}/{timeframe}"


def _series(
    exchange: str, symbol: str, timeframe: str, open_time: np.ndarray, step: int
) -> StoredSeries:
    return StoredSeries(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        first_open_time=int(open_time[0]),
        last_open_time=int(open_time[-1]),
        rows=len(open_time),
        gaps=tuple(find_gaps(open_time, step)),
    )


def _merge(old: Candles, new: Candles) -> Candles:
    """``old`` without the times ``new`` has, plus ``new``, sorted by open_time."""
    combined = _take(old, ~np.isin(old.open_time, new.open_time)).concat(new)
    return _take(combined, np.argsort(combined.open_time, kind="stable"))


def _take(candles: Candles, index: np.ndarray) -> Candles:
    return Candles(
        *(getattr(candles, c)[index] for c in ("open_time", *OHLCV_COLUMNS)),
        extra={k: v[index] for k, v in candles.extra.items()},
    )


def _to_table(candles: Candles) -> pa.Table:
    columns = {"open_time": pa.array(np.asarray(candles.open_time, dtype=np.int64))}
    for name in OHLCV_COLUMNS:
        columns[name] = pa.array(np.asarray(getattr(candles, name), dtype=np.float64))
    for name, values in sorted(candles.extra.items()):
        columns[name] = pa.array(np.asarray(values, dtype=np.float64))
    return pa.table(columns)


def _read_file(path: Path) -> Candles:
    table = pq.read_table(path)
    arrays = {name: table[name].to_numpy() for name in table.column_names}
    return Candles(
        open_time=arrays.pop("open_time").astype(np.int64),
        **{name: arrays.pop(name).astype(np.float64) for name in OHLCV_COLUMNS},
        extra={name: values.astype(np.float64) for name, values in arrays.items()},
    )
