"""The trade history page's views (issue 10, "Trade history and analytics" and "Performance
attribution"): the filters, a numbered page of trades, the statistics, the PnL calendar, the
attribution table, the charts' series and the CSV export, all read through
:mod:`service_layer.analytics` from the run's trades, as ``GET /api/v1/analytics/attribution``
reads them.

The filters are the form's strings: ``symbol``, ``side`` (``long``/``short``), ``exit_reason``
and a range of exit dates ``start``..``end`` (``YYYY-MM-DD``, UTC, both days included); empty
means any. Money stays ``Decimal`` up to the template and the CSV; the charts get floats.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.attribution import Dimension
from domain.errors import ConfigError
from domain.metrics import DAY_MS
from domain.model import ExitReason, Side, Trade
from domain.symbols import venue_symbol
from domain.trade_history import Period, PnlCalendar, TradeQuery, pnl_calendar
from service_layer.analytics import attribution, every_trade, trade_analytics, trade_window
from service_layer.trading import TradingService

PER_PAGE = 50
"""Trades a page of the table shows."""
SIDES = {"long": Side.BUY, "short": Side.SELL}
EXIT_REASONS = tuple(r.value for r in ExitReason)
DIMENSIONS = tuple(d.value for d in Dimension)
CSV_COLUMNS = (
    "id", "symbol", "side", "qty", "entry_time", "entry_time_utc", "entry_price", "exit_time",
    "exit_time_utc", "exit_price", "pnl", "fees", "currency", "exit_reason",
)  # fmt: skip
"""The export's columns: times in ms UTC and as ISO 8601 UTC, amounts as stored (exact)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Filters:
    """The form's filter values as given (empty: any) and the query they make."""

    symbol: str = ""
    side: str = ""
    exit_reason: str = ""
    start: str = ""
    end: str = ""

    def query(self) -> TradeQuery:
        """The :class:`~domain.trade_history.TradeQuery` of these values.

        Raises
        ------
        ConfigError
            Naming the field (``symbol``, ``side``, ``exit_reason``, ``start``, ``end``) that
            is no symbol, side, exit reason or ``YYYY-MM-DD`` date, or an ``end`` before
            ``start``.
        """
        return TradeQuery(
            symbol=_symbol(self.symbol),
            side=_choice(self.side, SIDES, "side"),
            exit_reason=_choice(self.exit_reason, {r: ExitReason(r) for r in EXIT_REASONS},
                                "exit_reason"),
            start=_day_ms(self.start, "start"),
            end=None if not self.end.strip() else _day_ms(self.end, "end") + DAY_MS - 1,
        )  # fmt: skip

    def params(self) -> dict[str, str]:
        """The non-empty values, as query parameters."""
        fields = ("symbol", "side", "exit_reason", "start", "end")
        return {f: getattr(self, f) for f in fields if getattr(self, f)}


def _symbol(text: str) -> str | None:
    if not text.strip():
        return None
    try:
        return venue_symbol(text.strip())
    except ValueError as exc:
        raise ConfigError(str(exc), field="symbol") from None


def _choice(text: str, options: dict[str, Any], field: str) -> Any:
    if not text:
        return None
    if text not in options:
        shown = ", ".join(options)
        raise ConfigError(f"{field} must be one of {shown}, was {text!r}", field=field)
    return options[text]


def _day_ms(text: str, field: str) -> int | None:
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{field} must be a date YYYY-MM-DD, was {text!r}", field=field) from None
    return (day - date(1970, 1, 1)).days * DAY_MS


def page_context(service: TradingService, filters: Filters) -> dict[str, Any]:
    """The page's frame: the filter form's values and choices, and the error of a bad one."""
    error = None
    try:
        filters.query()
    except ConfigError as exc:
        error = exc.message
    return {
        "filters": filters,
        "symbols": service.status().symbols,
        "exit_reasons": EXIT_REASONS,
        "dimensions": DIMENSIONS,
        "filter_error": error,
    }


def table_context(service: TradingService, query: TradeQuery, page: int) -> dict[str, Any]:
    """Page ``page`` of the trades matching ``query``, newest first, with the pager."""
    window = trade_window(service.uow_factory, query, page=page, per_page=PER_PAGE)
    first = window.page - 2 if window.page > 2 else 1
    return {
        "window": window,
        "shown": range(first, min(window.pages, first + 4) + 1),
        "offset": (window.page - 1) * window.per_page,
    }


def stats_context(service: TradingService, query: TradeQuery, month: str) -> dict[str, Any]:
    """The statistics of the trades matching ``query`` (from the run's initial cash), their PnL
    calendar of ``month`` (``YYYY-MM``; empty: the month of the latest trade, or of the market
    clock without one) and the charts' series: ``{"curve": {"time": [exit ms], "drawdown":
    [fractions]}, "pnl": {"day"|"week"|"month": [[start ms, PnL], ...]}}``, oldest first.

    Raises
    ------
    ConfigError
        (``field="month"``) When ``month`` is not ``YYYY-MM`` or no month.
    """
    found = trade_analytics(service.uow_factory, query, service.run.initial_cash)
    year, number = _month(month, found.trades, service.status().clock_time)
    grid = pnl_calendar(found.trades, year, number)
    curve = found.curve
    charts = {
        "curve": {"time": curve.time.tolist(), "drawdown": curve.drawdown.tolist()},
        "pnl": {p.value: [[t, float(x)] for t, x in found.periods[p]] for p in Period},
    }
    return {
        "summary": found.summary,
        "charts": charts,
        "calendar": grid,
        "levels": _levels(grid),
        "previous": _shift(year, number, -1),
        "next": _shift(year, number, 1),
        "title": date(year, number, 1).strftime("%B %Y"),
    }


def _month(text: str, trades: list[Trade], clock_ms: int) -> tuple[int, int]:
    if text.strip():
        try:
            year, number = (int(x) for x in text.strip().split("-"))
        except ValueError:
            raise ConfigError(f"month must be YYYY-MM, was {text!r}", field="month") from None
        return year, number
    moment = _EPOCH + timedelta(milliseconds=trades[-1].exit_time if trades else clock_ms)
    return moment.year, moment.month


def _shift(year: int, month: int, by: int) -> str:
    index = year * 12 + month - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _levels(grid: PnlCalendar) -> dict[date, str]:
    """Each traded day's colour class: ``pos-1``..``pos-4`` or ``neg-1``..``neg-4`` by its
    share of the month's largest absolute daily PnL, ``flat`` at exactly 0."""
    out: dict[date, str] = {}
    for week in grid.weeks:
        for cell in week:
            if cell.day is None or not cell.trades:
                continue
            if cell.pnl == 0 or grid.largest == 0:
                out[cell.day] = "flat"
                continue
            level = max(1, math.ceil(float(abs(cell.pnl) / grid.largest) * 4))
            out[cell.day] = f"{'pos' if cell.pnl > 0 else 'neg'}-{level}"
    return out


def attribution_context(service: TradingService, query: TradeQuery, by: str) -> dict[str, Any]:
    """The attribution of the trades matching ``query`` by ``by``, with the chart's data.

    Raises
    ------
    ConfigError
        (``field="by"``) When ``by`` is no :class:`~domain.attribution.Dimension`.
    """
    dimension = _choice(by, {d: Dimension(d) for d in DIMENSIONS}, "by")
    groups = attribution(service.uow_factory, dimension, query)
    chart = {"keys": [g.key for g in groups], "pnl": [float(g.stats.pnl) for g in groups]}
    return {"by": dimension.value, "groups": groups, "chart": chart, "dimensions": DIMENSIONS}


def iso_utc(ms: int) -> str:
    """``ms`` (ms UTC) as ISO 8601 with milliseconds: ``2025-10-10T21:20:00.000Z``."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(x: Decimal) -> str:
    return format(x, "f")


def csv_lines(service: TradingService, query: TradeQuery) -> Iterator[str]:
    """The CSV export of every trade matching ``query``, newest first: a header line of
    :data:`CSV_COLUMNS`, then one line per trade (amounts exact, as stored), in chunks."""
    instruments = service.engine.instruments
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i, t in enumerate(every_trade(service.uow_factory, query)):
        rules = instruments.get(t.symbol)
        writer.writerow([
            t.id, t.symbol, t.direction.value, _plain(t.qty), t.entry_time, iso_utc(t.entry_time),
            _plain(t.entry_price), t.exit_time, iso_utc(t.exit_time), _plain(t.exit_price),
            _plain(t.pnl), _plain(t.fees), rules.quote_asset if rules else "",
            t.exit_reason.value,
        ])  # fmt: skip
        if i % 500 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
