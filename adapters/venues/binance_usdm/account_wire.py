"""Binance USDⓈ-M's account JSON (positions, balance, leverage and margin mode per symbol)
as domain values; the JSON never leaves this package."""

from __future__ import annotations

from typing import Any

from adapters.venues.binance_usdm.wire_fields import Json, field_decimal, field_text, rows
from domain.errors import DataError
from domain.margin import MarginMode
from domain.model import ZERO, Position
from domain.ports import Balance

MARGIN_TYPES = {MarginMode.ISOLATED: "ISOLATED", MarginMode.CROSS: "CROSSED"}
"""Our margin modes and ``POST /fapi/v1/marginType``'s ``marginType``."""


def positions(payload: Any) -> list[Position]:
    """The non-flat positions of ``GET /fapi/v3/positionRisk`` (one-way mode).

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "binance-usdm positionRisk"
    held = []
    for row in rows(payload, source):
        qty = field_decimal(row, "positionAmt", source)
        if qty != 0:
            entry = field_decimal(row, "entryPrice", source)
            held.append(Position(field_text(row, "symbol", source), qty, entry))
    return held


def balance(payload: Json, asset: str) -> Balance:
    """``asset``'s wallet and margin balance (wallet + unrealized PnL) in ``GET
    /fapi/v3/account``; zero when the account holds none.

    Raises
    ------
    DataError
        A field missing or not a number.
    """
    source = "binance-usdm account"
    for row in rows(payload.get("assets"), source):
        if row.get("asset") == asset:
            return Balance(
                asset,
                field_decimal(row, "walletBalance", source),
                field_decimal(row, "marginBalance", source),
            )
    return Balance(asset, ZERO, ZERO)


def symbol_configs(payload: Any) -> dict[str, tuple[int, MarginMode]]:
    """``{symbol: (leverage, margin mode)}`` from ``GET /fapi/v1/symbolConfig``.

    Raises
    ------
    DataError
        A field missing, or a margin type that is neither ``ISOLATED`` nor ``CROSSED``.
    """
    source = "binance-usdm symbolConfig"
    modes = {venue: ours for ours, venue in MARGIN_TYPES.items()}
    configs = {}
    for row in rows(payload, source):
        kind = field_text(row, "marginType", source)
        if kind not in modes:
            raise DataError(f"unknown marginType {kind!r}", source=source)
        configs[field_text(row, "symbol", source)] = (
            int(field_decimal(row, "leverage", source)),
            modes[kind],
        )
    return configs
