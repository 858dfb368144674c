"""FastAPI dependencies: the service, the event hub and authentication.

Every ``/api/v1`` route requires ``Authorization: Bearer <token>``. The web panel and the
WebSocket also accept the session cookie set at login, whose value is an HMAC of the token (the
token itself never travels in a cookie).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.hub import EventHub
from service_layer.trading import TradingService

SESSION_COOKIE = "lootcapital_session"

_bearer = HTTPBearer(auto_error=False)


def session_value(token: str) -> str:
    """The session cookie value for ``token``: HMAC-SHA256(token, "lootcapital-session")."""
    return hmac.new(token.encode(), b"lootcapital-session", hashlib.sha256).hexdigest()


def token_matches(request: Request, candidate: str | None) -> bool:
    """True when ``candidate`` equals the API token (constant-time compare)."""
    token: str = request.app.state.api_token
    return candidate is not None and hmac.compare_digest(candidate.encode(), token.encode())


def cookie_valid(request: Request, cookie: str | None) -> bool:
    """True when ``cookie`` is the session value of the API token."""
    expected = session_value(request.app.state.api_token)
    return cookie is not None and hmac.compare_digest(cookie.encode(), expected.encode())


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the request carries ``Authorization: Bearer <token>`` (a constant-time
    compare on the event loop: no worker-thread hop for every request)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not token_matches(request, credentials.credentials):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_session(request: Request) -> None:
    """401 unless the request carries a valid session cookie (web panel routes)."""
    if not cookie_valid(request, request.cookies.get(SESSION_COOKIE)):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in first")


async def get_service(request: Request) -> TradingService:
    """The trading service of this app."""
    return request.app.state.service


async def get_hub(request: Request) -> EventHub:
    """The event hub of this app."""
    return request.app.state.hub


ServiceDep = Annotated[TradingService, Depends(get_service)]
HubDep = Annotated[EventHub, Depends(get_hub)]

NEXT_CURSOR_HEADER = "X-Next-Cursor"
"""Response header of paginated listings: pass its value as ``?cursor=`` to read the next
(older) page; absent on the last page."""

CursorQuery = Annotated[
    str | None,
    Query(max_length=200, description=f"Opaque cursor from a {NEXT_CURSOR_HEADER} header."),
]


def set_next_cursor(response: Response, cursor: str | None) -> None:
    """Tell the client where the next page starts (nothing on the last page)."""
    if cursor is not None:
        response.headers[NEXT_CURSOR_HEADER] = cursor
