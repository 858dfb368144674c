"""Our orders at Binance USDⓈ-M: submission that never sends an order twice, cancel, amend or
cancel-and-replace, lookups, and the user-data stream's events (see
:mod:`~adapters.venues.binance_usdm.execution` for the rules). Everything here runs on the
execution client's event loop; the venue's answers become events in the
:class:`~adapters.venues.binance_usdm.order_tracker.OrderTracker`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from adapters.venues.binance_usdm.account_exchange import (
    DUPLICATE_ID,
    VenueRefusal,
    VenueTimeSkew,
    secret_free,
)
from adapters.venues.binance_usdm.account_stream import AccountStream
from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.client import Sleep
from adapters.venues.binance_usdm.order_tracker import OrderTracker, Submission, Tracked
from adapters.venues.binance_usdm.orders_wire import (
    VenueOrder,
    algo_params,
    algo_update,
    amend_params,
    order_params,
    order_update,
    to_order,
)
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.binance_usdm.trading_api import TradingApi
from domain.errors import (
    DataError,
    InvalidOrder,
    PermanentVenueError,
    RateLimited,
    TransientVenueError,
    VenueError,
)
from domain.model import Order, OrderType
from domain.orders import ExecutionEventKind as K
from domain.ports import Clock

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]
"""Runs a coroutine as a background task of the execution client (canceled at close)."""

_REPLACEMENT_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


class VenueOrders:
    """The order operations of :class:`~.execution.BinanceUsdmExecution`.

    Parameters
    ----------
    api:
        The account's REST calls.
    tracker:
        Where the venue's answers become execution events.
    settings:
        Retries, backoff and the receive window.
    clock:
        Our time (ms UTC), for the events of our own decisions.
    symbols:
        The symbols traded (where an order of another process is looked for).
    spawn:
        Starts a background task (an UNKNOWN submission settled later).
    sleep:
        Waits (the receive window before a lookup is final; a rate limit's wait).

    Attributes
    ----------
    account:
        The positions the user-data stream's ``ACCOUNT_UPDATE`` events reported.
    """

    def __init__(
        self,
        api: TradingApi,
        tracker: OrderTracker,
        settings: BinanceUsdmSettings,
        *,
        clock: Clock,
        symbols: Sequence[str],
        spawn: Spawn,
        sleep: Sleep,
    ) -> None:
        self._api = api
        self.tracker = tracker
        self.settings = settings
        self._clock = clock
        self._symbols = tuple(symbols)
        self._spawn = spawn
        self._sleep = sleep
        self._resolving: set[str] = set()
        self.account = AccountStream()

    def _now(self) -> int:
        return self._clock.now_ms()

    # -- submission ---------------------------------------------------------------------------
    async def submit(self, order: Order) -> None:
        if self.tracker.get(order.id) is not None:
            return
        tracked = self.tracker.track(order)
        try:
            outcome = await self._place(tracked)
        except VenueError as exc:  # a lookup failed after a lost answer: keep looking
            log.warning("%s order %s: %s", VENUE, order.id, secret_free(str(exc)))
            self.tracker.unknown(order.id)
            self._spawn_resolver(tracked)
            return
        if isinstance(outcome, str):
            self.tracker.rejected(order.id, self._now(), outcome)

    async def _place(self, tracked: Tracked) -> VenueOrder | str | None:
        """Send ``tracked`` under its venue id until the venue has it: its view, the reason it
        refused, or None while the outcome is unknown (the order stays UNKNOWN)."""
        order, api = tracked.order, self._api
        try:
            params = self._params(tracked)
        except InvalidOrder as exc:
            return exc.message
        for _ in range(self.settings.retries + 1):
            self.tracker.sending(tracked)
            try:
                view = await (api.place_algo(params) if tracked.algo else api.place(params))
            except VenueTimeSkew:  # refused unseen: measure the offset, send again
                await api.sync_time()
                continue
            except RateLimited as exc:  # refused unseen: wait, send again
                await self._sleep(max(self.settings.backoff_s, (exc.retry_after_ms or 0) / 1000))
                continue
            except VenueRefusal as exc:
                if exc.venue_code not in DUPLICATE_ID:
                    return exc.reason
                view = await self._lookup(tracked)  # the venue holds this id already
                if view is None:
                    return exc.reason
                await self._adopt(tracked, view)
                return view
            except PermanentVenueError as exc:
                return secret_free(str(exc))
            except TransientVenueError as exc:
                log.warning("%s order %s: answer lost (%s)", VENUE, order.id, secret_free(str(exc)))
                self.tracker.lost_answers[tracked.algo] += 1
                self.tracker.unknown(order.id)
                try:
                    view = await self._settle_unknown(tracked)
                except VenueError:
                    self._spawn_resolver(tracked)
                    return None
                if view is None:
                    continue  # the venue does not have it: send it again, same id
                await self._adopt(tracked, view)
                return view
            self.tracker.on_view(view)  # its fills come on the stream
            return view
        if tracked.submission is Submission.SENDING:
            return f"not accepted after {self.settings.retries + 1} attempts"
        self._spawn_resolver(tracked)
        return None

    def _params(self, tracked: Tracked) -> dict[str, str]:
        order = tracked.order
        if tracked.base:
            order = replace(order, qty=order.qty - tracked.base)
        if tracked.algo:
            return algo_params(order, tracked.venue_id)
        return order_params(order, tracked.venue_id)

    async def _lookup(self, tracked: Tracked) -> VenueOrder | None:
        symbol, api = tracked.order.symbol, self._api
        if tracked.algo:
            return await api.algo(tracked.venue_id)
        return await api.order(symbol, tracked.venue_id)

    async def _settle_unknown(self, tracked: Tracked) -> VenueOrder | None:
        """The venue's view of an order whose answer was lost, or None when it does not have
        it even once a request still on its way would be too old to execute."""
        view = await self._lookup(tracked)
        if view is None:
            await self._sleep(self.settings.recv_window_ms / 1000)
            view = await self._lookup(tracked)
        return view

    async def _adopt(self, tracked: Tracked, view: VenueOrder) -> None:
        """Take a looked-up view, and the fills the stream may have missed meanwhile."""
        self.tracker.on_view(view)
        if tracked.lagging:
            await self._catch_up(tracked)

    async def _catch_up(self, tracked: Tracked) -> None:
        """Fetch the trades of an order the venue reports more filled than we heard."""
        if tracked.venue_order_id is None:
            return
        try:
            trades = await self._api.trades(tracked.order.symbol, tracked.venue_order_id)
        except VenueError as exc:  # the next resync tries again
            log.warning("%s trades of %s: %s", VENUE, tracked.order.id, secret_free(str(exc)))
            return
        self.tracker.on_trades(tracked, trades)

    def _spawn_resolver(self, tracked: Tracked) -> None:
        """Keep settling an UNKNOWN submission in the background, with backoff, until the
        venue answers a lookup (the engine is not held up meanwhile)."""
        if tracked.order.id not in self._resolving:
            self._resolving.add(tracked.order.id)
            self._spawn(self._keep_resolving(tracked))

    async def _keep_resolving(self, tracked: Tracked) -> None:
        delay = self.settings.backoff_s
        try:
            while tracked.submission is Submission.UNKNOWN and not tracked.final:
                await asyncio.sleep(delay)
                delay = min(2 * delay, self.settings.max_backoff_s)
                await self._resolve(tracked)
        finally:
            self._resolving.discard(tracked.order.id)

    async def _resolve(self, tracked: Tracked) -> None:
        """Settle an UNKNOWN submission: adopt the venue's view, or send it again."""
        try:
            view = await self._settle_unknown(tracked)
        except VenueError as exc:
            log.warning(
                "%s order %s still unknown: %s", VENUE, tracked.order.id, secret_free(str(exc))
            )
            return
        if view is None:
            tracked.submission = Submission.SENDING
            try:
                outcome = await self._place(tracked)
            except VenueError as exc:
                log.warning("%s order %s: %s", VENUE, tracked.order.id, secret_free(str(exc)))
                self.tracker.unknown(tracked.order.id)
                return
            if isinstance(outcome, str):
                self.tracker.rejected(tracked.order.id, self._now(), outcome)
            return
        await self._adopt(tracked, view)

    # -- cancel and modify --------------------------------------------------------------------
    async def cancel(self, order_id: str) -> None:
        try:
            await self._cancel_once(order_id)
        except VenueError as exc:  # not known whether it went through: the stream will say
            why = f"{VENUE} unreachable: {secret_free(str(exc))}"
            self.tracker.refused(order_id, K.CANCEL_REJECTED, self._now(), why)

    async def _cancel_once(self, order_id: str) -> None:
        tracked = self.tracker.get(order_id)
        if tracked is None or tracked.final:
            why = "unknown order" if tracked is None else "order is already final"
            self.tracker.refused(order_id, K.CANCEL_REJECTED, self._now(), why)
            return
        if tracked.submission is Submission.UNKNOWN:
            settled = await self._settle_unknown(tracked)
            if settled is None:  # never placed: it will not be now
                self.tracker.canceled(order_id, self._now(), "canceled before the venue had it")
                return
            await self._adopt(tracked, settled)
            if tracked.final:
                return
        api = self._api
        try:
            if tracked.algo:
                await api.cancel_algo(tracked.venue_id)
                view = await self._lookup(tracked)
            else:
                view = await api.cancel(tracked.order.symbol, tracked.venue_id)
        except VenueRefusal as exc:
            view = await self._lookup(tracked)
            if view is not None:
                self.tracker.on_view(view)
            if not tracked.final:
                self.tracker.refused(order_id, K.CANCEL_REJECTED, self._now(), exc.reason)
            return
        if view is not None:
            self.tracker.on_view(view)

    async def modify(
        self,
        order_id: str,
        qty: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
    ) -> None:
        tracked = self.tracker.get(order_id)
        reason = self._modify_problem(tracked, qty, price, stop_price)
        if reason is not None:
            self.tracker.refused(order_id, K.MODIFY_REJECTED, self._now(), reason)
            return
        assert tracked is not None
        try:
            if tracked.order.type is OrderType.LIMIT:
                await self._amend(tracked, qty, price)
            else:
                await self._replace(tracked, qty, stop_price)
        except VenueError as exc:
            why = f"{VENUE} unreachable: {secret_free(str(exc))}"
            self.tracker.refused(order_id, K.MODIFY_REJECTED, self._now(), why)

    def _modify_problem(
        self,
        tracked: Tracked | None,
        qty: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
    ) -> str | None:
        if tracked is None or tracked.final or not tracked.accepted:
            return "unknown or final order"
        order = tracked.order
        if order.type is OrderType.MARKET:
            return "a market order cannot be amended"
        if qty is not None and qty <= tracked.filled:
            return f"qty {qty} must exceed the filled {tracked.filled}"
        if order.type is OrderType.LIMIT and stop_price is not None:
            return "a limit order has no stop price"
        if order.type.is_triggered and price is not None:
            return f"a {order.type} order has no limit price"
        try:
            replace(order, qty=qty or order.qty, price=price or order.price,
                    stop_price=stop_price or order.stop_price)  # fmt: skip
        except ValueError as exc:
            return str(exc)
        return None

    async def _amend(self, tracked: Tracked, qty: Decimal | None, price: Decimal | None) -> None:
        order = tracked.order
        new_qty = (qty or order.qty) - tracked.base
        params = amend_params(order, tracked.venue_id, new_qty, price or order.price)  # type: ignore[arg-type]
        try:
            answer = await self._api.amend(params)
        except VenueRefusal as exc:
            self.tracker.refused(order.id, K.MODIFY_REJECTED, self._now(), exc.reason)
            return
        self.tracker.modified(order.id, answer.time or self._now(), qty=qty, price=price)

    async def _replace(
        self, tracked: Tracked, qty: Decimal | None, stop_price: Decimal | None
    ) -> None:
        """Cancel the algo order and place it again with the new terms under a new venue id."""
        order, api = tracked.order, self._api
        self.tracker.retire(order.id)  # before the cancel: its events may come first
        try:
            await api.cancel_algo(tracked.venue_id)
        except VenueError as exc:
            self.tracker.unretire(order.id)
            view = await self._lookup(tracked)  # triggered or canceled meanwhile?
            if view is not None:
                await self._adopt(tracked, view)
            reason = exc.reason if isinstance(exc, VenueRefusal) else secret_free(str(exc))
            self.tracker.refused(order.id, K.MODIFY_REJECTED, self._now(), reason)
            return
        self.tracker.replaced(order.id, _replacement_id(order.id, len(tracked.retired)))
        tracked.order = replace(
            order, qty=qty or order.qty, stop_price=stop_price or order.stop_price
        )
        tracked.submission = Submission.SENDING
        outcome = await self._place(tracked)
        tracked.order = order  # the engine hears the new terms from the event
        if isinstance(outcome, str):
            why = f"its replacement was refused: {outcome}"
            self.tracker.canceled(order.id, self._now(), why)
            return
        self.tracker.modified(order.id, self._now(), qty=qty, stop_price=stop_price)

    # -- reads --------------------------------------------------------------------------------
    async def fetch(self, order_id: str) -> Order | None:
        tracked = self.tracker.get(order_id)
        if tracked is not None:
            view = await self._lookup(tracked)
            return None if view is None else self._as_order(view)
        api = self._api
        view = await api.algo(order_id)  # an order of another process: algo, then plain
        for symbol in self._symbols:
            view = view or await api.order(symbol, order_id)
        return None if view is None else to_order(view)

    async def open_orders(self, symbol: str | None) -> list[Order]:
        return [self._as_order(view) for view in await self._api.open_orders(symbol)]

    def _as_order(self, view: VenueOrder) -> Order:
        tracked = self.tracker.by_venue_id(view.client_id)
        if tracked is None:
            return to_order(view)
        return to_order(replace(view, filled=view.filled + tracked.base), tracked.order)

    # -- the user-data stream -----------------------------------------------------------------
    def on_user_event(self, message: dict[str, Any]) -> None:
        kind = message.get("e")
        try:
            if kind == "ORDER_TRADE_UPDATE":
                update = order_update(message)
                self.tracker.on_update(update.execution, update.order, update.trade)
            elif kind == "ALGO_UPDATE":
                self.tracker.on_algo_update(algo_update(message))
            elif kind == "ACCOUNT_UPDATE":
                self.account.on_update(message)
        except DataError as exc:
            log.error("%s user-data event refused: %s", VENUE, exc)

    async def resync(self) -> None:
        """After a reconnection: each order not final looked up, missed fills fetched."""
        for tracked in self.tracker.unsettled():
            if tracked.submission is not Submission.ACKNOWLEDGED:
                continue
            try:
                view = await self._lookup(tracked)
                if view is not None:
                    await self._adopt(tracked, view)
            except (TransientVenueError, PermanentVenueError) as exc:
                log.warning("%s resync of %s: %s", VENUE, tracked.order.id, secret_free(str(exc)))


def _replacement_id(order_id: str, n: int) -> str:
    """The venue client id of the ``n``-th replacement of ``order_id`` (``<id>r<n base 36>``;
    within Binance's 36 characters for our 32-character ids)."""
    digits = ""
    while True:
        n, rest = divmod(n, 36)
        digits = _REPLACEMENT_DIGITS[rest] + digits
        if n == 0:
            return f"{order_id}r{digits}"
