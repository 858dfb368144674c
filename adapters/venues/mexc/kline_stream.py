"""The live closed bars of one symbol and timeframe from MEXC's contract websocket (see
:mod:`adapters.venues.mexc.market_data` for how a bar is known closed and how holes, duplicates
and staleness are handled)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ccxt

from adapters.venues.kline_stream_base import KlineStreamBase
from adapters.venues.mexc.capabilities import INTERVALS, VENUE
from adapters.venues.mexc.errors import translate
from adapters.venues.mexc.parsing import push_kline
from domain.candles import Candles, Gap
from domain.errors import DataError, VenueError
from domain.events import FeedStale

if TYPE_CHECKING:
    from adapters.venues.mexc.market_data import Contract, MexcMarketData

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """What a live stream has done: ``last_open_time`` (ms UTC) of the last bar yielded,
    connections lost (``reconnects``), kline ``updates`` received, ``duplicates`` dropped
    (updates of a bar already yielded or superseded), bars fetched over REST, ``gaps`` the
    venue left (never filled), and ``stale`` when no bar has closed for more than 2 periods."""

    venue: str
    symbol: str
    timeframe: str
    connected: bool
    last_open_time: int | None
    reconnects: int
    updates: int
    duplicates: int
    rest_bars: int
    gaps: tuple[Gap, ...]
    stale: FeedStale | None


class KlineStream(KlineStreamBase["MexcMarketData"]):
    """Closed bars of one contract and timeframe from MEXC's contract websocket, live (see
    :class:`~adapters.venues.kline_stream_base.KlineStreamBase` for iterating, reconnects and
    errors): MEXC pushes updates of the forming bar only, so a bar is closed by the first
    update of a later one (``updates`` counts them) or, when none has come ``close_grace_s``
    after its close, fetched over REST. ``key`` is the (contract id, interval) its pushes are
    routed by. Made by :meth:`MexcMarketData.stream`.
    """

    venue = VENUE
    queue_first = True  # bars closed by later updates come first

    def __init__(
        self, source: MexcMarketData, contract: Contract, timeframe: str, *, after_ms: int | None
    ) -> None:
        super().__init__(source, contract.symbol, timeframe, after_ms=after_ms)
        self.key = (contract.id, INTERVALS[timeframe])
        self._contract = contract
        self._pending: Candles | None = None  # the newest update of the newest bar
        self.updates = 0

    def receive(self, message: dict[str, Any]) -> None:
        """Take one ``push.kline`` message: it replaces the pending state of its bar; an update
        of a later bar closes the pending bar, which is queued; an update of an earlier bar
        (or of one already yielded) is a duplicate and dropped."""
        source = f"{VENUE} {self._contract.id} push.kline {self.key[1]}"
        try:
            push = push_kline(message, contract_size=self._contract.size, source=source)
        except DataError as exc:
            self._queue.put_nowait(exc)
            return
        self.updates += 1
        t, current = int(push.bar.open_time[0]), self._pending
        pending = None if current is None else int(current.open_time[0])
        if (self._last is not None and t <= self._last) or (pending is not None and t < pending):
            self.duplicates += 1
            return
        if current is not None and pending is not None and t > pending:
            self._queue.put_nowait(current)
        self._pending = push.bar

    def status(self) -> StreamStatus:
        """The stream's counters and state now."""
        return StreamStatus(**self._status_fields(), updates=self.updates)

    def _market(self) -> str:
        return self._contract.unified

    def _translate(self, exc: ccxt.BaseError) -> VenueError:
        return translate(exc, secrets=self._source.settings.secrets())

    def _dropped(self, exc: ccxt.NetworkError, *, lost: bool) -> None:
        if lost:
            log.warning("%s %s kline stream lost: %s", VENUE, self.symbol, exc)
        # The pending bar may have missed updates while away: the bar comes over REST.
        self._pending = None
