"""Live trading's wiring (``serve --mode live``) and the checks that refuse a start that could
trade by mistake; the composition root (:func:`lootcapital.bootstrap.bootstrap`) calls them.

A live run trades Binance USDⓈ-M (its demo environment with ``venues.binance_usdm.demo``, or
real money with ``--live`` and ``live_confirm``) or MEXC futures (real money only): the venue's
closed klines drive the kernel (:class:`~adapters.venues.binance_usdm.live_feed.LiveFeed`, as
paper trading on live data does, or :class:`~adapters.venues.mexc.live_feed.MexcLiveFeed`) and
its orders go to the venue
(:class:`~adapters.venues.binance_usdm.execution.BinanceUsdmExecution`,
:class:`~adapters.venues.mexc.execution.MexcExecution`). Both share one request-weight budget
per venue, since the venue counts them together (Binance: ``weight_limit`` a minute; MEXC: 20
requests per 2 s, :func:`~adapters.venues.mexc.client.mexc_budget`). On MEXC the
order-entry probe runs first: live mode is refused, with its answer, when the account cannot
place orders.

ccxt is imported only when a venue is opened, so a replay server never loads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from adapters.venues.binance_usdm.budget import binance_budget
from adapters.venues.binance_usdm.capabilities import VENUE as BINANCE_USDM
from adapters.venues.binance_usdm.settings import PRODUCTION_REST_URL, PRODUCTION_WS_URL
from adapters.venues.budget import VenueBudget
from adapters.venues.mexc.capabilities import VENUE as MEXC
from domain.errors import ConfigError
from domain.model import Instrument, Order, Position
from domain.ports import BarMatcher, CandleStore, Clock, ExecutionClient, MarketData, RunState
from domain.timeframes import timeframe_ms
from lootcapital.settings import Settings

if TYPE_CHECKING:
    from adapters.venues.binance_usdm.execution import BinanceUsdmExecution
    from adapters.venues.binance_usdm.funding_feed import VenueFunding
    from adapters.venues.binance_usdm.venue_account import Spent, VenueMargin
    from adapters.venues.mexc.execution import MexcExecution
    from adapters.venues.mexc.order_entry import OrderEntry

logger = logging.getLogger(__name__)

LIVE = "live"
"""The mode of a run whose orders go to a venue (stored with the run, shown in ``status``)."""
VENUES = (BINANCE_USDM, MEXC)
"""The venues ``serve --mode live --venue`` names."""

_BINANCE_ENV = "LOOTCAPITAL_VENUES__BINANCE_USDM__"
_MEXC_ENV = "LOOTCAPITAL_VENUES__MEXC__"


@dataclass(frozen=True, slots=True)
class LiveStart:
    """What ``serve --mode live`` was asked for: the ``venue`` (one of :data:`VENUES`), and
    ``real_money`` when ``--live`` was given (Binance's demo comes from the settings:
    ``venues.binance_usdm.demo``, which ``--demo`` sets)."""

    venue: str
    real_money: bool = False

    def __post_init__(self) -> None:
        if self.venue not in VENUES:
            raise ConfigError(
                f"live trading is on {' or '.join(VENUES)}, not {self.venue!r}", field="venue"
            )


def check_live_start(settings: Settings, start: LiveStart, clock: Clock) -> None:
    """Refuse a live start that is not asked for in every way it must be, before anything is
    stored or sent: real money needs ``start.real_money`` (``--live``) and
    ``settings.live_confirm``; Binance's demo must not point at its production URLs; orders
    need the venue's API key and secret. On MEXC the order-entry probe runs (at ``clock``),
    and live mode is refused with its answer when the account cannot place orders.

    Raises
    ------
    ConfigError
        (``field`` the setting to change) Saying what is missing and how to set it.
    VenueError
        MEXC cannot be reached for the probe.
    """
    if start.venue == MEXC:
        _check_real_money(start, settings, MEXC)
        _check_mexc_keys(settings)
        _refuse_mexc(_probe_mexc(settings, clock))
        return
    venue = settings.venues.binance_usdm
    if venue.demo and start.real_money:
        raise ConfigError(
            "--live asks for real money, but venues.binance_usdm.demo is true (--demo or "
            f"{_BINANCE_ENV}DEMO): give one of them",
            field="live",
        )
    if venue.demo:
        urls = (
            ("rest_url", venue.rest_url, PRODUCTION_REST_URL),
            ("ws_url", venue.ws_url, PRODUCTION_WS_URL),
        )
        for name, set_to, url in urls:
            if set_to == url:
                raise ConfigError(
                    f"venues.binance_usdm.demo is true but {name} is Binance's production "
                    f"endpoint {url}: unset {_BINANCE_ENV}{name.upper()} to trade the demo, "
                    "or trade real money with --live",
                    field=f"venues.binance_usdm.{name}",
                )
    else:
        _check_real_money(start, settings, BINANCE_USDM)
    if venue.api_key is None or venue.api_secret is None:
        raise ConfigError(
            f"live trading on {BINANCE_USDM} needs the account's API key and secret: set "
            f"venues.binance_usdm.api_key and api_secret ({_BINANCE_ENV}API_KEY and "
            f"{_BINANCE_ENV}API_SECRET), or api_key_file and api_secret_file (files readable "
            "by their owner only)",
            field="venues.binance_usdm.api_key",
        )


def _check_real_money(start: LiveStart, settings: Settings, venue: str) -> None:
    missing = []
    if not start.real_money:
        missing.append("--live")
    if not settings.live_confirm:
        missing.append("live_confirm = true in the settings (LOOTCAPITAL_LIVE_CONFIRM=true)")
    if not missing:
        return
    demo = " (or --demo for Binance's demo environment)" if venue == BINANCE_USDM else ""
    raise ConfigError(
        f"live trading on {venue} trades real money and needs both --live and live_confirm = "
        f"true in the settings; missing: {' and '.join(missing)}{demo}",
        field="live_confirm" if start.real_money else "live",
    )


def _check_mexc_keys(settings: Settings) -> None:
    mexc = settings.venues.mexc
    if mexc.api_key is None or mexc.api_secret is None:
        raise ConfigError(
            f"live trading on {MEXC} needs the account's API key and secret: set "
            f"venues.mexc.api_key and api_secret ({_MEXC_ENV}API_KEY and "
            f"{_MEXC_ENV}API_SECRET), or api_key_file and api_secret_file (mode 600)",
            field="venues.mexc.api_key",
        )


def _probe_mexc(settings: Settings, clock: Clock) -> list[OrderEntry]:
    """The order-entry probe of every traded symbol, on a loop of its own (the caller may be
    on one)."""
    from adapters.venues.mexc.market_data import MexcMarketData  # ccxt: loaded only here

    async def probe() -> list[OrderEntry]:
        async with MexcMarketData(settings.venues.mexc, clock=clock) as venue:
            return [await venue.probe_order_entry(symbol) for symbol in settings.symbols]

    with ThreadPoolExecutor(1, thread_name_prefix="mexc-probe") as pool:
        return pool.submit(asyncio.run, probe()).result()


def _refuse_mexc(entries: list[OrderEntry]) -> None:
    """Refuse live mode on MEXC, with the venue's reason, where the account cannot place
    orders; log that it can."""
    for entry in entries:
        if not entry.allowed:
            raise ConfigError(
                f"{MEXC} refuses order entry through the API for this account on "
                f"{entry.symbol}: {entry.reason}; live mode is refused",
                field="venue",
            )
    symbols = ", ".join(e.symbol for e in entries)
    logger.info("%s takes orders from this account (%s: the probe passed)", MEXC, symbols)


def venue_rules(
    settings: Settings,
    shipped: Mapping[str, Instrument],
    *,
    signed: bool,
    clock: Clock,
    venue: str = BINANCE_USDM,
) -> dict[str, Instrument]:
    """The trading rules of a run on ``venue``'s live bars, read from the venue at start.

    On Binance USDⓈ-M: tick, lot step, minimum notional, and with ``signed``, a live run, the
    account's leverage brackets too, instead of the ``shipped`` catalogue, whose brackets a
    paper run keeps. On MEXC: the ``shipped`` rules, each step coarsened where it is not a
    whole number of the contract's (the lot step to ``contractSize``, the tick to
    ``priceUnit``), so that every order is a whole number of contracts at a valid price.

    Raises
    ------
    UnknownSymbol
        (``field="symbols"``) Naming each symbol the venue does not list.
    VenueError
        The venue cannot be reached.
    """
    if venue == MEXC:
        return _mexc_rules(settings, shipped, clock)
    from adapters.venues.binance_usdm.instruments import venue_instruments  # ccxt: only here

    rules = venue_instruments(
        settings.venues.binance_usdm, settings.symbols, clock=clock, signed=signed
    )
    if not signed:
        rules = {s: replace(r, brackets=shipped[s].brackets) for s, r in rules.items()}
    logger.info("%s: trading rules of %s read from the venue", BINANCE_USDM, ", ".join(rules))
    return rules


def _mexc_rules(
    settings: Settings, shipped: Mapping[str, Instrument], clock: Clock
) -> dict[str, Instrument]:
    from adapters.venues.mexc.market_data import Contract, MexcMarketData  # ccxt: only here

    async def contracts() -> list[Contract]:
        async with MexcMarketData(settings.venues.mexc, clock=clock) as venue:
            return [venue.contract(symbol) for symbol in settings.symbols]

    with ThreadPoolExecutor(1, thread_name_prefix="mexc-rules") as pool:
        found = pool.submit(asyncio.run, contracts()).result()
    rules = {}
    for contract in found:
        rule = shipped[contract.symbol]
        step, tick = rule.step_size, rule.tick_size
        rules[contract.symbol] = replace(
            rule,
            step_size=step if step % contract.size == 0 else contract.size,
            tick_size=tick if tick % contract.price_tick == 0 else contract.price_tick,
        )
    logger.info("%s: lot steps and ticks of %s checked against its contracts", MEXC,
                ", ".join(rules))  # fmt: skip
    return rules


def live_feed_factory(
    settings: Settings,
    store: CandleStore,
    clock: Clock,
    publish: Callable[[list[object]], None],
    budget: VenueBudget | None = None,
    funding: VenueFunding | None = None,
    venue: str = BINANCE_USDM,
) -> Callable[[dict[str, int] | None, Callable[[float], object]], MarketData]:
    """The live feed of ``venue`` (``settings.feed`` of paper on live bars, or a live run's
    venue), resuming after the given bars: ``settings.history_days`` of warm-up for a new
    run, its bars appended to ``store``, timed by ``clock``; each symbol going stale is handed
    to ``publish`` as a :class:`~domain.events.FeedStale`. ``budget`` is the venue's request
    weight shared with an execution client (None: ``funding``'s, else the feed's own). With
    ``funding`` (:func:`venue_funding` of the same venue), the venue's funding rates and
    marks are refreshed before each batch of bars is traded."""
    from adapters.venues.binance_usdm.funding_feed import FundedFeed  # ccxt: only when live
    from adapters.venues.binance_usdm.live_feed import LiveFeed
    from adapters.venues.mexc.live_feed import MexcLiveFeed

    history_ms = round(settings.history_days * timeframe_ms("1d"))
    if budget is None and funding is not None:
        budget = funding.budget

    def live(start_after: dict[str, int] | None, sleep: Callable[[float], object]) -> MarketData:
        feed: LiveFeed
        if venue == MEXC:
            feed = MexcLiveFeed(
                settings.venues.mexc, symbols=settings.symbols, timeframe=settings.timeframe,
                clock=clock, store=store, history_ms=history_ms, start_after=start_after,
                sleep=sleep, on_stale=lambda event: publish([event]), budget=budget,
            )  # fmt: skip
        else:
            feed = LiveFeed(
                settings.venues.binance_usdm,
                symbols=settings.symbols,
                timeframe=settings.timeframe,
                clock=clock,
                store=store,
                history_ms=history_ms,
                start_after=start_after,
                sleep=sleep,
                on_stale=lambda event: publish([event]),
                budget=budget,
            )
        bar_ms = timeframe_ms(settings.timeframe)
        return feed if funding is None else FundedFeed(feed, funding, bar_ms)

    return live


def venue_funding(settings: Settings, clock: Clock, venue: str = BINANCE_USDM) -> VenueFunding:
    """``venue``'s funding rates and 1 h mark prices of ``settings.symbols`` for paper trading
    on its live bars (Binance USDⓈ-M's, or MEXC's: its fair price is its mark): attached to
    each simulated venue's futures book, and refreshed through the feed
    (:func:`live_feed_factory`), they settle funding as the files do in a backtest. Its own
    request budget (Binance: ``venues.binance_usdm.weight_limit`` a minute; MEXC: 20 requests
    per 2 s), which the feed shares; requests timed by ``clock``."""
    if venue == MEXC:
        from adapters.venues.mexc.client import mexc_budget  # ccxt: only when live
        from adapters.venues.mexc.funding_feed import MexcVenueFunding

        mexc = settings.venues.mexc
        return MexcVenueFunding(
            mexc, symbols=settings.symbols, clock=clock, budget=mexc_budget(clock)
        )
    from adapters.venues.binance_usdm.funding_feed import VenueFunding  # ccxt: only when live

    binance = settings.venues.binance_usdm
    budget = binance_budget(binance, clock)
    return VenueFunding(binance, symbols=settings.symbols, clock=clock, budget=budget)


def _binance_client(
    settings: Settings, clock: Clock, symbols: Sequence[str], budget: VenueBudget | None
) -> BinanceUsdmExecution:
    from adapters.venues.binance_usdm.execution import BinanceUsdmExecution

    return BinanceUsdmExecution(
        settings.venues.binance_usdm,
        clock=clock,
        leverage=dict.fromkeys(symbols, settings.leverage),
        margin_mode=settings.margin_mode,
        budget=budget,
    )


def _mexc_client(
    settings: Settings, clock: Clock, symbols: Sequence[str], budget: VenueBudget | None
) -> MexcExecution:
    from adapters.venues.mexc.execution import MexcExecution

    return MexcExecution(
        settings.venues.mexc,
        clock=clock,
        symbols=symbols,
        margin_mode=settings.margin_mode,
        leverage=dict.fromkeys(symbols, settings.leverage),
        budget=budget,
    )


_CLIENTS: Mapping[str, Callable[..., BinanceUsdmExecution | MexcExecution]] = {
    BINANCE_USDM: _binance_client,
    MEXC: _mexc_client,
}
"""Each venue's execution client, from the settings, the clock, the symbols and the budget."""


class LiveVenue:
    """The venue of one live run (Binance USDⓈ-M or MEXC): its feed and its execution client.
    They share one request-weight budget (Binance: ``venues.binance_usdm.weight_limit`` a
    minute; MEXC: 20 requests per 2 s).

    The execution client starts on the kernel's first build (leverage ``settings.leverage``
    and ``settings.margin_mode`` set on every traded symbol and read back; the user-data
    stream, or MEXC's private websocket, opened) and serves every later build of the process
    (a kernel rebuilt after an error); :meth:`close` ends it. Its requests are timed by
    ``clock`` (the wall clock, plus the venue's measured offset), never by the kernel's market
    clock.

    Parameters
    ----------
    settings:
        The server's settings (venue, symbols, timeframe, leverage, margin mode).
    store:
        The candle store the feed appends every bar to.
    clock:
        Wall time (ms UTC): the feed's and the client's.
    publish:
        Hears of each symbol whose feed goes stale.
    venue:
        One of :data:`VENUES`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: CandleStore,
        clock: Clock,
        publish: Callable[[list[object]], None],
        venue: str = BINANCE_USDM,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.venue = venue
        if venue == BINANCE_USDM:
            self.budget = binance_budget(settings.venues.binance_usdm, clock)
        else:
            from adapters.venues.mexc.client import mexc_budget  # ccxt: loaded only here

            self.budget = mexc_budget(clock)
        self.feed = live_feed_factory(settings, store, clock, publish, self.budget, venue=venue)
        self.client: BinanceUsdmExecution | MexcExecution | None = None

    @property
    def reconcile_s(self) -> float:
        """Seconds between two reconciliations with the venue (its ``reconcile_s``)."""
        venues = self.settings.venues
        return (venues.mexc if self.venue == MEXC else venues.binance_usdm).reconcile_s

    def execution(
        self, state: RunState, clock: Clock, positions: list[Position], orders: list[Order]
    ) -> tuple[ExecutionClient, BarMatcher | None]:
        """The run's execution client (an ``ExecutionFactory``: the kernel's ``clock`` and the
        stored ``positions`` and ``orders`` are the kernel's to reconcile); no bar matcher.

        Raises
        ------
        ConfigError
            A symbol whose leverage or margin mode the venue reads back otherwise.
        UnknownSymbol
            A symbol the venue does not list.
        VenueError
            The venue cannot be reached, or refuses the leverage or margin mode (e.g. a margin
            mode change while a position is open).
        """
        if self.client is None:
            client = _CLIENTS[self.venue](self.settings, self.clock, state.symbols, self.budget)
            client.start()
            self.client = client
            logger.info(
                "%s: leverage %dx, %s margin set on %s; user-data stream open",
                self.venue, self.settings.leverage, self.settings.margin_mode,
                ", ".join(state.symbols),
            )  # fmt: skip
        return self.client, None

    def margin(self, execution: ExecutionClient, spent: Spent) -> VenueMargin | None:
        """The venue's balance and leverage as the run's margining, when ``execution`` is
        this venue's started Binance client (None for another, e.g. a test's, and on MEXC,
        whose run sizes on its own cash with the leverage MEXC confirmed); ``spent`` gives the
        run's fees and funding paid."""
        from adapters.venues.binance_usdm.execution import BinanceUsdmExecution
        from adapters.venues.binance_usdm.venue_account import VenueMargin

        client = self.client
        if not isinstance(client, BinanceUsdmExecution) or execution is not client:
            return None
        return VenueMargin(client, max_leverage=self.settings.max_leverage, spent=spent)

    @property
    def leverage(self) -> Mapping[str, int]:
        """Leverage per symbol as the venue confirmed it (empty before the client started)."""
        return MappingProxyType({}) if self.client is None else self.client.leverage

    def close(self) -> None:
        """Close the execution client's stream and connections (the feed closes with its
        run)."""
        if self.client is not None:
            self.client.close()
            self.client = None
