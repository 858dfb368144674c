"""The venue's payloads into domain values: ccxt's OHLCV rows and the contract websocket's
``push.kline`` messages into :class:`~domain.candles.Candles`, validated as imported kline files
are, volumes converted from contracts to base units.

Nothing here returns the venue's JSON: the rest of the system sees Candles only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import numpy as np

from adapters.marketdata.binance_csv import kline_problems, raise_first_bad
from domain.candles import Candles
from domain.errors import DataError

OhlcvRow = Sequence[Any]
"""ccxt's OHLCV row of a MEXC contract: ``[open_time ms, open, high, low, close, contracts]``
(ccxt passes the venue's ``vol``, a count of contracts, as the volume)."""


class Parsed(NamedTuple):
    """Validated bars and how many duplicate rows (an open_time already seen) were dropped."""

    candles: Candles
    duplicates: int


class PushKline(NamedTuple):
    """One ``push.kline`` update: the contract (``BTC_USDT``), the venue's ``interval``
    (``Min5``) and the bar's state at that update as one row of Candles. MEXC sends every
    update of a bar whole and never marks the last one."""

    contract: str
    interval: str
    bar: Candles


def ohlcv_candles(
    rows: Sequence[OhlcvRow],
    *,
    contract_size: Decimal,
    source: str,
    after_ms: int | None = None,
) -> Parsed:
    """ccxt's OHLCV rows as validated Candles, volume in base units, duplicates dropped.

    Parameters
    ----------
    rows:
        ``[open_time, open, high, low, close, contracts]`` in time order (open_time int ms
        UTC, prices in quote currency, volume in contracts).
    contract_size:
        Base units per contract (the contract's ``contractSize``, e.g. 0.0001 BTC).
    source:
        What the rows are, for error messages (e.g. ``"mexc BTCUSDT 5m klines"``).
    after_ms:
        Rows with an open_time at or before it are duplicates of bars already had.

    Returns
    -------
    Parsed
        The bars (volume = contracts × ``contract_size``, computed in decimal so that a volume
        the venue derived from a base amount comes back exactly) and the count of dropped
        duplicates: rows with the open_time of the row before them or at or before
        ``after_ms``.

    Raises
    ------
    DataError
        Naming ``source`` and the 1-based row: a row that is not 6 numbers, a non-integer
        time, a time before the previous row's, a price <= 0, ``high < low``,
        ``high < max(open, close)``, ``low > min(open, close)`` or a negative volume.
    """
    table = _table(rows, contract_size, source)
    times = table[:, 0]
    previous = np.concatenate(([-np.inf], times[:-1]))
    if (bad := np.flatnonzero(times < previous)).size:
        i = int(bad[0])
        raise DataError(
            f"open_time {int(times[i])} is before the previous row's {int(previous[i])}",
            source=source,
            row=i + 1,
        )
    candles = _candles(table, source)
    floor = -np.inf if after_ms is None else after_ms
    keep = np.flatnonzero((times > previous) & (times > floor))
    if len(keep) < len(candles):
        candles = _take(candles, keep)
    return Parsed(candles, len(rows) - len(keep))


def push_kline(message: Mapping[str, Any], *, contract_size: Decimal, source: str) -> PushKline:
    """A ``push.kline`` message (``{"channel": "push.kline", "data": {...}, "symbol": ...}``)
    as a :class:`PushKline`; the bar's ``t`` is in seconds, ``q`` its volume in contracts.

    Raises
    ------
    DataError
        When a field is missing or not a number, or the bar fails the checks of
        :func:`ohlcv_candles`.
    """
    try:
        data = message["data"]
        row = [int(data["t"]) * 1000, data["o"], data["h"], data["l"], data["c"], data["q"]]
        contract, interval = str(data["symbol"]), str(data["interval"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"kline push lacks field {exc}: {message!r:.200}", source=source) from None
    table = _table([row], contract_size, source)
    return PushKline(contract, interval, _candles(table, source))


def contract_number(market_info: Mapping[str, Any], name: str, *, source: str) -> Decimal:
    """The positive number ``name`` of a contract's detail: ``contractSize`` (base units per
    contract) or ``priceUnit`` (price tick, quote currency).

    Raises
    ------
    DataError
        When it is missing, not a number or not > 0.
    """
    try:
        value = Decimal(str(market_info[name]))
    except (KeyError, InvalidOperation):
        raise DataError(f"contract detail lacks a number {name}", source=source) from None
    if not value.is_finite() or value <= 0:
        raise DataError(f"{name} must be > 0, was {value}", source=source)
    return value


def _table(rows: Sequence[OhlcvRow], size: Decimal, source: str) -> np.ndarray:
    """Rows as an (n, 6) float64 array, volume in base units, with integral, finite times."""
    values = []
    for i, row in enumerate(rows):
        if len(row) < 6:
            message = f"expected 6 values, found {len(row)}: {row!r}"
            raise DataError(message, source=source, row=i + 1)
        try:
            volume = float(Decimal(str(row[5])) * size)
            values.append([float(v) for v in row[:5]] + [volume])
        except (TypeError, ValueError, InvalidOperation):
            raise DataError(f"not a number: {list(row)!r}", source=source, row=i + 1) from None
    table = np.array(values, dtype=np.float64).reshape(len(rows), 6)
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
