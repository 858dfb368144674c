"""The ccxt exchange pointed at the configured URLs, and the retrying call around it.

A :class:`UsdmExchange` (``ccxt.pro.binanceusdm``: REST and WebSocket in one object) per caller:
market data, execution. It adds hooks to ccxt: every REST request takes its weight (ccxt's
per-endpoint cost, Binance's request weight), and an order its order counts, from the venue's
shared :class:`~adapters.venues.budget.VenueBudget` when one is given (ccxt's own limiter, one
per object, when not); every REST answer is counted by path and status; a 418, 429 or 5xx
becomes our venue error with the ban's end or the ``Retry-After`` that ccxt drops, and bans or
holds the budget (the orders alone after a 429 about the order count); every kline-stream
event is handed to a listener with its closed flag, which ccxt's ``watch_ohlcv`` does not
return.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
from ccxt.pro import binanceusdm
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from adapters.venues.binance_usdm.budget import TOO_MANY_ORDERS, order_counts
from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.errors import http_error, translate
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.budget import VenueBudget
from adapters.venues.ccxt_decimal import isolate
from domain.errors import RateLimited, TransientVenueError, VenueBanned, VenueError
from domain.ports import Clock

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
"""Waits a number of seconds."""

KlineListener = Callable[[dict[str, Any]], None]
"""Called with each raw kline-stream event (forming or closed), on ccxt's event loop."""

REST_PATHS = {
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
}
"""The ``urls['api']`` entries of ccxt's binanceusdm that address USDⓈ-M REST, and their paths
under ``rest_url``."""


def rest_urls(settings: BinanceUsdmSettings) -> dict[str, str]:
    """ccxt's USDⓈ-M REST base URLs under ``settings.rest_url``."""
    return {key: settings.rest_url + path for key, path in REST_PATHS.items()}


def ws_url(settings: BinanceUsdmSettings) -> str:
    """ccxt's ``urls['api']['ws']['linear']``: ``<ws_url>/ws``, which ccxt routes itself to
    ``/market/ws``, ``/public/ws`` or ``/private/ws`` by stream."""
    return settings.ws_url + "/ws"


class UsdmExchange(binanceusdm):  # type: ignore[misc]
    """ccxt.pro's binanceusdm on the settings' URLs, counting answers and passing klines on.

    Parameters
    ----------
    settings:
        URLs and the request timeout.
    clock:
        Our time (ms UTC), for the end of a ban given as ``Retry-After``.
    on_kline:
        Receives every kline-stream event.
    budget:
        The venue's request-weight budget, shared with its other callers; None: ccxt's own
        limiter (this object's requests only).

    Attributes
    ----------
    responses:
        REST answers by ``(path, HTTP status)``, e.g. ``("/fapi/v1/klines", 429)``.
    """

    def __init__(
        self,
        settings: BinanceUsdmSettings,
        *,
        clock: Clock,
        on_kline: KlineListener,
        budget: VenueBudget | None = None,
    ) -> None:
        super().__init__(
            {"timeout": int(settings.timeout_s * 1000), "enableRateLimit": budget is None}
        )
        self.budget = budget
        isolate(self)  # ccxt's number formatting must not change our Decimal rounding
        self.urls["api"].update(rest_urls(settings))
        self.urls["api"]["ws"]["linear"] = ws_url(settings)
        self._clock = clock
        self._on_kline = on_kline
        self.responses: Counter[tuple[str, int]] = Counter()

    async def fetch2(
        self,
        path: str,
        api: Any = None,
        method: str = "GET",
        params: Any = None,
        config: Any = None,
    ) -> Any:
        """Take the request's weight, and an order's counts (``ORDER_COUNTS``), from the shared
        budget (waiting for room), then send it as ccxt does.

        Raises
        ------
        VenueBanned
            While the venue bans us (a 418 seen by any caller), at once.
        """
        api = ["public"] if api is None else api
        params = {} if params is None else params
        config = {} if config is None else config
        if self.budget is not None:
            cost = self.calculate_rate_limiter_cost(api, method, path, params, config)
            section = api if isinstance(api, str) else api[0]
            counts = order_counts(method, f"{REST_PATHS.get(section, '')}/{path}")
            await self.budget.acquire(max(1, round(float(cost))), counts or ())
        return await super().fetch2(path, api, method, params, config)

    def on_rest_response(
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        response_headers: Any,
        response_body: str,
        request_headers: Any,
        request_body: Any,
    ) -> str:
        """Count the answer by path and status (ccxt's hook for every REST response)."""
        self.responses[(urlsplit(url).path, int(code))] += 1
        return super().on_rest_response(
            code, reason, url, method, response_headers, response_body, request_headers,
            request_body,
        )  # fmt: skip

    def handle_errors(
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        headers: Any,
        body: str,
        response: Any,
        request_headers: Any,
        request_body: Any,
    ) -> Any:
        """A 418, 429 or 5xx as our venue error (with the ban's end or ``Retry-After``);
        anything else as ccxt decides. A 429 with ``Retry-After`` holds the budget until then:
        the orders alone when it answered an order about the order count (code -1015)."""
        now = self._clock.now_ms()
        error = http_error(code, headers, body, now_ms=now, venue=VENUE)
        if error is not None and self.budget is not None:
            if isinstance(error, VenueBanned):
                self.budget.ban(error.until_ms, str(error))
            elif isinstance(error, RateLimited) and error.retry_after_ms is not None:
                order = order_counts(method, urlsplit(url).path) is not None
                orders_only = order and _too_many_orders(body)
                self.budget.hold(now + error.retry_after_ms, str(error), orders_only=orders_only)
        if error is not None:
            raise error
        return super().handle_errors(
            code, reason, url, method, headers, body, response, request_headers, request_body
        )

    def handle_ohlcv(self, client: Any, message: dict[str, Any]) -> None:
        """Hand the event to the listener, then let ccxt cache it as usual."""
        self._on_kline(message)
        super().handle_ohlcv(client, message)


class Retrying:
    """Runs venue calls with ccxt's exceptions translated, retrying the transient ones.

    A transient error is retried up to ``settings.retries`` times after a wait drawn at random
    between 0 and ``backoff_s × 2^attempt`` (capped at ``max_backoff_s``: exponential backoff
    with full jitter), and never sooner than a 429's ``Retry-After``. Permanent errors (a 418
    ban included) are raised at once.

    Parameters
    ----------
    settings:
        Retries and backoff.
    sleep:
        Waits the given seconds between tries (``asyncio.sleep``; tests pass one that records
        the waits and returns at once).

    Attributes
    ----------
    retries:
        Retries made, by error code (``"venue_transient"``, ``"venue_rate_limited"``).
    """

    def __init__(self, settings: BinanceUsdmSettings, *, sleep: Sleep = asyncio.sleep) -> None:
        self._settings = settings
        self._sleep = sleep
        self._jitter = wait_random_exponential(
            multiplier=settings.backoff_s, max=settings.max_backoff_s
        )
        self.retries: Counter[str] = Counter()

    async def __call__(self, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()``, translated and retried.

        Raises
        ------
        TransientVenueError
            The last transient failure, once the retries are spent.
        PermanentVenueError
            At once, on a permanent failure (``VenueBanned`` on a 418).
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientVenueError),
            stop=stop_after_attempt(self._settings.retries + 1),
            wait=self._wait,
            before_sleep=self._count,
            sleep=self._sleep,
            reraise=True,
        )
        return await retrying(translated, call)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after_ms = error.retry_after_ms if isinstance(error, RateLimited) else None
        return max(self._jitter(state), (retry_after_ms or 0) / 1000)

    def _count(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.retries[error.code if isinstance(error, VenueError) else "venue_error"] += 1


async def translated(call: Callable[[], Awaitable[T]]) -> T:
    """``await call()`` with ccxt's exceptions raised as our venue errors."""
    try:
        return await call()
    except VenueError:
        raise
    except ccxt.BaseError as exc:
        raise translate(exc) from exc


def _too_many_orders(body: str | None) -> bool:
    """Whether Binance's error body is about the order count (code -1015)."""
    try:
        answer = json.loads(body or "")
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("code") == TOO_MANY_ORDERS
