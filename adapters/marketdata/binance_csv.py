"""Reading Binance kline CSV files into domain objects, validated row by row (the table helpers
also serve :mod:`adapters.marketdata.funding_csv`).

Two kline layouts are read (plain ``.csv`` or gzip ``.csv.gz``):

* the official Binance public-data archive (data.binance.vision): 12 columns ``open_time, open,
  high, low, close, volume, close_time, quote_volume, count, taker_buy_volume,
  taker_buy_quote_volume, ignore``, headerless (older files) or with that header row; the spot
  archive uses microsecond timestamps from 2025-01-01;
* the normalized files of ``shared/data``: header ``open_time,open,high,low,close,volume`` and
  optionally ``close_time,quote_volume,trades,taker_buy_base,taker_buy_quote``.

Timestamps above 1e14 are taken as microseconds and converted to ms. Rows are numbered from 1,
header excluded; every error names the file and the first bad row.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from domain.candles import Candles
from domain.errors import DataError
from domain.model import MarketType

ARCHIVE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_RENAMES = {
    "count": "trades",
    "taker_buy_volume": "taker_buy_base",
    "taker_buy_quote_volume": "taker_buy_quote",
    # Binance's funding-rate archive: calc_time,funding_interval_hours,last_funding_rate.
    "calc_time": "funding_time",
    "last_funding_rate": "funding_rate",
}
_PRICES = ("open", "high", "low", "close")
_EXTRAS = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")
_MICROSECONDS_ABOVE = 1e14  # 1e14 ms is year 5138; 1e14 µs is 1973

Check = tuple[np.ndarray, Callable[[int], str]]
"""A boolean mask over rows and the message for a flagged row index."""


def read_klines(path: str | Path) -> Candles:
    """Read and validate a Binance kline file (archive or normalized layout).

    Parameters
    ----------
    path:
        A ``.csv`` or ``.csv.gz`` file, headerless 12-column archive or with a header row.

    Returns
    -------
    Candles
        n bars, ``open_time`` int64 ms UTC, prices in quote currency, ``volume`` in base asset;
        ``extra`` has ``quote_volume``, ``trades``, ``taker_buy_base``, ``taker_buy_quote``
        (float64) when the file has them. Gaps are kept as they are (never filled);
        zero-volume bars (exchange maintenance) are valid.

    Raises
    ------
    DataError
        Naming the file and the first bad 1-based data row: wrong column count, a
        non-numeric or non-finite value, an ``open_time`` not after the previous one
        (duplicate or out of order), a price <= 0, ``high < low``,
        ``high < max(open, close)``, ``low > min(open, close)`` or a negative volume;
        or a missing required column, no data rows, or an unreadable file.
    """
    source = str(path)
    frame, checks = _read_table(path, ARCHIVE_COLUMNS, ("open_time", *_PRICES, "volume"))
    _, time_checks = _times(frame["open_time"])
    values: dict[str, np.ndarray] = {}
    for name in (*_PRICES, "volume", *_EXTRAS):
        if name in frame:
            values[name], number_check = _numbers(frame[name])
            checks.append(number_check)
    raise_first_bad([*checks, *time_checks, *kline_problems(values)], source)
    return Candles(
        open_time=_exact_ms(frame["open_time"]),
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        volume=values["volume"],
        extra={c: values[c] for c in _EXTRAS if c in values},
    )


_TIMEFRAME = r"\d+[mhdw]"
_NAME_PATTERNS = (
    # Binance archive: BTCUSDT-5m-2025-01.csv, BTCUSDT-5m-2025-01-31.csv
    re.compile(rf"^(?P<symbol>[A-Z0-9]+)-(?P<tf>{_TIMEFRAME})-\d{{4}}-\d{{2}}(?:-\d{{2}})?$"),
    # freqtrade: BTC_USDT_USDT-5m-futures, BTC_USDT-5m
    re.compile(rf"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)(?:_[A-Z0-9]+)?-(?P<tf>{_TIMEFRAME})"),
    # normalized: binance_usdm_BTCUSDT_5m, binance_usdm_BTCUSDT_funding
    re.compile(rf"^(?:[a-z0-9]+_)+(?P<symbol>[A-Z0-9]+)(?:_(?P<tf>{_TIMEFRAME}))?(?:_|$)"),
)


def infer_symbol_timeframe(path: str | Path) -> tuple[str | None, str | None]:
    """Guess ``(symbol, timeframe)`` from a kline file name.

    >>> infer_symbol_timeframe("data/binance_usdm_BTCUSDT_5m.csv.gz")
    ('BTCUSDT', '5m')
    >>> infer_symbol_timeframe("BTCUSDT-5m-2025-01.csv")
    ('BTCUSDT', '5m')
    >>> infer_symbol_timeframe("BTC_USDT_USDT-5m-futures.csv")
    ('BTCUSDT', '5m')
    >>> infer_symbol_timeframe("notes.txt")
    (None, None)

    Returns
    -------
    tuple of (str or None, str or None)
        The symbol in Binance spelling and the timeframe name, each None when not found.
    """
    stem = Path(path).name.split(".")[0]
    for pattern in _NAME_PATTERNS:
        match = pattern.match(stem)
        if match is None:
            continue
        groups = match.groupdict()
        symbol = groups.get("symbol") or f"{groups['base']}{groups['quote']}"
        return symbol, groups.get("tf")
    return None, None


_MARKET_PREFIXES = (
    ("binance_spot_", MarketType.SPOT),
    ("binance_usdm_", MarketType.PERPETUAL),
    ("us_stock_", MarketType.STOCK),
)


def infer_market(path: str | Path) -> MarketType | None:
    """Guess the market a kline file was recorded on from its file-name prefix.

    >>> infer_market("../shared/data/binance_spot_BTCUSDT_5m.csv.gz")
    <MarketType.SPOT: 'spot'>
    >>> infer_market("binance_usdm_BTCUSDT_5m.csv.gz")
    <MarketType.PERPETUAL: 'perpetual'>
    >>> infer_market("BTCUSDT-5m-2025-01.csv") is None
    True

    Returns
    -------
    MarketType or None
        ``binance_spot_...`` is spot, ``binance_usdm_...`` perpetual, ``us_stock_...`` stock;
        None for any other name (the Binance archive's ``BTCUSDT-5m-2025-01.csv``, freqtrade's
        names): the caller decides, and the system's default is perpetual.
    """
    name = Path(path).name
    for prefix, market in _MARKET_PREFIXES:
        if name.startswith(prefix):
            return market
    return None


def _read_table(
    path: str | Path, headerless: tuple[str, ...], required: tuple[str, ...]
) -> tuple[pd.DataFrame, list[Check]]:
    """The file's required and extra columns, and a check flagging rows of the wrong width.

    A row of the wrong width is parsed as empty cells so that row numbers stay right. Values
    are as pandas infers them; a column with a non-numeric cell comes back as strings and is
    flagged by :func:`_numbers`.
    """
    source = str(path)
    lines = _read_text(path, source).splitlines()
    has_header = bool(lines) and not _is_number(lines[0].split(",")[0])
    names = [_RENAMES.get(n.strip(), n.strip()) for n in lines[0].split(",")] if has_header else []
    data = lines[1:] if has_header else lines
    names = names or [_RENAMES.get(n, n) for n in headerless]
    while data and not data[-1].strip():
        data.pop()  # a trailing blank line is not a row
    if not data:
        raise DataError("no data rows", source=source)
    missing = [c for c in required if c not in names]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}; header is {names}", source=source)
    counts = np.fromiter((line.count(",") + 1 for line in data), dtype=np.int64, count=len(data))
    wrong = counts != len(names)
    originals = {int(i): data[i] for i in np.flatnonzero(wrong)[:1]}
    for i in np.flatnonzero(wrong):
        data[i] = "," * (len(names) - 1)
    usecols = [c for c in names if c in required or c in _EXTRAS]
    try:
        frame = pd.read_csv(io.StringIO("\n".join(data)), header=None, names=names, usecols=usecols)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot parse CSV: {exc}", source=source) from exc
    width: Check = (
        wrong,
        lambda i: f"expected {len(names)} columns, found {counts[i]}: {originals[i][:120]!r}",
    )
    return frame, [width]


def _read_text(path: str | Path, source: str) -> str:
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the extension says
            raw = gzip.decompress(raw)
        return raw.decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read file: {exc}", source=source) from exc


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbers(column: pd.Series) -> tuple[np.ndarray, Check]:
    """Column as float64 (NaN where unparsable) and a check flagging non-finite values."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    name = column.name
    return values, (~np.isfinite(values), lambda i: f"{name} is not a number: {column.iloc[i]!r}")


def _times(column: pd.Series) -> tuple[np.ndarray, list[Check]]:
    """Timestamps as float64 ms (µs values divided by 1000) and the checks on them."""
    values, number_check = _numbers(column)
    name = column.name
    ms = np.where(values > _MICROSECONDS_ABOVE, np.floor(values / 1000), values)
    previous = np.concatenate(([-np.inf], ms[:-1]))

    def order_message(i: int) -> str:
        kind = "duplicates" if ms[i] == previous[i] else "is before"
        return f"{name} {int(ms[i])} {kind} the previous row's {int(previous[i])}"

    return ms, [
        number_check,
        (values != np.floor(values), lambda i: f"{name} is not an integer: {column.iloc[i]!r}"),
        (ms <= previous, order_message),
    ]


def _exact_ms(column: pd.Series) -> np.ndarray:
    """A validated time column as exact int64 ms (µs values divided by 1000)."""
    exact = pd.to_numeric(column).to_numpy(np.int64)
    return np.where(exact > _MICROSECONDS_ABOVE, exact // 1000, exact)


def kline_problems(v: dict[str, np.ndarray]) -> list[Check]:
    """The OHLCV sanity checks of klines, shared by the files and the venues' answers:
    ``v`` holds columns of equal length ``(n,)`` by name (``open``, ``high``, ``low``,
    ``close``, and ``volume`` and the archive's extras when present; prices in quote
    currency); returns ``(mask (n,) bool, message(row index))`` pairs, in the order a row's
    problems are reported: prices > 0, high >= low, high >= max(open, close),
    low <= min(open, close), volumes >= 0."""
    o, h, lo, c = v["open"], v["high"], v["low"], v["close"]
    checks: list[Check] = [
        (
            np.minimum(np.minimum(o, h), np.minimum(lo, c)) <= 0,
            lambda i: f"prices must be > 0, were open={o[i]} high={h[i]} low={lo[i]} close={c[i]}",
        ),
        (h < lo, lambda i: f"high {h[i]} < low {lo[i]}"),
        (h < np.maximum(o, c), lambda i: f"high {h[i]} < max(open {o[i]}, close {c[i]})"),
        (lo > np.minimum(o, c), lambda i: f"low {lo[i]} > min(open {o[i]}, close {c[i]})"),
    ]
    for name in ("volume", *_EXTRAS):
        if name in v:
            col = v[name]
            checks.append((col < 0, lambda i, n=name, x=col: f"{n} must be >= 0, was {x[i]}"))
    return checks


def raise_first_bad(checks: list[Check], source: str) -> None:
    """Raise :class:`DataError` (naming ``source`` and the 1-based row) for the earliest row
    any of ``checks`` (:func:`kline_problems`' pairs) flags; the first check wins on a tie.
    Returns when no row is flagged."""
    first: tuple[int, str] | None = None
    for mask, message in checks:
        hits = np.flatnonzero(mask)
        if len(hits) and (first is None or hits[0] < first[0]):
            first = (int(hits[0]), message(int(hits[0])))
    if first is not None:
        raise DataError(first[1], source=source, row=first[0] + 1)
