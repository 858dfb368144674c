"""The order state machine, execution events and deterministic client order ids.

One table (:data:`TRANSITIONS`) lists the allowed ``(status, event) → status`` moves and one
function (:func:`apply_event`) applies an event or refuses it, naming the state and the event;
nothing else assigns ``Order.status``. Final states (filled, canceled, rejected, expired) never
change again, so a late acknowledgement cannot overwrite a fill.

::

    PENDING_NEW ─accepted─► NEW ─fill─► PARTIALLY_FILLED ─fill─► FILLED
         │                   │  ╲             │
         │ rejected          │   cancel_requested ─► PENDING_CANCEL ─canceled─► CANCELED
         ▼                   ▼                                      ─expired──► EXPIRED
      REJECTED            EXPIRED / CANCELED

A fill may arrive before its order's acknowledgement (live venues send them on different
streams), so ``PENDING_NEW`` accepts fills too. The model follows NautilusTrader's order FSM,
reduced to what the kernel uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from domain.account import PRICE_QUANTUM
from domain.errors import DomainError
from domain.funding import FundingPayment
from domain.model import ZERO, ExitReason, Fill, Order, OrderStatus, OrderType, fast_constructor

S = OrderStatus


class ExecutionEventKind(StrEnum):
    """What a venue (or the engine, for ``cancel_requested``) says happened to an order."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FILL = "fill"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_REJECTED = "cancel_rejected"
    CANCELED = "canceled"
    EXPIRED = "expired"
    MODIFIED = "modified"
    MODIFY_REJECTED = "modify_rejected"
    LIQUIDATION = "liquidation"
    """The venue opened its own order to close a liquidated position (``order`` carries it;
    its fill follows as a ``fill`` event)."""
    FUNDING = "funding"
    """A funding settlement of a position (``funding`` carries it; no order: ``order_id`` is
    empty)."""


K = ExecutionEventKind

VENUE_EVENTS = frozenset({K.LIQUIDATION, K.FUNDING})
"""Events a venue sends on its own, not moves of an existing order: the ledger books them
(:meth:`domain.ledger.Ledger.apply`); :func:`apply_event` never sees them."""


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """One execution event for the order with client id ``order_id`` at ``time`` (ms UTC).

    ``fill`` is set for ``fill`` events (partial or complete: the order's quantities decide);
    ``reason`` for rejections, expiries and refused cancels; ``qty``, ``price`` and
    ``stop_price`` carry the new values of a ``modified`` event (None: unchanged); ``order``
    the venue's own order of a ``liquidation`` event, ``funding`` the payment of a ``funding``
    event.
    """

    kind: ExecutionEventKind
    order_id: str
    time: int
    venue_order_id: str | None = None
    fill: Fill | None = None
    reason: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    order: Order | None = None
    funding: FundingPayment | None = None

    def __post_init__(self) -> None:
        for kind, value, name in (
            (K.FILL, self.fill, "fill"),
            (K.LIQUIDATION, self.order, "order"),
            (K.FUNDING, self.funding, "funding payment"),
        ):
            if (self.kind is kind) != (value is not None):
                need = "needs" if self.kind is kind else "must not have"
                raise ValueError(f"a {self.kind} event {need} a {name}")

    @classmethod
    def accepted(cls, order_id: str, time: int, venue_order_id: str | None) -> ExecutionEvent:
        """The ``accepted`` event of an order (valid by construction, so built unchecked: the
        simulated venue sends two events per order)."""
        return _event(K.ACCEPTED, order_id, time, venue_order_id)

    @classmethod
    def filled(
        cls, order_id: str, time: int, venue_order_id: str | None, fill: Fill
    ) -> ExecutionEvent:
        """The ``fill`` event of ``fill`` (valid by construction, so built unchecked)."""
        return _event(K.FILL, order_id, time, venue_order_id, fill)


_event = fast_constructor(ExecutionEvent, validate=False)


class IllegalTransition(DomainError):
    """An execution event that the order's current state does not allow."""

    code = "illegal_transition"


_WORKING = (S.NEW, S.PARTIALLY_FILLED)
TRANSITIONS: dict[tuple[OrderStatus, ExecutionEventKind], OrderStatus | None] = {
    (S.PENDING_NEW, K.ACCEPTED): S.NEW,
    (S.PENDING_NEW, K.REJECTED): S.REJECTED,
    (S.PENDING_NEW, K.FILL): None,
    (S.PENDING_NEW, K.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.PENDING_NEW, K.CANCELED): S.CANCELED,
    (S.PENDING_NEW, K.EXPIRED): S.EXPIRED,
    **{(s, K.ACCEPTED): s for s in _WORKING},
    **{(s, K.FILL): None for s in _WORKING},
    **{(s, K.CANCEL_REQUESTED): S.PENDING_CANCEL for s in _WORKING},
    **{(s, K.CANCELED): S.CANCELED for s in _WORKING},
    **{(s, K.EXPIRED): S.EXPIRED for s in _WORKING},
    **{(s, K.MODIFIED): s for s in _WORKING},
    **{(s, K.MODIFY_REJECTED): s for s in _WORKING},
    (S.PENDING_CANCEL, K.ACCEPTED): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, K.FILL): None,
    (S.PENDING_CANCEL, K.CANCELED): S.CANCELED,
    (S.PENDING_CANCEL, K.EXPIRED): S.EXPIRED,
    (S.PENDING_CANCEL, K.CANCEL_REJECTED): None,
}
"""Allowed moves; ``None`` means "decided by the quantities" (fills, refused cancels)."""


def apply_event(order: Order, event: ExecutionEvent) -> Order:
    """``order`` after ``event``.

    A fill adds its quantity and moves ``avg_fill_price`` to the VWAP of all fills (kept to
    :data:`~domain.account.PRICE_QUANTUM`); the order is
    ``filled`` when nothing remains, else ``partially_filled`` (a fill during
    ``pending_cancel`` keeps it there until the cancel is answered).

    Raises
    ------
    IllegalTransition
        When the state does not allow the event (any event on a final order, a rejection of
        a working order...), when the event names another order, or when a fill would take
        ``filled_qty`` past ``qty``.
    """
    if event.order_id != order.id:
        raise IllegalTransition(f"event for order {event.order_id} applied to order {order.id}")
    key = (order.status, event.kind)
    if key not in TRANSITIONS:
        raise IllegalTransition(f"order {order.id} is {order.status}: cannot apply {event.kind}")
    venue_id = event.venue_order_id or order.venue_order_id
    kind = event.kind
    if kind is K.FILL:
        return _filled(order, event, venue_id)
    if kind is K.CANCEL_REJECTED:
        status = S.PARTIALLY_FILLED if order.filled_qty > 0 else S.NEW
        return _moved(order, status, event.time, order.reject_reason, venue_id)
    target = TRANSITIONS[key]
    assert target is not None
    if kind is K.MODIFIED:
        return _modified(order, event, target, venue_id)
    why = event.reason if kind in (K.REJECTED, K.EXPIRED) and event.reason else None
    return _moved(order, target, event.time, why or order.reject_reason, venue_id)


def _modified(
    order: Order, event: ExecutionEvent, status: OrderStatus, venue_id: str | None
) -> Order:
    """``order`` with the new terms of a ``modified`` event (validated again)."""
    changes: dict[str, object] = {"status": status, "updated_time": event.time}
    if venue_id != order.venue_order_id:
        changes["venue_order_id"] = venue_id
    if event.qty is not None:
        if event.qty < order.filled_qty:
            raise IllegalTransition(
                f"order {order.id}: new qty {event.qty} is below the filled {order.filled_qty}"
            )
        changes["qty"] = event.qty
        if event.qty == order.filled_qty:
            changes["status"] = S.FILLED
    if event.price is not None:
        changes["price"] = event.price
    if event.stop_price is not None:
        changes["stop_price"] = event.stop_price
    try:
        return replace(order, **changes)
    except ValueError as exc:
        raise IllegalTransition(f"order {order.id}: {event.kind} refused: {exc}") from None


def _filled(order: Order, event: ExecutionEvent, venue_id: str | None) -> Order:
    fill = event.fill
    assert fill is not None
    if (fill.order_id, fill.symbol, fill.side) != (order.id, order.symbol, order.side):
        raise IllegalTransition(
            f"order {order.id} ({order.side} {order.symbol}): fill {fill.id} is for "
            f"{fill.order_id} ({fill.side} {fill.symbol})"
        )
    filled = order.filled_qty + fill.qty
    if filled > order.qty:
        raise IllegalTransition(
            f"order {order.id}: fill of {fill.qty} would take filled qty to {filled} > {order.qty}"
        )
    if order.avg_fill_price is None or order.filled_qty == ZERO:
        avg = fill.price
    else:
        avg = (order.avg_fill_price * order.filled_qty + fill.price * fill.qty) / filled
        avg = avg.quantize(PRICE_QUANTUM)
    if filled == order.qty:
        status = S.FILLED
    elif order.status is S.PENDING_CANCEL:
        status = S.PENDING_CANCEL
    else:
        status = S.PARTIALLY_FILLED
    # 0 < filled <= qty: the fast copy needs no validation.
    return order.with_state(status, filled, avg, event.time, order.reject_reason, venue_id)


def _moved(
    order: Order, status: OrderStatus, time: int, reason: str | None, venue_id: str | None
) -> Order:
    """``order`` in ``status`` with no new fill: its terms and quantities are unchanged, so the
    fast copy needs no validation."""
    return order.with_state(status, order.filled_qty, order.avg_fill_price, time, reason, venue_id)


def submission_order(orders: Iterable[Order], held: Mapping[str, Decimal]) -> list[Order]:
    """``orders`` in the order they were submitted in, as far as they show it: by creation
    time, and among those of one time the orders that reduce their symbol's position (``held``:
    signed qty by symbol) first, as :func:`service_layer.intents.orders_for` submits them (the
    margin an exit frees is there for the entry decided with it), otherwise in the given order.

    A restored run re-sends and restores its open orders in this order: stored orders come
    back by creation time and id, and an id (a hash) says nothing of the order within a time.
    """

    def rank(order: Order) -> tuple[int, int]:
        position = held.get(order.symbol, ZERO)
        against = position != 0 and (position > 0) != (order.side.sign > 0)
        reducing = against and (order.reduce_only or order.remaining_qty <= abs(position))
        return order.created_time, 0 if reducing else 1

    return sorted(orders, key=rank)


def client_order_id(run_id: str, strategy: str, symbol: str, bar_time: int, index: int) -> str:
    """The deterministic client order id of a strategy's ``index``-th intent at ``bar_time``.

    The same run, strategy, symbol, bar close time (ms UTC) and intent index always give the
    same id, so re-sending an intent after a crash is idempotent. 32 characters of
    ``[0-9a-z]`` (within Binance's 36-character ``newClientOrderId`` and MEXC's limits).
    """
    key = f"{run_id}|{strategy}|{symbol}|{bar_time}|{index}".encode()
    return "lc" + hashlib.sha256(key).hexdigest()[:30]


API_TAG = "api"
"""The tag of orders placed through the API (the strategy's orders carry its name)."""
END_OF_RUN_TAG = "end"
"""The tag of the orders a backtest places to close its positions at the end of the data."""
LIQUIDATION_TAG = "liquidation"
"""The tag of the order a venue opens to close a liquidated position."""


@dataclass(frozen=True, slots=True)
class OrderOrigin:
    """Who placed an order, read from its ``tag``: ``kind`` is ``"api"``, ``"strategy"`` or
    ``"run"`` (a backtest's closing order) or ``"venue"`` (a liquidation); ``source`` the
    strategy's name (``""`` otherwise);
    ``leg`` the exit leg of an exit order as tagged (``"stop"``, ``"trail"``, ``"tp1"``…),
    ``""`` for an entry."""

    kind: str
    source: str
    leg: str


def order_origin(tag: str | None) -> OrderOrigin:
    """The origin of an order tagged ``tag``: ``"api"``, a strategy's name, ``"end"``, or
    ``"<entry tag>:<leg>"`` for the exits placed when an entry fills
    (:mod:`service_layer.exits`).

    >>> order_origin("trend_follow:tp2")
    OrderOrigin(kind='strategy', source='trend_follow', leg='tp2')
    >>> order_origin("api:stop").kind
    'api'
    """
    head, _, leg = (tag or "").partition(":")
    if head == API_TAG:
        return OrderOrigin("api", "", leg)
    if head == END_OF_RUN_TAG:
        return OrderOrigin("run", "", leg)
    if head == LIQUIDATION_TAG:
        return OrderOrigin("venue", "", leg)
    return OrderOrigin("strategy", head, leg)


_LEG_REASONS = {
    "stop": ExitReason.STOP,
    "trail": ExitReason.STOP,
    "time": ExitReason.TIME,
    "regime": ExitReason.REGIME,
}
_TYPE_REASONS = {
    OrderType.STOP: ExitReason.STOP,
    OrderType.TRAILING_STOP: ExitReason.STOP,
    OrderType.TAKE_PROFIT: ExitReason.TAKE_PROFIT,
}


def exit_reason(order: Order) -> ExitReason:
    """Why a trade that ``order`` closed was closed, from the order's tag and type.

    A liquidation order → ``liquidation``; a backtest's closing order → ``end``; an exit leg
    (``"<entry tag>:stop"``, ``:trail``, ``:tp1``…, ``:time``, ``:regime``) → its reason; any
    other stop or trailing stop → ``stop``, take-profit → ``take_profit``; else ``signal``.

    >>> from decimal import Decimal
    >>> from domain.model import Side
    >>> order = Order("x", "BTCUSDT", Side.SELL, OrderType.MARKET, Decimal(1), 0,
    ...               tag="trend_follow:tp2")
    >>> str(exit_reason(order))
    'take_profit'
    """
    origin = order_origin(order.tag)
    if origin.kind == "venue":
        return ExitReason.LIQUIDATION
    if origin.kind == "run":
        return ExitReason.END
    leg = origin.leg
    if leg.startswith("tp") and leg[2:].isdigit():
        return ExitReason.TAKE_PROFIT
    return _LEG_REASONS.get(leg) or _TYPE_REASONS.get(order.type, ExitReason.SIGNAL)
