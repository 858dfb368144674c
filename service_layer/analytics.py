"""Trade history and analytics use cases (issue 10): the run's closed trades filtered and paged,
every one of them for an export, their performance attribution and their statistics.

Each function takes the unit-of-work factory of the run it reads (``TradingService.uow_factory``
for the server's run), so the same reads serve any stored run. The math is in
:mod:`domain.attribution` and :mod:`domain.trade_history`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from domain.attribution import ENTRY_CONTEXT, AttributionGroup, Dimension, attribute
from domain.model import Trade
from domain.ports import Page, UnitOfWork
from domain.trade_history import (
    EquityCurve,
    Period,
    TradeQuery,
    TradeSummary,
    equity_curve,
    pnl_by_period,
    summarize,
)

UowFactory = Callable[[], UnitOfWork]
EXPORT_CHUNK = 1_000
"""Trades read per statement while exporting."""


@dataclass(frozen=True, slots=True)
class TradeWindow:
    """Page ``page`` (1-based) of ``pages`` of the trades of a query, ``per_page`` a page,
    newest first; ``total`` trades match."""

    trades: list[Trade]
    page: int
    pages: int
    per_page: int
    total: int


@dataclass(frozen=True, slots=True)
class TradeAnalytics:
    """The statistics of the trades of a query: ``summary``, the closed-trade ``curve`` and the
    PnL per ``period`` (:class:`~domain.trade_history.Period` → ``[(start ms UTC, PnL)]``);
    ``trades`` in exit order."""

    summary: TradeSummary
    curve: EquityCurve
    periods: dict[Period, list[tuple[int, Decimal]]]
    trades: list[Trade]


def attribution(
    uow_factory: UowFactory, by: Dimension, query: TradeQuery
) -> list[AttributionGroup]:
    """The trades matching ``query`` grouped by ``by`` with their statistics
    (:func:`domain.attribution.attribute`)."""
    with uow_factory() as uow:
        tags, reasons = ENTRY_CONTEXT.get(by, (False, False))
        entries = uow.trade_history.entries(query, tags=tags, reasons=reasons)
    return attribute(entries, by)


def trade_window(
    uow_factory: UowFactory, query: TradeQuery, *, page: int = 1, per_page: int = 50
) -> TradeWindow:
    """Page ``page`` (1-based; past the last one: the last) of the trades matching ``query``,
    ``per_page`` a page, newest first."""
    with uow_factory() as uow:
        total = uow.trade_history.count(query)
        pages = max(1, -(-total // per_page))
        page = min(max(1, page), pages)
        trades = uow.trade_history.window(query, offset=(page - 1) * per_page, limit=per_page)
    return TradeWindow(trades, page, pages, per_page, total)


def trade_page(
    uow_factory: UowFactory, query: TradeQuery, *, limit: int = 100, cursor: str | None = None
) -> Page[Trade]:
    """One keyset page of the trades matching ``query``, newest first."""
    with uow_factory() as uow:
        return uow.trade_history.page(query, limit=limit, cursor=cursor)


def every_trade(uow_factory: UowFactory, query: TradeQuery) -> Iterator[Trade]:
    """Every trade matching ``query``, newest first, read :data:`EXPORT_CHUNK` at a time
    (keyset pages: a trade closed meanwhile is not read twice)."""
    cursor: str | None = None
    while True:
        page = trade_page(uow_factory, query, limit=EXPORT_CHUNK, cursor=cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def trade_analytics(
    uow_factory: UowFactory, query: TradeQuery, start_equity: Decimal
) -> TradeAnalytics:
    """The statistics, the closed-trade equity and drawdown and the daily, weekly and monthly
    PnL of the trades matching ``query``, from ``start_equity`` (quote currency)."""
    with uow_factory() as uow:
        entries = uow.trade_history.entries(query, equity=True)
    trades = [e.trade for e in entries]
    return TradeAnalytics(
        summary=summarize(entries, start_equity),
        curve=equity_curve(trades, start_equity),
        periods={p: pnl_by_period(trades, p) for p in Period},
        trades=trades,
    )
