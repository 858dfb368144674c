"""Closed bars from MEXC futures: history over REST and live bars from the contract websocket;
and the order-entry probe.

**When a bar is closed.** MEXC's ``push.kline`` carries a bar's whole state at each update and
has no closed flag. A bar is known closed when

- an update of a *later* bar arrives on the same connection: the bar's last update before it
  is its final state, and that is the bar yielded; or
- its close (``open_time + period``) is ``close_grace_s`` behind the venue's clock with no such
  update (a quiet market, a lost message): the bar is then fetched over REST, the venue's own
  record, rather than trusting an update that may not have been its last.

After a lost connection the pending bar's updates are forgotten (some may have been missed)
and the bars that closed meanwhile come over REST. REST answers include the bar still forming;
it is never returned. The venue's clock is our :class:`~domain.ports.Clock` plus the offset
measured against ``GET /api/v1/contract/ping``.

The live stream (:class:`~adapters.venues.mexc.kline_stream.KlineStream`) yields closed bars in
order, each once: a bar at or before the last one yielded is a duplicate and dropped; when a
bar arrives after a hole, the missing closed bars are fetched over REST and yielded first.
Holes the venue's REST answer also lacks are reported, never filled. A timeframe with no closed
bar for more than 2 periods is stale (spec 001, "Data staleness").

Symbols are written as elsewhere in the system (``BTCUSDT``); the contract is MEXC's
``BTC_USDT`` (its id without the underscore). Volumes are in base units (MEXC counts
contracts: volume = contracts × ``contractSize``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, NamedTuple

from adapters.venues.budget import VenueBudget
from adapters.venues.market_data_base import Page, VenueMarketData
from adapters.venues.mexc.capabilities import CAPABILITIES, VENUE, Capabilities
from adapters.venues.mexc.client import MexcExchange, Retrying, Sleep
from adapters.venues.mexc.kline_stream import KlineStream
from adapters.venues.mexc.order_entry import OrderEntry, probe
from adapters.venues.mexc.parsing import contract_number, ohlcv_candles
from adapters.venues.mexc.settings import MexcSettings
from domain.errors import UnknownSymbol
from domain.ports import Clock
from domain.timeframes import timeframe_ms


class Contract(NamedTuple):
    """One USDT-M perpetual: our ``symbol`` (``BTCUSDT``), ccxt's ``unified`` symbol
    (``BTC/USDT:USDT``), MEXC's ``id`` (``BTC_USDT``), base units per contract (``size``) and
    the price tick (quote currency)."""

    symbol: str
    unified: str
    id: str
    size: Decimal
    price_tick: Decimal


class MexcMarketData(VenueMarketData[MexcSettings, Capabilities, MexcExchange, KlineStream]):
    """MEXC futures market data through one ccxt exchange; an async context manager
    (attributes, and what every venue shares: see
    :class:`~adapters.venues.market_data_base.VenueMarketData`).

    Parameters
    ----------
    settings:
        URLs, timeouts, retries, the stream's grace and polling, the optional API key.
    clock:
        Our time (ms UTC); the venue's is this plus :attr:`offset_ms`.
    capabilities:
        The venue's timeframes and page size.
    sleep:
        Waits between retries (see :class:`~adapters.venues.mexc.client.Retrying`).
    budget:
        The venue's request budget shared with its other callers
        (:func:`~adapters.venues.mexc.client.mexc_budget`); None: ccxt's own limiter.
    """

    venue = VENUE

    def __init__(
        self,
        settings: MexcSettings,
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
            exchange=MexcExchange,
            call=Retrying(settings, sleep=sleep),
            budget=budget,
        )

    def contract(self, symbol: str) -> Contract:
        """The USDT-M perpetual of ``symbol`` (``BTCUSDT``: MEXC's ``BTC_USDT``).

        Raises
        ------
        UnknownSymbol
            (``field="symbol"``) When the venue lists no such linear perpetual.
        """
        for market in (self.exchange.markets or {}).values():
            venue_id = str(market.get("id", ""))
            if market.get("swap") and market.get("linear") and venue_id.replace("_", "") == symbol:
                source = f"{VENUE} {venue_id} contract detail"
                info: dict[str, Any] = market.get("info") or {}
                return Contract(
                    symbol,
                    str(market["symbol"]),
                    venue_id,
                    contract_number(info, "contractSize", source=source),
                    contract_number(info, "priceUnit", source=source),
                )
        raise UnknownSymbol(
            f"{symbol!r} is not a {VENUE} perpetual (write BTCUSDT for MEXC's BTC_USDT)",
            field="symbol",
        )

    async def pages(
        self, symbol: str, timeframe: str, start_ms: int, end_ms: int | None = None
    ) -> AsyncIterator[Page]:
        """Closed bars with ``start_ms <= open_time < end_ms``, page by page, over REST.

        Each request asks one window of ``capabilities.klines_per_page`` bar times (MEXC
        returns at most 2000 bars and does not say which when more match); windows the venue
        has no bars for are skipped.

        Parameters
        ----------
        symbol:
            Our symbol, e.g. ``"BTCUSDT"``.
        timeframe:
            One of the venue's timeframes, e.g. ``"5m"``.
        start_ms, end_ms:
            The period (ms UTC); without ``end_ms``, up to the last closed bar (bars still
            forming are never returned, whatever ``end_ms`` says).

        Yields
        ------
        Page
            Up to ``capabilities.klines_per_page`` bars each, validated as imported files are,
            volume in base units; bars repeated across pages dropped and counted. Holes in the
            venue's answer stay.

        Raises
        ------
        UnknownSymbol, ConfigError
            A symbol or timeframe the venue does not have.
        DataError
            A malformed bar (naming the window and row).
        VenueError
            A transient failure after the retries, or a permanent one.
        """
        step = self.check_timeframe(timeframe)
        contract = self.contract(symbol)
        stop = self.last_closed(timeframe)  # the last open_time to return
        if end_ms is not None:
            stop = min(stop, (end_ms - 1) // step * step)
        since, last = -(-start_ms // step) * step, None
        while since <= stop:
            window_end = min(since + (self.capabilities.klines_per_page - 1) * step, stop)
            rows = await self._klines(contract, timeframe, since, window_end)
            source = f"{VENUE} {symbol} {timeframe} klines from {since}"
            parsed = ohlcv_candles(rows, contract_size=contract.size, source=source, after_ms=last)
            bars = parsed.candles.between(since, window_end + 1)
            if len(bars):
                yield Page(bars, parsed.duplicates)
                last = int(bars.open_time[-1])
            since = window_end + step

    async def probe_order_entry(self, symbol: str) -> OrderEntry:
        """Whether this account can place ``symbol``'s futures orders through the API, with the
        venue's reason when not (see :mod:`adapters.venues.mexc.order_entry`).

        Raises
        ------
        UnknownSymbol
            A symbol the venue does not have.
        TransientVenueError
            The venue could not be reached, or failed, after the retries.
        """
        contract = self.contract(symbol)
        return await probe(self.exchange, self.call, contract, now_ms=self.venue_now())

    async def _klines(
        self, contract: Contract, timeframe: str, first: int, last: int
    ) -> list[list[Any]]:
        """ccxt's OHLCV rows of the bars opening from ``first`` to ``last`` (ms UTC).

        MEXC takes ``start`` and ``end`` in whole seconds without saying whether they are
        inclusive: asking from 1 s before ``first`` to 1 s before the next bar after ``last``
        returns exactly these bars either way.
        """
        params = {"until": last + timeframe_ms(timeframe) - 1000}
        size, unified = self.capabilities.klines_per_page, contract.unified
        return await self.call(
            lambda: self.exchange.fetch_ohlcv(unified, timeframe, first - 1000, size, params)
        )

    def _new_stream(self, symbol: str, timeframe: str, *, after_ms: int | None) -> KlineStream:
        return KlineStream(self, self.contract(symbol), timeframe, after_ms=after_ms)

    def _stream_key(self, stream: KlineStream) -> tuple[str, str]:
        return stream.key

    def _kline_key(self, message: dict[str, Any]) -> tuple[str, str] | None:
        """A ``push.kline`` message's contract id and interval (``data.symbol``,
        ``data.interval``)."""
        data = message.get("data")
        if not isinstance(data, dict):
            return None
        return (str(data.get("symbol")), str(data.get("interval")))
