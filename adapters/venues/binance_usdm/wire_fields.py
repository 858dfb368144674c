"""Reading fields of Binance USDⓈ-M's JSON, each a ``DataError`` naming the source and the
field when missing or malformed."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.errors import DataError

Json = Mapping[str, Any]
"""One JSON object of the venue."""


def event_object(message: Json, source: str) -> Json:
    """A user-data event's order object (``"o"``)."""
    o = message.get("o")
    if not isinstance(o, Mapping):
        raise DataError(f"event lacks its order object: {dict(message)!r:.200}", source=source)
    return o


def rows(payload: Any, source: str) -> list[Json]:
    """``payload`` as a list of JSON objects."""
    if not isinstance(payload, list) or not all(isinstance(r, Mapping) for r in payload):
        raise DataError(f"expected a list of objects, got {payload!r:.200}", source=source)
    return payload


def field_text(payload: Json, key: str, source: str) -> str:
    """The non-empty field ``key`` as text."""
    value = payload.get(key)
    if value is None or value == "":
        raise DataError(f"field {key!r} is missing: {dict(payload)!r:.200}", source=source)
    return str(value)


def field_decimal(
    payload: Json, key: str, source: str, *, default: Decimal | None = None
) -> Decimal:
    value = payload.get(key)
    if value is None or value == "":
        if default is not None:
            return default
        raise DataError(f"field {key!r} is missing: {dict(payload)!r:.200}", source=source)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise DataError(f"field {key!r} is not a number: {value!r}", source=source) from None
    if not number.is_finite():
        raise DataError(f"field {key!r} is not a finite number: {value!r}", source=source)
    return number
