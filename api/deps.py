"""FastAPI dependencies: the service, the event hub and authentication.

Every ``/api/v1`` route requires ``Authorization: Bearer <token>``. The web panel and the
WebSocket also accept the session cookie set at login, whose value is an HMAC of the token (the
token itself never travels in a cookie).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.hub import EventHub
from api.numbers import Numbers, numbers_of
from domain.symbols import venue_symbol
from service_layer.backtest_jobs import BacktestJobs
from service_layer.model_registry import ModelRegistry
from service_layer.trading import TradingService
from service_layer.training_jobs import TrainingJobs

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


async def get_registry(request: Request) -> ModelRegistry:
    """The model registry of this app."""
    return request.app.state.models


async def get_training(request: Request) -> TrainingJobs:
    """The background training of this app."""
    return request.app.state.training


async def get_backtests(request: Request) -> BacktestJobs:
    """The background backtests of this app."""
    return request.app.state.backtests


ServiceDep = Annotated[TradingService, Depends(get_service)]
HubDep = Annotated[EventHub, Depends(get_hub)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
TrainingDep = Annotated[TrainingJobs, Depends(get_training)]
BacktestsDep = Annotated[BacktestJobs, Depends(get_backtests)]

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


def numbers(service: ServiceDep) -> Numbers:
    """How the run's prices, quantities and money are written."""
    return numbers_of(service.engine)


NumbersDep = Annotated[Numbers, Depends(numbers)]


def invalid(where: str, name: str, message: str, value: object) -> RequestValidationError:
    """A 422 for the input ``name`` in ``where`` (``query``, ``path``, ``body``)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, name), "msg": message, "input": value}]
    )


SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9/:._-]*$"
"""Letters, digits and the separators of unified symbols."""


def symbol_query(
    symbol: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=SYMBOL_PATTERN,
            description="BTCUSDT, or ccxt's unified BTC/USDT:USDT",
        ),
    ] = None,
) -> str | None:
    """The ``symbol`` query parameter in the venue's spelling (422 when malformed)."""
    if symbol is None:
        return None
    try:
        return venue_symbol(symbol)
    except ValueError as exc:
        raise invalid("query", "symbol", str(exc), symbol) from None


SymbolQuery = Annotated[str | None, Depends(symbol_query)]
MAX_TIME_MS = 253_402_300_799_999
"""The last millisecond of the year 9999 (UTC): the largest time a query accepts."""
StartQuery = Annotated[
    int | None,
    Query(ge=0, le=MAX_TIME_MS, description="Earliest time, ms UTC, inclusive."),
]
EndQuery = Annotated[
    int | None,
    Query(ge=0, le=MAX_TIME_MS, description="Latest time, ms UTC, inclusive."),
]


def check_range(start: int | None, end: int | None) -> None:
    """422 naming ``end`` when it is before ``start``."""
    if start is not None and end is not None and end < start:
        raise invalid("query", "end", f"end ({end}) is before start ({start})", end)


_ACCEPTED: dict[int, frozenset[str]] = {}


def _accepted_query(route: APIRoute) -> frozenset[str]:
    accepted = _ACCEPTED.get(id(route))
    if accepted is None:
        accepted = frozenset(_query_names(route.dependant))
        _ACCEPTED[id(route)] = accepted
    return accepted


def _query_names(dependant: Dependant) -> Iterator[str]:
    yield from (p.alias for p in dependant.query_params)
    for sub in dependant.dependencies:
        yield from _query_names(sub)


async def reject_unknown_query(request: Request) -> None:
    """422 naming every query parameter the route does not take (a typo such as
    ``?stauts=open`` would otherwise be ignored and return everything)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = _accepted_query(route)
    unknown = [name for name in request.query_params if name not in accepted]
    if unknown:
        shown = ", ".join(sorted(accepted)) or "none"
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"unknown query parameter (this route takes: {shown})",
                    "input": request.query_params[name],
                }
                for name in unknown
            ]
        )
