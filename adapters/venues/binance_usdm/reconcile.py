"""Reconciling the ledger's orders and fills with Binance USDⓈ-M (see
:mod:`domain.reconciliation`); runs on the execution client's loop.

1. Each order the ledger holds open (acknowledged) is looked up by client id; one this process
   does not track (placed before a restart) is tracked again first, the trades the ledger
   already holds marked applied. Fills the venue made that the ledger lacks are fetched
   (``GET /fapi/v1/userTrades`` of the order) and applied once, by trade id
   (``missed_fill``); an order the venue has ended (filled, canceled, expired) settles as it
   says (``vanished_order``), one the venue does not know is canceled.
2. Open orders at the venue (regular and algo) that nobody tracks are adopted as external
   (``unknown_order``).
3. The trades of each symbol since the last reconciliation that the ledger lacks and no
   tracked order owns are traced to their order (by the venue's order id): a liquidation
   (client id ``autoclose-``) is booked as one (``vanished_position``: closed by the venue),
   any other order adopted as external, and its trades applied.

The repairs are the execution events the stream would have brought; the engine applies them
when it next drains the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence

from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.order_tracker import OrderTracker, Submission, Tracked
from adapters.venues.binance_usdm.orders_wire import VenueOrder, VenueTrade
from adapters.venues.binance_usdm.trading_api import TradingApi
from adapters.venues.reconcile_common import ReconcilerBase, mark_applied
from domain.model import Order, OrderStatus
from domain.reconciliation import DriftKind, OrderReconciliation

log = logging.getLogger(__name__)


class OrderReconciler(ReconcilerBase):
    """One reconciliation of orders and fills (see the module's docstring).

    Parameters
    ----------
    api:
        The venue's signed endpoints.
    tracker:
        The client's orders and the events it owes the engine.
    symbols:
        The traded symbols (whose trades are read).
    now:
        Our time (ms UTC).
    """

    def __init__(
        self,
        api: TradingApi,
        tracker: OrderTracker,
        symbols: Sequence[str],
        now: Callable[[], int],
    ) -> None:
        super().__init__(VENUE, tracker, now)
        self._api = api
        self._symbols = list(symbols)

    async def run(
        self, orders: Sequence[Order], known_fills: Collection[str], since: int
    ) -> OrderReconciliation:
        """Compare ``orders`` (the ledger's open orders) and the fills ``known_fills`` (ids of
        the ledger's fills since ``since``, ms UTC) with the venue; queue the repairs.

        Raises
        ------
        VenueError
            The venue cannot be asked (what was repaired so far stays repaired).
        """
        trades = {s: await self._api.trades_since(s, since) for s in self._symbols}
        applied = {t.trade_id for ts in trades.values() for t in ts if t.fill_id in known_fills}
        for order in orders:
            if order.status is not OrderStatus.PENDING_NEW:
                await self._check(order, applied)
        for view in await self._api.open_orders(None):
            if self._tracker.by_venue_id(view.client_id) is None:
                self._adopt(view, "working at the venue")
        for symbol, symbol_trades in trades.items():
            await self._trace(symbol, [t for t in symbol_trades if t.trade_id not in applied])
        return OrderReconciliation(self._events, self._adopted)

    # -- the ledger's orders ------------------------------------------------------------------
    async def _check(self, order: Order, applied: set[str]) -> None:
        tracker = self._tracker
        tracked = tracker.get(order.id)
        resumed = tracked is None
        if tracked is None:
            tracked = tracker.resume(order, applied)
        if tracked.final or tracked.submission is not Submission.ACKNOWLEDGED:
            return
        view = await self._lookup(tracked)
        if view is None:
            self._cancel_unknown(order)
            return
        tracker.on_view(view)
        if tracked.lagging and tracked.venue_order_id is not None:
            trades = await self._api.trades(order.symbol, tracked.venue_order_id)
            if resumed:
                mark_applied(tracked, trades, order.filled_qty, key=lambda t: int(t.trade_id))
            self._apply(tracked, trades)
        self._report_settled(order, tracked, view)

    async def _lookup(self, tracked: Tracked) -> VenueOrder | None:
        if tracked.algo:
            return await self._api.algo(tracked.venue_id)
        return await self._api.order(tracked.order.symbol, tracked.venue_id)

    # -- the venue's orders and trades --------------------------------------------------------
    def _adopt(self, view: VenueOrder, how: str) -> Tracked:
        tracked, order = self._tracker.adopt(view)
        if view.is_liquidation:
            self._event(
                DriftKind.VANISHED_POSITION, view.symbol,
                f"the venue closed the position: liquidation order {view.client_id} "
                f"({view.side} {view.filled} at {view.avg_price})",
            )  # fmt: skip
            return tracked
        self._adopted.append(order)
        self._tracker.on_view(view)
        self._event(
            DriftKind.UNKNOWN_ORDER, view.symbol,
            f"order {view.client_id} ({view.side} {view.type} {view.qty}) {how}: adopted as "
            "external",
        )  # fmt: skip
        return tracked

    async def _trace(self, symbol: str, trades: list[VenueTrade]) -> None:
        """Apply ``trades`` (of ``symbol``, not in the ledger) to the orders they belong to."""
        by_order: dict[str, list[VenueTrade]] = {}
        for trade in trades:
            by_order.setdefault(trade.venue_order_id, []).append(trade)
        for venue_order_id, its_trades in by_order.items():
            tracked = self._tracker.by_venue_order_id(venue_order_id)
            if tracked is None:
                view = await self._api.order_by_id(symbol, venue_order_id)
                if view is None:
                    log.warning("%s trade of unknown order %s left", VENUE, venue_order_id)
                    continue
                tracked = self._tracker.by_venue_id(view.client_id) or self._adopt(
                    view, "filled at the venue"
                )
            self._apply(tracked, its_trades)
