"""Keyset pagination: opaque cursors and the page query over ``(time column, id) desc``.

A cursor is the key of the last item of a page, ``[listing, time, id]`` as URL-safe base64 of
JSON (no padding), e.g. ``WyJvcmRlcnMiLDE3MDAwMDAwMDAwMDAsIm8xIl0``. The next page holds the
items strictly older than that key in ``(time desc, id desc)`` order, so a history is read
exactly once and in order even while new items are added. Callers treat the string as opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.errors import ConfigError
from domain.ports import Page

T = TypeVar("T")

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


def check_limit(limit: int) -> int:
    """``limit`` when it is at least 1.

    Raises
    ------
    ConfigError
        (``field="limit"``) If ``limit < 1``.
    """
    if type(limit) is not int or limit < 1:
        raise ConfigError(f"limit must be an integer >= 1, was {limit!r}", field="limit")
    return limit


def read_page(
    connection: Connection,
    *,
    listing: str,
    table: sa.Table,
    columns: Sequence[str],
    time_column: str,
    where: Sequence[sa.ColumnElement[bool]],
    limit: int,
    cursor: str | None,
    convert: Callable[[Any], T],
) -> Page[T]:
    """One page of ``table``'s rows matching ``where``, newest ``(time_column, id)`` first.

    Reads ``limit + 1`` rows to learn whether an older page exists; ``next_cursor`` is None
    on the last page.

    Raises
    ------
    ConfigError
        For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``field="limit"``).
    """
    check_limit(limit)
    time_col, id_col = table.c[time_column], table.c.id
    id_type = int if isinstance(id_col.type, sa.Integer) else str
    selected = [table.c[name] for name in columns]
    if "id" not in columns:
        selected.append(id_col)
    stmt = sa.select(*selected).where(*where)
    if cursor is not None:
        time, item_id = decode_cursor(cursor, listing, id_type)
        # The first term bounds the index range; the second breaks ties on time by id.
        stmt = stmt.where(time_col <= time, sa.or_(time_col < time, id_col < item_id))
    stmt = stmt.order_by(time_col.desc(), id_col.desc()).limit(limit + 1)
    rows = connection.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]._mapping
        next_cursor = encode_cursor(listing, last[time_col], last[id_col])
    return Page([convert(row) for row in rows], next_cursor)
