"""Leverage brackets of Binance USDⓈ-M symbols from a saved ``leverageBracket`` response.

The layout is Binance's ``GET /fapi/v1/leverageBracket`` response
(https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Notional-and-Leverage-Brackets):
a list of ``{"symbol": ..., "brackets": [{"bracket", "initialLeverage", "notionalCap",
"notionalFloor", "maintMarginRatio", "cum"}, ...]}``, or one such object (the answer when a symbol
is asked for). Binance sends the numbers as JSON numbers; they are parsed straight to ``Decimal``
(never through float), and numeric strings are accepted too. ``notionalCoef`` (an account's
personal bracket multiplier, already applied to the numbers) and other extra keys are ignored.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from domain.errors import DataError
from domain.margin import LeverageBracket, LeverageBrackets

_DECIMAL_FIELDS = {
    "notional_floor": "notionalFloor",
    "notional_cap": "notionalCap",
    "maint_margin_ratio": "maintMarginRatio",
    "cum": "cum",
}
_INT_FIELDS = {"bracket": "bracket", "initial_leverage": "initialLeverage"}


def read_leverage_brackets(path: str | Path) -> dict[str, LeverageBrackets]:
    """Every symbol's brackets in one ``leverageBracket`` JSON file, keyed by symbol, in file order.

    Parameters
    ----------
    path:
        E.g. ``data/sample/binance_usdm_leverage_brackets_20241024.json``.

    Returns
    -------
    dict[str, LeverageBrackets]
        ``{"BTCUSDT": LeverageBrackets(...), ...}``; notionals and ``cum`` in quote currency
        (USDT), ``maint_margin_ratio`` a fraction.

    Raises
    ------
    DataError
        When the file cannot be read or is not JSON, is not a list of symbol entries (or one
        entry), an entry lacks ``symbol`` or a ``brackets`` list, a symbol is listed twice, a
        bracket lacks a field or has a value of the wrong kind, or the brackets break a rule of
        :class:`LeverageBrackets` (numbering, contiguity, ratio and leverage order, ``cum``).
        The message names the file, the symbol and, where it applies, the bracket and field.
    """
    return parse_leverage_brackets(_read_document(path), str(path))


def parse_leverage_brackets(document: Any, source: str) -> dict[str, LeverageBrackets]:
    """Every symbol's brackets in one decoded ``leverageBracket`` document (a saved file, or
    the venue's answer; numbers as ``int``, ``Decimal`` or numeric strings, never float);
    ``source`` names it in errors. Result and errors as :func:`read_leverage_brackets`."""
    entries = [document] if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise DataError(
            "leverage brackets must be a JSON list of symbol entries, "
            f"was {type(entries).__name__}",
            source=source,
        )
    found: dict[str, LeverageBrackets] = {}
    for number, entry in enumerate(entries, start=1):
        brackets = _symbol_brackets(entry, number, source)
        if brackets.symbol in found:
            raise DataError(f"symbol {brackets.symbol} is listed twice", source=source)
        found[brackets.symbol] = brackets
    return found


def _read_document(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read leverage brackets: {exc}", source=str(path)) from exc


def _symbol_brackets(entry: Any, number: int, source: str) -> LeverageBrackets:
    if not isinstance(entry, dict):
        raise DataError(f"entry {number} is not an object: {entry!r}", source=source)
    symbol = entry.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise DataError(f"entry {number} has no 'symbol' string", source=source)
    rows = entry.get("brackets")
    if not isinstance(rows, list):
        raise DataError(f"symbol {symbol}: no 'brackets' list", source=source)
    try:
        return LeverageBrackets(
            symbol, tuple(_bracket(row, position) for position, row in enumerate(rows, start=1))
        )
    except ValueError as exc:
        # The domain's messages start with the symbol; the reader's name the bracket.
        message = str(exc)
        if not message.startswith(symbol):
            message = f"{symbol} {message}"
        raise DataError(f"symbol {message}", source=source) from exc


def _bracket(row: Any, position: int) -> LeverageBracket:
    if not isinstance(row, dict):
        raise ValueError(f"bracket {position} is not an object: {row!r}")
    where = f"bracket {row.get('bracket', position)}"
    values: dict[str, Any] = {}
    for name, key in _INT_FIELDS.items():
        values[name] = _integer(row, key, where)
    for name, key in _DECIMAL_FIELDS.items():
        values[name] = _decimal(row, key, where)
    return LeverageBracket(**values)


def _integer(row: dict[str, Any], key: str, where: str) -> int:
    if key not in row:
        raise ValueError(f"{where}: {key} is missing")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {key} must be an integer, was {value!r}")
    return value


def _decimal(row: dict[str, Any], key: str, where: str) -> Decimal:
    if key not in row:
        raise ValueError(f"{where}: {key} is missing")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"{where}: {key} must be a number, was {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{where}: {key} is not a decimal: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"{where}: {key} is not a finite decimal: {value!r}")
    return number
