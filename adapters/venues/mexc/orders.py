"""Our orders at MEXC futures: submission that never sends an order twice, cancel,
cancel-and-replace, lookups, and the private websocket's pushes (see
:mod:`~adapters.venues.mexc.execution` for the rules). Everything here runs on the execution
client's event loop; the venue's answers become events in the venue-neutral
:class:`~adapters.venues.binance_usdm.order_tracker.OrderTracker`.

The private websocket's pushes, and the routes from MEXC's ids to our orders, are
:mod:`~adapters.venues.mexc.pushes`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from decimal import Decimal
from typing import Any

from adapters.venues.binance_usdm.order_tracker import OrderTracker, Submission, Tracked
from adapters.venues.binance_usdm.orders_wire import VenueOrder, to_order
from adapters.venues.mexc.account import AccountApi
from adapters.venues.mexc.capabilities import VENUE
from adapters.venues.mexc.client import Sleep
from adapters.venues.mexc.errors import VenueRefused
from adapters.venues.mexc.orders_wire import order_params, plan_params, plan_view
from adapters.venues.mexc.pushes import PrivatePushes
from adapters.venues.mexc.settings import MexcSettings
from domain.errors import (
    InvalidOrder,
    PermanentVenueError,
    RateLimited,
    TransientVenueError,
    UnknownSymbol,
    VenueError,
)
from domain.margin import MarginMode
from domain.model import Order, OrderType
from domain.orders import ExecutionEventKind as K
from domain.ports import Clock

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]
"""Runs a coroutine as a background task of the execution client (canceled at close)."""

RECV_WINDOW_MS = 10_000
"""MEXC's default receive window (``Recv-Window``, not sent): a signed request older than this
is refused, so one still on its way cannot land after it."""


class MexcOrders:
    """The order operations of :class:`~.execution.MexcExecution`.

    Parameters
    ----------
    api:
        The account's REST calls.
    tracker:
        Where the venue's answers become execution events.
    settings:
        Retries and backoff.
    clock:
        Our time (ms UTC).
    margin_mode:
        The margin mode of new positions (``openType``).
    spawn:
        Starts a background task (an UNKNOWN submission settled later).
    sleep:
        Waits (the receive window before a lookup is final; a rate limit's wait).

    Attributes
    ----------
    pushes:
        The private websocket's pushes, and how MEXC's ids lead to our orders.
    """

    def __init__(
        self,
        api: AccountApi,
        tracker: OrderTracker,
        settings: MexcSettings,
        *,
        clock: Clock,
        margin_mode: MarginMode,
        spawn: Spawn,
        sleep: Sleep,
    ) -> None:
        self._api = api
        self.tracker = tracker
        self.settings = settings
        self._clock = clock
        self._mode = margin_mode
        self._spawn = spawn
        self._sleep = sleep
        self.pushes = PrivatePushes(tracker, api.by_venue_id, clock)
        self._resolving: set[str] = set()
        self._sent: dict[str, int] = {}  # our order id: its last send, less the receive window

    def _now(self) -> int:
        return self._clock.now_ms()

    # -- submission ---------------------------------------------------------------------------
    async def submit(self, order: Order) -> None:
        if self.tracker.get(order.id) is not None:
            return
        tracked = self.tracker.track(order)
        outcome = await self._place(tracked)
        if isinstance(outcome, str):
            self.tracker.rejected(order.id, self._now(), outcome)

    def _params(self, tracked: Tracked) -> dict[str, Any]:
        order = tracked.order
        if tracked.base:
            order = replace(order, qty=order.qty - tracked.base)
        contract = self._api.contract(order.symbol)
        if tracked.algo:
            return plan_params(order, contract, self._mode)
        return order_params(order, contract, tracked.venue_id, self._mode)

    async def _place(self, tracked: Tracked) -> str | None:
        """Send ``tracked`` until the venue has it: None once it does (or while the outcome is
        unknown: the order stays UNKNOWN, settled in the background), else why it refused."""
        order = tracked.order
        try:
            params = self._params(tracked)
        except (InvalidOrder, UnknownSymbol) as exc:
            return exc.message
        for _ in range(self.settings.retries + 1):
            since = self._sent[order.id] = self._now() - RECV_WINDOW_MS
            self.tracker.sending(tracked)
            try:
                if tracked.algo:
                    venue_id = await self._api.place_plan(params)
                else:
                    venue_id = await self._api.place(params)
            except RateLimited as exc:  # refused unseen: wait, send again
                await self._sleep(max(self.settings.backoff_s, (exc.retry_after_ms or 0) / 1000))
                continue
            except PermanentVenueError as exc:
                return str(exc)
            except TransientVenueError as exc:
                log.warning("%s order %s: answer lost (%s)", VENUE, order.id, exc)
                self.tracker.unknown(order.id)
                self.tracker.lost_answers[tracked.algo] += 1
                try:
                    view = await self._settle_unknown(tracked, params, since)
                except VenueError:
                    self._spawn_resolver(tracked, params, since)
                    return None
                if view is None:
                    continue  # MEXC does not have it: send it again, same id
                await self.adopt(tracked, view)
                return None
            self.pushes.acknowledged(tracked, venue_id)
            return None
        if tracked.submission is Submission.SENDING:
            return f"not accepted after {self.settings.retries + 1} attempts"
        self._spawn_resolver(tracked, params, self._now() - RECV_WINDOW_MS)
        return None

    async def lookup(
        self, tracked: Tracked, params: dict[str, Any] | None = None, since: int = 0
    ) -> VenueOrder | None:
        """MEXC's view of ``tracked``: by ``externalOid``; a plan order by its id, or (its
        answer lost) by its terms among the plan orders placed since ``since``."""
        api, symbol = self._api, tracked.order.symbol
        if not tracked.algo:
            return await api.order(symbol, tracked.venue_id)
        plan_id = self.pushes.plans.get(tracked.order.id)
        if plan_id is not None:
            plan = await api.plan(symbol, plan_id)
        else:
            assert params is not None
            plan = await api.find_plan(params, since, list(self.pushes.plans.values()))
        if plan is None:
            return None
        self.pushes.route_plan(tracked, plan)
        return plan_view(plan, api.contract(symbol), tracked.venue_id)

    async def _settle_unknown(
        self, tracked: Tracked, params: dict[str, Any], since: int
    ) -> VenueOrder | None:
        """MEXC's view of an order whose answer was lost, or None when it does not have it
        even once a request still on its way would be too old to execute."""
        view = await self.lookup(tracked, params, since)
        if view is None:
            await self._sleep(RECV_WINDOW_MS / 1000)
            view = await self.lookup(tracked, params, since)
        return view

    async def adopt(self, tracked: Tracked, view: VenueOrder) -> None:
        """Take a looked-up view, and the fills the stream may have missed meanwhile."""
        if not tracked.algo:
            self.pushes.routes[view.venue_order_id] = (tracked.order.id, tracked.venue_id)
        self.tracker.on_view(view)
        self.pushes.release(view.venue_order_id)
        if tracked.lagging:
            await self._catch_up(tracked, view.venue_order_id)

    async def _catch_up(self, tracked: Tracked, venue_order_id: str) -> None:
        try:
            trades = await self._api.trades(tracked.order.symbol, venue_order_id)
        except VenueError as exc:  # the next resync tries again
            log.warning("%s fills of %s: %s", VENUE, tracked.order.id, exc)
            return
        self.tracker.on_trades(tracked, trades)

    def _spawn_resolver(self, tracked: Tracked, params: dict[str, Any], since: int) -> None:
        if tracked.order.id not in self._resolving:
            self._resolving.add(tracked.order.id)
            self._spawn(self._keep_resolving(tracked, params, since))

    async def _keep_resolving(self, tracked: Tracked, params: dict[str, Any], since: int) -> None:
        """Settle an UNKNOWN submission with backoff: adopt MEXC's view, or send it again."""
        delay = self.settings.backoff_s
        try:
            while tracked.submission is Submission.UNKNOWN and not tracked.final:
                await asyncio.sleep(delay)
                delay = min(2 * delay, self.settings.max_backoff_s)
                try:
                    view = await self._settle_unknown(tracked, params, since)
                except VenueError as exc:
                    log.warning("%s order %s still unknown: %s", VENUE, tracked.order.id, exc)
                    continue
                if view is not None:
                    await self.adopt(tracked, view)
                    continue
                tracked.submission = Submission.SENDING
                outcome = await self._place(tracked)
                if isinstance(outcome, str):
                    self.tracker.rejected(tracked.order.id, self._now(), outcome)
        finally:
            self._resolving.discard(tracked.order.id)

    # -- cancel and modify --------------------------------------------------------------------
    async def cancel(self, order_id: str) -> None:
        try:
            await self._cancel_once(order_id)
        except VenueError as exc:  # not known whether it went through: the stream will say
            why = f"{VENUE} unreachable: {exc}"
            self.tracker.refused(order_id, K.CANCEL_REJECTED, self._now(), why)

    async def _cancel_once(self, order_id: str) -> None:
        tracked = self.tracker.get(order_id)
        if tracked is None or tracked.final:
            why = "unknown order" if tracked is None else "order is already final"
            self.tracker.refused(order_id, K.CANCEL_REJECTED, self._now(), why)
            return
        if tracked.submission is Submission.UNKNOWN:
            since = self._sent.get(order_id, 0)
            settled = await self._settle_unknown(tracked, self._params(tracked), since)
            if settled is None:  # never placed: it will not be now
                self.tracker.canceled(order_id, self._now(), "canceled before the venue had it")
                return
            await self.adopt(tracked, settled)
            if tracked.final:
                return
        try:
            await self._cancel_venue_order(tracked)
        except VenueRefused as exc:
            view = await self.lookup(tracked)
            if view is not None:
                await self.adopt(tracked, view)
            if not tracked.final:
                self.tracker.refused(order_id, K.CANCEL_REJECTED, self._now(), str(exc))
            return
        view = await self.lookup(tracked)
        if view is not None:
            await self.adopt(tracked, view)

    async def _cancel_venue_order(self, tracked: Tracked) -> None:
        symbol = tracked.order.symbol
        if tracked.algo:
            await self._api.cancel_plan(symbol, self.pushes.plans[tracked.order.id])
        else:
            await self._api.cancel(symbol, tracked.venue_id)

    async def modify(
        self,
        order_id: str,
        qty: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
    ) -> None:
        """Cancel and replace (MEXC has no amend): the engine keeps seeing one order."""
        tracked = self.tracker.get(order_id)
        reason = _modify_problem(tracked, qty, price, stop_price)
        if reason is not None:
            self.tracker.refused(order_id, K.MODIFY_REJECTED, self._now(), reason)
            return
        assert tracked is not None
        try:
            await self._replace(tracked, qty, price, stop_price)
        except VenueError as exc:
            why = f"{VENUE} unreachable: {exc}"
            self.tracker.refused(order_id, K.MODIFY_REJECTED, self._now(), why)

    async def _replace(
        self,
        tracked: Tracked,
        qty: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
    ) -> None:
        order = tracked.order
        self.tracker.retire(order.id)  # before the cancel: its pushes may come first
        try:
            await self._cancel_venue_order(tracked)
        except VenueError as exc:
            self.tracker.unretire(order.id)
            view = await self.lookup(tracked)  # filled or canceled meanwhile?
            if view is not None:
                await self.adopt(tracked, view)
            self.tracker.refused(order.id, K.MODIFY_REJECTED, self._now(), str(exc))
            return
        old = await self.lookup(tracked)  # its fills up to the cancel count
        if old is not None and tracked.base + old.filled > tracked.filled:
            await self._catch_up(tracked, old.venue_order_id)
        self.pushes.plans.pop(order.id, None)
        self.tracker.replaced(order.id, f"{order.id}r{len(tracked.retired)}")
        tracked.order = replace(
            order, qty=qty or order.qty, price=price or order.price,
            stop_price=stop_price or order.stop_price,
        )  # fmt: skip
        tracked.submission = Submission.SENDING
        outcome = await self._place(tracked)
        tracked.order = order  # the engine hears the new terms from the event
        if isinstance(outcome, str):
            self.tracker.canceled(order.id, self._now(), f"its replacement was refused: {outcome}")
            return
        self.tracker.modified(order.id, self._now(), qty=qty, price=price, stop_price=stop_price)

    # -- reads --------------------------------------------------------------------------------
    async def fetch(self, order_id: str) -> Order | None:
        tracked = self.tracker.get(order_id)
        if tracked is not None:
            view = await self.lookup(tracked)
            return None if view is None else self._as_order(view)
        for symbol in self._api.contracts:
            view = await self._api.order(symbol, order_id)
            if view is not None:
                return to_order(view)
        return None

    async def open_orders(self, symbol: str | None) -> list[Order]:
        views = await self._api.open_orders(symbol)
        for name in [symbol] if symbol else list(self._api.contracts):
            contract = self._api.contract(name)
            for plan in await self._api.plans(name, states="1"):
                owner = self.pushes.routes.get(str(plan["id"]))
                client_id = owner[1] if owner else f"mexc-plan-{plan['id']}"
                views.append(plan_view(plan, contract, client_id))
        return [self._as_order(view) for view in sorted(views, key=lambda v: v.created)]

    def _as_order(self, view: VenueOrder) -> Order:
        tracked = self.tracker.by_venue_id(view.client_id)
        if tracked is None:
            return to_order(view, order_id=view.client_id or f"mexc-{view.venue_order_id}")
        return to_order(replace(view, filled=view.filled + tracked.base), tracked.order)

    async def resync(self) -> None:
        """After a reconnection: each acknowledged order not final looked up, missed fills
        fetched."""
        for tracked in self.tracker.unsettled():
            if tracked.submission is not Submission.ACKNOWLEDGED:
                continue
            try:
                view = await self.lookup(tracked)
                if view is not None:
                    await self.adopt(tracked, view)
            except (TransientVenueError, PermanentVenueError) as exc:
                log.warning("%s resync of %s: %s", VENUE, tracked.order.id, exc)


def _modify_problem(
    tracked: Tracked | None,
    qty: Decimal | None,
    price: Decimal | None,
    stop_price: Decimal | None,
) -> str | None:
    if tracked is None or tracked.final or not tracked.accepted:
        return "unknown or final order"
    order = tracked.order
    if order.type is OrderType.MARKET:
        return "a market order cannot be modified"
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
