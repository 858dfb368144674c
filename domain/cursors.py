"""Opaque page cursors: the key of the last item of a page.

A cursor is ``[listing, time, id]`` as URL-safe base64 of JSON (no padding), e.g.
``WyJvcmRlcnMiLDE3MDAwMDAwMDAwMDAsIm8xIl0``; the next page holds the items older than that key.
Callers treat the string as opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from domain.errors import ConfigError

_MAX_CURSOR_LENGTH = 1_000


def encode_cursor(listing: str, time: int, item_id: str | int) -> str:
    """The opaque cursor after the item with key ``(time, item_id)`` of ``listing``."""
    raw = json.dumps([listing, time, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, listing: str, id_type: type) -> tuple[int, Any]:
    """The ``(time, id)`` key in ``cursor``, checked to belong to ``listing``.

    Raises
    ------
    ConfigError
        (``field="cursor"``) If ``cursor`` was not made by :func:`encode_cursor` for
        ``listing`` with an id of ``id_type``.
    """
    try:
        if not isinstance(cursor, str) or not 0 < len(cursor) <= _MAX_CURSOR_LENGTH:
            raise ValueError("bad length")
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        kind, time, item_id = json.loads(raw)
        if kind != listing or type(time) is not int or type(item_id) is not id_type:
            raise ValueError("wrong listing or key types")
    except (ValueError, TypeError, UnicodeError, binascii.Error) as exc:
        shown = cursor if len(str(cursor)) <= 80 else f"{str(cursor)[:80]}…"
        raise ConfigError(
            f"malformed cursor for {listing}: {shown!r} (pass the next_cursor of a page)",
            field="cursor",
        ) from exc
    return time, item_id
