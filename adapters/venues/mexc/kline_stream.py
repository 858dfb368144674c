"""The live closed bars of one symbol and timeframe from MEXC's contract websocket (see
:mod:`adapters.venues.mexc.market_data` for how a bar is known closed and how holes, duplicates
and staleness are handled)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ccxt
import numpy as np

from adapters.venues.mexc.capabilities import INTERVALS, VENUE
from adapters.venues.mexc.errors import translate
from adapters.venues.mexc.parsing import push_kline
from domain.candles import Candles, Gap, find_gaps
from domain.coordinator import STALE_PERIODS
from domain.errors import DataError
from domain.events import FeedStale
from domain.timeframes import timeframe_ms

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


class KlineStream:
    """Closed bars of one symbol and timeframe, live: ``async for bars in stream`` yields
    :class:`Candles` (one or more bars, strictly after the previous ones, in order).

    The websocket subscription runs in a task (:meth:`start`); a lost connection is reopened
    after a backoff (``backoff_s`` doubling to ``max_backoff_s``) and the bars it missed come
    over REST. Made by :meth:`MexcMarketData.stream`.

    Raises (from ``__anext__``)
    ---------------------------
    DataError
        A malformed kline push from the venue.
    VenueError
        A permanent failure, or a transient one of REST after the retries; the stream keeps
        its place, so ``anext`` may be called again (the bars come over REST).
    """

    def __init__(
        self, source: MexcMarketData, contract: Contract, timeframe: str, *, after_ms: int | None
    ) -> None:
        self.symbol, self.timeframe = contract.symbol, timeframe
        self.key = (contract.id, INTERVALS[timeframe])
        self._contract = contract
        self._source = source
        self._settings = source.settings
        self._step = timeframe_ms(timeframe)
        self._last = after_ms
        self._pending: Candles | None = None  # the newest update of the newest bar
        self._started = source.venue_now()
        self._queue: asyncio.Queue[Candles | Exception] = asyncio.Queue()
        self._watcher: asyncio.Task[None] | None = None
        self._connected = False
        self._next_check = 0  # venue time of the next look for overdue bars
        self._gaps: list[Gap] = []
        self.reconnects = self.updates = self.duplicates = self.rest_bars = 0

    def __aiter__(self) -> KlineStream:
        return self

    def start(self) -> None:
        """Start the subscription task (on the running event loop), once."""
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name=f"watch {self.symbol}")

    async def __anext__(self) -> Candles:
        while True:
            if not self._queue.empty():  # bars closed by later updates come first
                bars = await self._accept(self._queue.get_nowait())
            elif not len(bars := await self._overdue()):
                try:
                    item = await asyncio.wait_for(self._queue.get(), self._settings.poll_s)
                except TimeoutError:
                    continue
                bars = await self._accept(item)
            if len(bars):
                return self._emit(bars)

    async def aclose(self) -> None:
        """Stop the subscription task; the stream yields nothing more."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        self._source._forget(self)

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

    def staleness(self) -> FeedStale | None:
        """A :class:`FeedStale` when no bar has closed for more than 2 periods (since the last
        one yielded, or since the stream was made), else None."""
        now = self._source.venue_now()
        since = self._started if self._last is None else self._last + self._step
        silent = now - since
        if silent > STALE_PERIODS * self._step:
            return FeedStale(self.symbol, silent, now, self._last)
        return None

    def status(self) -> StreamStatus:
        """The stream's counters and state now."""
        return StreamStatus(
            venue=VENUE,
            symbol=self.symbol,
            timeframe=self.timeframe,
            connected=self._connected,
            last_open_time=self._last,
            reconnects=self.reconnects,
            updates=self.updates,
            duplicates=self.duplicates,
            rest_bars=self.rest_bars,
            gaps=tuple(self._gaps),
            stale=self.staleness(),
        )

    async def _watch(self) -> None:
        """Keep the subscription open; pushes arrive through :meth:`receive`."""
        settings, exchange = self._settings, self._source.exchange
        delay = settings.backoff_s
        while True:
            try:
                await exchange.watch_ohlcv(self._contract.unified, self.timeframe)
            except ccxt.NetworkError as exc:
                if self._connected:  # a connection lost, not a reconnection refused
                    self.reconnects += 1
                    log.warning("%s %s kline stream lost: %s", VENUE, self.symbol, exc)
                # The pending bar may have missed updates while away: the bar comes over REST.
                self._connected, self._pending = False, None
                self._next_check = 0  # look for missed bars now
                await asyncio.sleep(delay)
                delay = min(2 * delay, settings.max_backoff_s)
            except ccxt.BaseError as exc:
                self._queue.put_nowait(translate(exc, secrets=settings.secrets()))
                return
            else:
                self._connected, delay = True, settings.backoff_s

    async def _overdue(self) -> Candles:
        """The closed bars after the last one, over REST, once the next is overdue: its close
        is ``close_grace_s`` past (venue time) and no later bar's update has closed it."""
        now = self._source.venue_now()
        grace = int(self._settings.close_grace_s * 1000)
        if self._last is None or now < self._next_check:
            return Candles.empty()
        if self._last + 2 * self._step + grace > now:
            return Candles.empty()
        bars = await self._rest(self._last + self._step, None)
        if not len(bars):
            self._next_check = now + max(grace, int(self._settings.poll_s * 1000))
        return bars

    async def _accept(self, item: Candles | Exception) -> Candles:
        """A bar closed by a later update: dropped when a duplicate; after a hole, the closed
        bars before it come over REST first. A queued error is raised."""
        if isinstance(item, Exception):
            raise item
        bar, t = item, int(item.open_time[0])
        if self._last is not None and t <= self._last:
            self.duplicates += 1
            return Candles.empty()
        if self._last is None or t == self._last + self._step:
            return bar
        return (await self._rest(self._last + self._step, t)).concat(bar)

    async def _rest(self, start: int, end: int | None) -> Candles:
        bars = await self._source.backfill(self.symbol, self.timeframe, start, end)
        self.rest_bars += len(bars)
        return bars

    def _emit(self, bars: Candles) -> Candles:
        """Record the holes before and within ``bars`` and move past them."""
        previous = [] if self._last is None else [self._last]
        self._gaps.extend(find_gaps(np.concatenate([previous, bars.open_time]), self._step))
        self._last = int(bars.open_time[-1])
        return bars
