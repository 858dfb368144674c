"""Funding rates and 1 h mark prices from Binance USDⓈ-M for paper trading on the live feed.

A backtest reads each perpetual's funding rates and mark-price bars from files
(:mod:`adapters.marketdata.funding_csv`) and hands them to the simulated venue's
:class:`~domain.futures.FuturesBook`, which settles funding at each funding time (qty × mark ×
rate, the mark the open of the mark bar at that time) and judges liquidation on the marks.
:class:`VenueFunding` hands the book the same values from the venue instead: the funding-rate
history (``GET /fapi/v1/fundingRate``) and the 1 h mark-price klines (``GET
/fapi/v1/markPriceKlines``), parsed here into :class:`~domain.funding.FundingRates` and
:class:`~domain.candles.Candles`, so that paper on the live feed books the payments a backtest of
the same bars with the venue's files books.

When. :class:`FundedFeed` wraps the live feed: before a batch of bars closing at ``close`` is
handed to the engine, every hour boundary up to ``close`` not yet seen makes one refresh of
each symbol (the rates since the last one known, the mark bars since the last closed one), so
the rate and the mark of a funding time are in the book before the engine settles it (at the
decision on the bar that closes at it). The first refresh reaches :data:`LOOKBACK_MS` before
the first batch (a resumed run settles what fell due while it was down). The requests take
their weight from the venue's shared budget.

Conventions. A funding time is floored to the minute, as in the files (the venue stamps a
settlement a few ms late). A mark bar still forming at ``close`` keeps only its open (the mark
at its hour's start, what a funding at that hour settles with); its high and low are unknown
yet, stored as +inf and -inf, so a traded bar of that hour is judged on its own extremes, as
without mark bars, until the hour's bar closes and replaces it. A funding time on the
symbol's grid (the spacing of its last two rates, 8 h by default) that the venue has not
published yet is asked for again, ``retries`` times ``backoff_s`` apart; then a warning says
it will not be paid.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import numpy as np

from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.client import Retrying, UsdmExchange
from adapters.venues.binance_usdm.live_feed import LiveFeed
from adapters.venues.binance_usdm.parsing import ohlcv_candles
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.budget import VenueBudget
from domain.candles import Candles
from domain.errors import DataError, VenueError
from domain.events import FeedStale
from domain.funding import (
    FUNDING_INTERVAL_HOURS,
    HOUR_MS,
    FundingEvent,
    FundingRates,
    funding_schedule_times,
)
from domain.futures import FuturesBook
from domain.ports import Clock
from domain.venues import VenueStatus

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOOKBACK_MS = 86_400_000
"""How far before the first batch the first refresh reaches (ms): a day of rates and marks."""
RATES_PER_PAGE = 1000  # the venue's maximum ``limit`` of /fapi/v1/fundingRate
MARKS_PER_PAGE = 1500  # and of /fapi/v1/markPriceKlines
_MINUTE_MS = 60_000


def funding_events(rows: Sequence[Mapping[str, Any]], *, source: str) -> list[FundingEvent]:
    """``GET /fapi/v1/fundingRate`` rows as funding events, oldest first.

    Parameters
    ----------
    rows:
        ``{"symbol", "fundingRate": "0.00010000", "fundingTime": 1746432000004, ...}`` in time
        order (the venue's answer).
    source:
        What the rows are, for error messages.

    Returns
    -------
    list of FundingEvent
        Times in ms UTC floored to the minute; rates the venue's text as exact ``Decimal``.

    Raises
    ------
    DataError
        Naming ``source`` and the 1-based row: a missing field, a time that is not an integer,
        a rate that is not a finite number, or a time not after the previous row's.
    """
    events: list[FundingEvent] = []
    for row, entry in enumerate(rows, start=1):
        try:
            stamp, text = entry["fundingTime"], str(entry["fundingRate"])
            rate = Decimal(text)
        except (KeyError, TypeError, InvalidOperation) as exc:
            message = f"bad funding row {entry!r:.200}: {exc!r}"
            raise DataError(message, source=source, row=row) from None
        if not isinstance(stamp, int) or not rate.is_finite():
            message = f"fundingTime {stamp!r} or fundingRate {text!r} is not a number"
            raise DataError(message, source=source, row=row)
        time_ms = stamp - stamp % _MINUTE_MS
        if events and time_ms <= events[-1].time_ms:
            message = f"fundingTime {time_ms} is not after the previous {events[-1].time_ms}"
            raise DataError(message, source=source, row=row)
        events.append(FundingEvent(time_ms, rate))
    return events


def mark_bars(rows: Sequence[Sequence[Any]], *, source: str, closed_by: int) -> Candles:
    """``GET /fapi/v1/markPriceKlines`` rows (1 h) as mark-price bars, volume 0.

    A bar not closed by ``closed_by`` (ms UTC: its open + 1 h is later) keeps its open only:
    close = open, high = +inf and low = -inf (unknown yet; module docstring).

    Raises
    ------
    DataError
        As :func:`~adapters.venues.binance_usdm.parsing.ohlcv_candles` (naming ``source`` and
        the row): a bar that is not numbers, out of order, or with inconsistent prices.
    """
    table = [[r[0], r[1], r[2], r[3], r[4], 0] for r in rows]
    bars = ohlcv_candles(table, source=source).candles
    forming = bars.open_time + HOUR_MS > closed_by
    if not forming.any():
        return bars
    return replace(
        bars,
        high=np.where(forming, np.inf, bars.high),
        low=np.where(forming, -np.inf, bars.low),
        close=np.where(forming, bars.open, bars.close),
    )


class VenueFunding:
    """Each symbol's funding rates and 1 h mark bars from Binance USDⓈ-M, kept in a simulated
    venue's futures book (the module docstring says when and how).

    Parameters
    ----------
    settings:
        The venue's URLs, timeout, retries and backoff.
    symbols:
        The perpetuals traded, e.g. ``("BTCUSDT", "ETHUSDT")``.
    clock:
        Our time (ms UTC), for the budget.
    budget:
        The venue's request-weight budget, shared with the feed.
    sleep:
        Waits between two asks for a funding rate not published yet (seconds).

    Attributes
    ----------
    responses:
        REST answers by ``(path, HTTP status)`` of the connections closed so far.
    """

    venue = VENUE

    def __init__(
        self,
        settings: BinanceUsdmSettings,
        *,
        symbols: Sequence[str],
        clock: Clock,
        budget: VenueBudget,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.settings = settings
        self.symbols = tuple(symbols)
        self.budget = budget
        self._clock = clock
        self._sleep = sleep
        self._rates: dict[str, list[FundingEvent]] = {s: [] for s in self.symbols}
        self._marks: dict[str, Candles] = dict.fromkeys(self.symbols, Candles.empty())
        self._forming: dict[str, Candles] = dict.fromkeys(self.symbols, Candles.empty())
        self._book: FuturesBook | None = None
        self._through: int | None = None  # the last hour boundary refreshed (ms UTC)
        self.responses: Counter[tuple[str, int]] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._exchange: UsdmExchange | None = None
        self._call = Retrying(settings)

    def attach(self, book: FuturesBook | None) -> None:
        """Keep ``book`` (a freshly built venue's; None: none) up to date from now on, starting
        with what is known."""
        self._book = book
        for symbol in self.symbols:
            self._hand_over(symbol)

    def rates(self, symbol: str) -> FundingRates:
        """The funding rates of ``symbol`` known so far."""
        return FundingRates.from_events(self._rates[symbol])

    def marks(self, symbol: str) -> Candles:
        """The 1 h mark bars of ``symbol`` known so far, the one forming last (if any)."""
        return self._marks[symbol].concat(self._forming[symbol])

    def refresh(self, close: int) -> None:
        """Before the bars closing at ``close`` (ms UTC) are traded: fetch the rates and marks
        of every symbol when an hour boundary up to ``close`` has not been refreshed yet, and
        hand them to the book. A venue failure (after its retries) is logged and the refresh
        tried again before the next batch."""
        hour = close - close % HOUR_MS
        if self._through is not None and hour <= self._through:
            return
        try:
            for symbol in self.symbols:
                self._refresh_rates(symbol, close)
                self._refresh_marks(symbol, close)
                self._hand_over(symbol)
        except VenueError as exc:
            logger.warning("%s: funding and marks not refreshed at %d: %s", self.venue, close, exc)
            return
        self._through = hour

    def close(self) -> None:
        """Close the connection and its thread (a later :meth:`refresh` opens them again)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._run(self._close_exchange())
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = self._thread = None

    def answered(self) -> Counter[tuple[str, int]]:
        """REST answers by ``(path, HTTP status)`` so far (safe from any thread)."""
        exchange = self._exchange
        return self.responses + Counter(dict(exchange.responses) if exchange else {})

    # -- fetching ---------------------------------------------------------------------------
    def _refresh_rates(self, symbol: str, close: int) -> None:
        """The rates since the last one known (a day before ``close`` at first), asked again
        while a funding time due by ``close`` is missing (module docstring)."""
        known = self._rates[symbol]
        due = self._due(symbol, close)
        for attempt in range(self.settings.retries + 1):
            since = known[-1].time_ms + _MINUTE_MS if known else close - LOOKBACK_MS
            known.extend(self._run(self._fetch_rates(symbol, since)))
            if not due or known[-1].time_ms >= due[-1]:
                return
            if attempt < self.settings.retries:
                self._sleep(self.settings.backoff_s)
        logger.warning("%s: no funding rate of %s at %s yet: not paid", self.venue, symbol, due)

    def _refresh_marks(self, symbol: str, close: int) -> None:
        """The mark bars since the last closed one (a day before ``close`` at first), up to
        the one forming at ``close``."""
        closed = self._marks[symbol]
        since = int(closed.open_time[-1]) + HOUR_MS if len(closed) else close - LOOKBACK_MS
        fresh = self._run(self._fetch_marks(symbol, since, close))
        final = np.isfinite(fresh.high)
        self._marks[symbol] = closed.concat(_take(fresh, final))
        self._forming[symbol] = _take(fresh, ~final)

    def _due(self, symbol: str, close: int) -> list[int]:
        """The funding times of ``symbol``'s grid after its last rate known, up to ``close``."""
        known = self._rates[symbol]
        if not known or known[-1].time_ms >= close:  # (a resumed run catching up)
            return []
        spacing = known[-1].time_ms - known[-2].time_ms if len(known) > 1 else 0
        hours = spacing // HOUR_MS if spacing and 24 * HOUR_MS % spacing == 0 else 0
        return funding_schedule_times(known[-1].time_ms, close, hours or FUNDING_INTERVAL_HOURS)

    def _hand_over(self, symbol: str) -> None:
        if self._book is not None and symbol in self._book.markets:
            rates, marks = self.rates(symbol), self.marks(symbol)
            self._book.update_feeds(symbol, rates or None, marks if len(marks) else None)

    async def _fetch_rates(self, symbol: str, since: int) -> list[FundingEvent]:
        exchange = self._connected()
        events: list[FundingEvent] = []
        while True:
            params = {"symbol": symbol, "startTime": since, "limit": RATES_PER_PAGE}
            rows = await self._call(lambda p=params: exchange.fapipublic_get_fundingrate(p))
            source = f"{VENUE} {symbol} funding rates from {since}"
            page = funding_events(rows, source=source)
            events.extend(page)
            if len(rows) < RATES_PER_PAGE or not page:
                return events
            since = page[-1].time_ms + _MINUTE_MS

    async def _fetch_marks(self, symbol: str, since: int, close: int) -> Candles:
        exchange = self._connected()
        out = Candles.empty()
        while since <= close:
            params = {
                "symbol": symbol,
                "interval": "1h",
                "startTime": since,
                "endTime": close,
                "limit": MARKS_PER_PAGE,
            }
            rows = await self._call(lambda p=params: exchange.fapipublic_get_markpriceklines(p))
            source = f"{VENUE} {symbol} 1h mark prices from {since}"
            page = mark_bars(rows, source=source, closed_by=close)
            if not len(page):
                break
            out = out.concat(page)
            if len(rows) < MARKS_PER_PAGE:
                break
            since = int(page.open_time[-1]) + HOUR_MS
        return out

    # -- the connection's loop --------------------------------------------------------------
    def _connected(self) -> UsdmExchange:
        if self._exchange is None:
            self._exchange = UsdmExchange(
                self.settings, clock=self._clock, on_kline=_no_klines, budget=self.budget
            )
        return self._exchange

    async def _close_exchange(self) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            self.responses.update(exchange.responses)
            await exchange.close()

    def _run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the connection's loop (started on first use) and wait."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="live-feed-funding", daemon=True
            )
            self._thread.start()
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()


def _take(bars: Candles, keep: np.ndarray) -> Candles:
    """The bars where ``keep`` (a boolean mask) holds."""
    return Candles(
        *(getattr(bars, n)[keep] for n in ("open_time", "open", "high", "low", "close", "volume"))
    )


def _no_klines(event: dict[str, Any]) -> None:
    """The funding connection streams nothing: a kline event is never routed here."""


class FundedFeed:
    """A :class:`~adapters.venues.binance_usdm.live_feed.LiveFeed` whose every batch is
    preceded by :meth:`VenueFunding.refresh` at the batch's close, so the simulated venue's
    book holds the venue's funding rates and marks before it trades the bars."""

    def __init__(self, feed: LiveFeed, funding: VenueFunding, bar_ms: int) -> None:
        self.feed = feed
        self.funding = funding
        self.venue = feed.venue
        self.symbols = feed.symbols
        self.timeframe = feed.timeframe
        self._bar_ms = bar_ms

    def history(self, symbol: str) -> Candles:
        """As :meth:`LiveFeed.history`."""
        return self.feed.history(symbol)

    def batches(self) -> Iterator[dict[str, Candles]]:
        """As :meth:`LiveFeed.batches`, the funding refreshed before each batch (its
        connection closed when they end)."""
        try:
            for bars in self.feed.batches():
                opened = min(int(c.open_time[0]) for c in bars.values())
                self.funding.refresh(opened + self._bar_ms)
                yield bars
        finally:
            self.funding.close()

    def stop(self) -> None:
        """As :meth:`LiveFeed.stop`."""
        self.feed.stop()

    @property
    def finished_reason(self) -> str | None:
        """As :attr:`LiveFeed.finished_reason`."""
        return self.feed.finished_reason

    @property
    def exhausted(self) -> bool:
        """Never, as the live feed."""
        return self.feed.exhausted

    def stale(self) -> tuple[FeedStale, ...]:
        """As :meth:`LiveFeed.stale`."""
        return self.feed.stale()

    def venue_status(self) -> VenueStatus:
        """As :meth:`LiveFeed.venue_status`, the funding connection's requests counted too."""
        status = self.feed.venue_status()
        requests = Counter(status.requests)
        requests.update(
            {f"{path} {code}": n for (path, code), n in self.funding.answered().items()}
        )
        return replace(status, requests=dict(sorted(requests.items())))
