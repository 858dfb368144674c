"""What the venues' order reconcilers share (see :mod:`domain.reconciliation`): the repairs
they queue as reconciliation events, and the fills they apply to the tracked orders.

Each venue's ``reconcile`` module asks its venue (its endpoints, its ids, its order of trades);
this module reads only the venue-neutral records the order tracker keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.model import ZERO, Order, OrderStatus
from domain.reconciliation import DriftKind, ReconciliationEvent

if TYPE_CHECKING:
    from adapters.venues.binance_usdm.order_tracker import OrderTracker, Tracked
    from adapters.venues.binance_usdm.orders_wire import VenueOrder, VenueTrade

_ENDED = {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED}


class ReconcilerBase:
    """The state and the repairs a venue's order reconciler shares.

    Parameters
    ----------
    venue:
        The venue's name (on each event).
    tracker:
        The client's orders and the events it owes the engine.
    now:
        Our time (ms UTC).
    """

    def __init__(self, venue: str, tracker: OrderTracker, now: Callable[[], int]) -> None:
        self._venue = venue
        self._tracker = tracker
        self._now = now
        self._events: list[ReconciliationEvent] = []
        self._adopted: list[Order] = []

    def _cancel_unknown(self, order: Order) -> None:
        """Cancel ``order``, which the venue does not know (``vanished_order``)."""
        why = "the venue does not know the order"
        self._tracker.canceled(order.id, self._now(), why)
        self._event(DriftKind.VANISHED_ORDER, order.symbol, f"order {order.id}: {why}; canceled")

    def _report_settled(self, order: Order, tracked: Tracked, view: VenueOrder) -> None:
        """Report ``order`` settled (``vanished_order``) when the venue's ``view`` ended it."""
        if view.status in _ENDED and tracked.final:
            self._event(
                DriftKind.VANISHED_ORDER, order.symbol,
                f"order {order.id} is {view.status} at the venue (filled {view.filled} of "
                f"{view.qty}); settled",
            )  # fmt: skip

    def _apply(self, tracked: Tracked, trades: list[VenueTrade]) -> None:
        """Apply the trades of ``tracked`` not applied yet (``missed_fill`` each)."""
        missing = [t for t in trades if t.trade_id not in tracked.trades]
        self._tracker.on_trades(tracked, trades)
        for trade in missing:
            self._event(
                DriftKind.MISSED_FILL, trade.symbol,
                f"trade {trade.trade_id} of order {tracked.order.id}: {trade.qty} at "
                f"{trade.price}; applied",
            )  # fmt: skip

    def _event(self, kind: DriftKind, symbol: str, details: str) -> None:
        self._events.append(ReconciliationEvent(kind, self._venue, symbol, details, self._now()))


def mark_applied(
    tracked: Tracked,
    trades: Iterable[VenueTrade],
    filled: Decimal,
    key: Callable[[VenueTrade], Any],
) -> None:
    """Mark as applied the first ``trades`` (in the order ``key`` sorts them: the order the
    venue made them in) that make up the ``filled`` qty (base asset) the ledger holds of an
    order placed before a restart."""
    done = ZERO
    for trade in sorted(trades, key=key):
        if done + trade.qty > filled:
            return
        tracked.trades.add(trade.trade_id)
        done += trade.qty
