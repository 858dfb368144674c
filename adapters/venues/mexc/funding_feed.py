"""Funding rates and 1 h mark prices from MEXC futures for paper trading on its live feed.

:class:`MexcVenueFunding` is Binance's
:class:`~adapters.venues.binance_usdm.funding_feed.VenueFunding` (when it refreshes, how a
forming mark bar is kept, how a rate not published yet is asked for again: that module's
docstring says) over MEXC's public contract endpoints, so that paper on MEXC's live bars
settles funding as a backtest with the same rates and marks does:

- the funding-rate history, ``GET /api/v1/contract/funding_rate/history?symbol=BTC_USDT&
  page_num=1&page_size=100`` (newest first; no time filter, so pages are read until one reaches
  before the time wanted)::

    {"pageSize": 100, "totalCount": 21, "totalPage": 1, "currentPage": 1,
     "resultList": [{"symbol": "BTC_USDT", "fundingRate": 0.000266,
                     "settleTime": 1609804800000, "collectCycle": 8}, ...]}

- the 1 h fair-price klines (MEXC's mark price), ``GET
  /api/v1/contract/kline/fair_price/{symbol}?interval=Min60&start=&end=`` (seconds), columns
  ``time`` (seconds), ``open``, ``close``, ``high``, ``low``; the hour still forming included.

No API key: both are public. Every request takes its slot in the venue's request budget
(:func:`~adapters.venues.mexc.client.mexc_budget`), shared with the live feed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.venues.binance_usdm.funding_feed import VenueFunding, mark_bars
from adapters.venues.budget import VenueBudget
from adapters.venues.mexc.capabilities import VENUE
from adapters.venues.mexc.market_data import Contract, MexcMarketData
from adapters.venues.mexc.settings import MexcSettings
from domain.candles import Candles
from domain.errors import DataError
from domain.funding import HOUR_MS, FundingEvent
from domain.ports import Clock

RATES_PER_PAGE = 100
"""The venue's maximum ``page_size`` of ``funding_rate/history``."""
MARK_HOURS_PER_PAGE = 1000
"""Hours of fair-price klines asked for in one request (MEXC answers at most 2000 bars)."""
_MINUTE_MS = 60_000


def funding_history(
    rows: Sequence[Mapping[str, Any]], contract: Contract, *, since: int, source: str
) -> list[FundingEvent]:
    """``contract``'s rows of a ``funding_rate/history`` page at ``since`` (ms UTC) or later, as
    funding events, oldest first.

    Parameters
    ----------
    rows:
        The page's ``resultList``: ``{"symbol": "BTC_USDT", "fundingRate": 0.000266,
        "settleTime": 1609804800000}``, in any order; rows of another contract are skipped.
    contract:
        The contract asked for.
    since:
        The earliest funding time wanted (ms UTC).
    source:
        What the rows are, for error messages.

    Returns
    -------
    list of FundingEvent
        Times in ms UTC floored to the minute, one event per time; rates as exact ``Decimal``
        of the number the venue wrote.

    Raises
    ------
    DataError
        Naming ``source`` and the 1-based row: a missing field, a time that is not an integer
        or a rate that is not a finite number.
    """
    found: dict[int, Decimal] = {}
    for row, entry in enumerate(rows, start=1):
        if entry.get("symbol") != contract.id:
            continue
        stamp, value = entry.get("settleTime"), entry.get("fundingRate")
        try:
            rate = Decimal(str(value))
        except InvalidOperation:
            rate = Decimal("NaN")
        if not isinstance(stamp, int) or isinstance(value, bool) or not rate.is_finite():
            message = f"settleTime {stamp!r} or fundingRate {value!r} is not a number"
            raise DataError(message, source=source, row=row)
        time_ms = stamp - stamp % _MINUTE_MS
        if time_ms >= since:
            found[time_ms] = rate
    return [FundingEvent(t, found[t]) for t in sorted(found)]


def fair_price_rows(data: object, *, source: str) -> list[list[Any]]:
    """A ``kline/fair_price`` answer's columns as rows ``[open_time ms, open, high, low,
    close]``, in the venue's order.

    Raises
    ------
    DataError
        Naming ``source``: an answer that is not columns of one length, or a time that is not
        an integer.
    """
    names = ("time", "open", "high", "low", "close")
    columns = [data.get(n) if isinstance(data, Mapping) else None for n in names]
    if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) != 1:
        message = f"expected the columns {', '.join(names)}, got {data!r:.200}"
        raise DataError(message, source=source)
    rows = []
    for row, (stamp, *prices) in enumerate(zip(*columns, strict=True), start=1):
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            raise DataError(f"time {stamp!r} is not an integer", source=source, row=row)
        rows.append([stamp * 1000, *prices])
    return rows


class MexcVenueFunding(VenueFunding):
    """Each symbol's funding rates and 1 h mark bars from MEXC futures, kept in a simulated
    venue's futures book (:class:`~adapters.venues.binance_usdm.funding_feed.VenueFunding`'s
    behaviour; the module docstring says which endpoints).

    Parameters
    ----------
    settings:
        MEXC's URLs, timeout, retries and backoff.
    symbols:
        The perpetuals traded, our spelling (``BTCUSDT`` for MEXC's ``BTC_USDT``).
    clock:
        Our time (ms UTC), for the budget.
    budget:
        The venue's request budget (:func:`~adapters.venues.mexc.client.mexc_budget`), shared
        with the feed.
    sleep:
        Waits between two asks for a funding rate not published yet (seconds).
    """

    venue = VENUE

    def __init__(
        self,
        settings: MexcSettings,
        *,
        symbols: Sequence[str],
        clock: Clock,
        budget: VenueBudget,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        super().__init__(
            settings,  # type: ignore[arg-type]  # retries and backoff_s, as Binance's
            symbols=symbols, clock=clock, budget=budget, sleep=sleep,
        )  # fmt: skip
        self._mexc = settings
        self._source: MexcMarketData | None = None

    def answered(self) -> Counter[tuple[str, int]]:
        """REST answers by ``(path, HTTP status)`` so far (safe from any thread)."""
        source = self._source
        return self.responses + Counter(dict(source.exchange.responses) if source else {})

    async def _fetch_rates(self, symbol: str, since: int) -> list[FundingEvent]:
        """The rates of ``symbol`` from ``since`` (ms UTC) on: pages, newest first, until one
        reaches before ``since`` or is the last."""
        source = await self._opened()
        contract = source.contract(symbol)
        method = source.exchange.contract_public_get_funding_rate_history
        events: dict[int, FundingEvent] = {}
        page = 1
        while True:
            request = {"symbol": contract.id, "page_num": page, "page_size": RATES_PER_PAGE}
            answer = await source.call(lambda q=request: method(q))
            where = f"{VENUE} {symbol} funding rates, page {page}"
            data = answer.get("data") if isinstance(answer, Mapping) else None
            rows = data.get("resultList") if isinstance(data, Mapping) else None
            if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
                raise DataError(f"expected a page of rates, got {data!r:.200}", source=where)
            for event in funding_history(rows, contract, since=since, source=where):
                events[event.time_ms] = event
            times = [r.get("settleTime") for r in rows]
            oldest = min((t for t in times if isinstance(t, int)), default=since - 1)
            if len(rows) < RATES_PER_PAGE or oldest < since:
                return [events[t] for t in sorted(events)]
            page += 1

    async def _fetch_marks(self, symbol: str, since: int, close: int) -> Candles:
        """The 1 h fair-price bars of ``symbol`` opening from ``since`` to ``close`` (ms UTC),
        the one forming at ``close`` with its open only."""
        source = await self._opened()
        contract = source.contract(symbol)
        method = source.exchange.contract_public_get_kline_fair_price_symbol
        out = Candles.empty()
        first = since - since % HOUR_MS
        while first <= close:
            last = min(first + (MARK_HOURS_PER_PAGE - 1) * HOUR_MS, close)
            request = {
                "symbol": contract.id, "interval": "Min60", "start": first // 1000,
                "end": last // 1000,
            }  # fmt: skip
            answer = await source.call(lambda q=request: method(q))
            where = f"{VENUE} {symbol} 1h fair prices from {first}"
            data = answer.get("data") if isinstance(answer, Mapping) else None
            rows = [r for r in fair_price_rows(data, source=where) if first <= r[0] <= last]
            if rows:
                out = out.concat(mark_bars(rows, source=where, closed_by=close))
            first = last + HOUR_MS
        return out

    async def _opened(self) -> MexcMarketData:
        """The connection (contracts loaded, clock offset measured), opened on first use."""
        if self._source is None:
            source = MexcMarketData(self._mexc, clock=self._clock, budget=self.budget)
            try:
                await source.open()
            except BaseException:
                await source.close()
                raise
            self._source = source
        return self._source

    async def _close_exchange(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            self.responses.update(source.exchange.responses)
            await source.close()
