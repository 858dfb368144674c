"""``lootcapital data download``: a venue's closed bars over REST into the candle store.

The bars land in the store ``lootcapital data import`` writes (exchange key = the venue's
name), validated as imported files are. A second run resumes after the last stored bar; the
bars are written every :data:`FLUSH_BARS` and when the run stops for any reason, so an
interrupted download keeps what it fetched. Holes in the venue's answer are reported, never
filled.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from adapters.clock import SystemClock
from adapters.marketdata.parquet_store import ParquetCandleStore
from domain.candles import Candles, Gap, find_gaps
from domain.errors import DomainError, VenueError
from domain.ports import CandleStore, StoredSeries
from domain.symbols import venue_symbol
from domain.timeframes import timeframe_ms
from lootcapital.progress_bar import ProgressBar
from lootcapital.report import fmt_ms
from lootcapital.settings import Settings, load_settings

VENUES = ("binance-usdm", "mexc")
FLUSH_BARS = 20_000
"""Bars fetched between two writes to the store (a write rewrites the series' file)."""
EXIT_VENUE = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


@dataclass(frozen=True, slots=True)
class DownloadReport:
    """What one download fetched: ``bars`` from ``first_open_time`` to ``last_open_time``
    (ms UTC; None when none), after ``resumed_after`` (the last bar already stored, or None),
    the ``gaps`` in the venue's answer (from the resumed bar on), the ``duplicates`` it
    dropped, and the stored series afterwards."""

    venue: str
    symbol: str
    timeframe: str
    bars: int
    first_open_time: int | None
    last_open_time: int | None
    resumed_after: int | None
    gaps: tuple[Gap, ...]
    duplicates: int
    stored: StoredSeries | None


class Page(Protocol):
    """A page of closed bars (in order) and the duplicates the venue sent in it."""

    candles: Candles
    duplicates: int


class PageSource(Protocol):
    """What :func:`download` needs of a venue's market data
    (:class:`~adapters.venues.binance_usdm.market_data.BinanceUsdmMarketData` and
    :class:`~adapters.venues.mexc.market_data.MexcMarketData` have it)."""

    def pages(
        self, symbol: str, timeframe: str, start_ms: int, end_ms: int | None = None
    ) -> AsyncIterator[Page]:
        """Closed bars with ``start_ms <= open_time < end_ms``, page by page."""
        ...

    def last_closed(self, timeframe: str) -> int:
        """Open time (ms UTC) of the venue's newest closed bar."""
        ...


async def download(
    source: PageSource,
    store: CandleStore,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> DownloadReport:
    """Fetch ``symbol``'s closed ``timeframe`` bars with ``start_ms <= open_time < end_ms``
    into ``store`` under ``venue``, resuming after the last stored bar when the stored series
    reaches ``start_ms``.

    ``progress`` is called with the fraction of the period fetched (0 to 1) after each page.

    Raises
    ------
    UnknownSymbol, ConfigError, DataError
        A symbol or timeframe the venue does not have; a malformed bar (nothing of its page
        is stored).
    VenueError
        The venue failed (after the retries); what was fetched before is stored.
    """
    step = timeframe_ms(timeframe)
    stored = _stored(store, venue, symbol, timeframe)
    resumed = None
    if stored is not None and stored.first_open_time <= start_ms <= stored.last_open_time + step:
        resumed = stored.last_open_time
    begin = start_ms if resumed is None else resumed + step
    stop = source.last_closed(timeframe) + step
    stop = stop if end_ms is None else min(stop, end_ms)
    pending, times, duplicates = Candles.empty(), [], 0
    try:
        async for page in source.pages(symbol, timeframe, begin, end_ms):
            pending = pending.concat(page.candles)
            times.append(page.candles.open_time)
            duplicates += page.duplicates
            if len(pending) >= FLUSH_BARS:
                stored, pending = store.write(venue, symbol, timeframe, pending), Candles.empty()
            if progress is not None:
                done = int(page.candles.open_time[-1]) + step - begin
                progress(done / max(stop - begin, 1))
    finally:
        if len(pending):
            stored = store.write(venue, symbol, timeframe, pending)
    if progress is not None:
        progress(1.0)
    fetched = np.concatenate(times) if times else np.empty(0, np.int64)
    since = np.array([] if resumed is None else [resumed], dtype=np.int64)
    return DownloadReport(
        venue=venue,
        symbol=symbol,
        timeframe=timeframe,
        bars=len(fetched),
        first_open_time=int(fetched[0]) if len(fetched) else None,
        last_open_time=int(fetched[-1]) if len(fetched) else None,
        resumed_after=resumed,
        gaps=tuple(find_gaps(np.concatenate([since, fetched]), step)),
        duplicates=duplicates,
        stored=stored,
    )


def _stored(store: CandleStore, venue: str, symbol: str, timeframe: str) -> StoredSeries | None:
    for series in store.list():
        if (series.exchange, series.symbol, series.timeframe) == (venue, symbol, timeframe):
            return series
    return None


def _iso_ms(text: str, name: str) -> int:
    """``--name``'s ISO date/time (UTC unless it has an offset) as ms UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DomainError(f"--{name} must be an ISO date/time, was {text!r}", field=name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _arguments(args: argparse.Namespace, settings: Settings) -> tuple[str, str, int, int | None]:
    """(symbol, timeframe, start, end) from the options, checked.

    Raises
    ------
    DomainError
        Naming the option: a bad symbol, timeframe or date, a start in the future or an end
        not after the start.
    """
    try:
        symbol = venue_symbol(args.symbol)
    except ValueError as exc:
        raise DomainError(f"--symbol: {exc}", field="symbol") from None
    timeframe = args.timeframe or settings.timeframe
    try:
        timeframe_ms(timeframe)
    except DomainError as exc:
        raise DomainError(f"--timeframe: {exc.message}", field="timeframe") from None
    start = _iso_ms(args.start, "start")
    end = None if args.end is None else _iso_ms(args.end, "end")
    now = SystemClock().now_ms()
    if start >= now:
        raise DomainError(f"--start {args.start} is in the future", field="start")
    if end is not None and end <= start:
        raise DomainError(f"--end {args.end} must be after --start {args.start}", field="end")
    return symbol, timeframe, start, end


async def _from_binance_usdm(
    settings: Settings, store: CandleStore, **options: Any
) -> DownloadReport:
    from adapters.venues.binance_usdm.budget import binance_budget
    from adapters.venues.binance_usdm.market_data import BinanceUsdmMarketData

    venue, clock = settings.venues.binance_usdm, SystemClock()
    budget = binance_budget(venue, clock)
    source = BinanceUsdmMarketData(venue, clock=clock, budget=budget)
    try:
        await source.open()
        return await download(source, store, venue="binance-usdm", **options)
    finally:
        await source.close()


async def _from_mexc(settings: Settings, store: CandleStore, **options: Any) -> DownloadReport:
    from adapters.venues.mexc.market_data import MexcMarketData

    source = MexcMarketData(settings.venues.mexc, clock=SystemClock())
    try:
        await source.open()
        return await download(source, store, venue="mexc", **options)
    finally:
        await source.close()


def cmd_data_download(args: argparse.Namespace) -> int:
    """Download a venue's history into the candle store and print what it did."""
    settings = load_settings(Path(args.config) if args.config else None)
    symbol, timeframe, start, end = _arguments(args, settings)
    shown = args.progress or sys.stderr.isatty()
    bar = ProgressBar(sys.stderr, label="download") if shown else None
    store = ParquetCandleStore(settings.data_dir)
    options = {"symbol": symbol, "timeframe": timeframe, "start_ms": start, "end_ms": end}
    try:
        fetch = _from_mexc if args.venue == "mexc" else _from_binance_usdm
        report = asyncio.run(fetch(settings, store, progress=bar, **options))
    except VenueError as exc:
        _line(f"error: {exc}", sys.stderr)
        return EXIT_VENUE
    except KeyboardInterrupt:
        _line("\ninterrupted: the bars fetched are stored; run it again to resume", sys.stderr)
        return EXIT_INTERRUPTED
    except DomainError as exc:  # the venue's refusal of a symbol or timeframe: name the option
        if exc.field in ("symbol", "timeframe"):
            raise DomainError(f"--{exc.field}: {exc.message}", field=exc.field) from None
        raise
    _report(report)
    return 0


def _line(text: str, stream: TextIO | None = None) -> None:
    (stream or sys.stdout).write(text + "\n")


def _report(r: DownloadReport) -> None:
    head = f"{r.venue} {r.symbol} {r.timeframe}:"
    resumed = "" if r.resumed_after is None else f" (resumed after {fmt_ms(r.resumed_after)})"
    if r.first_open_time is None or r.last_open_time is None:
        _line(f"{head} no new closed bars{resumed}")
    else:
        _line(
            f"{head} {r.bars:,} bars {fmt_ms(r.first_open_time)} → {fmt_ms(r.last_open_time)} "
            f"UTC{resumed}, {len(r.gaps)} gaps"
        )
    for g in r.gaps:
        _line(f"  gap: {g.bars} bars missing {fmt_ms(g.first_missing)} → "
              f"{fmt_ms(g.last_missing)}")  # fmt: skip
    if r.stored is not None:
        s = r.stored
        _line(
            f"  stored: {s.rows:,} rows {fmt_ms(s.first_open_time)} → "
            f"{fmt_ms(s.last_open_time)} UTC, {len(s.gaps)} gaps"
        )


def add_parser(data_sub: Any) -> None:
    """Add ``download`` to the ``data`` subcommand's subparsers ``data_sub``."""
    dl = data_sub.add_parser(
        "download",
        help="download a venue's closed bars over REST into the candle store",
        description="Fetch a symbol's closed bars from the venue's REST API into the candle "
        "store (the one `lootcapital data import` fills), with a progress bar on stderr. A "
        "second run resumes after the last stored bar; holes in the venue's data are "
        "reported, never filled. The venue's URLs are the LOOTCAPITAL_VENUES__<VENUE>__REST_URL "
        "settings.",
    )
    dl.add_argument("--venue", required=True, choices=VENUES, help="the venue to download from")
    dl.add_argument("--symbol", required=True, help="symbol, as BTCUSDT or BTC/USDT:USDT")
    dl.add_argument(
        "--timeframe", help="bar timeframe, e.g. 5m, 1h (default: the timeframe setting, 5m)"
    )
    dl.add_argument(
        "--start", required=True, help="first bar's open time, ISO date/time, UTC unless it has "
        "an offset (a later start when the store already holds bars from it: after its last)"
    )  # fmt: skip
    dl.add_argument(
        "--end", help="end of the period (exclusive), ISO date/time (default: up to the last "
        "closed bar)"
    )  # fmt: skip
    dl.add_argument(
        "--progress",
        action="store_true",
        help="draw a progress bar on stderr (default: only when stderr is a terminal)",
    )
    dl.set_defaults(func=cmd_data_download)
