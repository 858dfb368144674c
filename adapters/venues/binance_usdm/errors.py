"""ccxt's exceptions and the venue's HTTP failures as our venue errors, at the package's edge.

Transient (a retry with backoff can help): timeouts, lost connections, 5xx, 429 (as
:class:`~domain.errors.RateLimited`, with the venue's ``Retry-After``), a malformed response.
Permanent: everything else ccxt calls an exchange error (bad symbol, auth, rejected order), and
418 (as :class:`~domain.errors.VenueBanned`, with the ban's end). Messages never hold a request
signature.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import ccxt

from domain.errors import (
    PermanentVenueError,
    RateLimited,
    TransientVenueError,
    VenueBanned,
    VenueError,
)

MIN_BAN_MS = 120_000
"""Binance's shortest IP ban ("from 2 minutes to 3 days"): the ban's end when a 418 says
neither when it ends nor a ``Retry-After``."""

_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
_SIGNATURE = re.compile(r"(signature=)[^&\s\"']+", re.IGNORECASE)
_BODY_SHOWN = 300  # characters of a response body quoted in a message


def http_error(
    status: int, headers: Mapping[str, str] | None, body: str | None, *, now_ms: int, venue: str
) -> VenueError | None:
    """The venue error of an HTTP answer that ccxt cannot classify well (it raises the same
    ``DDoSProtection`` for a 429 and a 418), or None for the others (ccxt's own handling).

    Parameters
    ----------
    status:
        The HTTP status.
    headers:
        The response headers (``Retry-After`` is read, in seconds).
    body:
        The response body (Binance: ``{"code": -1003, "msg": "... banned until <ms> ..."}``).
    now_ms:
        The current time (ms UTC), for a ban's end given as ``Retry-After``.
    venue:
        The venue's name, for the message.

    Returns
    -------
    VenueError or None
        :class:`VenueBanned` for 418 (until the body's "banned until" time, else ``now_ms`` +
        ``Retry-After``, else + :data:`MIN_BAN_MS`), :class:`RateLimited` for 429,
        :class:`TransientVenueError` for 5xx; None otherwise.
    """
    text = redact((body or "")[:_BODY_SHOWN])
    retry_after_ms = _retry_after_ms(headers)
    if status == 418:
        match = _BANNED_UNTIL.search(body or "")
        until = int(match.group(1)) if match else now_ms + (retry_after_ms or MIN_BAN_MS)
        message = f"{venue} banned this client until {until} (HTTP 418): {text}"
        return VenueBanned(message, until_ms=until)
    if status == 429:
        wait = "" if retry_after_ms is None else f", retry after {retry_after_ms} ms"
        return RateLimited(
            f"{venue} rate limit hit (HTTP 429{wait}): {text}", retry_after_ms=retry_after_ms
        )
    if status >= 500:
        return TransientVenueError(f"{venue} server error (HTTP {status}): {text}")
    return None


def translate(exc: ccxt.BaseError) -> VenueError:
    """ccxt's exception as our transient or permanent venue error (message redacted).

    ``OperationFailed`` (network errors, timeouts, unavailability, rate limits, bad
    responses) is transient, rate limits as :class:`RateLimited`; every other ccxt error
    (``ExchangeError``: bad symbol, authentication, rejected order, not supported) is permanent.
    """
    message = redact(str(exc)) or type(exc).__name__
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return RateLimited(message)
    if isinstance(exc, ccxt.OperationFailed):
        return TransientVenueError(message)
    return PermanentVenueError(message)


def redact(text: str) -> str:
    """``text`` without the value of any ``signature=`` parameter (ccxt quotes signed URLs)."""
    return _SIGNATURE.sub(r"\1***", text)


def _retry_after_ms(headers: Mapping[str, str] | None) -> int | None:
    """``Retry-After`` (whole seconds, as Binance sends it) in ms; None when absent or a date."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after" and value.strip().isdigit():
            return int(value.strip()) * 1000
    return None
