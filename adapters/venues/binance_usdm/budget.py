"""Binance USDⓈ-M's request budget: the weight, request and order-count windows of
:class:`~adapters.venues.budget.VenueBudget` from the settings, and which REST endpoints are
orders.

Binance publishes its limits in ``GET /fapi/v1/exchangeInfo`` ``rateLimits``:
``REQUEST_WEIGHT`` 2,400 a minute per IP, ``ORDERS`` 300 per 10 s and 1,200 a minute per
account. New orders count (``POST /fapi/v1/order``, ``POST /fapi/v1/algoOrder``), amendments
too (``PUT /fapi/v1/order``); a batch (``POST``/``PUT /fapi/v1/batchOrders``) counts 5 in the
10 s window and 1 in the minute, as the API documentation gives its order-rate weight; cancels
and queries count no orders. A 429 about the order count carries code -1015.
"""

from __future__ import annotations

import asyncio

from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.budget import OrderLimit, Sleep, VenueBudget
from domain.ports import Clock

ORDER_COUNTS: dict[tuple[str, str], tuple[int, int]] = {
    ("POST", "/fapi/v1/order"): (1, 1),
    ("PUT", "/fapi/v1/order"): (1, 1),
    ("POST", "/fapi/v1/algoOrder"): (1, 1),
    ("POST", "/fapi/v1/batchOrders"): (5, 1),
    ("PUT", "/fapi/v1/batchOrders"): (5, 1),
}
"""The orders a request counts by ``(HTTP method, path)``: in the 10 s window, in the minute
(the order of :func:`binance_budget`'s order limits). Other requests count none."""
TOO_MANY_ORDERS = -1015
"""Binance's error code of a 429 about the order count ("Too many new orders")."""


def binance_budget(
    settings: BinanceUsdmSettings, clock: Clock, *, sleep: Sleep = asyncio.sleep
) -> VenueBudget:
    """The venue's budget, shared by every caller in the process: ``weight_limit`` weight and
    ``request_limit`` requests a minute, ``order_limit_10s`` orders in any 10 s and
    ``order_limit_1m`` in any minute. Time is ``clock``'s (ms UTC); ``sleep`` waits for room
    (tests pass one that moves a simulated clock)."""
    return VenueBudget(
        VENUE,
        limit=settings.weight_limit,
        clock=clock,
        request_limit=settings.request_limit,
        order_limits=(
            OrderLimit(settings.order_limit_10s, 10_000),
            OrderLimit(settings.order_limit_1m, 60_000),
        ),
        sleep=sleep,
    )


def order_counts(method: str, path: str) -> tuple[int, int] | None:
    """The orders a request to URL ``path`` (ending in ``/fapi/v1/...``; a proxy may put a
    prefix before it) counts in the 10 s and the minute windows, or None when it is no order."""
    for (counted_method, counted_path), counts in ORDER_COUNTS.items():
        if method.upper() == counted_method and path.endswith(counted_path):
            return counts
    return None
