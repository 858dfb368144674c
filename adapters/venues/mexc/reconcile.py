"""Reconciling the ledger's orders and fills with MEXC futures (see
:mod:`domain.reconciliation`); runs on the execution client's loop.

1. Each order the ledger holds open (acknowledged) is looked up: a plain order by its
   ``externalOid``, a plan order by the plan id stored with it. One this process does not track
   (placed before a restart) is tracked again first, the fills the ledger holds marked applied.
   Fills MEXC made that the ledger lacks are fetched (``order/deal_details``) and applied once,
   by deal id (``missed_fill``); an order MEXC has ended settles as it says
   (``vanished_order``), one MEXC does not know is canceled.
2. Working orders at MEXC that nobody tracks are adopted as external (``unknown_order``).
3. The account's deals in each contract since the last reconciliation
   (``order/list/order_deals``) that the ledger lacks and no tracked order owns are traced to
   their order (``order/get/{order_id}``), which is adopted as external, and applied.

The repairs are the execution events the private websocket would have brought; the engine
applies them when it next drains the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence

from adapters.venues.binance_usdm.order_tracker import OrderTracker, Submission, Tracked
from adapters.venues.binance_usdm.orders_wire import VenueOrder, VenueTrade
from adapters.venues.mexc.account import AccountApi
from adapters.venues.mexc.capabilities import VENUE
from adapters.venues.mexc.orders import MexcOrders
from adapters.venues.reconcile_common import ReconcilerBase, mark_applied
from domain.model import Order, OrderStatus
from domain.reconciliation import DriftKind, OrderReconciliation

log = logging.getLogger(__name__)


class MexcReconciler(ReconcilerBase):
    """One reconciliation of orders and fills (see the module's docstring).

    Parameters
    ----------
    api:
        The account's signed endpoints.
    desk:
        The client's order entry (lookups, and routing of an order's pushes once adopted).
    tracker:
        The client's orders and the events it owes the engine.
    now:
        Our time (ms UTC).
    """

    def __init__(
        self, api: AccountApi, desk: MexcOrders, tracker: OrderTracker, now: Callable[[], int]
    ) -> None:
        super().__init__(VENUE, tracker, now)
        self._api = api
        self._desk = desk

    async def run(
        self, orders: Sequence[Order], known_fills: Collection[str], since: int
    ) -> OrderReconciliation:
        """Compare ``orders`` (the ledger's open orders) and the fills ``known_fills`` (ids of
        the ledger's fills since ``since``, ms UTC) with MEXC; queue the repairs.

        Raises
        ------
        VenueError
            MEXC cannot be asked (what was repaired so far stays repaired).
        """
        until = self._now()
        trades = {s: await self._api.trades_since(s, since, until) for s in self._api.contracts}
        applied = {t.trade_id for ts in trades.values() for t in ts if t.fill_id in known_fills}
        for order in orders:
            if order.status is not OrderStatus.PENDING_NEW:
                await self._check(order, applied)
        for view in await self._api.open_orders(None):
            if self._tracker.by_venue_id(view.client_id) is None:
                await self._adopt(view, "working at the venue")
        for symbol_trades in trades.values():
            await self._trace([t for t in symbol_trades if t.trade_id not in applied])
        return OrderReconciliation(self._events, self._adopted)

    # -- the ledger's orders ------------------------------------------------------------------
    async def _check(self, order: Order, applied: set[str]) -> None:
        tracker = self._tracker
        tracked = tracker.get(order.id)
        resumed = tracked is None
        if tracked is None:
            tracked = tracker.resume(order, applied)
            if tracked.algo and order.venue_order_id is not None:
                self._desk.pushes.plans[order.id] = order.venue_order_id
        if tracked.final or tracked.submission is not Submission.ACKNOWLEDGED:
            return
        if tracked.algo and order.id not in self._desk.pushes.plans:
            log.warning("%s plan order %s: no plan id to look it up by", VENUE, order.id)
            return
        view = await self._desk.lookup(tracked)
        if view is None:
            self._cancel_unknown(order)
            return
        if resumed and order.filled_qty > 0:
            trades = await self._api.trades(order.symbol, view.venue_order_id)
            mark_applied(tracked, trades, order.filled_qty, key=lambda t: (t.time, t.trade_id))
        await self._take(tracked, view)
        self._report_settled(order, tracked, view)

    async def _take(self, tracked: Tracked, view: VenueOrder) -> None:
        """Adopt MEXC's ``view`` of ``tracked`` (and the fills it missed: ``missed_fill``)."""
        before = set(tracked.trades)
        await self._desk.adopt(tracked, view)
        for trade_id in sorted(tracked.trades - before):
            self._event(
                DriftKind.MISSED_FILL, tracked.order.symbol,
                f"trade {trade_id} of order {tracked.order.id}; applied",
            )  # fmt: skip

    # -- MEXC's orders and deals --------------------------------------------------------------
    async def _adopt(self, view: VenueOrder, how: str) -> Tracked:
        tracked, order = self._tracker.adopt(view)
        self._adopted.append(order)
        self._event(
            DriftKind.UNKNOWN_ORDER, view.symbol,
            f"order {view.client_id or view.venue_order_id} ({view.side} {view.type} "
            f"{view.qty}) {how}: adopted as external",
        )  # fmt: skip
        await self._take(tracked, view)
        return tracked

    async def _trace(self, trades: list[VenueTrade]) -> None:
        """Apply ``trades`` (not in the ledger) to the orders they belong to."""
        by_order: dict[str, list[VenueTrade]] = {}
        for trade in trades:
            by_order.setdefault(trade.venue_order_id, []).append(trade)
        for venue_order_id, its_trades in by_order.items():
            tracked = self._tracker.by_venue_order_id(venue_order_id)
            if tracked is None:
                view = await self._api.order_by_id(its_trades[0].symbol, venue_order_id)
                if view is None:
                    log.warning("%s deal of unknown order %s left", VENUE, venue_order_id)
                    continue
                tracked = self._tracker.by_venue_id(view.client_id) or await self._adopt(
                    view, "filled at the venue"
                )
            self._apply(tracked, its_trades)
