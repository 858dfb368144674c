"""Paper trading on live data: the :class:`~domain.ports.MarketData` port over Binance USDⓈ-M's
kline streams (no API key: market data is public).

Threads. An asyncio loop in its own thread (``live-feed``) opens the venue
(:class:`~adapters.venues.binance_usdm.market_data.BinanceUsdmMarketData`), runs one
:class:`~adapters.venues.binance_usdm.kline_stream.KlineStream` per symbol (closed bars only, in
order, each once, the missed ones backfilled over REST after a reconnect) and puts each
symbol's bars on a thread-safe queue, stamped with the clock's time of arrival. The engine's
thread runs :meth:`LiveFeed.batches`: it takes them off the queue, lines them up by open time
(:class:`BarAligner`), appends them to the candle store, then yields them, one batch per bar
time, in time order. Between two looks at the queue it waits through the injected ``sleep`` (the
engine's command queue: orders and stops asked for over the API run meanwhile).

Alignment. The batch of open time ``t`` is released once every symbol's stream has reached
``t``: it holds every symbol's bar at ``t`` (a stream that went past ``t`` without one has a hole
the venue itself lacks, which the stream reports). A symbol whose stream has not reached ``t``
``grace_ms`` after the first bar at ``t`` arrived is a straggler: the batch is released without
it (a warning names it; :attr:`BarAligner.missed` counts it), and its bar at ``t``, should it come
later, is dropped: neither traded nor stored (a warning; :attr:`BarAligner.late`). Its later
bars are traded as usual. So one silent symbol holds the others back by ``grace_ms`` at most,
and the strategy skips a symbol whose feed is stale. The default grace is how long the stream
itself may take to fetch over REST a bar its websocket did not deliver (``close_grace_s +
poll_s + timeout_s``), so a straggler is a symbol the venue could not serve in time.

Storage. Every bar is written to the candle store (under the venue's name, where ``lootcapital
data download`` puts them) before the engine sees it, and a bar dropped as late never is: a
backtest over the stored bars afterwards sees exactly what paper traded. A new run starts with
``history_ms`` of closed bars fetched over REST (stored too) as its warm-up; a resumed run warms
up on the stored bars up to its last processed bar, and its streams backfill over REST what
closed since.

Staleness. A symbol with no closed bar for more than 2 periods is stale (:meth:`LiveFeed.stale`),
once the feed has been streaming for that long itself (a restart does not call every symbol
stale while its streams catch up over REST); ``on_stale`` hears of each symbol going stale once,
on the engine's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from adapters.venues.binance_usdm.capabilities import CAPABILITIES, VENUE
from adapters.venues.binance_usdm.kline_stream import KlineStream
from adapters.venues.binance_usdm.market_data import BinanceUsdmMarketData
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.binance_usdm.venue_status import venue_status
from adapters.venues.budget import VenueBudget
from domain.candles import Candles
from domain.coordinator import STALE_PERIODS
from domain.errors import ConfigError, TransientVenueError, UnknownSymbol, VenueBanned
from domain.events import FeedStale
from domain.ports import CandleStore, Clock
from domain.timeframes import timeframe_ms
from domain.venues import VenueStatus

logger = logging.getLogger(__name__)

STOPPED = "stopped"
POLL_S = 0.005
"""Longest wait of :meth:`LiveFeed.batches` between two looks at the queue (s): a bar waits
at most this long, and a ``stop()`` is seen within it."""
CLOSE_S = 0.5
"""Longest wait for the venue's connections to close at the end of :meth:`LiveFeed.batches`
(s); the streaming thread is a daemon and never outlives the process."""
MAX_CATCH_UP_MS = 7 * 86_400_000
"""Longest stretch a resumed run may have to catch up on (ms): a run whose last bar is older
was not a live run (a replay's data directory) or has been down too long to replay."""


class Arrival(NamedTuple):
    """Closed bars of ``symbol`` (one or more, in order) that reached the feed at ``time``
    (ms UTC, the feed's clock)."""

    symbol: str
    bars: Candles
    time: int


class Batch(NamedTuple):
    """The bars of open time ``time`` (ms UTC), one per symbol in ``bars``; ``missing`` names
    the stragglers released without."""

    time: int
    bars: dict[str, Candles]
    missing: tuple[str, ...]


class BarAligner:
    """Lines up the symbols' closed bars by open time (the module docstring says how).

    Parameters
    ----------
    symbols:
        The symbols traded.
    after:
        Per symbol, the open time (ms UTC) of the last bar before the stream's first: every
        symbol's stream has reached it.
    grace_ms:
        How long (ms) a bar time waits for stragglers after its first bar arrived.

    Attributes
    ----------
    missed:
        Per symbol, the batches released without it.
    late:
        Per symbol, the bars dropped for coming after their time was released.
    """

    def __init__(self, symbols: Sequence[str], after: Mapping[str, int], grace_ms: int) -> None:
        self.symbols = tuple(symbols)
        self.grace_ms = grace_ms
        self._through = {s: after[s] for s in self.symbols}
        self._pending = {s: Candles.empty() for s in self.symbols}
        self._first_seen: dict[int, int] = {}
        self._released: int | None = None
        self.missed: Counter[str] = Counter()
        self.late: Counter[str] = Counter()

    def add(self, arrival: Arrival) -> Candles:
        """Take ``arrival``'s bars; returns those dropped as late (empty when none)."""
        bars, symbol = arrival.bars, arrival.symbol
        self._through[symbol] = max(self._through[symbol], int(bars.open_time[-1]))
        late = Candles.empty()
        if self._released is not None:
            cut = int(bars.open_time.searchsorted(self._released, "right"))
            if cut:
                late, bars = bars.slice(0, cut), bars.slice(cut, len(bars))
                self.late[symbol] += cut
        for t in bars.open_time.tolist():
            self._first_seen.setdefault(t, arrival.time)
        self._pending[symbol] = self._pending[symbol].concat(bars)
        return late

    def ready(self, now_ms: int) -> list[Batch]:
        """The batches that can go now (clock ``now_ms``), in time order."""
        out: list[Batch] = []
        pending = self._pending
        while True:
            heads = [int(c.open_time[0]) for c in pending.values() if len(c)]
            if not heads:
                return out
            t = min(heads)
            missing = tuple(s for s in self.symbols if self._through[s] < t)
            if missing and now_ms - self._first_seen[t] < self.grace_ms:
                return out
            bars = {}
            for symbol, candles in pending.items():
                if len(candles) and int(candles.open_time[0]) == t:
                    bars[symbol] = candles.slice(0, 1)
                    pending[symbol] = candles.slice(1, len(candles))
            for symbol in missing:
                self.missed[symbol] += 1
            del self._first_seen[t]
            self._released = t
            out.append(Batch(t, bars, missing))


class LiveFeed:
    """Closed bars of ``symbols`` from Binance USDⓈ-M, live (the module docstring says how).

    Parameters
    ----------
    settings:
        The venue's URLs, timeouts and the streams' grace and polling.
    symbols, timeframe:
        What is traded, e.g. ``("BTCUSDT", "ETHUSDT")`` on ``"5m"``.
    clock:
        Our time (ms UTC; the venue's is this plus the measured offset): the system clock, or
        a test's simulated one shared with a fake venue.
    store:
        The candle store every bar traded (and the history) is appended to.
    history_ms:
        Length (ms) of the warm-up a new run fetches over REST (``history_days``); 0: none.
    start_after:
        Per symbol, the open time (ms UTC) of the last bar a resumed run processed; None for a
        new run.
    sleep:
        Called with seconds to wait between two looks at the queue; defaults to waiting on the
        feed's stop event.
    on_stale:
        Told, on the thread running :meth:`batches`, of each symbol whose feed goes stale.
    grace_ms:
        How long a bar time waits for stragglers (ms); default ``close_grace_s + poll_s +
        timeout_s`` of ``settings``.
    budget:
        The venue's request-weight budget, shared with its other callers (an execution
        client); default: one of the feed's own, of ``settings.weight_limit``.

    Raises
    ------
    ConfigError
        When ``timeframe`` is not a timeframe name, ``history_ms < 0`` or ``start_after`` names
        a symbol not traded.
    """

    venue = VENUE
    capabilities: object = CAPABILITIES
    """What the venue offers, as its status shows it."""

    def __init__(
        self,
        settings: BinanceUsdmSettings,
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
        self._step = timeframe_ms(timeframe)
        if history_ms < 0:
            raise ConfigError(f"history must be >= 0 ms, was {history_ms}", field="history_days")
        unknown = sorted(set(start_after or {}) - set(symbols))
        if unknown:
            raise ConfigError(f"start_after names symbols not traded: {unknown}", field="symbols")
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.timeframe = timeframe
        self._settings = settings
        self._clock = clock
        self.budget = budget or VenueBudget(VENUE, limit=settings.weight_limit, clock=clock)
        self._store = store
        self._history_ms = history_ms
        self._start_after = dict(start_after or {})
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._on_stale = on_stale
        default_grace_s = settings.close_grace_s + settings.poll_s + settings.timeout_s
        self.grace_ms = grace_ms if grace_ms is not None else round(default_grace_s * 1000)
        self._history: dict[str, Candles] | None = None
        self._after: dict[str, int] = {}
        self._finished_reason: str | None = None
        self._streams: tuple[KlineStream, ...] = ()
        self._source: BinanceUsdmMarketData | None = None  # the streaming connection
        self._answered: Counter[tuple[str, int]] = Counter()  # REST answers of closed ones
        self._inbox: queue.SimpleQueue[Arrival | Exception] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stale_now: set[str] = set()
        self._since: int | None = None  # our clock when streaming began

    # -- the MarketData port ----------------------------------------------------------------
    def history(self, symbol: str) -> Candles:
        """Warm-up bars of ``symbol`` before the first live one (fetched on the first call).

        Raises
        ------
        UnknownSymbol
            When ``symbol`` is not traded here, or the venue lists no such market.
        ConfigError
            A timeframe the venue does not serve, or a resumed run too far behind the venue
            (:data:`MAX_CATCH_UP_MS`).
        VenueError
            When the venue cannot be reached (after the retries) or refuses.
        """
        if symbol not in self.symbols:
            message = f"symbol {symbol!r} is not in this feed {self.symbols}"
            raise UnknownSymbol(message, field="symbol")
        return self._prepared()[symbol]

    def batches(self) -> Iterator[dict[str, Candles]]:
        """Yield ``{symbol: one bar}`` per bar time as the bars close, until :meth:`stop`.

        Raises
        ------
        VenueError
            A permanent failure of the venue (a ban), or its failure to open.
        DataError
            A malformed bar from the venue.
        """
        self._finished_reason = None
        self._prepared()
        aligner = BarAligner(self.symbols, self._after, self.grace_ms)
        self._start()
        try:
            while not self._stop.is_set():
                self._take(aligner)
                self._watch_staleness()
                ready = aligner.ready(self._clock.now_ms())
                if not ready:
                    self._sleep(POLL_S)
                    continue
                self._keep(ready)
                for batch in ready:
                    if self._stop.is_set():
                        break
                    yield batch.bars
            self._finished_reason = STOPPED
        finally:
            self._close()

    def stop(self) -> None:
        """Make :meth:`batches` end within :data:`POLL_S` plus :data:`CLOSE_S`; any thread."""
        self._stop.set()

    @property
    def finished_reason(self) -> str | None:
        """``"stopped"`` once :meth:`batches` has ended on :meth:`stop`, else None."""
        return self._finished_reason

    @property
    def exhausted(self) -> bool:
        """Never: a live feed always has bars to come."""
        return False

    def stale(self) -> tuple[FeedStale, ...]:
        """The symbols with no closed bar for more than 2 periods, now (none while not
        streaming, nor in its first 2 periods); safe from any thread."""
        since = self._since
        if since is None or self._clock.now_ms() - since <= STALE_PERIODS * self._step:
            return ()
        return tuple(s for stream in self._streams if (s := stream.staleness()) is not None)

    def venue_status(self) -> VenueStatus:
        """The connection now: streams open, REST answers, the budget's weight, hold and ban,
        clock offset and stale symbols (safe from any thread)."""
        return venue_status(
            venue=self.venue,
            capabilities=self.capabilities,
            time=self._clock.now_ms(),
            source=self._source,
            answered=self._answered,
            streams=self._streams,
            budget=self.budget.state(),
            stale=[s.symbol for s in self.stale()],
        )

    # -- history ----------------------------------------------------------------------------
    def _market_data(self) -> BinanceUsdmMarketData:
        """A new connection to the venue's market data (a feed of another venue's bars
        overrides this)."""
        return BinanceUsdmMarketData(self._settings, clock=self._clock, budget=self.budget)

    def _prepared(self) -> dict[str, Candles]:
        if self._history is None:
            # A loop of its own, in a thread of its own: the caller may be on an event loop.
            with ThreadPoolExecutor(1, thread_name_prefix="live-feed-history") as pool:
                self._history = pool.submit(asyncio.run, self._fetch_history()).result()
        return self._history

    async def _fetch_history(self) -> dict[str, Candles]:
        source = self._market_data()
        try:
            await source.open()
            source.check_timeframe(self.timeframe)
            for symbol in self.symbols:
                source.market(symbol)
            newest = source.last_closed(self.timeframe)
            if self._start_after:
                self._after = self._resume_points(newest)
                stored = {s: self._stored(s, self._after[s]) for s in self.symbols}
            else:
                self._after = dict.fromkeys(self.symbols, newest)
                stored = dict.fromkeys(self.symbols, Candles.empty())
            history = {}
            for symbol in self.symbols:
                bars = stored[symbol]
                if not len(bars) and self._history_ms:
                    end = self._after[symbol] + self._step
                    start = end - self._history_ms
                    bars = await source.backfill(symbol, self.timeframe, start, end)
                    if len(bars):
                        self._store.write(self.venue, symbol, self.timeframe, bars)
                history[symbol] = bars
            return history
        finally:
            self._answered.update(source.exchange.responses)
            await source.close()

    def _resume_points(self, newest: int) -> dict[str, int]:
        """Where each symbol's stream resumes: after its last processed bar (a symbol without
        one: after the latest of the others)."""
        latest = max(self._start_after.values())
        after = {s: self._start_after.get(s, latest) for s in self.symbols}
        behind = newest - min(after.values())
        if behind > MAX_CATCH_UP_MS:
            raise ConfigError(
                f"the run in this data directory last traded a bar {behind / 86_400_000:.1f} "
                f"days before {self.venue}'s newest (more than "
                f"{MAX_CATCH_UP_MS // 86_400_000}): it is no live run, or was down too long to "
                "catch up; use another "
                "LOOTCAPITAL_DATA_DIR",
                field="data_dir",
            )
        return after

    def _stored(self, symbol: str, last: int) -> Candles:
        try:
            return self._store.read(self.venue, symbol, self.timeframe, None, last + 1)
        except UnknownSymbol:
            return Candles.empty()

    # -- the engine's side ------------------------------------------------------------------
    def _take(self, aligner: BarAligner) -> None:
        """Move what arrived into ``aligner``; raise a failure of the streaming thread."""
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Exception):
                raise item
            late = aligner.add(item)
            if len(late):
                logger.warning(
                    "%s %s: %d bar(s) from %d arrived after their time was traded without "
                    "them: dropped (not traded, not stored)",
                    self.venue, item.symbol, len(late), int(late.open_time[0]),
                )  # fmt: skip

    def _keep(self, ready: list[Batch]) -> None:
        """Store the bars about to be traded, and say which stragglers were left out."""
        by_symbol: dict[str, Candles] = {}
        for batch in ready:
            for symbol, bars in batch.bars.items():
                by_symbol[symbol] = by_symbol.get(symbol, Candles.empty()).concat(bars)
            for symbol in batch.missing:
                logger.warning(
                    "%s %s: no bar at %d within %.1f s of the others: traded without it",
                    self.venue, symbol, batch.time, self.grace_ms / 1000,
                )  # fmt: skip
        for symbol, bars in by_symbol.items():
            self._store.write(self.venue, symbol, self.timeframe, bars)

    def _watch_staleness(self) -> None:
        stale = self.stale()
        now = {s.symbol for s in stale}
        for event in stale:
            if event.symbol not in self._stale_now:
                logger.warning(
                    "%s %s: no bar for %.0f s: stale",
                    self.venue, event.symbol, event.silent_ms / 1000,
                )  # fmt: skip
                if self._on_stale is not None:
                    self._on_stale(event)
        for symbol in sorted(self._stale_now - now):
            logger.info("%s %s: bars again, no longer stale", self.venue, symbol)
        self._stale_now = now

    # -- the streaming thread ---------------------------------------------------------------
    def _start(self) -> None:
        self._since = self._clock.now_ms()
        started = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._stream(started)), name="live-feed", daemon=True
        )
        self._thread.start()
        started.wait()

    async def _stream(self, started: threading.Event) -> None:
        """Open the venue, stream every symbol until cancelled; a failure goes to the queue."""
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        source = self._market_data()
        pumps: list[asyncio.Task[None]] = []
        try:
            await source.open()
            self._source = source
            streams = tuple(
                source.stream(s, self.timeframe, after_ms=self._after[s]) for s in self.symbols
            )
            self._streams = streams
            pumps = [asyncio.create_task(self._pump(stream)) for stream in streams]
            pumps.append(asyncio.create_task(source.keep_time()))  # ends only when cancelled
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            failure = next(iter(done)).exception()  # a pump only ends on a failure
            self._inbox.put(failure if isinstance(failure, Exception) else RuntimeError(failure))
        except asyncio.CancelledError:
            pass  # stopped
        except Exception as exc:
            self._inbox.put(exc)
        finally:
            self._streams = ()
            for pump in pumps:
                pump.cancel()
            self._answered.update(source.exchange.responses)
            self._source = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(source.close(), CLOSE_S)

    async def _pump(self, stream: KlineStream) -> None:
        """Hand ``stream``'s bars over as they come; a transient REST failure (after the
        retries) is waited out, as the stream keeps its place, and so is a ban (a 418): the
        venue is not asked before its end (the shared budget refuses at once until then),
        and the missed bars are fetched after it."""
        while True:
            try:
                bars = await anext(stream)
            except (TransientVenueError, VenueBanned) as exc:
                logger.warning("%s %s: %s; trying again", self.venue, stream.symbol, exc)
                await asyncio.sleep(self._settings.max_backoff_s)
                continue
            self._inbox.put(Arrival(stream.symbol, bars, self._clock.now_ms()))

    def _close(self) -> None:
        loop, task, thread = self._loop, self._task, self._thread
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
        if thread is not None:
            thread.join(CLOSE_S * 2)
        self._streams = ()
