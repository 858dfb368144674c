"""Symbol trading rules from a saved Binance ``exchangeInfo`` response.

Reads the USDⓈ-M futures layout (``/fapi/v1/exchangeInfo``: ``MIN_NOTIONAL.notional``) and the
spot layout (``/api/v3/exchangeInfo``: ``MIN_NOTIONAL.minNotional`` or ``NOTIONAL.minNotional``).
Binance sends every number as a string; they are parsed with ``Decimal``, never float.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from domain.errors import DataError
from domain.model import Instrument


def load_instruments(path: str | Path) -> dict[str, Instrument]:
    """Every symbol of an ``exchangeInfo`` JSON file as an :class:`Instrument`.

    ``tick_size`` comes from ``PRICE_FILTER.tickSize`` (quote currency), ``step_size`` and
    ``max_qty`` from ``LOT_SIZE.stepSize`` / ``maxQty`` (base asset), ``min_notional`` from
    ``MIN_NOTIONAL.notional`` (futures) or ``minNotional`` (spot; quote currency, 0 when absent).

    Parameters
    ----------
    path:
        The JSON file, e.g. ``binance_usdm_exchange_info_20251030.json``.

    Returns
    -------
    dict of str to Instrument
        Keyed by symbol (``"BTCUSDT"``), in file order.

    Raises
    ------
    DataError
        When the file cannot be read or is not JSON with a ``symbols`` list, or a symbol lacks
        ``PRICE_FILTER``/``LOT_SIZE`` or has a value that is not a positive decimal; the
        message names the symbol, filter and value.
    """
    source = str(path)
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read exchange info: {exc}", source=source) from exc
    if not isinstance(document, dict) or not isinstance(document.get("symbols"), list):
        raise DataError("exchange info has no 'symbols' list", source=source)
    instruments: dict[str, Instrument] = {}
    for entry in document["symbols"]:
        instrument = _instrument(entry, source)
        instruments[instrument.symbol] = instrument
    return instruments


def _instrument(entry: dict[str, Any], source: str) -> Instrument:
    symbol = str(entry.get("symbol", ""))
    filters = {f.get("filterType"): f for f in entry.get("filters", [])}
    notional = filters.get("MIN_NOTIONAL") or filters.get("NOTIONAL") or {}
    min_notional = notional.get("notional", notional.get("minNotional", "0"))
    try:
        return Instrument(
            symbol=symbol,
            tick_size=_decimal(filters, "PRICE_FILTER", "tickSize"),
            step_size=_decimal(filters, "LOT_SIZE", "stepSize"),
            min_notional=Decimal(str(min_notional)),
            max_qty=_decimal(filters, "LOT_SIZE", "maxQty"),
        )
    except (ValueError, InvalidOperation) as exc:
        raise DataError(f"symbol {symbol or '?'}: {exc}", source=source) from exc


def _decimal(filters: dict[str, dict[str, Any]], kind: str, key: str) -> Decimal:
    value = filters.get(kind, {}).get(key)
    if value is None:
        raise ValueError(f"{kind}.{key} is missing")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{kind}.{key} is not a decimal: {value!r}") from exc
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{kind}.{key} must be > 0, was {value!r}")
    return number
