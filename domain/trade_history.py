"""Trade history analytics (issue 10): which trades a query selects, and the statistics, the
drawdown curve, the PnL per day, week and month and the PnL calendar of a set of closed trades.

Conventions: money is ``Decimal`` in the quote currency, summed exactly; rates, returns and
drawdowns are fractions; times int ms UTC; days, weeks (starting Monday) and months are UTC and a
trade's PnL counts when it is realized, at its exit time.

* win rate = wins / trades, loss rate = losses / trades (a trade with PnL exactly 0 is neither,
  :mod:`domain.report`);
* total return = the trades' PnL / the start equity;
* the drawdown is that of the *closed-trade equity*: the start equity plus the PnL of the trades
  closed so far, in exit order; drawdown = 1 − equity / its running peak (the start counts as a
  peak), so it follows the selected trades only (a filter by symbol gives that symbol's drawdown);
* a trade's leverage is its entry notional (qty × entry price) / the account equity just before
  its entry; the average leverage is the mean over the trades whose equity is known.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import numpy as np

from domain.attribution import TradeEntry
from domain.errors import ConfigError
from domain.metrics import DAY_MS, max_drawdown
from domain.model import ZERO, ExitReason, Side, Trade
from domain.report import TradeStats, trade_stats


@dataclass(frozen=True, slots=True)
class TradeQuery:
    """Which closed trades: of ``symbol``, opened on ``side`` (buy: long), closed for
    ``exit_reason``, with ``start <= exit_time <= end`` (ms UTC); each filter when given.

    Raises
    ------
    ConfigError
        (``field="end"``) When ``end`` is before ``start``.
    """

    symbol: str | None = None
    side: Side | None = None
    exit_reason: ExitReason | None = None
    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ConfigError(f"end ({self.end}) is before start ({self.start})", field="end")


_EPOCH_WEEKDAY = 3
"""1970-01-01 was a Thursday (Monday = 0)."""


class Period(StrEnum):
    """A bucket of PnL bars."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class TradeSummary:
    """The statistics of a set of trades (rules in the module docstring): ``stats`` (counts,
    PnL, fees, averages), ``start_equity`` (quote currency), ``total_return`` (None when the
    start equity is not positive), ``max_drawdown`` and ``average_leverage`` (None when no
    trade's equity is known)."""

    stats: TradeStats
    start_equity: Decimal
    total_return: float | None
    max_drawdown: float
    average_leverage: float | None

    @property
    def loss_rate(self) -> float:
        """losses / trades (0 with no trade)."""
        return self.stats.losses / self.stats.trades if self.stats.trades else 0.0


@dataclass(frozen=True, slots=True)
class EquityCurve:
    """The closed-trade equity after each trade in exit order: ``time`` (n, exit times ms UTC),
    ``equity`` (n, quote currency) and ``drawdown`` (n, fractions >= 0)."""

    time: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray


@dataclass(frozen=True, slots=True)
class CalendarDay:
    """One day of a month grid: its ``day`` (None for the padding before the 1st and after the
    last day), the PnL of the trades closed that day and how many there were."""

    day: date | None
    pnl: Decimal = ZERO
    trades: int = 0


@dataclass(frozen=True, slots=True)
class PnlCalendar:
    """``year``-``month`` as weeks (Monday first) of seven :class:`CalendarDay` s, with the
    month's PnL, trade count and largest absolute daily PnL (for the colour scale)."""

    year: int
    month: int
    weeks: tuple[tuple[CalendarDay, ...], ...]
    pnl: Decimal
    trades: int
    largest: Decimal


def by_exit(trades: Sequence[Trade]) -> list[Trade]:
    """``trades`` in exit order (``(exit_time, id)``)."""
    return sorted(trades, key=lambda t: (t.exit_time, t.id))


def equity_curve(trades: Sequence[Trade], start_equity: Decimal) -> EquityCurve:
    """The closed-trade equity and drawdown after each of ``trades`` (in exit order).

    >>> t = Trade("a", "X", Side.BUY, Decimal(1), 0, Decimal(1), 5, Decimal(1), Decimal(-10),
    ...           Decimal(0))
    >>> equity_curve([t], Decimal(100)).drawdown.tolist()
    [0.1]
    """
    ordered = by_exit(trades)
    pnl = np.array([float(t.pnl) for t in ordered], dtype=np.float64)
    equity = float(start_equity) + np.cumsum(pnl)
    peaks = np.maximum.accumulate(np.r_[float(start_equity), equity])[1:]
    drawdown = np.divide(peaks - equity, peaks, out=np.zeros(len(equity)), where=peaks > 0).clip(
        min=0.0
    )
    times = np.array([t.exit_time for t in ordered], dtype=np.int64)
    return EquityCurve(times, equity, drawdown)


def leverage_of(entry: TradeEntry) -> float | None:
    """The trade's entry notional / the equity before its entry (None when that equity is
    unknown or not positive)."""
    equity = entry.equity
    if equity is None or equity <= 0:
        return None
    return float(entry.trade.qty * entry.trade.entry_price / equity)


def summarize(entries: Sequence[TradeEntry], start_equity: Decimal) -> TradeSummary:
    """The :class:`TradeSummary` of ``entries`` starting from ``start_equity`` (quote
    currency)."""
    trades = [e.trade for e in entries]
    stats = trade_stats(trades)
    curve = equity_curve(trades, start_equity)
    levels = [x for x in map(leverage_of, entries) if x is not None]
    return TradeSummary(
        stats=stats,
        start_equity=start_equity,
        total_return=float(stats.pnl / start_equity) if start_equity > 0 else None,
        max_drawdown=max_drawdown(np.r_[float(start_equity), curve.equity])
        if start_equity > 0
        else 0.0,
        average_leverage=sum(levels) / len(levels) if levels else None,
    )


def period_start(ms: int, period: Period) -> int:
    """The start (ms UTC) of the UTC day, week (Monday) or month holding ``ms``.

    >>> period_start(1_760_400_000_000, Period.WEEK)  # Tue 2025-10-14 00:00 → Mon the 13th
    1760313600000
    """
    day_ms = ms - ms % DAY_MS
    if period is Period.DAY:
        return day_ms
    if period is Period.WEEK:
        return day_ms - (day_ms // DAY_MS + _EPOCH_WEEKDAY) % 7 * DAY_MS
    moment = datetime.fromtimestamp(day_ms / 1000, UTC)
    return int(moment.replace(day=1).timestamp() * 1000)


def pnl_by_period(trades: Sequence[Trade], period: Period) -> list[tuple[int, Decimal]]:
    """``(period start ms UTC, PnL)`` of each day, week or month in which a trade closed,
    oldest first."""
    days: dict[int, Decimal] = {}
    for t in trades:
        day = t.exit_time - t.exit_time % DAY_MS
        days[day] = days.get(day, ZERO) + t.pnl
    sums: dict[int, Decimal] = {}
    for day, pnl in days.items():
        key = period_start(day, period)
        sums[key] = sums.get(key, ZERO) + pnl
    return sorted(sums.items())


def pnl_calendar(trades: Sequence[Trade], year: int, month: int) -> PnlCalendar:
    """The month grid of ``year``-``month`` with each day's PnL (trades by exit day, UTC).

    Raises
    ------
    ConfigError
        (``field="month"``) For a month outside 1..12 or a year outside 1..9999.
    """
    if not (1 <= month <= 12 and 1 <= year <= 9999):
        raise ConfigError(f"no such month: {year}-{month:02d}", field="month")
    first = date(year, month, 1)
    days = calendar.monthrange(year, month)[1]
    pnl = [ZERO] * days
    count = [0] * days
    for t in trades:
        closed = datetime.fromtimestamp(t.exit_time / 1000, UTC).date()
        if (closed.year, closed.month) == (year, month):
            pnl[closed.day - 1] += t.pnl
            count[closed.day - 1] += 1
    cells = [CalendarDay(None)] * first.weekday()
    cells += [CalendarDay(first + timedelta(days=i), pnl[i], count[i]) for i in range(days)]
    cells += [CalendarDay(None)] * (-len(cells) % 7)
    weeks = tuple(tuple(cells[i : i + 7]) for i in range(0, len(cells), 7))
    return PnlCalendar(
        year, month, weeks, sum(pnl, ZERO), sum(count), max((abs(p) for p in pnl), default=ZERO)
    )
