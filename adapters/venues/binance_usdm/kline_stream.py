"""The live closed bars of one symbol and timeframe from Binance USDⓈ-M's kline stream (see
:mod:`adapters.venues.binance_usdm.market_data` for what *closed* means and how holes, duplicates
and staleness are handled)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ccxt

from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.errors import translate
from adapters.venues.binance_usdm.parsing import stream_kline
from adapters.venues.kline_stream_base import KlineStreamBase
from domain.candles import Gap
from domain.errors import DataError, VenueError
from domain.events import FeedStale

if TYPE_CHECKING:
    from adapters.venues.binance_usdm.market_data import BinanceUsdmMarketData


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """What a live stream has done: ``last_open_time`` (ms UTC) of the last bar yielded,
    connections lost (``reconnects``), ``duplicates`` dropped, forming updates ignored, bars
    fetched over REST, ``gaps`` the venue left (never filled), and ``stale`` when no bar has
    closed for more than 2 periods."""

    venue: str
    symbol: str
    timeframe: str
    connected: bool
    last_open_time: int | None
    reconnects: int
    duplicates: int
    forming_ignored: int
    rest_bars: int
    gaps: tuple[Gap, ...]
    stale: FeedStale | None


class KlineStream(KlineStreamBase["BinanceUsdmMarketData"]):
    """Closed bars of one symbol and timeframe from Binance USDⓈ-M's kline stream, live (see
    :class:`~adapters.venues.kline_stream_base.KlineStreamBase` for iterating, reconnects and
    errors, e.g. a ban's ``VenueError``): a bar is yielded once the venue marks its kline closed;
    forming updates are counted (``forming_ignored``) and ignored. A bar that closed while the
    stream was not subscribed comes over REST at once. Made by
    :meth:`BinanceUsdmMarketData.stream`.
    """

    venue = VENUE

    def __init__(
        self, source: BinanceUsdmMarketData, symbol: str, timeframe: str, *, after_ms: int | None
    ) -> None:
        super().__init__(source, symbol, timeframe, after_ms=after_ms)
        self._subscribed_at: int | None = None  # venue time the connection (re)opened
        self.forming_ignored = 0

    def receive(self, event: dict[str, Any]) -> None:
        """Take one kline-stream event: a closed bar is queued, a forming one ignored."""
        try:
            kline = stream_kline(event, source=f"{VENUE} {self.symbol}@kline_{self.timeframe}")
        except DataError as exc:
            self._queue.put_nowait(exc)
            return
        if kline.closed:
            self._queue.put_nowait(kline.bar)
        else:
            self.forming_ignored += 1

    def status(self) -> StreamStatus:
        """The stream's counters and state now."""
        return StreamStatus(**self._status_fields(), forming_ignored=self.forming_ignored)

    def _market(self) -> str:
        return self._source.market(self.symbol)

    def _translate(self, exc: ccxt.BaseError) -> VenueError:
        return translate(exc)

    def _opened(self) -> None:
        self._subscribed_at = self._source.venue_now()

    def _dropped(self, exc: ccxt.NetworkError, *, lost: bool) -> None:
        self._subscribed_at = None

    def _grace_ms(self, close: int, grace: int) -> int:
        """``grace`` when the bar closed while the stream was subscribed, else 0: a bar that
        closed while it was not will never have its closed kline streamed."""
        streamed = self._subscribed_at is not None and close > self._subscribed_at
        return grace if streamed else 0
