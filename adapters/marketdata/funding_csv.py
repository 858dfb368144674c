"""Reading funding-rate and mark-price files into domain objects, validated row by row.

Funding files (plain ``.csv`` or gzip ``.csv.gz``) come in two layouts:

* the normalized files of ``shared/data``: header ``funding_time,funding_rate``, funding_time
  the nominal funding time in ms UTC, funding_rate a fraction per interval as Binance writes
  it (``0.0001``, ``8.514e-05``); a headerless file is read as these two columns;
* the Binance public-data archive (``fundingRate`` monthly files): header
  ``calc_time,funding_interval_hours,last_funding_rate``, where ``calc_time`` is the settlement
  stamp, a few ms after the nominal time, and each row names its own interval.

Mark-price files are kline files without volume: ``open_time,open,high,low,close`` (the
``*_mark_1h`` files of ``shared/data``) or the archive's 12-column ``markPriceKlines`` layout.

Rows are numbered from 1, header excluded; every error names the file and the first bad row,
as :mod:`adapters.marketdata.binance_csv` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from adapters.marketdata.binance_csv import (
    _MICROSECONDS_ABOVE,
    _PRICES,
    ARCHIVE_COLUMNS,
    _exact_ms,
    _numbers,
    _read_table,
    _read_text,
    _times,
    kline_problems,
    raise_first_bad,
)
from domain.candles import Candles
from domain.errors import DataError
from domain.funding import FUNDING_INTERVAL_HOURS, HOUR_MS, FundingRates

MAX_ABS_RATE = Decimal("0.03")
"""Default bound on |funding rate| per interval. The 2025 files of BTC, ETH, SOL, BNB and XRP
stay within 0.0031 (SOLUSDT's -0.00302761 is the largest); Binance caps a symbol's rate at a
fraction of its first-bracket maintenance margin ratio (0.004 to 0.005 for these five), and its
most volatile listings at a few percent. A value beyond 0.03 is almost surely a percentage
written where a fraction belongs (0.01 % written as 0.01), which would overstate funding 100×."""
SETTLEMENT_SLACK_MS = 60_000
"""How far after a grid time a settlement stamp may be and still be that funding: Binance says
the funding fee transaction time may deviate by up to 1 minute (see :mod:`domain.funding`)."""

_TIME_NAMES = ("funding_time", "calc_time")
_RATE_NAMES = ("funding_rate", "last_funding_rate")
_INTERVAL_NAME = "funding_interval_hours"


def read_funding(
    path: str | Path,
    *,
    interval_hours: int = FUNDING_INTERVAL_HOURS,
    max_abs_rate: Decimal = MAX_ABS_RATE,
) -> FundingRates:
    """Read and validate a funding-rate file.

    Parameters
    ----------
    path:
        A ``.csv`` or ``.csv.gz`` file in the normalized or the Binance archive layout (see the
        module docstring).
    interval_hours:
        The funding interval every time must sit on, on the grid anchored at 00:00 UTC (8:
        00:00, 08:00, 16:00). The archive layout's own ``funding_interval_hours`` column, when
        present, takes precedence row by row (Binance moves some symbols to 4 h or 1 h).
    max_abs_rate:
        Largest |rate| accepted, a fraction per interval (see :data:`MAX_ABS_RATE`).

    Returns
    -------
    FundingRates
        n events: times in ms UTC on the grid (a settlement stamp up to
        :data:`SETTLEMENT_SLACK_MS` after a grid time is floored to it), strictly increasing;
        rates as ``Decimal`` parsed from the file's text, exactly (no float round trip), so
        that payments built from them reconcile to the cent.

    Raises
    ------
    DataError
        Naming the file and the first bad 1-based data row: wrong column count, a time that is
        not an integer, a rate that is not a finite number, ``|rate| > max_abs_rate``, an
        interval that does not divide 24, a time off the grid, or a time not after the
        previous one (duplicate or out of order); or a missing column, no data rows, or an
        unreadable file.
    """
    source = str(path)
    names, rows = _funding_rows(path, source)
    time_col = _index(names, _TIME_NAMES, source)
    rate_col = _index(names, _RATE_NAMES, source)
    interval_col = names.index(_INTERVAL_NAME) if _INTERVAL_NAME in names else None
    times: list[int] = []
    rates: list[Decimal] = []
    for row, line in enumerate(rows, start=1):
        cells = line.split(",")
        if len(cells) != len(names):
            message = f"expected {len(names)} columns, found {len(cells)}: {line[:120]!r}"
            raise DataError(message, source=source, row=row)
        try:
            hours = interval_hours if interval_col is None else _interval(cells[interval_col])
            rate = _rate(names[rate_col], cells[rate_col], max_abs_rate)
            time_ms = _on_grid(names[time_col], _time(names[time_col], cells[time_col]), hours)
            if times and time_ms <= times[-1]:
                kind = "duplicates" if time_ms == times[-1] else "is before"
                raise ValueError(f"{names[time_col]} {time_ms} {kind} the previous {times[-1]}")
        except ValueError as exc:
            raise DataError(str(exc), source=source, row=row) from None
        times.append(time_ms)
        rates.append(rate)
    return FundingRates(tuple(times), tuple(rates))


def read_mark_prices(path: str | Path) -> Candles:
    """Read and validate a mark-price kline file.

    :func:`~adapters.marketdata.binance_csv.read_klines` needs a volume column, which mark
    prices do not have; the same parsing and row checks are used here without it.

    Parameters
    ----------
    path:
        A ``.csv`` or ``.csv.gz`` file: header ``open_time,open,high,low,close`` (extra
        columns ignored), or the headerless 12-column Binance archive layout.

    Returns
    -------
    Candles
        n bars, ``open_time`` int64 ms UTC strictly increasing, mark prices float64 in quote
        currency; ``volume`` all 0.0 (a mark price trades nothing) and no ``extra`` columns.

    Raises
    ------
    DataError
        Naming the file and the first bad 1-based data row: wrong column count, a non-numeric
        or non-finite value, an ``open_time`` not after the previous one, a price <= 0,
        ``high < low``, ``high < max(open, close)`` or ``low > min(open, close)``; or a
        missing column, no data rows, or an unreadable file.
    """
    source = str(path)
    frame, checks = _read_table(path, ARCHIVE_COLUMNS, ("open_time", *_PRICES))
    _, time_checks = _times(frame["open_time"])
    values: dict[str, np.ndarray] = {}
    for name in _PRICES:
        values[name], number_check = _numbers(frame[name])
        checks.append(number_check)
    raise_first_bad([*checks, *time_checks, *kline_problems(values)], source)
    n = len(frame)
    return Candles(
        open_time=_exact_ms(frame["open_time"]),
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        volume=np.zeros(n, dtype=np.float64),
    )


def _funding_rows(path: str | Path, source: str) -> tuple[list[str], list[str]]:
    """Column names (header or the normalized default) and the non-blank-tail data lines."""
    lines = _read_text(path, source).splitlines()
    first = lines[0].split(",")[0].strip() if lines else ""
    has_header = bool(first) and not _is_number(first)
    names = [n.strip() for n in lines[0].split(",")] if has_header else list(_TIME_NAMES[:1])
    if not has_header:
        names.append(_RATE_NAMES[0])
    rows = lines[1:] if has_header else lines
    while rows and not rows[-1].strip():
        rows.pop()  # a trailing blank line is not a row
    if not rows:
        raise DataError("no data rows", source=source)
    return names, rows


def _index(names: list[str], wanted: tuple[str, ...], source: str) -> int:
    for name in wanted:
        if name in names:
            return names.index(name)
    raise DataError(f"missing column {' or '.join(wanted)}; header is {names}", source=source)


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def _time(name: str, text: str) -> int:
    """An integer ms timestamp (µs values above 1e14 divided by 1000, floored)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {text!r}") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(f"{name} is not an integer: {text!r}")
    ms = int(value)
    return ms // 1000 if ms > _MICROSECONDS_ABOVE else ms


def _rate(name: str, text: str, bound: Decimal) -> Decimal:
    try:
        rate = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {text!r}") from None
    if not rate.is_finite():
        raise ValueError(f"{name} is not a number: {text!r}")
    if abs(rate) > bound:
        raise ValueError(
            f"{name} {text.strip()} is beyond ±{bound} per interval: a fraction is expected "
            f"(0.0001 = 0.01 %), was a percentage written?"
        )
    return rate


def _interval(text: str) -> int:
    try:
        hours = int(text.strip())
    except ValueError:
        raise ValueError(f"{_INTERVAL_NAME} is not an integer: {text!r}") from None
    if hours <= 0 or 24 % hours:
        raise ValueError(f"{_INTERVAL_NAME} must divide 24, was {hours}")
    return hours


def _on_grid(name: str, time_ms: int, interval_hours: int) -> int:
    """``time_ms`` floored to its funding-grid time; refused when more than the settlement
    slack after it."""
    step = interval_hours * HOUR_MS
    offset = time_ms % step
    if offset > SETTLEMENT_SLACK_MS:
        when = datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        raise ValueError(
            f"{name} {time_ms} ({when} UTC) is not on the {interval_hours} h funding grid "
            f"(every {interval_hours} h from 00:00 UTC, up to {SETTLEMENT_SLACK_MS // 1000} s "
            f"late)"
        )
    return time_ms - offset
