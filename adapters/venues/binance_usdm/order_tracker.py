"""What the venue says about our orders, turned into the kernel's execution events.

Binance answers an order on two channels that race: the REST answer and the user-data stream
(``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE``), and the stream may repeat or reorder events. The
tracker keeps, per order, what it has already told the engine and emits each fact once, in an
order the order state machine (:mod:`domain.orders`) accepts, as the simulated venue does:

- ``accepted`` once, from whichever channel speaks first; a fill that arrives before it is
  preceded by it;
- each fill once (by trade id) and in execution order: a trade whose cumulative qty shows an
  earlier one missing waits for it;
- ``canceled`` / ``expired`` only once the fills before them are in (the venue's executed qty
  says how much that is), so no fill lands on a final order;
- a venue's own liquidation order (client id ``autoclose-…``) as a ``liquidation`` event with
  the order, then its fills.

A submission whose answer was lost is :attr:`Submission.UNKNOWN` here: the engine's order stays
``pending_new`` (not acknowledged) until a lookup by client id settles it.

The wall time from an order's request to its first acknowledgement, on whichever channel, is
counted in :attr:`OrderTracker.latency`; what the stream brought that the tracker absorbed
(repeats, reorderings, fills before acknowledgements, partial fills) in its counters.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from adapters.venues.binance_usdm.orders_wire import VenueOrder, VenueTrade, to_order
from adapters.venues.execution_loop import LatencyRecorder
from domain.model import ZERO, Fill, Order, OrderStatus, OrderType
from domain.orders import LIQUIDATION_TAG, ExecutionEvent
from domain.orders import ExecutionEventKind as K

log = logging.getLogger(__name__)

_ENDINGS = {OrderStatus.CANCELED: K.CANCELED, OrderStatus.EXPIRED: K.EXPIRED}


class Submission(StrEnum):
    """What the adapter knows of an order's submission: ``sending`` (request in flight),
    ``unknown`` (the answer was lost: it is looked up by client id before anything is sent
    again), ``acknowledged`` (the venue has it) or ``rejected``."""

    SENDING = "sending"
    UNKNOWN = "unknown"
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"


@dataclass(slots=True)
class Tracked:
    """One of our orders and what the engine has been told of it.

    ``order`` holds the terms as last amended; ``venue_id`` is the client id the venue knows it
    by now (ours, or a replacement's after a cancel-and-replace; ``retired`` are the ones it
    had before, whose cancels are ours); ``base`` the qty filled before the current venue order.
    ``filled`` counts the fills emitted, ``trades`` their ids; ``early`` holds fills that came
    before an earlier one; ``ending`` a cancel or expiry waiting for the fills before it;
    ``lagging`` is set when the venue reports more executed than the fills received;
    ``sent_at`` is when its request last went out (seconds of the tracker's timer; None: it
    was not sent by this process).
    """

    order: Order
    venue_id: str
    submission: Submission = Submission.SENDING
    accepted: bool = False
    final: bool = False
    filled: Decimal = ZERO
    base: Decimal = ZERO
    venue_order_id: str | None = None
    trades: set[str] = field(default_factory=set)
    early: dict[str, VenueTrade] = field(default_factory=dict)
    ending: VenueOrder | None = None
    lagging: bool = False
    retired: set[str] = field(default_factory=set)
    sent_at: float | None = None

    @property
    def algo(self) -> bool:
        """True when the order lives in the Algo Order API (stop, take-profit, trailing)."""
        return self.order.type.is_triggered


class OrderTracker:
    """Our orders by client id and by the venue's client id; events for the engine.

    Parameters
    ----------
    quote_asset:
        The asset fees are counted in; a fee charged in another asset (BNB) counts 0 and is
        logged.
    timer:
        Wall time in seconds (``time.perf_counter``), for the acknowledgement latencies.

    Attributes
    ----------
    fills_before_ack:
        Fills that arrived before their order's acknowledgement.
    duplicates:
        Stream events dropped as repeats (a trade id already applied).
    reordered:
        Trades held until an earlier one of their order arrived (out of order).
    partial_fills:
        Fills that left their order partly filled.
    foreign:
        Updates of orders this client did not place (left to reconciliation).
    latency:
        Seconds from an order's request (the last sent, see :meth:`sending`) to its first
        acknowledgement: the REST answer, the stream's event or a lookup, whichever came first.
    lost_answers:
        Submissions whose answer was lost (a timeout, a 5xx, a dropped connection; then
        looked up), by whether they went to the Algo Order API.
    """

    def __init__(self, quote_asset: str, *, timer: Callable[[], float] = time.perf_counter) -> None:
        self.quote_asset = quote_asset
        self._timer = timer
        self._orders: dict[str, Tracked] = {}
        self._venue_ids: dict[str, str] = {}
        self._events: list[ExecutionEvent] = []
        self.fills_before_ack = 0
        self.duplicates = 0
        self.reordered = 0
        self.partial_fills = 0
        self.foreign = 0
        self.lost_answers: Counter[bool] = Counter()
        self.latency = LatencyRecorder()

    # -- our side -----------------------------------------------------------------------------
    def track(self, order: Order) -> Tracked:
        """Start tracking ``order`` (about to be sent under its own id)."""
        tracked = Tracked(order, order.id)
        self._orders[order.id] = tracked
        self._venue_ids[order.id] = order.id
        return tracked

    def sending(self, tracked: Tracked) -> None:
        """``tracked``'s request is about to go out (again): its acknowledgement latency
        counts from now."""
        tracked.sent_at = self._timer()

    def user_events(self) -> dict[str, int]:
        """What the stream brought that was absorbed, by kind: ``duplicate``,
        ``out_of_order``, ``fill_before_ack`` and ``partial_fill`` (see the attributes)."""
        return {
            "duplicate": self.duplicates,
            "out_of_order": self.reordered,
            "fill_before_ack": self.fills_before_ack,
            "partial_fill": self.partial_fills,
        }

    def resume(self, order: Order, applied: Collection[str] = ()) -> Tracked:
        """Track again ``order``, acknowledged by the venue before this process started
        (restored from the ledger, its ``filled_qty`` applied); ``applied`` are the venue's
        trade ids of the fills the ledger holds."""
        tracked = self.track(order)
        tracked.submission, tracked.accepted = Submission.ACKNOWLEDGED, True
        tracked.filled, tracked.venue_order_id = order.filled_qty, order.venue_order_id
        tracked.trades.update(applied)
        return tracked

    def adopt(self, view: VenueOrder) -> tuple[Tracked, Order]:
        """Track an order the venue holds that this client did not place: a liquidation is
        told to the engine as one; any other order is returned ``pending_new`` (tagged
        ``external``) for the ledger to record, and then acknowledged as the venue says."""
        if view.is_liquidation:
            tracked = self._venue_order(view)
            return tracked, tracked.order
        order = replace(
            to_order(view), status=OrderStatus.PENDING_NEW, filled_qty=ZERO, avg_fill_price=None,
            updated_time=None, venue_order_id=None, reject_reason=None,
        )  # fmt: skip
        tracked = self.track(order)
        tracked.submission = Submission.ACKNOWLEDGED
        return tracked, order

    def by_venue_order_id(self, venue_order_id: str) -> Tracked | None:
        """The tracked order the venue numbers ``venue_order_id`` (None: none)."""
        for tracked in self._orders.values():
            if tracked.venue_order_id == venue_order_id:
                return tracked
        return None

    def get(self, order_id: str) -> Tracked | None:
        """The tracked order with our client id ``order_id``."""
        return self._orders.get(order_id)

    def by_venue_id(self, client_id: str) -> Tracked | None:
        """The tracked order the venue knows as ``client_id``."""
        order_id = self._venue_ids.get(client_id)
        return None if order_id is None else self._orders.get(order_id)

    def unsettled(self) -> list[Tracked]:
        """Orders not final yet, oldest first."""
        return [t for t in self._orders.values() if not t.final]

    def rejected(self, order_id: str, time: int, reason: str) -> None:
        """The venue refused the order (it never held it)."""
        tracked = self._orders[order_id]
        tracked.submission, tracked.final = Submission.REJECTED, True
        self._events.append(ExecutionEvent(K.REJECTED, order_id, time, reason=reason))

    def unknown(self, order_id: str) -> None:
        """The submission's answer was lost."""
        tracked = self._orders[order_id]
        if tracked.submission is Submission.SENDING:
            tracked.submission = Submission.UNKNOWN

    def refused(self, order_id: str, kind: K, time: int, reason: str) -> None:
        """A cancel or amendment the venue refused (``cancel_rejected`` / ``modify_rejected``)."""
        self._events.append(ExecutionEvent(kind, order_id, time, reason=reason))

    def modified(
        self,
        order_id: str,
        time: int,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        """The order now has these terms (None: unchanged)."""
        tracked = self._orders[order_id]
        changes = {
            name: value
            for name, value in (("qty", qty), ("price", price), ("stop_price", stop_price))
            if value is not None
        }
        tracked.order = replace(tracked.order, **changes)  # type: ignore[arg-type]
        self._events.append(
            ExecutionEvent(K.MODIFIED, order_id, time, qty=qty, price=price, stop_price=stop_price)
        )

    def retire(self, order_id: str) -> None:
        """The order's current venue order is about to be canceled for a replacement: its
        cancel is ours (not told to the engine); its fills still count."""
        tracked = self._orders[order_id]
        tracked.retired.add(tracked.venue_id)

    def unretire(self, order_id: str) -> None:
        """The cancel for a replacement was refused: the venue order stays the order's."""
        tracked = self._orders[order_id]
        tracked.retired.discard(tracked.venue_id)

    def replaced(self, order_id: str, new_venue_id: str) -> None:
        """The retired venue order is canceled; ``new_venue_id`` is about to carry the order
        (its fills count from the qty filled so far)."""
        tracked = self._orders[order_id]
        tracked.base = tracked.filled
        tracked.venue_id = new_venue_id
        tracked.ending = None
        self._venue_ids[new_venue_id] = order_id

    def canceled(self, order_id: str, time: int, reason: str) -> None:
        """The order ends canceled without the venue saying so (never placed, or its
        replacement refused)."""
        tracked = self._orders[order_id]
        if not tracked.final:
            tracked.final = True
            self._events.append(ExecutionEvent(K.CANCELED, order_id, time, reason=reason))

    def drain(self) -> list[ExecutionEvent]:
        """Events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # -- the venue's side ---------------------------------------------------------------------
    def on_view(self, view: VenueOrder) -> Tracked | None:
        """A REST answer or lookup about an order: acknowledged (or rejected), and its end
        once the fills before it are in; None when the order is not ours."""
        tracked = self.by_venue_id(view.client_id)
        if tracked is None:
            self.foreign += 1
            return None
        if view.client_id in tracked.retired:
            return tracked
        if view.status is OrderStatus.REJECTED and not tracked.accepted:
            self.rejected(tracked.order.id, view.time, view.reason or "rejected by the venue")
            return tracked
        self._acknowledge(tracked, view.venue_order_id, view.time)
        tracked.lagging = tracked.base + view.filled > tracked.filled
        if view.status in _ENDINGS or view.status is OrderStatus.REJECTED:
            self._end(tracked, view)
        return tracked

    def on_update(self, execution: str, view: VenueOrder, trade: VenueTrade | None) -> None:
        """An ``ORDER_TRADE_UPDATE``: acknowledgement, fill, cancel or expiry."""
        tracked = self.by_venue_id(view.client_id)
        if tracked is None and view.is_liquidation:
            tracked = self._venue_order(view)
        if tracked is None:
            self.foreign += 1
            return
        if trade is not None:
            self._trade(tracked, trade)
        if view.client_id in tracked.retired:
            return
        if execution == "NEW":
            self._acknowledge(tracked, view.venue_order_id, view.time)
        elif view.status in _ENDINGS:
            self._acknowledge(tracked, view.venue_order_id, view.time)
            self._end(tracked, view)

    def on_algo_update(self, view: VenueOrder) -> None:
        """An ``ALGO_UPDATE``: the algo order acknowledged, canceled, expired or refused at its
        trigger (once triggered, its market order's updates carry on)."""
        tracked = self.by_venue_id(view.client_id)
        if tracked is None:
            self.foreign += 1
            return
        if view.client_id in tracked.retired:
            return
        if view.status is OrderStatus.REJECTED and not tracked.accepted:
            self.rejected(tracked.order.id, view.time, view.reason or "rejected by the venue")
            return
        self._acknowledge(tracked, view.venue_order_id, view.time)
        if view.status is OrderStatus.REJECTED:  # refused when triggered: it was working
            why = f"refused when triggered: {view.reason or 'rejected by the venue'}"
            self._end(tracked, replace(view, status=OrderStatus.EXPIRED, reason=why))
        elif view.status in _ENDINGS:
            self._end(tracked, view)

    def on_trades(self, tracked: Tracked, trades: list[VenueTrade]) -> None:
        """Trades of ``tracked`` fetched over REST (a catch-up): the missing ones, by id."""
        for trade in sorted(trades, key=lambda t: int(t.trade_id)):
            if trade.trade_id not in tracked.trades:
                tracked.early.pop(trade.trade_id, None)
                self._fill(tracked, trade)
        tracked.lagging = False
        self._settle(tracked)

    # -- internals ----------------------------------------------------------------------------
    def _venue_order(self, view: VenueOrder) -> Tracked:
        """Track the venue's own (liquidation) order and tell the engine of it."""
        order = replace(
            to_order(view), status=OrderStatus.PENDING_NEW, filled_qty=ZERO, avg_fill_price=None
        )
        order = replace(order, type=OrderType.MARKET, tag=LIQUIDATION_TAG, reduce_only=True)
        tracked = self.track(order)
        tracked.submission, tracked.accepted = Submission.ACKNOWLEDGED, True
        tracked.venue_order_id = view.venue_order_id
        self._events.append(
            ExecutionEvent(K.LIQUIDATION, order.id, view.time, view.venue_order_id, order=order)
        )
        return tracked

    def _acknowledge(self, tracked: Tracked, venue_order_id: str, time: int) -> None:
        if tracked.submission is not Submission.REJECTED:
            tracked.submission = Submission.ACKNOWLEDGED
        tracked.venue_order_id = venue_order_id
        if not tracked.accepted and not tracked.final:
            tracked.accepted = True
            if tracked.sent_at is not None:
                self.latency.observe(self._timer() - tracked.sent_at)
            self._events.append(ExecutionEvent.accepted(tracked.order.id, time, venue_order_id))

    def _trade(self, tracked: Tracked, trade: VenueTrade) -> None:
        """A trade from the stream: applied when the fills before it are in, else held."""
        if trade.trade_id in tracked.trades or trade.trade_id in tracked.early:
            self.duplicates += 1
            return
        if not tracked.accepted:
            self.fills_before_ack += 1
            self._acknowledge(tracked, trade.venue_order_id, trade.time)
        start = None if trade.cum_qty is None else trade.cum_qty - trade.qty
        if start is not None and trade.client_id not in tracked.retired:
            start += tracked.base
        if start is not None and start > tracked.filled:
            tracked.early[trade.trade_id] = trade
            self.reordered += 1
            return
        self._fill(tracked, trade)
        self._settle(tracked)

    def _settle(self, tracked: Tracked) -> None:
        """Apply the held fills that are next in line, then a held end that they complete."""
        moved = True
        while moved:
            moved = False
            for trade_id, trade in list(tracked.early.items()):
                assert trade.cum_qty is not None
                start = trade.cum_qty - trade.qty
                if trade.client_id not in tracked.retired:
                    start += tracked.base
                if start <= tracked.filled:
                    del tracked.early[trade_id]
                    self._fill(tracked, trade)
                    moved = True
        ending = tracked.ending
        if ending is not None and tracked.base + ending.filled <= tracked.filled:
            tracked.ending = None
            self._end(tracked, ending)

    def _fill(self, tracked: Tracked, trade: VenueTrade) -> None:
        order = tracked.order
        if tracked.final:
            log.warning("fill %s of final order %s ignored", trade.fill_id, order.id)
            return
        fee = trade.fee
        if trade.fee_asset and trade.fee_asset != self.quote_asset:
            log.warning(
                "fee %s %s of fill %s is not in %s: counted 0",
                trade.fee, trade.fee_asset, trade.fill_id, self.quote_asset,
            )  # fmt: skip
            fee = ZERO
        fill = Fill(
            trade.fill_id, order.id, order.symbol, order.side, trade.qty, trade.price, fee,
            trade.liquidity, trade.time,
        )  # fmt: skip
        tracked.trades.add(trade.trade_id)
        tracked.filled += trade.qty
        self._events.append(ExecutionEvent.filled(order.id, trade.time, trade.venue_order_id, fill))
        if tracked.filled >= order.qty:
            tracked.final, tracked.ending = True, None
        else:
            self.partial_fills += 1

    def _end(self, tracked: Tracked, view: VenueOrder) -> None:
        """The venue ended the order (canceled, expired): told once its fills are in."""
        if tracked.final:
            return
        if tracked.base + view.filled > tracked.filled:
            tracked.ending, tracked.lagging = view, True
            return
        kind = _ENDINGS.get(view.status, K.EXPIRED)
        tracked.final = True
        self._events.append(
            ExecutionEvent(
                kind, tracked.order.id, view.time, view.venue_order_id, reason=view.reason
            )
        )
