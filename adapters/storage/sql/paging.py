"""Keyset pagination: opaque cursors and the page query over ``(time column, id) desc``.

A cursor is the key of the last item of a page (:mod:`domain.cursors`). The next page holds the
items strictly older than that key in ``(time desc, id desc)`` order, so a history is read
exactly once and in order even while new items are added. Callers treat the string as opaque.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.cursors import decode_cursor, encode_cursor
from domain.errors import ConfigError
from domain.ports import Page

T = TypeVar("T")


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
    start: int | None = None,
    end: int | None = None,
    id_column: str = "id",
) -> Page[T]:
    """One page of ``table``'s rows matching ``where`` with ``start <= time_column <= end``
    (ms UTC, each bound optional), newest ``(time_column, id_column)`` first.

    Reads ``limit + 1`` rows to learn whether an older page exists; ``next_cursor`` is None
    on the last page.

    Raises
    ------
    ConfigError
        For a malformed ``cursor`` (``field="cursor"``) or ``limit < 1`` (``field="limit"``).
    """
    check_limit(limit)
    time_col, id_col = table.c[time_column], table.c[id_column]
    id_type = int if isinstance(id_col.type, sa.Integer) else str
    selected = [table.c[name] for name in columns]
    if id_column not in columns:
        selected.append(id_col)
    stmt = sa.select(*selected).where(*where)
    if start is not None:
        stmt = stmt.where(time_col >= start)
    if end is not None:
        stmt = stmt.where(time_col <= end)
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
