"""Whether this account can place futures orders through MEXC's API.

MEXC has disabled futures order placement through the API for long stretches (2022 onwards,
answering ``{"success": false, "code": 1002, "message": "Contract not allow place order!"}``)
and opens it per account. The contract list's public ``apiAllowed`` flag cannot tell: it is
false for every contract of the 2025-08-03 snapshot in ``shared/data``, whitelisted accounts
included. So the probe asks the venue with this account's key, in two signed requests:

1. ``GET /api/v1/private/account/assets``: the key, the signature, the IP whitelist and the
   read permission work;
2. ``POST /api/v1/private/order/create`` (the endpoint ccxt's ``create_order`` uses) with an
   order that cannot trade: a post-only buy of **zero** contracts at one price tick. A venue
   that takes orders refuses its content (quantity, price or parameter error: the order got
   through to the order checks); a venue that does not take orders from this account refuses
   it before (1002, 6001 "trading forbidden", 704 "trade permission required"...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.venues.mexc.capabilities import VENUE
from adapters.venues.mexc.errors import VenueRefused
from domain.errors import PermanentVenueError

if TYPE_CHECKING:
    from adapters.venues.mexc.client import MexcExchange, Retrying
    from adapters.venues.mexc.market_data import Contract

ORDER_CHECKED_CODES = frozenset({600, 2003, 2004, 2005, 2007, 2011, 2015})
"""MEXC's refusals of an order's content: parameter error, price too high or low, balance
insufficient, price error, quantity error, precision error. The probe order reached the order
checks, so this account can place orders."""


@dataclass(frozen=True, slots=True)
class OrderEntry:
    """The probe's answer: whether this account can place ``symbol``'s futures orders through
    the API, with the venue's ``reason`` and MEXC's ``venue_code`` (None when the venue gave
    none), at venue time ``checked_ms`` (ms UTC)."""

    venue: str
    symbol: str
    allowed: bool
    reason: str
    venue_code: int | None
    checked_ms: int


async def probe(
    exchange: MexcExchange, call: Retrying, contract: Contract, *, now_ms: int
) -> OrderEntry:
    """Probe order entry for ``contract`` (see the module's docstring).

    Returns
    -------
    OrderEntry
        Not allowed without an API key, or when the venue refuses the key or the order before
        checking its content (reason: the venue's code and message); allowed when it checks
        the content (or takes the zero-quantity order).

    Raises
    ------
    TransientVenueError
        The venue could not be reached, or failed, after the retries: nothing is known.
    """

    def answer(allowed: bool, reason: str, code: int | None = None) -> OrderEntry:
        return OrderEntry(VENUE, contract.symbol, allowed, reason, code, now_ms)

    if not exchange.apiKey:
        reason = "no API key: set both venues.mexc.api_key and venues.mexc.api_secret"
        return answer(False, reason)
    order: dict[str, Any] = {
        "symbol": contract.id,
        "price": float(contract.price_tick),
        "vol": 0,
        "side": 1,  # open long
        "type": 2,  # post only: never takes liquidity
        "openType": 2,  # cross margin
    }
    try:
        await call(exchange.contract_private_get_account_assets)
    except PermanentVenueError as exc:
        return answer(False, f"the account check was refused: {exc}", _code(exc))
    try:
        await call(lambda: exchange.contract_private_post_order_create(order))
    except PermanentVenueError as exc:
        code = _code(exc)
        if code in ORDER_CHECKED_CODES:
            reason = f"the venue checked a zero-quantity probe order and refused its content: {exc}"
            return answer(True, reason, code)
        return answer(False, f"order entry was refused: {exc}", code)
    return answer(True, "the venue took a zero-quantity post-only probe order")


def _code(exc: PermanentVenueError) -> int | None:
    return exc.venue_code if isinstance(exc, VenueRefused) else None
