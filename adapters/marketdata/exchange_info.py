"""Symbol trading rules from saved Binance ``exchangeInfo`` responses, spot and USDⓈ-M futures.

Two layouts are read, told apart by their content (:func:`detect_market`):

* USDⓈ-M futures (``/fapi/v1/exchangeInfo``): symbols carry ``contractType``; only
  ``PERPETUAL`` contracts are kept (market :attr:`MarketType.PERPETUAL`), the minimum notional
  is ``MIN_NOTIONAL.notional``;
* spot (``/api/v3/exchangeInfo``): symbols carry ``isSpotTradingAllowed``/``permissions``
  (market :attr:`MarketType.SPOT`), the minimum notional is ``NOTIONAL.minNotional`` (newer
  snapshots) or ``MIN_NOTIONAL.minNotional`` (older ones).

Symbols whose ``status`` is not ``TRADING`` (delisted, settling, halted) are skipped. Binance sends
every number as a string; they are parsed with ``Decimal``, never float.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from domain.errors import DataError
from domain.instruments import InstrumentCatalog
from domain.model import Instrument, MarketType

VENUE = "binance"
_DEFAULT_QUOTE_PRECISION = 8


def load_catalog(paths: Iterable[str | Path]) -> InstrumentCatalog:
    """The instruments of every file of ``paths``, spot and futures alike, in one catalog.

    Parameters
    ----------
    paths:
        ``exchangeInfo`` JSON files (e.g. ``binance_usdm_exchange_info_20251030.json`` and
        ``binance_spot_exchange_info_20230813.json``). Where two files hold the same market's
        symbol, the later file wins.

    Returns
    -------
    InstrumentCatalog
        Keyed by ``("binance", market, symbol)``.

    Raises
    ------
    DataError
        As :func:`read_exchange_info`, naming the file.
    """
    return InstrumentCatalog().merge(*(read_exchange_info(path) for path in paths))


def read_exchange_info(path: str | Path) -> InstrumentCatalog:
    """The trading symbols of one ``exchangeInfo`` JSON file (spot or USDⓈ-M futures).

    Each :class:`Instrument` has venue ``"binance"`` and the file's market; ``tick_size`` from
    ``PRICE_FILTER.tickSize`` (quote currency); ``step_size`` and ``max_qty`` (the limit-order
    cap) from ``LOT_SIZE.stepSize``/``maxQty`` (base asset); ``market_max_qty`` from
    ``MARKET_LOT_SIZE.maxQty`` (base asset; None when absent or 0); ``min_notional`` (quote
    currency, 0 when absent) as the module docstring says; ``quote_asset`` from ``quoteAsset``;
    ``quote_precision`` from ``quoteAssetPrecision``, else ``quotePrecision``, else 8.

    Raises
    ------
    DataError
        When the file cannot be read, is not JSON with a ``symbols`` list, is neither layout,
        lists a symbol twice, or a trading symbol lacks ``PRICE_FILTER``/``LOT_SIZE`` or has a
        value that is not a positive decimal; the message names the file, symbol, filter and
        value.
    """
    return parse_exchange_info(_read_document(path), str(path))


def parse_exchange_info(document: dict[str, Any], source: str) -> InstrumentCatalog:
    """The trading symbols of one ``exchangeInfo`` document (already decoded JSON: a saved
    file, or a venue's answer); ``source`` names it in errors. Fields, skipped symbols and
    errors as :func:`read_exchange_info`."""
    if not isinstance(document, dict) or not isinstance(document.get("symbols"), list):
        raise DataError("exchange info has no 'symbols' list", source=source)
    market = detect_market(document, source)
    instruments = [
        _instrument(entry, market, source)
        for entry in document["symbols"]
        if _is_traded(entry, market)
    ]
    try:
        return InstrumentCatalog(instruments)
    except ValueError as exc:
        raise DataError(str(exc), source=source) from exc


def load_instruments(path: str | Path) -> dict[str, Instrument]:
    """The trading symbols of one ``exchangeInfo`` file keyed by symbol (``"BTCUSDT"``), in file
    order: the single-market view of :func:`read_exchange_info`, which it equals in every
    other respect (fields, skipped symbols, errors)."""
    return {instrument.symbol: instrument for instrument in read_exchange_info(path)}


def detect_market(document: dict[str, Any], source: str = "exchange info") -> MarketType:
    """Which market an ``exchangeInfo`` document describes, from its content.

    Futures symbols carry ``contractType`` (and the document ``futuresType``); spot symbols carry
    ``isSpotTradingAllowed`` or ``permissions``/``permissionSets`` without ``contractType``.

    Raises
    ------
    DataError
        When the document has symbols of both layouts, or of neither.
    """
    symbols = [s for s in document.get("symbols", []) if isinstance(s, dict)]
    futures = any("contractType" in s for s in symbols) or "futuresType" in document
    spot = any(
        "contractType" not in s
        and ("isSpotTradingAllowed" in s or "permissions" in s or "permissionSets" in s)
        for s in symbols
    )
    if futures and spot:
        raise DataError("exchange info mixes spot and futures symbols", source=source)
    if futures:
        return MarketType.PERPETUAL
    if spot:
        return MarketType.SPOT
    if not symbols:
        raise DataError(
            "exchange info lists no symbols: cannot tell spot from futures", source=source
        )
    raise DataError(
        "exchange info is neither Binance spot (isSpotTradingAllowed/permissions) nor "
        "USDⓈ-M futures (contractType)",
        source=source,
    )


def _read_document(path: str | Path) -> dict[str, Any]:
    source = str(path)
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read exchange info: {exc}", source=source) from exc
    return document


def _is_traded(entry: dict[str, Any], market: MarketType) -> bool:
    """True for a symbol that trades now on ``market`` (futures: perpetual contracts only)."""
    if entry.get("status", "TRADING") != "TRADING":
        return False
    if market is MarketType.PERPETUAL:
        return entry.get("contractType") == "PERPETUAL"
    return bool(entry.get("isSpotTradingAllowed", True))


def _instrument(entry: dict[str, Any], market: MarketType, source: str) -> Instrument:
    symbol = str(entry.get("symbol", ""))
    filters = {f.get("filterType"): f for f in entry.get("filters", []) if isinstance(f, dict)}
    try:
        return Instrument(
            symbol=symbol,
            tick_size=_decimal(filters, "PRICE_FILTER", "tickSize"),
            step_size=_decimal(filters, "LOT_SIZE", "stepSize"),
            min_notional=_min_notional(filters, market),
            max_qty=_decimal(filters, "LOT_SIZE", "maxQty"),
            market_max_qty=_optional_cap(filters, "MARKET_LOT_SIZE", "maxQty"),
            venue=VENUE,
            market=market,
            quote_asset=str(entry.get("quoteAsset") or "USDT"),
            quote_precision=int(
                entry.get(
                    "quoteAssetPrecision", entry.get("quotePrecision", _DEFAULT_QUOTE_PRECISION)
                )
            ),
        )
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise DataError(f"symbol {symbol or '?'}: {exc}", source=source) from exc


def _min_notional(filters: dict[str, dict[str, Any]], market: MarketType) -> Decimal:
    """Futures: ``MIN_NOTIONAL.notional``; spot: ``NOTIONAL.minNotional`` or, in snapshots from
    before 2023, ``MIN_NOTIONAL.minNotional``. 0 when the symbol has neither."""
    if market is MarketType.PERPETUAL:
        found = [("MIN_NOTIONAL", "notional")]
    else:
        found = [("NOTIONAL", "minNotional"), ("MIN_NOTIONAL", "minNotional")]
    for kind, key in found:
        if key in filters.get(kind, {}):
            value = _number(filters, kind, key)
            if value < 0:
                raise ValueError(f"{kind}.{key} must be >= 0, was {filters[kind][key]!r}")
            return value
    return Decimal(0)


def _optional_cap(filters: dict[str, dict[str, Any]], kind: str, key: str) -> Decimal | None:
    """A quantity cap that may be absent; Binance writes ``"0"`` for "no separate cap"."""
    if key not in filters.get(kind, {}):
        return None
    value = _number(filters, kind, key)
    if value < 0:
        raise ValueError(f"{kind}.{key} must be >= 0, was {filters[kind][key]!r}")
    return value or None


def _decimal(filters: dict[str, dict[str, Any]], kind: str, key: str) -> Decimal:
    value = filters.get(kind, {}).get(key)
    if value is None:
        raise ValueError(f"{kind}.{key} is missing")
    number = _number(filters, kind, key)
    if number <= 0:
        raise ValueError(f"{kind}.{key} must be > 0, was {value!r}")
    return number


def _number(filters: dict[str, dict[str, Any]], kind: str, key: str) -> Decimal:
    value = filters[kind][key]
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{kind}.{key} is not a decimal: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"{kind}.{key} is not a finite decimal: {value!r}")
    return number
