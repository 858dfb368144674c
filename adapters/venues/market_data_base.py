"""What a venue's market data does the same on every venue: open and close, the venue's clock,
closed-bar arithmetic, timeframe checks, gathering REST pages, and keeping and routing its live
kline streams.

A venue's subclass (e.g.
:class:`~adapters.venues.binance_usdm.market_data.BinanceUsdmMarketData`) supplies its ccxt
exchange and retrying caller, how its symbols map to markets, how it pages history over REST,
and how its kline messages and streams are keyed; the venue's wire format stays in its package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, Self, TypeVar

from adapters.venues.budget import VenueBudget
from domain.candles import Candles
from domain.errors import ConfigError
from domain.ports import Clock
from domain.timeframes import timeframe_ms


class Page(NamedTuple):
    """One REST page of closed bars (in order, no duplicates) and the duplicates it dropped."""

    candles: Candles
    duplicates: int


class VenueCall(Protocol):
    """Runs a venue call, retrying transient failures (a venue's ``Retrying``)."""

    async def __call__(self, call: Callable[[], Awaitable[Any]]) -> Any: ...


class KlineStreamLike(Protocol):
    """What the market data asks of one of its venue's live kline streams."""

    def start(self) -> None: ...

    def receive(self, message: dict[str, Any]) -> None: ...

    async def aclose(self) -> None: ...


class GraceSettings(Protocol):
    """What the market data reads of a venue's settings."""

    @property
    def close_grace_s(self) -> float:
        """How long (s) after its close a bar with no closed update is taken as closed."""
        ...


class TimeframeCapabilities(Protocol):
    """What the market data reads of a venue's capabilities."""

    @property
    def timeframes(self) -> tuple[str, ...]:
        """The timeframes the venue serves, e.g. ``("1m", "5m")``."""
        ...


class MarketDataExchange(Protocol):
    """What the market data calls on a venue's ccxt exchange."""

    async def load_markets(self) -> Any: ...

    async def fetch_time(self) -> Any: ...

    async def close(self) -> None: ...


SettingsT = TypeVar("SettingsT", bound=GraceSettings)
CapabilitiesT = TypeVar("CapabilitiesT", bound=TimeframeCapabilities)
ExchangeT = TypeVar("ExchangeT", bound=MarketDataExchange)
StreamT = TypeVar("StreamT", bound=KlineStreamLike)


class VenueMarketData(ABC, Generic[SettingsT, CapabilitiesT, ExchangeT, StreamT]):
    """One venue's market data through one ccxt exchange; an async context manager.

    Parameters
    ----------
    settings:
        The venue's settings: at least ``close_grace_s`` (s), how long after its close a bar
        with no closed update is taken as closed.
    clock:
        Our time (ms UTC); the venue's is this plus :attr:`offset_ms`.
    capabilities:
        The venue's timeframes and page size.
    exchange:
        Builds the ccxt exchange from ``settings`` and the keywords ``clock``, ``on_kline``
        (this object's router of kline messages) and ``budget``.
    call:
        Runs a venue call, retrying transient failures.
    budget:
        The venue's request budget shared with its other callers, handed to ``exchange``
        (None: ccxt's own limiter).

    Attributes
    ----------
    venue:
        The venue's name in messages (class attribute of each venue's subclass).
    exchange:
        The ccxt exchange (its ``responses`` count REST answers by path and status).
    call:
        Runs a venue call, retrying transient failures (its ``retries`` count them).
    offset_ms:
        Venue clock minus ours (ms), from :meth:`sync_time`.
    """

    venue: ClassVar[str]

    def __init__(
        self,
        settings: SettingsT,
        *,
        clock: Clock,
        capabilities: CapabilitiesT,
        exchange: Callable[..., ExchangeT],
        call: VenueCall,
        budget: VenueBudget | None = None,
    ) -> None:
        self.settings = settings
        self.capabilities = capabilities
        self._clock = clock
        self.exchange = exchange(settings, clock=clock, on_kline=self._on_kline, budget=budget)
        self.call = call
        self.offset_ms = 0
        self._streams: dict[tuple[str, str], StreamT] = {}

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Load the venue's markets and measure the clock offset.

        Raises
        ------
        VenueError
            When the venue cannot be reached after the retries, or refuses.
        """
        await self.call(self.exchange.load_markets)
        await self.sync_time()

    async def close(self) -> None:
        """Stop every stream and close the connections."""
        for stream in list(self._streams.values()):
            await stream.aclose()
        await self.exchange.close()

    async def sync_time(self) -> int:
        """Measure :attr:`offset_ms` as the venue's time minus the midpoint of our request's
        send and receive times (ms); returns it."""
        sent = self._clock.now_ms()
        server = await self.call(self.exchange.fetch_time)
        received = self._clock.now_ms()
        self.offset_ms = int(server) - (sent + received) // 2
        return self.offset_ms

    def venue_now(self) -> int:
        """The venue's time now (ms UTC)."""
        return self._clock.now_ms() + self.offset_ms

    def last_closed(self, timeframe: str) -> int:
        """Open time (ms UTC) of the newest bar whose close is ``close_grace_s`` behind the
        venue's clock."""
        step = timeframe_ms(timeframe)
        return (self.venue_now() - int(self.settings.close_grace_s * 1000)) // step * step - step

    def check_timeframe(self, timeframe: str) -> int:
        """``timeframe``'s length in ms.

        Raises
        ------
        ConfigError
            (``field="timeframe"``) Not a timeframe name, or not one of the venue's.
        """
        step = timeframe_ms(timeframe)
        if timeframe not in self.capabilities.timeframes:
            raise ConfigError(
                f"timeframe {timeframe!r} is not served by {self.venue}; choose one of "
                f"{', '.join(self.capabilities.timeframes)}",
                field="timeframe",
            )
        return step

    @abstractmethod
    def pages(
        self, symbol: str, timeframe: str, start_ms: int, end_ms: int | None = None
    ) -> AsyncIterator[Page]:
        """Closed bars with ``start_ms <= open_time < end_ms`` (ms UTC), page by page, over
        REST (an async generator; each venue's says how it pages and what it raises)."""

    async def backfill(
        self, symbol: str, timeframe: str, start_ms: int, end_ms: int | None = None
    ) -> Candles:
        """Every closed bar of :meth:`pages` in one series (same arguments and errors)."""
        out = Candles.empty()
        async for page in self.pages(symbol, timeframe, start_ms, end_ms):
            out = out.concat(page.candles)
        return out

    def stream(self, symbol: str, timeframe: str, *, after_ms: int | None = None) -> StreamT:
        """The live closed bars of ``symbol`` on ``timeframe`` (see the venue's
        ``KlineStream``); call it on the event loop: the subscription starts at once.

        Parameters
        ----------
        after_ms:
            Open time (ms UTC) of the last bar the caller has: the stream starts with the
            closed bars after it, fetched over REST. None: from the first closed bar streamed.

        Raises
        ------
        UnknownSymbol, ConfigError
            A symbol or timeframe the venue does not have, or one already streamed.
        """
        self.check_timeframe(timeframe)
        stream = self._new_stream(symbol, timeframe, after_ms=after_ms)
        key = self._stream_key(stream)
        if key in self._streams:
            raise ConfigError(f"{symbol} {timeframe} is already streamed", field="symbol")
        self._streams[key] = stream
        stream.start()
        return stream

    @abstractmethod
    def _new_stream(self, symbol: str, timeframe: str, *, after_ms: int | None) -> StreamT:
        """A new, unstarted stream of ``symbol`` on ``timeframe`` (a valid timeframe).

        Raises
        ------
        UnknownSymbol
            A symbol the venue does not have.
        """

    @abstractmethod
    def _stream_key(self, stream: StreamT) -> tuple[str, str]:
        """The key of ``stream``'s kline messages, as :meth:`_kline_key` gives it."""

    @abstractmethod
    def _kline_key(self, message: dict[str, Any]) -> tuple[str, str] | None:
        """The stream key a raw kline message is for; None when it names none."""

    def _forget(self, stream: StreamT) -> None:
        self._streams.pop(self._stream_key(stream), None)

    def _on_kline(self, message: dict[str, Any]) -> None:
        """Route a raw kline message to its stream (ccxt calls this on its event loop)."""
        key = self._kline_key(message)
        if key is None:
            return
        stream = self._streams.get(key)
        if stream is not None:
            stream.receive(message)
