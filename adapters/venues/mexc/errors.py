"""ccxt's exceptions and MEXC's refusals as our venue errors, at the package's edge.

MEXC's contract API answers most refusals with HTTP 200 and ``{"success": false, "code": N,
"message": ...}``; ccxt raises a generic exception class for most codes (and a permanent one for
code 500, MEXC's "internal error"). Here:

- transient (a retry with backoff can help): timeouts, lost connections, HTTP 5xx, MEXC codes
  500 (internal error), 501 (system busy) and 9999 (public abnormal), a malformed response;
  rate limits (HTTP 429, code 510 "requests too frequent") as :class:`~domain.errors.RateLimited`
  with the venue's ``Retry-After``;
- permanent: every other refusal, as :class:`VenueRefused` carrying MEXC's code and message
  (1002 "contract not allow place order", 401 unauthorized, 602 signature verification
  failed...), and every other ccxt exchange error; HTTP 418 (an IP ban) as
  :class:`~domain.errors.VenueBanned` with the ban's end.

Messages never hold the API key, the secret or a request signature.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import ccxt

from adapters.venues.mexc.capabilities import VENUE
from domain.errors import (
    PermanentVenueError,
    RateLimited,
    TransientVenueError,
    VenueBanned,
    VenueError,
)

MIN_BAN_MS = 120_000
"""MEXC's shortest IP ban ("from 2 minutes to 3 days"): the ban's end when a 418 gives no
``Retry-After``."""
TRANSIENT_CODES = frozenset({500, 501, 9999})
"""MEXC codes a retry can fix: internal error, system busy, public abnormal."""
RATE_LIMIT_CODES = frozenset({510})
"""MEXC codes of a rate limit: requests too frequent."""

_SIGNATURE = re.compile(r"(signature[\"']?\s*[=:]\s*[\"']?)[0-9a-zA-Z]+", re.IGNORECASE)
_BODY_SHOWN = 300  # characters of a response body quoted in a message


class VenueRefused(PermanentVenueError):
    """MEXC refused the request with ``venue_code`` and ``venue_message`` (its
    ``{"success": false, "code": ..., "message": ...}``), which a retry will not change."""

    def __init__(self, message: str, *, venue_code: int, venue_message: str) -> None:
        super().__init__(message)
        self.venue_code = venue_code
        self.venue_message = venue_message


def http_error(
    status: int,
    headers: Mapping[str, str] | None,
    body: str | None,
    *,
    now_ms: int,
    secrets: Iterable[str] = (),
) -> VenueError | None:
    """The venue error of an HTTP answer that ccxt cannot classify well (it raises the same
    ``DDoSProtection`` for a 429 and a 418, and drops ``Retry-After``), or None for the others.

    Parameters
    ----------
    status:
        The HTTP status.
    headers:
        The response headers (``Retry-After`` is read, in seconds).
    body:
        The response body, quoted (redacted, shortened) in the message.
    now_ms:
        The current time (ms UTC), for a ban's end.
    secrets:
        Values to redact from the message.

    Returns
    -------
    VenueError or None
        :class:`VenueBanned` for 418 (until ``now_ms`` + ``Retry-After``, else +
        :data:`MIN_BAN_MS`), :class:`RateLimited` for 429, :class:`TransientVenueError` for
        5xx; None otherwise.
    """
    text = redact((body or "")[:_BODY_SHOWN], secrets)
    retry_after_ms = _retry_after_ms(headers)
    if status == 418:
        until = now_ms + (retry_after_ms or MIN_BAN_MS)
        message = f"{VENUE} banned this client until {until} (HTTP 418): {text}"
        return VenueBanned(message, until_ms=until)
    if status == 429:
        wait = "" if retry_after_ms is None else f", retry after {retry_after_ms} ms"
        return RateLimited(
            f"{VENUE} rate limit hit (HTTP 429{wait}): {text}", retry_after_ms=retry_after_ms
        )
    if status >= 500:
        return TransientVenueError(f"{VENUE} server error (HTTP {status}): {text}")
    return None


def refusal(response: Any, *, secrets: Iterable[str] = ()) -> VenueError | None:
    """The venue error of a contract-API answer ``{"success": false, "code": N, ...}`` (parsed
    JSON), or None when it is not a refusal.

    Returns
    -------
    VenueError or None
        :class:`RateLimited` for :data:`RATE_LIMIT_CODES`, :class:`TransientVenueError` for
        :data:`TRANSIENT_CODES`, :class:`VenueRefused` (with the code and message) otherwise.
    """
    if not isinstance(response, Mapping) or response.get("success") is not False:
        return None
    try:
        code = int(response.get("code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    venue_message = redact(str(response.get("message") or response.get("msg") or ""), secrets)
    text = f"{VENUE} refused (code {code}): {venue_message}"
    if code in RATE_LIMIT_CODES:
        return RateLimited(text)
    if code in TRANSIENT_CODES:
        return TransientVenueError(text)
    return VenueRefused(text, venue_code=code, venue_message=venue_message)


def translate(exc: ccxt.BaseError, *, secrets: Iterable[str] = ()) -> VenueError:
    """ccxt's exception as our transient or permanent venue error (message redacted).

    ``OperationFailed`` (network errors, timeouts, unavailability, rate limits, bad
    responses) is transient, rate limits as :class:`RateLimited`; every other ccxt error
    (``ExchangeError``: bad symbol, authentication, rejected order, not supported) is
    permanent. (MEXC's refusals in a 200 answer never reach here: the exchange raises them
    through :func:`refusal` first.)
    """
    message = redact(str(exc), secrets) or type(exc).__name__
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return RateLimited(message)
    if isinstance(exc, ccxt.OperationFailed):
        return TransientVenueError(message)
    return PermanentVenueError(message)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without ``secrets`` (the API key and secret) and without the value of any
    ``signature`` parameter or header."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SIGNATURE.sub(r"\1***", text)


def _retry_after_ms(headers: Mapping[str, str] | None) -> int | None:
    """``Retry-After`` (whole seconds) in ms; None when absent or a date."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after" and value.strip().isdigit():
            return int(value.strip()) * 1000
    return None
