"""Binance USDⓈ-M orders for the kernel: the ``ExecutionClient`` port (and the leverage side of
``MarginAccount``) over ccxt, against the real venue, its demo, or a test server.

The engine is synchronous; ccxt is asyncio. :class:`BinanceUsdmExecution` runs its own event
loop on a thread: each port call runs there and waits for its answer, and the user-data stream
(``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE``) feeds the same loop, so all state changes on one
thread. Every answer reaches the engine as the execution events the simulated venue emits
(accepted, rejected, fills, canceled, expired, modified, cancel/modify refused, liquidation),
through :meth:`~BinanceUsdmExecution.drain_events` (see
:mod:`~adapters.venues.binance_usdm.order_tracker` for the ordering and deduplication).

Submission never sends an order twice. Our deterministic client id goes as
``newClientOrderId`` (``clientAlgoId`` for stop, take-profit and trailing orders, which live in
the Algo Order API). When the answer to a submission is lost (a timeout, a 5xx, a dropped
connection: Binance says the execution status is then unknown), the order is UNKNOWN and
looked up by client id; only when the venue does not have it, also after the request's receive
window has passed (Binance refuses a request older than ``recvWindow``, so one still on its way
cannot land later), is it sent again, with the same client id. A lookup that fails too leaves
it UNKNOWN (the engine's order stays ``pending_new``), looked up again in the background with
backoff; meanwhile a cancel settles it first, and a second submit of the id does nothing.

Modify amends a limit order in place (``PUT /fapi/v1/order``); an algo order, which Binance
cannot amend, is canceled and placed again as ``<id>r<n>``, and the engine keeps seeing one
order (its events carry our id). After the user-data stream reconnects, every order not final
is looked up, and fills it missed come from ``GET /fapi/v1/userTrades``.

At start the leverage and margin mode of each symbol are set and read back
(``GET /fapi/v1/symbolConfig``); a symbol the venue does not hold as asked stops the start.
The funding the venue settled on the account is read for the reconciliation from its income
history (:meth:`~BinanceUsdmExecution.funding_payments`, see
:mod:`~adapters.venues.binance_usdm.funding_income`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from adapters.venues.binance_usdm.account_exchange import (
    AccountExchange,
    VenueRefusal,
    secret_free,
)
from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.client import Retrying, Sleep
from adapters.venues.binance_usdm.funding_income import FundingIncome
from adapters.venues.binance_usdm.order_tracker import OrderTracker
from adapters.venues.binance_usdm.reconcile import OrderReconciler
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.binance_usdm.trading_api import TradingApi
from adapters.venues.binance_usdm.venue_orders import VenueOrders
from adapters.venues.budget import VenueBudget
from adapters.venues.execution_loop import ExecutionLoop, keep_watching, with_client_activity
from domain.errors import (
    ConfigError,
    InvalidOrder,
    TransientVenueError,
    UnknownSymbol,
)
from domain.funding import FundingPayment
from domain.futures import MarginReport
from domain.margin import MarginMode
from domain.model import Order, Position
from domain.orders import ExecutionEvent
from domain.ports import Balance, Clock
from domain.reconciliation import OrderReconciliation
from domain.venues import VenueStatus

log = logging.getLogger(__name__)

_ORDER_PATH, _ALGO_PATH = "/fapi/v1/order", "/fapi/v1/algoOrder"


class BinanceUsdmExecution:
    """Orders, positions and balance at Binance USDⓈ-M; a context manager (or
    :meth:`start` / :meth:`close`).

    Parameters
    ----------
    settings:
        URLs, keys, timeouts, retries and the receive window.
    clock:
        Our time (ms UTC): event times of our own decisions, request timestamps (plus the
        venue's measured offset).
    leverage:
        The leverage to set on each traded symbol at start (the symbols this client trades).
    margin_mode:
        The margin mode to set on each of them.
    quote_asset:
        The account's currency (fees, balance).
    sleep:
        Waits between retries (``asyncio.sleep``; tests may pass one that returns at once).
    budget:
        The venue's request-weight budget shared with its market data (None: ccxt's own
        limiter, this client's requests only).

    Attributes
    ----------
    tracker:
        Our orders as the venue has answered them (submission states, counters).
    stream_opens:
        Times the user-data websocket opened (1 after start; more after reconnections).
    """

    def __init__(
        self,
        settings: BinanceUsdmSettings,
        *,
        clock: Clock,
        leverage: Mapping[str, int],
        margin_mode: MarginMode,
        quote_asset: str = "USDT",
        sleep: Sleep = asyncio.sleep,
        budget: VenueBudget | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self._clock = clock
        self._wanted = dict(leverage)
        self._mode = margin_mode
        self._sleep = sleep
        self.tracker = OrderTracker(quote_asset)
        self._quote = quote_asset
        self._leverage: dict[str, int] = {}
        self._exchange: AccountExchange | None = None
        self._api: TradingApi | None = None
        self._orders: VenueOrders | None = None
        self._funding: FundingIncome | None = None
        self._stream_open: asyncio.Event | None = None
        self.stream_opens = 0
        attempts = settings.retries + 1
        per_call = attempts * (settings.timeout_s + settings.max_backoff_s)
        self._loop = ExecutionLoop(
            VENUE,
            thread_name="binance-usdm",
            limit_s=attempts * 3 * per_call + attempts * settings.recv_window_ms / 1000,
            close_connections=self._close_exchange,
        )

    # -- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> BinanceUsdmExecution:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Connect: load the markets, measure the clock offset, set and verify leverage and
        margin mode per symbol, open the user-data stream.

        Raises
        ------
        ConfigError
            No API key; a symbol whose leverage or margin mode reads back otherwise.
        UnknownSymbol
            A symbol the venue does not list.
        VenueError
            The venue cannot be reached, or refuses (e.g. a margin mode change with an open
            position, code -4048).
        """
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
        """Cancel the order; answered by ``canceled`` (once its fills are in) or
        ``cancel_rejected``."""
        self._loop.run(self._desk().cancel(order_id))

    def modify(
        self,
        order_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        """Amend a working order: ``qty`` (base asset), ``price`` or ``stop_price`` (quote
        currency), None keeping a value; answered by ``modified`` or ``modify_rejected``."""
        self._loop.run(self._desk().modify(order_id, qty, price, stop_price))

    def fetch_order(self, order_id: str) -> Order | None:
        """The venue's view of the order with client id ``order_id`` (our terms when we placed
        it); None when the venue does not have it.

        Raises
        ------
        VenueError
            The venue cannot be asked.
        """
        return self._loop.run(self._desk().fetch(order_id))

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Working orders and untriggered algo orders at the venue, oldest first.

        Raises
        ------
        VenueError
            The venue cannot be asked.
        """
        return self._loop.run(self._desk().open_orders(symbol))

    def positions(self) -> list[Position]:
        """Every non-flat position at the venue (entry price as the venue computes it)."""
        return self._loop.run(self._rest().positions())

    def reported_positions(self) -> Mapping[str, tuple[int, Decimal]]:
        """The latest net position per symbol that the user-data stream reported
        (``ACCOUNT_UPDATE``), as (event time ms UTC, qty: base asset, long > 0); safe from any
        thread (the mapping is replaced whole)."""
        if self._orders is None:
            return {}
        latest = self._orders.account.latest
        return {symbol: (p.time, p.qty) for symbol, p in latest.items()}

    def balance(self) -> Balance:
        """The quote asset's wallet balance and margin balance (wallet + unrealized PnL)."""
        return self._loop.run(self._rest().balance(self._quote))

    def margin_report(self) -> MarginReport:
        """The account's balance breakdown at the venue: wallet, unrealized PnL, margin in
        use, maintenance margin, available balance (quote currency).

        Raises
        ------
        VenueError
            The venue cannot be asked.
        """
        return self._loop.run(self._rest().margin_report())

    def drain_events(self) -> list[ExecutionEvent]:
        """Execution events since the last call, oldest first."""
        return self._loop.call(self.tracker.drain)

    # -- Reconciling --------------------------------------------------------------------------
    venue = VENUE

    def reconcile_orders(
        self, orders: Sequence[Order], known_fills: Collection[str], since: int
    ) -> OrderReconciliation:
        """Compare the ledger's open ``orders`` and its fills since ``since`` (ms UTC; ids
        ``known_fills``) with the venue's orders and trades; the repairs come from
        :meth:`drain_events` (see :mod:`~adapters.venues.binance_usdm.reconcile`).

        Raises
        ------
        VenueError
            The venue cannot be asked.
        """
        reconciler = OrderReconciler(self._rest(), self.tracker, list(self._wanted), self._now)
        return self._loop.run(reconciler.run(list(orders), set(known_fills), since))

    def funding_payments(
        self, since: int, booked: Collection[tuple[str, int]]
    ) -> list[FundingPayment]:
        """The funding the account paid or received at the venue in the traded symbols at
        funding times from ``since`` (ms UTC) on, but those in ``booked`` (``(symbol, time)``
        pairs), oldest first (see :mod:`~adapters.venues.binance_usdm.funding_income`).

        Raises
        ------
        VenueError
            The venue cannot be asked.
        """
        assert self._funding is not None, "started"
        return self._loop.run(self._funding.payments(since, set(booked)))

    # -- ReportsActivity ------------------------------------------------------------------------
    def add_activity(self, status: VenueStatus) -> VenueStatus:
        """``status`` (the venue's market-data connection) with this client's REST answers
        added to its ``requests``, its order submissions whose answer was lost as
        ``"<path> unknown"``, the user-data stream's reopenings as its
        ``reconnects["user-data"]``, the stream's events absorbed as its ``user_events`` and
        the orders' submit → acknowledgement latencies as its ``order_latency``; safe from any
        thread (counters are copied whole)."""
        exchange = self._exchange
        if status.venue != VENUE or exchange is None:
            return status
        return with_client_activity(
            status,
            responses=exchange.responses,
            lost_answers=self.tracker.lost_answers,
            lost_paths=(_ORDER_PATH, _ALGO_PATH),
            stream_opens=self.stream_opens,
            user_events=self.tracker.user_events(),
            order_latency=self.tracker.latency.snapshot(),
        )

    # -- MarginAccount (leverage) ---------------------------------------------------------------
    @property
    def leverage(self) -> Mapping[str, int]:
        """Leverage per symbol as the venue confirmed it (read-only view)."""
        return MappingProxyType(self._leverage)

    def set_leverage(self, symbol: str, leverage: int) -> None:
        """Set and verify ``symbol``'s leverage.

        Raises
        ------
        InvalidOrder
            (``field="leverage"``) The venue refused it (code -4028: above the bracket's
            maximum).
        """
        self._loop.run(self._set_leverage(symbol, leverage))

    # -- plumbing -----------------------------------------------------------------------------
    def _rest(self) -> TradingApi:
        assert self._api is not None, "started"
        return self._api

    def _desk(self) -> VenueOrders:
        assert self._orders is not None, "started"
        return self._orders

    def _now(self) -> int:
        return self._clock.now_ms()

    async def _open(self) -> None:
        self._stream_open = asyncio.Event()
        exchange = AccountExchange(
            self.settings, clock=self._clock, on_user_event=self._on_user_event,
            on_user_stream=self._on_stream_open, budget=self.budget,
        )  # fmt: skip
        self._exchange = exchange
        call = Retrying(self.settings, sleep=self._sleep)
        api = self._api = TradingApi(exchange, call, self._clock)
        self._orders = VenueOrders(
            api, self.tracker, self.settings, clock=self._clock, symbols=list(self._wanted),
            spawn=self._loop.spawn, sleep=self._sleep,
        )  # fmt: skip
        self._funding = FundingIncome(exchange, call, list(self._wanted))
        await call(exchange.load_markets)
        await api.sync_time()
        for symbol in self._wanted:
            self._check_symbol(symbol)
        for symbol, leverage in self._wanted.items():
            await api.set_margin_mode(symbol, self._mode)
            await api.set_leverage(symbol, leverage)
        await self._verify(self._wanted)
        self._loop.spawn(self._watch())
        try:
            await asyncio.wait_for(self._stream_open.wait(), self.settings.timeout_s * 3)
        except TimeoutError:
            raise TransientVenueError(
                f"{VENUE} user-data stream did not open within {self.settings.timeout_s * 3} s"
            ) from None

    async def _close_exchange(self) -> None:
        if self._exchange is not None:
            await self._exchange.close()

    def _check_symbol(self, symbol: str) -> None:
        exchange = self._exchange
        assert exchange is not None
        markets = (exchange.markets_by_id or {}).get(symbol, [])
        if not any(m.get("linear") and m.get("contract") for m in markets):
            raise UnknownSymbol(f"{symbol!r} is not a {VENUE} market", field="symbol")

    async def _verify(self, wanted: Mapping[str, int]) -> None:
        """Read leverage and margin mode back; raise ConfigError on any difference."""
        configs = await self._rest().symbol_configs()
        for symbol, leverage in wanted.items():
            got = configs.get(symbol)
            if got != (leverage, self._mode):
                shown = "nothing" if got is None else f"leverage {got[0]}, {got[1]} margin"
                raise ConfigError(
                    f"{VENUE} {symbol}: asked leverage {leverage}, {self._mode} margin; the "
                    f"venue reports {shown}",
                    field="leverage",
                )
            self._leverage[symbol] = leverage

    async def _set_leverage(self, symbol: str, leverage: int) -> None:
        self._check_symbol(symbol)
        try:
            await self._rest().set_leverage(symbol, leverage)
        except VenueRefusal as exc:
            raise InvalidOrder(
                f"{VENUE} refused leverage {leverage} for {symbol}: {exc.reason}",
                field="leverage",
            ) from None
        await self._verify({symbol: leverage})

    # -- the user-data stream -----------------------------------------------------------------
    def _on_user_event(self, message: dict[str, Any]) -> None:
        if self._orders is not None:
            self._orders.on_user_event(message)

    def _on_stream_open(self) -> None:
        self.stream_opens += 1
        assert self._stream_open is not None
        self._stream_open.set()
        if self.stream_opens > 1:
            self._loop.spawn(self._desk().resync())

    async def _watch(self) -> None:
        """Keep the user-data stream open (events arrive through :meth:`_on_user_event`)."""
        exchange = self._exchange
        assert exchange is not None
        await keep_watching(
            exchange.watch_orders,
            backoff_s=self.settings.backoff_s,
            max_backoff_s=self.settings.max_backoff_s,
            on_lost=_log_lost_stream,
        )


def _log_lost_stream(exc: Exception) -> None:
    log.warning("%s user-data stream lost: %s", VENUE, secret_free(str(exc)))
