"""Closed bars from Binance USDⓈ-M: history over REST and live bars from the kline stream.

A bar is *closed* when the venue says so: the stream's final update of a bar (``k.x``, which
ccxt's ``watch_ohlcv`` drops and :class:`~adapters.venues.binance_usdm.client.UsdmExchange`
hands on), or over REST once the answer holds a later bar or its close (``open_time +
period``) is ``close_grace_s`` behind the venue's clock (REST answers include the bar still
forming; it is never returned). The venue's clock is our :class:`~domain.ports.Clock` plus the
offset measured against ``GET /fapi/v1/time``.

The live stream (:class:`KlineStream`) yields closed bars in order, each once: a bar at or
before the last one yielded is a duplicate and dropped; when a bar arrives after a hole, or the
next bar is overdue (its close ``close_grace_s`` past with no closed update: a lost message, a
quiet market; at once when it closed while the stream was not subscribed: at start, during and
right after a dropped connection), the missing closed bars are fetched over REST and yielded
first. Holes the venue's REST answer also lacks are reported, never filled. A timeframe
with no closed bar for more than 2 periods is stale (spec 001, "Data staleness").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from adapters.venues.binance_usdm.capabilities import CAPABILITIES, VENUE, Capabilities
from adapters.venues.binance_usdm.client import Retrying, Sleep, UsdmExchange
from adapters.venues.binance_usdm.kline_stream import KlineStream
from adapters.venues.binance_usdm.parsing import ohlcv_candles
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.budget import VenueBudget
from adapters.venues.market_data_base import Page, VenueMarketData
from domain.candles import Candles
from domain.errors import UnknownSymbol, VenueError
from domain.ports import Clock

logger = logging.getLogger(__name__)


class BinanceUsdmMarketData(
    VenueMarketData[BinanceUsdmSettings, Capabilities, UsdmExchange, KlineStream]
):
    """Binance USDⓈ-M market data through one ccxt exchange; an async context manager
    (attributes, and what every venue shares: see
    :class:`~adapters.venues.market_data_base.VenueMarketData`).

    Parameters
    ----------
    settings:
        URLs, timeouts, retries and the stream's grace and polling.
    clock:
        Our time (ms UTC); the venue's is this plus :attr:`offset_ms`.
    capabilities:
        The venue's timeframes and page size.
    sleep:
        Waits between retries (see :class:`~adapters.venues.binance_usdm.client.Retrying`).
    budget:
        The venue's request-weight budget shared with its other callers (None: ccxt's own
        limiter).
    """

    venue = VENUE

    def __init__(
        self,
        settings: BinanceUsdmSettings,
        *,
        clock: Clock,
        capabilities: Capabilities = CAPABILITIES,
        sleep: Sleep = asyncio.sleep,
        budget: VenueBudget | None = None,
    ) -> None:
        super().__init__(
            settings,
            clock=clock,
            capabilities=capabilities,
            exchange=UsdmExchange,
            call=Retrying(settings, sleep=sleep),
            budget=budget,
        )

    async def keep_time(self) -> None:
        """Measure the clock offset again every ``time_sync_s`` until cancelled; a failed
        measurement keeps the last offset (logged) and is tried at the next turn."""
        while True:
            await asyncio.sleep(self.settings.time_sync_s)
            try:
                await self.sync_time()
            except VenueError as exc:
                logger.warning("%s: clock offset not measured: %s", VENUE, exc)

    def market(self, symbol: str) -> str:
        """ccxt's symbol of the venue's ``symbol`` (``BTCUSDT`` → ``BTC/USDT:USDT``).

        Raises
        ------
        UnknownSymbol
            (``field="symbol"``) When the venue lists no such USDⓈ-M market.
        """
        for market in (self.exchange.markets_by_id or {}).get(symbol, []):
            if market.get("linear") and market.get("contract"):
                return str(market["symbol"])
        raise UnknownSymbol(f"{symbol!r} is not a {VENUE} market", field="symbol")

    async def pages(
        self, symbol: str, timeframe: str, start_ms: int, end_ms: int | None = None
    ) -> AsyncIterator[Page]:
        """Closed bars with ``start_ms <= open_time < end_ms``, page by page, over REST.

        Parameters
        ----------
        symbol:
            The venue's symbol, e.g. ``"BTCUSDT"``.
        timeframe:
            One of the venue's timeframes, e.g. ``"5m"``.
        start_ms, end_ms:
            The period (ms UTC); without ``end_ms``, up to the last closed bar (bars still
            forming are never returned, whatever ``end_ms`` says).

        Yields
        ------
        Page
            Up to ``capabilities.klines_per_page`` bars each, validated as imported files are;
            bars repeated across pages dropped and counted. Holes in the venue's answer stay.

        Raises
        ------
        UnknownSymbol, ConfigError
            A symbol or timeframe the venue does not have.
        DataError
            A malformed bar (naming the page and row).
        VenueError
            A transient failure after the retries, or a permanent one.
        """
        step = self.check_timeframe(timeframe)
        unified = self.market(symbol)
        stop = None if end_ms is None else end_ms - 1  # the last open_time asked for
        size = self.capabilities.klines_per_page
        since, last = start_ms, None
        while stop is None or since <= stop:
            closed = self.last_closed(timeframe)
            rows = await self._klines(unified, timeframe, since, stop)
            source = f"{VENUE} {symbol} {timeframe} klines from {since}"
            parsed = ohlcv_candles(rows, source=source, after_ms=last)
            bars = parsed.candles.between(None, _closed_end(parsed.candles, closed, stop))
            if not len(bars):
                return
            yield Page(bars, parsed.duplicates)
            last = int(bars.open_time[-1])
            if len(rows) < size:
                return
            since = last + step

    async def _klines(
        self, unified: str, timeframe: str, since: int, stop: int | None
    ) -> list[list]:
        size = self.capabilities.klines_per_page
        params = {} if stop is None else {"until": stop}
        return await self.call(
            lambda: self.exchange.fetch_ohlcv(unified, timeframe, since, size, params)
        )

    def _new_stream(self, symbol: str, timeframe: str, *, after_ms: int | None) -> KlineStream:
        self.market(symbol)
        return KlineStream(self, symbol, timeframe, after_ms=after_ms)

    def _stream_key(self, stream: KlineStream) -> tuple[str, str]:
        return (stream.symbol, stream.timeframe)

    def _kline_key(self, message: dict[str, Any]) -> tuple[str, str] | None:
        """A kline-stream event's symbol and interval (``k.s``, ``k.i``)."""
        k = message.get("k")
        if not isinstance(k, dict):
            return None
        return (str(k.get("s")), str(k.get("i")))


def _closed_end(candles: Candles, closed: int, stop: int | None) -> int:
    """The end (exclusive open time, ms UTC) of the closed bars of one REST answer: those at
    or before ``closed`` (by the venue's clock), and every bar before the newest the venue
    answered, which it has closed whatever our clock says (so a bar that closed a moment ago
    is not left waiting ``close_grace_s``); none after ``stop``."""
    end = closed + 1
    if len(candles):
        end = max(end, int(candles.open_time[-1]))
    return end if stop is None else min(end, stop + 1)
