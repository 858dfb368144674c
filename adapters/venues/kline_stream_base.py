"""What a venue's live stream of closed bars (one symbol, one timeframe) does the same on every
venue: keep the websocket subscription open with a backoff, fetch over REST the bars the stream
did not deliver (after a reconnect, a hole, or a close overdue), drop duplicates, record the
venue's holes and tell when the feed is stale.

A venue's subclass (e.g. :class:`~adapters.venues.binance_usdm.kline_stream.KlineStream`)
supplies how its kline messages become closed bars (:meth:`KlineStreamBase.receive`), the ccxt
market it watches, how its errors translate, how long a closed bar's kline may lag its close,
and its status record; the venue's wire format stays in its package.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import ccxt
import numpy as np

from domain.candles import Candles, Gap, find_gaps
from domain.coordinator import STALE_PERIODS
from domain.errors import VenueError
from domain.events import FeedStale
from domain.timeframes import timeframe_ms


class StreamSettings(Protocol):
    """The settings a stream reads (seconds): ``poll_s`` between looks for overdue bars,
    ``close_grace_s`` a bar's closed kline may lag its close, and the reconnect backoff from
    ``backoff_s`` doubling to ``max_backoff_s``."""

    @property
    def poll_s(self) -> float: ...

    @property
    def close_grace_s(self) -> float: ...

    @property
    def backoff_s(self) -> float: ...

    @property
    def max_backoff_s(self) -> float: ...


class KlineSource(Protocol):
    """What a stream asks of its venue's market data."""

    @property
    def settings(self) -> StreamSettings: ...

    @property
    def exchange(self) -> Any: ...

    def venue_now(self) -> int: ...

    async def backfill(
        self, symbol: str, timeframe: str, start_ms: int, end_ms: int | None = None
    ) -> Candles: ...

    def _forget(self, stream: Any) -> None: ...


SourceT = TypeVar("SourceT", bound=KlineSource)


class KlineStreamBase(ABC, Generic[SourceT]):
    """Closed bars of one symbol and timeframe, live: ``async for bars in stream`` yields
    :class:`Candles` (one or more bars, strictly after the previous ones, in order).

    The websocket subscription runs in a task (:meth:`start`); a lost connection is reopened
    after a backoff (``backoff_s`` doubling to ``max_backoff_s``) and the bars it missed come
    over REST. :meth:`receive` puts the closed bars on the queue, or the
    :class:`~domain.errors.DataError` of a malformed message, which ``__anext__`` raises.

    Parameters
    ----------
    source:
        The venue's market data (REST backfill, the venue's clock, the ccxt exchange).
    symbol, timeframe:
        Our symbol (``BTCUSDT``) and the timeframe (``1m``).
    after_ms:
        Open time (ms UTC) of the last bar the caller has (None: none).

    Attributes
    ----------
    venue:
        The venue's name in status records (class attribute of each venue's subclass).
    queue_first:
        Whether queued bars are taken before overdue bars are looked for (class attribute;
        True where one message can close several queued bars).
    reconnects, duplicates, rest_bars:
        Connections lost, bars dropped as already yielded, bars fetched over REST.

    Raises (from ``__anext__``)
    ---------------------------
    DataError
        A malformed kline message from the venue.
    VenueError
        A permanent failure, or a transient one of REST after the retries; the stream keeps
        its place, so ``anext`` may be called again (the bars come over REST).
    """

    venue: ClassVar[str]
    queue_first: ClassVar[bool] = False

    def __init__(
        self, source: SourceT, symbol: str, timeframe: str, *, after_ms: int | None
    ) -> None:
        self.symbol, self.timeframe = symbol, timeframe
        self._source = source
        self._settings = source.settings
        self._step = timeframe_ms(timeframe)
        self._last = after_ms
        self._started = source.venue_now()
        self._queue: asyncio.Queue[Candles | Exception] = asyncio.Queue()
        self._watcher: asyncio.Task[None] | None = None
        self._connected = False
        self._next_check = 0  # venue time of the next look for overdue bars
        self._gaps: list[Gap] = []
        self.reconnects = self.duplicates = self.rest_bars = 0

    def __aiter__(self) -> Self:
        return self

    def start(self) -> None:
        """Start the subscription task (on the running event loop), once."""
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name=f"watch {self.symbol}")

    async def __anext__(self) -> Candles:
        while True:
            if self.queue_first and not self._queue.empty():
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

    @abstractmethod
    def receive(self, message: dict[str, Any]) -> None:
        """Take one kline message of the subscription: each bar it closes is put on the
        queue (one-bar :class:`Candles`), or the :class:`~domain.errors.DataError` of a
        malformed message."""

    def staleness(self) -> FeedStale | None:
        """A :class:`FeedStale` when no bar has closed for more than 2 periods (since the last
        one yielded, or since the stream was made), else None."""
        now = self._source.venue_now()
        since = self._started if self._last is None else self._last + self._step
        silent = now - since
        if silent > STALE_PERIODS * self._step:
            return FeedStale(self.symbol, silent, now, self._last)
        return None

    @abstractmethod
    def status(self) -> Any:
        """The stream's counters and state now (the venue's status record, built from
        :meth:`_status_fields` and the venue's own counters)."""

    def _status_fields(self) -> dict[str, Any]:
        """The status fields every venue has, by name: ``venue``, ``symbol``, ``timeframe``,
        ``connected``, ``last_open_time`` (ms UTC), ``reconnects``, ``duplicates``,
        ``rest_bars``, ``gaps`` and ``stale``."""
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "connected": self._connected,
            "last_open_time": self._last,
            "reconnects": self.reconnects,
            "duplicates": self.duplicates,
            "rest_bars": self.rest_bars,
            "gaps": tuple(self._gaps),
            "stale": self.staleness(),
        }

    @abstractmethod
    def _market(self) -> str:
        """ccxt's symbol of the market the subscription watches."""

    @abstractmethod
    def _translate(self, exc: ccxt.BaseError) -> VenueError:
        """ccxt's exception as the venue's transient or permanent error."""

    def _opened(self) -> None:
        """The subscription (re)opened (the connection was down before); nothing by default."""

    def _dropped(self, exc: ccxt.NetworkError, *, lost: bool) -> None:
        """The subscription failed with ``exc``: ``lost`` when a connection was lost, not a
        reconnection refused; nothing by default."""

    def _grace_ms(self, close: int, grace: int) -> int:
        """How long (ms) after ``close`` (venue time, ms UTC) the closed kline of the bar
        closing then may still come before the bar is fetched over REST: ``grace`` (the
        configured ``close_grace_s``) by default."""
        return grace

    async def _watch(self) -> None:
        """Keep the subscription open; messages arrive through :meth:`receive`."""
        settings, exchange = self._settings, self._source.exchange
        market = self._market()
        delay = settings.backoff_s
        while True:
            try:
                await exchange.watch_ohlcv(market, self.timeframe)
            except ccxt.NetworkError as exc:
                lost = self._connected  # a connection lost, not a reconnection refused
                if lost:
                    self.reconnects += 1
                self._connected = False
                self._dropped(exc, lost=lost)
                self._next_check = 0  # look for missed bars now
                await asyncio.sleep(delay)
                delay = min(2 * delay, settings.max_backoff_s)
            except ccxt.BaseError as exc:
                self._queue.put_nowait(self._translate(exc))
                return
            else:
                if not self._connected:
                    self._opened()
                self._connected, delay = True, settings.backoff_s

    async def _overdue(self) -> Candles:
        """The closed bars after the last one, over REST, once the next is overdue: its close
        is :meth:`_grace_ms` past (venue time)."""
        now = self._source.venue_now()
        grace = int(self._settings.close_grace_s * 1000)
        if self._last is None or now < self._next_check:
            return Candles.empty()
        close = self._last + 2 * self._step  # of the next bar
        if close + self._grace_ms(close, grace) > now:
            return Candles.empty()
        bars = await self._rest(self._last + self._step, None)
        if not len(bars):
            self._next_check = now + max(grace, int(self._settings.poll_s * 1000))
        return bars

    async def _accept(self, item: Candles | Exception) -> Candles:
        """A closed bar from the queue: dropped when a duplicate; after a hole, the closed
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
