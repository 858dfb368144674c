"""One mapping from errors to HTTP responses: ``{"error": code, "detail": message, "field"?}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    ConfigError,
    DomainError,
    DuplicateOrder,
    EngineStateError,
    InsufficientMargin,
    InvalidOrder,
    OrderNotCancelable,
    OrderNotFound,
    UnknownSymbol,
)

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    UnknownSymbol: 404,
    OrderNotFound: 404,
    OrderNotCancelable: 409,
    DuplicateOrder: 409,
    InsufficientMargin: 409,
    EngineStateError: 409,
    InvalidOrder: 400,
    ConfigError: 400,
}


def _body(code: str, detail: str, field: str | None = None) -> dict[str, str]:
    body = {"error": code, "detail": detail}
    if field is not None:
        body["field"] = field
    return body


def status_for(exc: DomainError) -> int:
    """HTTP status for a domain error (400 when not listed)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return JSONResponse(_body(exc.code, exc.message, exc.field), status_code=status_for(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or None
    detail = f"{field}: {first['msg']}" if field else str(first["msg"])
    body = _body("validation_error", detail, field)
    body["errors"] = [  # type: ignore[assignment]
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in errors
    ]
    return JSONResponse(body, status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        _body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
