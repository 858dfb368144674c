"""Trading on MEXC futures' live bars: the :class:`~domain.ports.MarketData` port over its
contract kline streams (no API key: market data is public).

:class:`MexcLiveFeed` is Binance's :class:`~adapters.venues.binance_usdm.live_feed.LiveFeed`
(threads, alignment of the symbols' bars, storage under the venue's name, staleness: its module
docstring says how) over :class:`~adapters.venues.mexc.market_data.MexcMarketData` and its
:class:`~adapters.venues.mexc.kline_stream.KlineStream`. Every REST request takes its weight
from the venue's request budget (:func:`~adapters.venues.mexc.client.mexc_budget`: 20 requests
per 2 s), shared with a live run's execution client; the feed's status reports it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from adapters.venues.binance_usdm.live_feed import LiveFeed
from adapters.venues.budget import VenueBudget
from adapters.venues.mexc.capabilities import CAPABILITIES, VENUE
from adapters.venues.mexc.client import mexc_budget
from adapters.venues.mexc.market_data import Contract, MexcMarketData
from adapters.venues.mexc.settings import MexcSettings
from domain.errors import VenueError
from domain.events import FeedStale
from domain.ports import CandleStore, Clock

logger = logging.getLogger(__name__)

TIME_SYNC_S = 300.0
"""How often the clock offset against MEXC is measured again while streaming (s)."""


class _Source(MexcMarketData):
    """MEXC's market data as the live feed drives a venue's (``market``, ``keep_time``)."""

    def market(self, symbol: str) -> Contract:
        """The contract of ``symbol`` (raises ``UnknownSymbol`` when MEXC lists none)."""
        return self.contract(symbol)

    async def keep_time(self) -> None:
        """Measure the clock offset again every :data:`TIME_SYNC_S` until cancelled; a failed
        measurement keeps the last offset (logged)."""
        while True:
            await asyncio.sleep(TIME_SYNC_S)
            try:
                await self.sync_time()
            except VenueError as exc:
                logger.warning("%s: clock offset not measured: %s", VENUE, exc)


class MexcLiveFeed(LiveFeed):
    """Closed bars of ``symbols`` from MEXC futures, live (parameters and errors as
    :class:`~adapters.venues.binance_usdm.live_feed.LiveFeed`'s, with MEXC's ``settings``;
    the grace for stragglers defaults to ``close_grace_s + poll_s + timeout_s``; ``budget``
    the venue's shared request budget, None: the feed's own :func:`mexc_budget`)."""

    venue = VENUE
    capabilities = CAPABILITIES

    def __init__(
        self,
        settings: MexcSettings,
        *,
        symbols: Sequence[str],
        timeframe: str,
        clock: Clock,
        store: CandleStore,
        history_ms: int,
        start_after: Mapping[str, int] | None = None,
        sleep: Callable[[float], object] | None = None,
        on_stale: Callable[[FeedStale], None] | None = None,
        grace_ms: int | None = None,
        budget: VenueBudget | None = None,
    ) -> None:
        super().__init__(
            settings,  # type: ignore[arg-type]  # the fields the feed reads are MEXC's too
            symbols=symbols, timeframe=timeframe, clock=clock, store=store,
            history_ms=history_ms, start_after=start_after, sleep=sleep, on_stale=on_stale,
            grace_ms=grace_ms, budget=budget or mexc_budget(clock),
        )  # fmt: skip
        self._mexc = settings

    def _market_data(self) -> _Source:  # type: ignore[override]
        return _Source(self._mexc, clock=self._clock, budget=self.budget)
