"""Stored backtests (issue 10, "Backtests from the panel"): what a backtest job was asked and
what it found, kept in storage so that they outlive the server; and the port that keeps them.

A record's ``request`` is the job's request as JSON (decimal strings, times in ms UTC); once
``done``, ``metrics`` is the ``metrics`` object of the CLI's ``--json`` document and ``result``
the rest of that document (``header``, ``trades``, ``equity``, ``breakdown``, ``rejections``,
``units``, ``models``) with ``closes``: each symbol's ``[[open_time, close], ...]`` (the price
chart of the trades). A ``failed`` record says why in ``error``.

A ``done`` record also keeps its ``view``: what the panel shows of the result (the metrics
aside), built once when the job ends by the ``summarize`` the composition root gives the jobs
(:func:`web.backtest_views.stored_view`: the first trades and the thinned chart data), so that
showing a result reads a small document rather than the whole ``result``. Records stored
before revision 0009 have none; the panel then builds it from ``result``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from domain.ports import Page

BacktestStatus = Literal["running", "done", "failed"]
STATUSES: tuple[BacktestStatus, ...] = ("running", "done", "failed")


@dataclass(frozen=True, slots=True)
class BacktestRecord:
    """One backtest: ``id``, ``status``, what ran (``strategy`` on ``symbols`` at
    ``timeframe``, the whole ``request``), when it was asked (``created_ms``) and ended
    (``finished_ms``, ms UTC wall clock), and its ``metrics`` and ``result`` once done or its
    ``error`` once failed, and its ``view`` (see the module docstring). A listing's records
    leave ``result`` and ``view`` None (the result can be megabytes); records read for showing
    leave ``result`` None when they have a ``view``.

    Raises
    ------
    ValueError
        An empty id or strategy, an unknown status, a finished one without ``finished_ms``,
        or a failed one without ``error``.
    """

    id: str
    status: BacktestStatus
    strategy: str
    symbols: tuple[str, ...]
    timeframe: str
    request: Mapping[str, Any]
    created_ms: int
    finished_ms: int | None = None
    error: str | None = None
    metrics: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None
    view: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.id or not self.strategy:
            raise ValueError(f"a backtest needs an id and a strategy, was {self.id!r}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, was {self.status!r}")
        if self.status != "running" and self.finished_ms is None:
            raise ValueError(f"a {self.status} backtest needs finished_ms")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed backtest needs its error")


class BacktestStore(Protocol):
    """Where backtests are kept (SQL in the server); each call is its own transaction."""

    def add(self, record: BacktestRecord) -> None:
        """Store ``record``, replacing the stored one of the same id."""
        ...

    def get(self, backtest_id: str, *, result: bool = True) -> BacktestRecord | None:
        """The record of ``backtest_id`` with its view, and its result unless ``result`` is
        False; None when none is stored."""
        ...

    def get_many(self, ids: Sequence[str], *, result: bool = True) -> list[BacktestRecord]:
        """The records of ``ids`` with their views, and their results unless ``result`` is
        False, in the order of ``ids``; an id without a record is left out."""
        ...

    def trades(self, backtest_id: str) -> list[dict[str, Any]] | None:
        """The ``trades`` of the result of ``backtest_id`` (the ``--json`` document's), read
        without the rest of the result (its equity and closes: megabytes); None when no record
        is stored, empty while it has no result."""
        ...

    def page(self, *, limit: int, cursor: str | None = None) -> Page[BacktestRecord]:
        """The latest ``limit`` records, newest ``created_ms`` first, without their results
        and views; ``cursor`` (a page's ``next_cursor``) reads the next older page.

        Raises
        ------
        ConfigError
            A malformed cursor (field ``cursor``) or ``limit < 1`` (field ``limit``).
        """
        ...

    def fail_running(self, error: str, finished_ms: int) -> int:
        """Mark every record still ``running`` failed with ``error`` at ``finished_ms`` (the
        jobs of a server that stopped without ending them); how many there were."""
        ...


def json_safe(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, numbers, strings) with every non-finite float
    (NaN, ±infinity, which JSON cannot hold) replaced by None and tuples made lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
