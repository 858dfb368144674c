"""MEXC futures orders for the kernel: the ``ExecutionClient`` port over ccxt, against the real
venue or a test server speaking its contract API.

The engine is synchronous; ccxt is asyncio. :class:`MexcExecution` runs its own event loop on a
thread: each port call runs there and waits for its answer, and the private websocket (ccxt.pro's
``login`` on ``/edge``; pushes ``push.personal.order``, ``push.personal.order.deal``,
``push.personal.plan.order``) feeds the same loop. Every answer reaches the engine as the
execution events the simulated venue emits, through :meth:`~MexcExecution.drain_events`, from
the venue-neutral :class:`~adapters.venues.binance_usdm.order_tracker.OrderTracker` (ordering,
deduplication, fills before acknowledgements). MEXC pushes no positions: :meth:`positions`
asks ``position/open_positions`` each time (polled by the caller).

Submission never sends an order twice. Our client id goes as ``externalOid``. When the answer
to a submission is lost (a timeout, a 5xx, a dropped connection), the order is UNKNOWN and
looked up by client id (``order/external/{symbol}/{externalOid}``); only when MEXC does not
have it, also once MEXC's 10 s receive window has passed (a request still on its way would be
refused), is it sent again, with the same client id. A lookup that fails too leaves it UNKNOWN,
looked up again in the background with backoff. Stop-market and take-profit orders are MEXC
plan orders, which take no client id: a plan order whose answer was lost is looked for by its
terms (contract, side, volume, trigger) among the plan orders placed since it was sent.

MEXC cannot amend: modify cancels and places the order again, as ``<id>r<n>`` (plain orders) or
a new plan order, and the engine keeps seeing one order. After the private websocket reconnects,
every order not final is looked up, and fills it missed come from
``order/deal_details/{order_id}``.

With ``leverage`` given, :meth:`~MexcExecution.start` sets each symbol's leverage and margin
mode (``position/change_leverage`` of both position sides, ``openType`` the margin mode) and
reads them back (``position/leverage``). :meth:`~MexcExecution.reconcile_orders` compares the
ledger with MEXC (:mod:`~adapters.venues.mexc.reconcile`);
:meth:`~MexcExecution.funding_payments` reads the funding MEXC charged
(:mod:`~adapters.venues.mexc.funding`). Every REST request takes its weight from the venue's
shared budget when one is given, and :meth:`~MexcExecution.add_activity` adds this client's
requests and private-websocket reconnections to the venue's status.

Order entry is a capability on MEXC: whether this account may place orders is decided by the
probe (:mod:`~adapters.venues.mexc.order_entry`) before this client is used.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from adapters.venues.binance_usdm.order_tracker import OrderTracker
from adapters.venues.budget import VenueBudget
from adapters.venues.execution_loop import ExecutionLoop, keep_watching, with_client_activity
from adapters.venues.mexc.account import AccountApi, AccountExchange
from adapters.venues.mexc.capabilities import VENUE
from adapters.venues.mexc.client import Retrying, Sleep
from adapters.venues.mexc.funding import MexcFunding
from adapters.venues.mexc.market_data import Contract
from adapters.venues.mexc.orders import MexcOrders
from adapters.venues.mexc.orders_wire import open_type
from adapters.venues.mexc.parsing import contract_number
from adapters.venues.mexc.reconcile import MexcReconciler
from adapters.venues.mexc.settings import MexcSettings
from domain.errors import ConfigError, TransientVenueError, UnknownSymbol
from domain.funding import FundingPayment
from domain.margin import MarginMode
from domain.model import Order, Position
from domain.orders import ExecutionEvent
from domain.ports import Balance, Clock
from domain.reconciliation import OrderReconciliation
from domain.venues import VenueStatus

log = logging.getLogger(__name__)

_ORDER_PATH = "/api/v1/private/order/create"
_PLAN_PATH = "/api/v1/private/planorder/place"


class MexcExecution:
    """Orders, positions and balance at MEXC futures; a context manager (or :meth:`start` /
    :meth:`close`).

    Parameters
    ----------
    settings:
        URLs, keys, timeouts and retries.
    clock:
        Our time (ms UTC).
    symbols:
        The symbols this client trades, our spelling (``BTCUSDT`` for MEXC's ``BTC_USDT``).
    margin_mode:
        The margin mode of the positions orders open (``openType``).
    leverage:
        Leverage per symbol to set at start, with ``margin_mode``, and verify (None: leave
        the account's as they are).
    quote_asset:
        The account's currency (fees, balance).
    sleep:
        Waits between retries and the receive window before a lookup is final
        (``asyncio.sleep``; tests may pass one that returns at once).
    budget:
        The venue's request budget shared with the feed
        (:func:`~adapters.venues.mexc.client.mexc_budget`); None: ccxt's own limiter.

    Attributes
    ----------
    tracker:
        Our orders as the venue has answered them (submission states, counters).
    stream_opens:
        Times the private websocket logged in (1 after start; more after reconnections).
    """

    venue = VENUE

    def __init__(
        self,
        settings: MexcSettings,
        *,
        clock: Clock,
        symbols: Sequence[str],
        margin_mode: MarginMode = MarginMode.CROSS,
        leverage: Mapping[str, int] | None = None,
        quote_asset: str = "USDT",
        sleep: Sleep = asyncio.sleep,
        budget: VenueBudget | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self._clock = clock
        self._symbols = tuple(symbols)
        self._mode = margin_mode
        self._wanted = dict(leverage or {})
        self._leverage: dict[str, int] = {}
        self._quote = quote_asset
        self._sleep = sleep
        self.tracker = OrderTracker(quote_asset)
        self.stream_opens = 0
        self._exchange: AccountExchange | None = None
        self._api: AccountApi | None = None
        self._orders: MexcOrders | None = None
        self._funding: MexcFunding | None = None
        self._stream_open: asyncio.Event | None = None
        attempts = settings.retries + 1
        per_call = attempts * (settings.timeout_s + settings.max_backoff_s)
        self._loop = ExecutionLoop(
            VENUE,
            thread_name="mexc-orders",
            limit_s=attempts * 3 * per_call + attempts * 10,
            close_connections=self._close_exchange,
        )

    # -- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> MexcExecution:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Connect: load the contracts, open and log in the private websocket.

        Raises
        ------
        ConfigError
            No API key.
        UnknownSymbol
            A symbol MEXC does not list as a USDT-M perpetual.
        VenueError
            MEXC cannot be reached, refuses the login, or refuses the leverage or margin mode
            (e.g. a margin mode change while a position is open).
        ConfigError
            (``field="leverage"``) A symbol whose leverage or margin mode MEXC reads back
            otherwise.
        """
        if self.settings.api_key is None or self.settings.api_secret is None:
            raise ConfigError(
                f"{VENUE} order entry needs venues.mexc.api_key and api_secret",
                field="venues.mexc.api_key",
            )
        self._loop.start(self._open)

    def close(self) -> None:
        """Stop the stream, close the connections and the loop."""
        self._loop.stop()

    # -- ExecutionClient ----------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        """Send ``order``; answered by ``accepted`` / ``rejected`` and then its fills. An id
        this client already sent is ignored (a re-sent intent never trades twice)."""
        self._loop.run(self._desk().submit(order))

    def cancel(self, order_id: str) -> None:
        """Cancel the order; answered by ``canceled`` or ``cancel_rejected``."""
        self._loop.run(self._desk().cancel(order_id))

    def modify(
        self,
        order_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        """Replace a working order's ``qty`` (base asset), ``price`` or ``stop_price`` (quote
        currency), None keeping a value; answered by ``modified`` or ``modify_rejected``."""
        self._loop.run(self._desk().modify(order_id, qty, price, stop_price))

    def fetch_order(self, order_id: str) -> Order | None:
        """MEXC's view of the order with client id ``order_id`` (our terms when we placed it);
        None when MEXC does not have it.

        Raises
        ------
        VenueError
            MEXC cannot be asked.
        """
        return self._loop.run(self._desk().fetch(order_id))

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Working orders and untriggered plan orders, oldest first.

        Raises
        ------
        VenueError
            MEXC cannot be asked.
        """
        return self._loop.run(self._desk().open_orders(symbol))

    def positions(self) -> list[Position]:
        """Every non-flat position in a traded contract (polled: MEXC pushes none)."""
        return self._loop.run(self._rest().positions())

    def balance(self) -> Balance:
        """The quote asset's wallet (equity − unrealized PnL) and equity."""
        return self._loop.run(self._rest().balance(self._quote))

    def drain_events(self) -> list[ExecutionEvent]:
        """Execution events since the last call, oldest first."""
        return self._loop.call(self.tracker.drain)

    # -- Reconciling --------------------------------------------------------------------------
    def reconcile_orders(
        self, orders: Sequence[Order], known_fills: Collection[str], since: int
    ) -> OrderReconciliation:
        """Compare the ledger's open ``orders`` and its fills since ``since`` (ms UTC; ids
        ``known_fills``) with MEXC's orders and deals; the repairs come from
        :meth:`drain_events` (see :mod:`~adapters.venues.mexc.reconcile`).

        Raises
        ------
        VenueError
            MEXC cannot be asked.
        """
        reconciler = MexcReconciler(self._rest(), self._desk(), self.tracker, self._clock.now_ms)
        return self._loop.run(reconciler.run(list(orders), set(known_fills), since))

    # -- PaysFunding ----------------------------------------------------------------------------
    def funding_payments(
        self, since: int, booked: Collection[tuple[str, int]]
    ) -> list[FundingPayment]:
        """The funding the account paid or received at MEXC in the traded symbols at funding
        times from ``since`` (ms UTC) on, but those in ``booked`` (``(symbol, time)`` pairs),
        oldest first (see :mod:`~adapters.venues.mexc.funding`).

        Raises
        ------
        VenueError
            MEXC cannot be asked.
        """
        assert self._funding is not None, "started"
        return self._loop.run(self._funding.payments(since, set(booked)))

    # -- ReportsActivity ------------------------------------------------------------------------
    def add_activity(self, status: VenueStatus) -> VenueStatus:
        """``status`` (the venue's market-data connection) with this client's REST answers
        added to its ``requests``, its submissions whose answer was lost as ``"<path>
        unknown"``, the private websocket's reopenings as its ``reconnects["user-data"]``, its
        pushes absorbed as its ``user_events`` and the orders' submit → acknowledgement
        latencies as its ``order_latency``; safe from any thread (counters are copied whole)."""
        exchange = self._exchange
        if status.venue != VENUE or exchange is None:
            return status
        return with_client_activity(
            status,
            responses=exchange.responses,
            lost_answers=self.tracker.lost_answers,
            lost_paths=(_ORDER_PATH, _PLAN_PATH),
            stream_opens=self.stream_opens,
            user_events=self.tracker.user_events(),
            order_latency=self.tracker.latency.snapshot(),
        )

    @property
    def leverage(self) -> Mapping[str, int]:
        """Leverage per symbol as MEXC confirmed it at start (read-only view)."""
        return MappingProxyType(self._leverage)

    # -- plumbing -----------------------------------------------------------------------------
    def _rest(self) -> AccountApi:
        assert self._api is not None, "started"
        return self._api

    def _desk(self) -> MexcOrders:
        assert self._orders is not None, "started"
        return self._orders

    async def _open(self) -> None:
        self._stream_open = asyncio.Event()
        exchange = AccountExchange(
            self.settings, clock=self._clock, on_private=self._on_private, budget=self.budget
        )
        self._exchange = exchange
        call = Retrying(self.settings, sleep=self._sleep)
        await call(exchange.load_markets)
        contracts = {symbol: _contract(exchange, symbol) for symbol in self._symbols}
        self._api = AccountApi(exchange, call, contracts, self.settings.secrets())
        self._funding = MexcFunding(exchange, call, contracts)
        self._orders = MexcOrders(
            self._api, self.tracker, self.settings, clock=self._clock, margin_mode=self._mode,
            spawn=self._loop.spawn, sleep=self._sleep,
        )  # fmt: skip
        for symbol, leverage in self._wanted.items():
            await self._configure(symbol, leverage)
        self._loop.spawn(self._watch())
        try:
            await asyncio.wait_for(self._stream_open.wait(), self.settings.timeout_s * 3)
        except TimeoutError:
            raise TransientVenueError(
                f"{VENUE} private websocket did not log in within {self.settings.timeout_s * 3} s"
            ) from None

    async def _configure(self, symbol: str, leverage: int) -> None:
        """Set ``symbol``'s leverage and margin mode, and read them back."""
        api, code = self._rest(), open_type(self._mode)
        await api.set_leverage(symbol, leverage, code)
        found = await api.leverage(symbol)
        if not found or any(row != (leverage, code) for row in found):
            raise ConfigError(
                f"{VENUE} reads {symbol}'s leverage and openType back as {found}, not "
                f"{leverage}x {self._mode} (openType {code})",
                field="leverage",
            )
        self._leverage[symbol] = leverage

    async def _close_exchange(self) -> None:
        if self._exchange is not None:
            await self._exchange.close()

    # -- the private websocket ----------------------------------------------------------------
    def _on_private(self, message: dict[str, Any]) -> None:
        if message.get("channel") != "rs.login":
            if self._orders is not None:
                self._orders.pushes.on_private(message)
            return
        if message.get("data") != "success":
            log.error("%s private websocket login refused: %s", VENUE, message.get("data"))
            return
        self.stream_opens += 1
        assert self._stream_open is not None
        self._stream_open.set()
        if self.stream_opens > 1:
            self._loop.spawn(self._desk().resync())

    async def _watch(self) -> None:
        """Keep the private websocket open (pushes arrive through :meth:`_on_private`)."""
        exchange = self._exchange
        assert exchange is not None
        await keep_watching(
            exchange.watch_orders,
            backoff_s=self.settings.backoff_s,
            max_backoff_s=self.settings.max_backoff_s,
            on_lost=_log_lost_stream,
        )


def _log_lost_stream(exc: Exception) -> None:
    log.warning("%s private websocket lost: %s", VENUE, exc)


def _contract(exchange: AccountExchange, symbol: str) -> Contract:
    """The USDT-M perpetual of our ``symbol`` among the loaded markets.

    Raises
    ------
    UnknownSymbol
        (``field="symbol"``) When MEXC lists no such linear perpetual.
    """
    for market in (exchange.markets or {}).values():
        venue_id = str(market.get("id", ""))
        if market.get("swap") and market.get("linear") and venue_id.replace("_", "") == symbol:
            info: dict[str, Any] = market.get("info") or {}
            source = f"{VENUE} {venue_id} contract detail"
            return Contract(
                symbol, str(market["symbol"]), venue_id,
                contract_number(info, "contractSize", source=source),
                contract_number(info, "priceUnit", source=source),
            )  # fmt: skip
    raise UnknownSymbol(f"{symbol!r} is not a {VENUE} perpetual", field="symbol")
