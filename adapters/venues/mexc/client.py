"""The ccxt exchange pointed at the configured URLs, and the retrying call around it.

A :class:`MexcExchange` (``ccxt.pro.mexc`` on USDT-M swaps: REST and WebSocket in one
object) per caller: market data, execution. It adds five things to ccxt: only the contract
(swap) markets are loaded; every REST request takes its weight from the venue's shared
:class:`~adapters.venues.budget.VenueBudget` when one is given (ccxt's own limiter, one per
object, when not; see :func:`mexc_budget`); every REST answer is counted by path and status; a
418, 429, 5xx or a refusal in a 200 answer becomes our venue error (with ``Retry-After`` and
MEXC's code), and a 418 bans, a 429 with ``Retry-After`` holds, the budget; every
``push.kline`` message is handed to a listener as it arrives. ccxt's request log (DEBUG
level, with the ``ApiKey`` and ``Signature`` headers) goes through a filter that redacts them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
from ccxt.pro import mexc
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from adapters.venues.budget import VenueBudget
from adapters.venues.ccxt_decimal import isolate
from adapters.venues.mexc.capabilities import CAPABILITIES, VENUE
from adapters.venues.mexc.errors import http_error, redact, refusal, translate
from adapters.venues.mexc.settings import MexcSettings
from domain.errors import RateLimited, TransientVenueError, VenueBanned, VenueError
from domain.ports import Clock

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
"""Waits a number of seconds."""

KlineListener = Callable[[dict[str, Any]], None]
"""Called with each raw ``push.kline`` message, on ccxt's event loop."""

CONTRACT_PATHS = {"public": "/api/v1/contract", "private": "/api/v1/private"}
"""ccxt's ``urls['api']['contract']`` entries and their paths under ``rest_url``."""
WS_PATH = "/edge"
"""The contract websocket's path under ``ws_url`` (ccxt's ``urls['api']['ws']['swap']``)."""
CONTRACT_LIST_COST = 20
"""Rate-limit units of ``GET /api/v1/contract/detail``: 1 s at ccxt's 50 ms a unit, what ccxt
means (cost 100 at a rate lowered to 10 ms around the call). ccxt charges 100 units, 5 s, as its
token bucket's refill rate is fixed when the exchange is made and ignores the lowered rate."""
BUDGET_WINDOW_MS = 2_000
"""The window of MEXC's published futures limit: 20 requests per 2 seconds."""


def mexc_budget(clock: Clock, *, sleep: Sleep = asyncio.sleep) -> VenueBudget:
    """MEXC's request budget, shared by every caller of the venue in the process: at most
    ``requests_per_2s`` (20) requests in any 2 s, all endpoints together.

    MEXC publishes its futures REST limit per endpoint ("20 times / 2 seconds"); one budget
    for all endpoints at that rate keeps every endpoint, and the account's total, under it.
    Every request weighs 1, as MEXC counts them (ccxt's costs, which pace one connection's
    token bucket, are not MEXC's). Time is ``clock``'s (ms UTC); ``sleep`` waits for room
    (tests pass one that moves a simulated clock)."""
    limit = CAPABILITIES.requests_per_2s
    return VenueBudget(VENUE, limit=limit, clock=clock, window_ms=BUDGET_WINDOW_MS, sleep=sleep)


class MexcExchange(mexc):  # type: ignore[misc]
    """ccxt.pro's mexc on the settings' URLs, swap markets only, counting answers and passing
    kline pushes on.

    Parameters
    ----------
    settings:
        URLs, the request timeout and the optional API key.
    clock:
        Our time (ms UTC), for the end of a ban.
    on_kline:
        Receives every ``push.kline`` message.
    budget:
        The venue's request budget (:func:`mexc_budget`), shared with its other callers;
        None: ccxt's own limiter (this object's requests only).

    Attributes
    ----------
    responses:
        REST answers by ``(path, HTTP status)``, e.g. ``("/api/v1/contract/kline/BTC_USDT",
        503)``.
    """

    def __init__(
        self,
        settings: MexcSettings,
        *,
        clock: Clock,
        on_kline: KlineListener,
        budget: VenueBudget | None = None,
    ) -> None:
        config: dict[str, Any] = {
            "timeout": int(settings.timeout_s * 1000),
            "enableRateLimit": budget is None,
            "options": {"defaultType": "swap"},
        }
        if settings.api_key is not None and settings.api_secret is not None:
            config["apiKey"] = settings.api_key.get_secret_value()
            config["secret"] = settings.api_secret.get_secret_value()
        super().__init__(config)
        self.budget = budget
        isolate(self)  # ccxt's number formatting must not change our Decimal rounding
        self.urls["api"]["contract"] = {
            access: settings.rest_url + path for access, path in CONTRACT_PATHS.items()
        }
        self.urls["api"]["ws"]["swap"] = settings.ws_url + WS_PATH
        self._secrets = settings.secrets()
        self.logger = RedactingLog(logging.getLogger(__name__), self._secrets)
        self._clock = clock
        self._on_kline = on_kline
        self.responses: Counter[tuple[str, int]] = Counter()

    async def fetch_markets(self, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The contract markets only (``GET /api/v1/contract/detail``): ccxt's mexc also loads
        every spot market, from another API this adapter does not use."""
        return await self.fetch_swap_markets(params or {})

    async def fetch_currencies(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """No currencies: ccxt's mexc reads them from the spot wallet API (signed, when a key
        is set), which futures market data and order entry do not need."""
        return {}

    def calculate_rate_limiter_cost(
        self,
        api: list[str],
        method: object,
        path: object,
        params: object,
        config: dict[str, Any] | None = None,
    ) -> float:
        """ccxt's cost of a request, the contract list's as :data:`CONTRACT_LIST_COST`."""
        if api == ["contract", "public"] and path == "detail":
            return CONTRACT_LIST_COST
        return float(super().calculate_rate_limiter_cost(api, method, path, params, config or {}))

    async def fetch2(
        self,
        path: str,
        api: Any = None,
        method: str = "GET",
        params: Any = None,
        config: Any = None,
    ) -> Any:
        """Take the request's slot in the shared budget (waiting for room; weight 1: MEXC
        counts requests), then send it as ccxt does.

        Raises
        ------
        VenueBanned
            While the venue bans us (a 418 seen by any caller), at once.
        """
        api = ["public"] if api is None else api
        params = {} if params is None else params
        config = {} if config is None else config
        if self.budget is not None:
            await self.budget.acquire(1)
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
        """A 418, 429, 5xx or a ``{"success": false}`` refusal as our venue error (a 418 bans
        the budget until its end, a 429 with ``Retry-After`` holds it); anything else as ccxt
        decides."""
        now = self._clock.now_ms()
        error = http_error(code, headers, body, now_ms=now, secrets=self._secrets)
        error = error or refusal(response, secrets=self._secrets)
        if error is not None and self.budget is not None:
            if isinstance(error, VenueBanned):
                self.budget.ban(error.until_ms, str(error))
            elif isinstance(error, RateLimited) and error.retry_after_ms is not None:
                self.budget.hold(now + error.retry_after_ms, str(error))
        if error is not None:
            raise error
        return super().handle_errors(
            code, reason, url, method, headers, body, response, request_headers, request_body
        )

    def handle_ohlcv(self, client: Any, message: dict[str, Any]) -> None:
        """Hand the push to the listener, then let ccxt cache it as usual."""
        self._on_kline(message)
        super().handle_ohlcv(client, message)


class RedactingLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """ccxt's logger for one exchange: each message is formatted, then logged without the
    given secrets or any signature (ccxt logs every request's headers at DEBUG level)."""

    def __init__(self, logger: logging.Logger, secrets: Iterable[str]) -> None:
        super().__init__(logger, {})
        self._secrets = tuple(secrets)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, redact(text, self._secrets), **kwargs)


class Retrying:
    """Runs venue calls with ccxt's exceptions translated, retrying the transient ones.

    A transient error is retried up to ``settings.retries`` times after a wait drawn at random
    between 0 and ``backoff_s × 2^attempt`` (capped at ``max_backoff_s``: exponential backoff
    with full jitter), and never sooner than a 429's ``Retry-After``. Permanent errors (a 418
    ban, a refusal) are raised at once.

    Parameters
    ----------
    settings:
        Retries, backoff, and the secrets redacted from messages.
    sleep:
        Waits the given seconds between tries (``asyncio.sleep``; tests pass one that records
        the waits and returns at once).

    Attributes
    ----------
    retries:
        Retries made, by error code (``"venue_transient"``, ``"venue_rate_limited"``).
    """

    def __init__(self, settings: MexcSettings, *, sleep: Sleep = asyncio.sleep) -> None:
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
            At once, on a permanent failure.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientVenueError),
            stop=stop_after_attempt(self._settings.retries + 1),
            wait=self._wait,
            before_sleep=self._count,
            sleep=self._sleep,
            reraise=True,
        )
        return await retrying(translated, call, self._settings.secrets())

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after_ms = error.retry_after_ms if isinstance(error, RateLimited) else None
        return max(self._jitter(state), (retry_after_ms or 0) / 1000)

    def _count(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.retries[error.code if isinstance(error, VenueError) else "venue_error"] += 1


async def translated(call: Callable[[], Awaitable[T]], secrets: Iterable[str] = ()) -> T:
    """``await call()`` with ccxt's exceptions raised as our venue errors."""
    try:
        return await call()
    except VenueError:
        raise
    except ccxt.BaseError as exc:
        raise translate(exc, secrets=secrets) from exc
