"""The signed side of ccxt's binanceusdm: our keys, timestamps in the venue's time, Binance's
refusals as typed errors, and the user-data stream's raw events handed on.

:class:`AccountExchange` extends the market-data :class:`~.client.UsdmExchange` with:

- the API key and secret from the settings' ``SecretStr`` (ccxt signs with HMAC-SHA256);
- ``timestamp`` = our clock + the measured offset to the venue's clock, and the settings'
  ``recvWindow``, so a signed request is judged against the venue's time (Binance refuses one
  more than 1 s ahead of it or older than ``recvWindow``: code -1021);
- a 4xx answer carrying Binance's ``{"code", "msg"}`` raised as :class:`VenueRefusal` (a
  transient error for the codes Binance means as "try again": -1001, -1007, -1008; and
  :class:`VenueTimeSkew` for -1021, to measure the clock offset again);
- every ``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE`` and ``ACCOUNT_UPDATE`` handed to a listener
  before ccxt caches it, and the user-data connection's opening reported.

Messages name the request's method and path only: never a key, a signature or a listen key.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.client import UsdmExchange
from adapters.venues.binance_usdm.errors import redact
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.budget import VenueBudget
from domain.errors import ConfigError, PermanentVenueError, TransientVenueError, VenueError
from domain.ports import Clock

UserListener = Callable[[dict[str, Any]], None]
"""Called with each raw user-data event, on ccxt's event loop."""
StreamListener = Callable[[], None]
"""Called when the user-data websocket (re)connects."""

TRANSIENT_CODES = frozenset({-1001, -1007, -1008})
"""Binance codes that mean "try again": internal error, backend timeout (execution status
unknown), server busy."""
UNKNOWN_ORDER = frozenset({-2011, -2013})
"""Binance codes for an order it does not hold (cancel: -2011 "Unknown order sent.", query:
-2013 "Order does not exist.")."""
DUPLICATE_ID = frozenset({-4116, -20132})
"""Binance codes for a client id an open order (or algo order) already has."""
TIMESTAMP_OUTSIDE_WINDOW = -1021

_LISTEN_KEY = re.compile(r"""(listenKey["']?\s*[:=]\s*["']?)[^&\s"',}]+""", re.IGNORECASE)
_API_KEY_HEADER = re.compile(r"""(X-MBX-APIKEY["']?\s*[:=]\s*["']?)[^\s"',}]+""", re.IGNORECASE)


class VenueRefusal(PermanentVenueError):
    """The venue refused a signed request: Binance's error ``venue_code`` (e.g. -2019,
    "Margin is insufficient.") and its ``reason``."""

    code = "venue_refused"

    def __init__(self, message: str, *, venue_code: int, reason: str) -> None:
        super().__init__(message)
        self.venue_code = venue_code
        self.reason = reason


class VenueTimeSkew(VenueRefusal):
    """A signed request's timestamp was outside the venue's receive window (code -1021): the
    venue did not act on it; the clock offset must be measured again before it is repeated
    (a plain retry would fail the same way)."""

    code = "venue_time_skew"


def refusal(status: int, body: str | None, where: str) -> VenueError | None:
    """The venue error of a 4xx answer with Binance's error JSON, None for another answer.

    Parameters
    ----------
    status:
        The HTTP status.
    body:
        The answer (``{"code": -2013, "msg": "Order does not exist."}``).
    where:
        The request, for the message (``"GET /fapi/v1/order"``).
    """
    if not 400 <= status < 500 or status in (418, 429) or not body:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("code"), int):
        return None
    code, reason = int(payload["code"]), str(payload.get("msg", ""))
    message = f"{VENUE} refused {where}: {reason} (code {code})"
    if code == TIMESTAMP_OUTSIDE_WINDOW:
        return VenueTimeSkew(message, venue_code=code, reason=reason)
    if code in TRANSIENT_CODES:
        return TransientVenueError(message)
    return VenueRefusal(message, venue_code=code, reason=reason)


def secret_free(text: str) -> str:
    """``text`` without signature, listen-key or API-key header values (ccxt quotes URLs,
    headers and bodies in its errors and debug logs)."""
    return _API_KEY_HEADER.sub(r"\1***", _LISTEN_KEY.sub(r"\1***", redact(text)))


class _SecretFree(logging.Filter):
    """Rewrites each record without secrets (ccxt logs every request's URL, headers and body
    at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = secret_free(record.getMessage()), ()
        return True


def ccxt_logger() -> logging.Logger:
    """The logger the signed exchange gives ccxt, filtered by :class:`_SecretFree`."""
    logger = logging.getLogger(f"{__name__}.ccxt")
    if not any(isinstance(f, _SecretFree) for f in logger.filters):
        logger.addFilter(_SecretFree())
    return logger


class AccountExchange(UsdmExchange):
    """ccxt.pro's binanceusdm with our keys, for orders, the account and the user-data stream.

    Parameters
    ----------
    settings:
        URLs, timeouts, the keys and the receive window.
    clock:
        Our time (ms UTC); requests are stamped with it plus :attr:`offset_ms`.
    on_user_event:
        Receives every raw ``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE`` and ``ACCOUNT_UPDATE``.
    on_user_stream:
        Called when the user-data websocket opens (at start and after each reconnection).

    Attributes
    ----------
    offset_ms:
        The venue's clock minus ours (ms), set by the caller after measuring it.

    Raises
    ------
    ConfigError
        (``field="api_key"``) When the settings hold no API key or secret.
    """

    def __init__(
        self,
        settings: BinanceUsdmSettings,
        *,
        clock: Clock,
        on_user_event: UserListener,
        on_user_stream: StreamListener,
        budget: VenueBudget | None = None,
    ) -> None:
        if settings.api_key is None or settings.api_secret is None:
            raise ConfigError(
                f"{VENUE} orders need an API key and secret: set "
                "LOOTCAPITAL_VENUES__BINANCE_USDM__API_KEY and ..._API_SECRET (or their _FILE)",
                field="api_key",
            )
        super().__init__(settings, clock=clock, on_kline=_ignore, budget=budget)
        self.logger = ccxt_logger()
        self.apiKey = settings.api_key.get_secret_value()
        self.secret = settings.api_secret.get_secret_value()
        self.options["recvWindow"] = settings.recv_window_ms
        # With keys, ccxt's load_markets would also read the spot wallet's coins (sapi), and
        # its user-data stream would fetch a positions snapshot in a task of its own, whose
        # failure ccxt reports with the signed URL: the adapter reads both over REST itself.
        self.options["fetchCurrencies"] = False
        self.options["watchPositions"] = {
            **self.options.get("watchPositions", {}),
            "fetchPositionsSnapshot": False,
        }
        self.offset_ms = 0
        self._on_user_event = on_user_event
        self._on_user_stream = on_user_stream

    def nonce(self) -> int:
        """The request timestamp: our clock plus the venue's offset (ms)."""
        return self._clock.now_ms() + self.offset_ms

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
        """Binance's refusal as :class:`VenueRefusal` (or transient), the rest as the
        market-data exchange does."""
        error = refusal(int(code), body, f"{method} {urlsplit(url).path}")
        if error is not None:
            raise error
        return super().handle_errors(
            code, reason, url, method, headers, body, response, request_headers, request_body
        )

    def handle_order_update(self, client: Any, message: dict[str, Any]) -> None:
        """Hand an ``ORDER_TRADE_UPDATE`` / ``ALGO_UPDATE`` on, then let ccxt cache it."""
        self._on_user_event(message)
        super().handle_order_update(client, message)

    def handle_acount_update(self, client: Any, message: dict[str, Any]) -> None:
        """Hand an ``ACCOUNT_UPDATE`` on, then let ccxt cache its balances and positions
        (ccxt spells the method so)."""
        self._on_user_event(message)
        super().handle_acount_update(client, message)

    def on_connected(self, client: Any, message: Any = None) -> None:
        """Report the user-data websocket's opening."""
        super().on_connected(client, message)
        if "/private/" in urlsplit(client.url).path:
            self._on_user_stream()


def _ignore(_: dict[str, Any]) -> None:
    """Klines are the market-data adapter's business."""
