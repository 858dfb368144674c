"""The positions Binance USDⓈ-M reports on the user-data stream (``ACCOUNT_UPDATE``).

Binance pushes an ``ACCOUNT_UPDATE`` whenever a position or balance of the account changes:
after each of our fills, and on a change we did not make (a trade placed by hand, a
liquidation, an auto-deleveraging). Its ``a.P`` list holds each changed position: symbol
(``s``), position amount (``pa``, base asset, signed: short < 0), entry price (``ep``, quote
currency) and position side (``ps``: ``BOTH`` in one-way mode, ``LONG`` / ``SHORT`` in hedge
mode, summed here into one net position); ``a.m`` says why (``ORDER``, ``FUNDING_FEE``,
``ADJUSTMENT``…). :class:`AccountStream` keeps the latest reported net position per symbol;
the reconciliation compares them with the ledger's (see
:meth:`service_layer.reconciliation.Reconciler.due`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from adapters.venues.binance_usdm.wire_fields import (
    Json,
    field_decimal,
    field_text,
    rows,
)
from domain.errors import DataError
from domain.model import ZERO

_SOURCE = "binance-usdm ACCOUNT_UPDATE"


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """One symbol's net position as an ``ACCOUNT_UPDATE`` reported it: ``qty`` (base asset,
    long > 0), ``entry_price`` (quote currency; that of the largest side in hedge mode),
    ``time`` (the event's time, ms UTC) and ``reason`` (``a.m``, e.g. ``ORDER``)."""

    symbol: str
    qty: Decimal
    entry_price: Decimal
    time: int
    reason: str


def account_positions(message: Json) -> list[StreamPosition]:
    """The net positions of an ``ACCOUNT_UPDATE`` (one per symbol in ``a.P``, in the order
    they first appear; none when it only moved balances).

    Raises
    ------
    DataError
        A missing or malformed field.
    """
    data = message.get("a")
    if not isinstance(data, Mapping):
        raise DataError(f"event lacks its account object: {dict(message)!r:.200}", source=_SOURCE)
    time = int(field_decimal(message, "E", _SOURCE))
    reason = str(data.get("m") or "")
    qtys: dict[str, Decimal] = {}
    entries: dict[str, tuple[Decimal, Decimal]] = {}
    for row in rows(data.get("P", []), _SOURCE):
        symbol = field_text(row, "s", _SOURCE)
        qty = field_decimal(row, "pa", _SOURCE)
        entry = field_decimal(row, "ep", _SOURCE, default=ZERO)
        qtys[symbol] = qtys.get(symbol, ZERO) + qty
        if symbol not in entries or abs(qty) > abs(entries[symbol][0]):
            entries[symbol] = (qty, entry)
    return [
        StreamPosition(symbol, qty, entries[symbol][1] if qty != 0 else ZERO, time, reason)
        for symbol, qty in qtys.items()
    ]


class AccountStream:
    """The latest position per symbol the user-data stream reported (written on the execution
    client's loop; :attr:`latest` is replaced whole, so it can be read from any thread)."""

    def __init__(self) -> None:
        self._latest: dict[str, StreamPosition] = {}

    @property
    def latest(self) -> Mapping[str, StreamPosition]:
        """The latest reported position of each symbol reported since start (read-only)."""
        return MappingProxyType(self._latest)

    def on_update(self, message: Json) -> None:
        """Keep the positions of an ``ACCOUNT_UPDATE`` (an older event than the one kept for a
        symbol is ignored: the stream may reorder).

        Raises
        ------
        DataError
            A malformed event (nothing is kept).
        """
        latest = dict(self._latest)
        for position in account_positions(message):
            kept = latest.get(position.symbol)
            if kept is None or position.time >= kept.time:
                latest[position.symbol] = position
        self._latest = latest
