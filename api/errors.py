"""One mapping from errors to HTTP responses: ``{"error": code, "detail": message, "field"?}``
(:class:`api.schemas.ErrorOut`), and the error responses each route declares in OpenAPI."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ErrorOut
from domain.errors import (
    BacktestBusy,
    BacktestNotFound,
    ConfigError,
    DomainError,
    DuplicateOrder,
    EngineStateError,
    InvalidOrder,
    ModelMismatch,
    ModelNotFound,
    NoEarlierModel,
    OrderNotCancelable,
    OrderNotFound,
    OrderRejected,
    TrainingBusy,
    TrainingJobNotFound,
    UnknownSymbol,
)

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    UnknownSymbol: 404,
    OrderNotFound: 404,
    ModelNotFound: 404,
    TrainingJobNotFound: 404,
    BacktestNotFound: 404,
    ModelMismatch: 409,
    NoEarlierModel: 409,
    TrainingBusy: 409,
    BacktestBusy: 409,
    OrderNotCancelable: 409,
    DuplicateOrder: 409,
    OrderRejected: 409,
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


_MEANING = {
    400: "Refused input (an order the instrument's rules refuse, a malformed cursor)",
    401: "Missing or invalid bearer token",
    404: "Unknown symbol, order, model, training job or backtest",
    409: "Conflict with the current state (order final or rejected, duplicate client id, "
    "engine running or at the end of its data, a model that fails its sha256 or library "
    "check, nothing to roll back to, a training job or a backtest already running)",
    422: "Invalid input: `field` names it (`errors` lists every one)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for the error ``codes`` a route can answer, with the error body."""
    return {code: {"model": ErrorOut, "description": _MEANING[code]} for code in codes}


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    body = _body(exc.code, exc.message, exc.field)
    if isinstance(exc, OrderRejected):
        body |= {"order_id": exc.order_id, "reason": exc.reason}
    return JSONResponse(body, status_code=status_for(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(e) for e in exc.errors()] or [("body", "invalid request")]
    field, message = errors[0]
    body = _body("validation_error", f"{field}: {message}", field)
    body["errors"] = [{"field": f, "message": m} for f, m in errors]  # type: ignore[assignment]
    return JSONResponse(body, status_code=422)


def _field_error(error: dict) -> tuple[str, str]:
    """``(field, message)`` of one pydantic error: the dotted input path without its
    ``body``/``query``/``path`` prefix; malformed JSON is the ``body``'s error."""
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        position = error.get("loc", ("body", "?"))[-1]
        reason = error.get("ctx", {}).get("error", message)
        return "body", f"malformed JSON at character {position}: {reason}"
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    loc = [str(p) for p in error.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:] or loc
    return ".".join(loc) or "body", message


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
