"""The private websocket's pushes for our orders, and the routes from MEXC's ids to them.

MEXC names an order in three ways: our client id (``externalOid``) on plain orders, its own
order id, and a plan order's id (a plan order has no client id; the order it places when
triggered has none either). A push is routed to our order by ``externalOid`` when present, else
by the venue ids recorded here; a fill pushed before its order is known waits for it. The
routed pushes become events in the venue-neutral
:class:`~adapters.venues.binance_usdm.order_tracker.OrderTracker`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from adapters.venues.binance_usdm.order_tracker import OrderTracker, Tracked
from adapters.venues.binance_usdm.orders_wire import VenueOrder, VenueTrade
from adapters.venues.mexc.capabilities import VENUE
from adapters.venues.mexc.market_data import Contract
from adapters.venues.mexc.orders_wire import deal, order_view, plan_view, triggered_order_id
from domain.errors import DataError
from domain.model import ZERO, OrderStatus
from domain.ports import Clock

log = logging.getLogger(__name__)


class PrivatePushes:
    """Routes and pushes of :class:`~.orders.MexcOrders` (on the execution client's loop).

    Parameters
    ----------
    tracker:
        Where the pushes become execution events.
    contracts:
        The traded contract MEXC names by an id (``BTC_USDT``), None when not traded here.
    clock:
        Our time (ms UTC), of the views built from our own terms.

    Attributes
    ----------
    routes:
        Our order id and the tracker's venue id, by MEXC order id or plan id.
    plans:
        The current plan id of each of our plan orders, by our order id.
    """

    def __init__(
        self,
        tracker: OrderTracker,
        contracts: Callable[[str], Contract | None],
        clock: Clock,
    ) -> None:
        self.tracker = tracker
        self._contracts = contracts
        self._clock = clock
        self.routes: dict[str, tuple[str, str]] = {}
        self.plans: dict[str, str] = {}
        self._held: dict[str, list[VenueTrade]] = {}  # MEXC order id: fills not yet routed

    def _now(self) -> int:
        return self._clock.now_ms()

    def acknowledged(self, tracked: Tracked, venue_id: str) -> None:
        """MEXC answered with its id (order id or plan id): the order is working."""
        self.routes[venue_id] = (tracked.order.id, tracked.venue_id)
        if tracked.algo:
            self.plans[tracked.order.id] = venue_id
        self.tracker.on_view(self.shell(tracked, tracked.venue_id, venue_id))
        self.release(venue_id)

    def shell(self, tracked: Tracked, client_id: str, venue_id: str) -> VenueOrder:
        """A working view of ``tracked`` from our own terms (MEXC's answer is an id only)."""
        order = tracked.order
        return VenueOrder(
            client_id=client_id, venue_order_id=venue_id, symbol=order.symbol, side=order.side,
            type=order.type, status=OrderStatus.NEW, qty=order.qty - tracked.base, filled=ZERO,
            avg_price=None, price=order.price, stop_price=order.stop_price,
            reduce_only=order.reduce_only, time_in_force=order.time_in_force,
            created=self._now(), time=self._now(), algo=tracked.algo,
        )  # fmt: skip

    def route_plan(self, tracked: Tracked, plan: dict[str, Any]) -> None:
        """``plan`` (raw) is ``tracked``'s plan order now; so is the order it placed, if any."""
        plan_id = str(plan["id"])
        self.plans[tracked.order.id] = plan_id
        self.routes[plan_id] = (tracked.order.id, tracked.venue_id)
        placed = triggered_order_id(plan)
        if placed is not None:
            self.routes[placed] = (tracked.order.id, tracked.venue_id)

    def on_private(self, message: dict[str, Any]) -> None:
        """A ``push.personal.order``, ``.order.deal`` or ``.plan.order`` message."""
        channel, data = message.get("channel"), message.get("data")
        symbol = data.get("symbol") if isinstance(data, dict) else None
        contract = self._contracts(str(symbol))
        if not isinstance(data, dict) or contract is None:
            self.tracker.foreign += 1
            return
        try:
            if channel == "push.personal.order":
                self._on_order(order_view(data, contract))
            elif channel == "push.personal.order.deal":
                self._on_deal(deal(data, contract))
            elif channel == "push.personal.plan.order":
                self._on_plan(data, contract)
        except DataError as exc:
            log.error("%s private push refused: %s", VENUE, exc)

    def _route(self, client_id: str | None, venue_id: str) -> tuple[Tracked, str] | None:
        """Our tracked order and the tracker's venue id of a push, None when unknown."""
        if client_id:
            tracked = self.tracker.by_venue_id(client_id)
            return None if tracked is None else (tracked, client_id)
        route = self.routes.get(venue_id)
        if route is None:
            return None
        tracked = self.tracker.get(route[0])
        return None if tracked is None else (tracked, route[1])

    def _on_order(self, view: VenueOrder) -> None:
        routed = self._route(view.client_id, view.venue_order_id)
        if routed is None:
            self.tracker.foreign += 1
            return
        tracked, key = routed
        self.routes.setdefault(view.venue_order_id, (tracked.order.id, key))
        view = replace(view, client_id=key)
        execution = "NEW" if view.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) else ""
        self.tracker.on_update(execution, view, None)
        self.release(view.venue_order_id)

    def _on_deal(self, trade: VenueTrade) -> None:
        routed = self._route(trade.client_id, trade.venue_order_id)
        if routed is None:  # before its order is known: held until it is
            self._held.setdefault(trade.venue_order_id, []).append(trade)
            return
        tracked, key = routed
        self.tracker.on_update("TRADE", self.shell(tracked, key, trade.venue_order_id), trade)

    def release(self, venue_id: str) -> None:
        """Apply the fills held for MEXC order ``venue_id``, now routed."""
        for trade in self._held.pop(venue_id, []):
            self._on_deal(trade)

    def _on_plan(self, plan: dict[str, Any], contract: Contract) -> None:
        route = self.routes.get(str(plan.get("id")))
        tracked = None if route is None else self.tracker.get(route[0])
        if tracked is None or route is None:
            self.tracker.foreign += 1
            return
        if route[1] != tracked.venue_id:
            return  # a replaced plan order: its cancel was ours
        self.route_plan(tracked, plan)
        self.tracker.on_view(plan_view(plan, contract, route[1]))
        placed = triggered_order_id(plan)
        if placed is not None:
            self.release(placed)
