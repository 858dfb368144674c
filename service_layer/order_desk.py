"""The order desk: the API's order use cases (place, bracket, modify, cancel) over the run's
kernel, run as commands on the engine's owner between bars (store, then send: each order is
committed before the venue hears of it, and the venue's answer after)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from domain.errors import (
    DuplicateOrder,
    InvalidOrder,
    OrderNotCancelable,
    OrderNotFound,
    OrderRejected,
    UnknownSymbol,
)
from domain.ledger import LedgerChanges
from domain.model import ZERO, Instrument, Order, OrderStatus, OrderType, Side, TimeInForce
from domain.order_rules import order_problem
from domain.orders import API_TAG, ExecutionEvent, ExecutionEventKind
from domain.strategies.base import OrderIntent
from service_layer.commands import CommandQueue
from service_layer.engine import Engine
from service_layer.exits import exit_id
from service_layer.intents import build_order
from service_layer.order_requests import (
    BracketRequest,
    bracket_plan,
    difference,
    invalid_order,
    modify_refusal,
    trailing_start,
)


@dataclass(frozen=True, slots=True)
class Placement:
    """An order placed, or found: ``created`` is False when its ``client_order_id`` named an
    order placed before with the same terms (nothing was sent again)."""

    order: Order
    created: bool


@dataclass(frozen=True, slots=True)
class Bracket:
    """A bracket's ``entry`` and its exits, placed when the entry has filled completely (None
    before); ``created`` as in :class:`Placement`."""

    entry: Order
    stop_loss: Order | None
    take_profit: Order | None
    created: bool


def _new_order_id() -> str:
    """A fresh client order id for an API order placed without one."""
    return "api-" + uuid.uuid4().hex[:28]


class OrderDesk:
    """The order use cases of one run.

    Parameters
    ----------
    engine:
        The run's kernel now (it is rebuilt from storage after an error).
    commands:
        The queue whose commands the engine's owner runs between bars.
    commit:
        Stores a batch of ledger changes and publishes them.
    stored, get_order:
        The stored order with a client id: None when there is none, or ``OrderNotFound``.
    """

    def __init__(
        self,
        *,
        engine: Callable[[], Engine],
        commands: CommandQueue,
        commit: Callable[[LedgerChanges], None],
        stored: Callable[[str], Order | None],
        get_order: Callable[[str], Order],
    ) -> None:
        self._engine = engine
        self._commands = commands
        self._commit = commit
        self._stored = stored
        self._get_order = get_order

    def place_order(
        self,
        *,
        symbol: str,
        side: Side,
        type: OrderType,
        qty: Decimal,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trailing_offset: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
        link_id: str | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Store, then send an order now (:meth:`place`); the order placed, or the one placed
        before with the same ``client_order_id`` and terms."""
        intent = OrderIntent(
            symbol, side, qty, type=type, price=price, stop_price=stop_price,
            trailing_offset=trailing_offset, reduce_only=reduce_only,
            time_in_force=time_in_force, link_id=link_id,
        )  # fmt: skip
        return self.place(intent, client_order_id).order

    def place(self, intent: OrderIntent, client_order_id: str | None = None) -> Placement:
        """Store, then send the order of ``intent`` now; it fills on the next bars by the
        execution rules. A trailing stop without ``stop_price`` starts at the last close ∓ its
        offset (quote currency). A ``client_order_id`` already used with the same terms gives
        back that order (``created`` False) and sends nothing.

        Raises
        ------
        UnknownSymbol, InvalidOrder
            When the instrument's rules refuse it (the message says why, ``field`` names the
            term).
        DuplicateOrder
            When ``client_order_id`` names an order with other terms.
        OrderRejected
            When the venue rejects it (or rejected the order placed first with that
            ``client_order_id``); the rejected order is stored (its id and the venue's reason
            in the error).
        """
        order_id = client_order_id or _new_order_id()
        return self._commands.call(lambda: self._place(intent, order_id))

    def _place(self, intent: OrderIntent, order_id: str) -> Placement:
        self.instrument(intent.symbol)
        known = self._known(order_id)
        if known is not None:
            return Placement(self._repeated(known, difference(known, intent)), created=False)
        return Placement(self._send_new(intent, order_id), created=True)

    def place_bracket(self, request: BracketRequest, client_order_id: str | None = None) -> Bracket:
        """Place ``request``'s entry with its stop-loss and take-profit attached: when the
        entry has filled completely, the kernel places both exits at once, reduce-only and
        linked (the stop filling cancels the take-profit; the take-profit closing the position
        cancels the stop), each at the distance from the entry's price that the request gave
        (the limit price, or the last close for a market entry), from the average fill price.
        A ``client_order_id`` already used by a bracket with the same terms gives it back
        (``created`` False).

        Raises
        ------
        UnknownSymbol, InvalidOrder
            As :meth:`place`; also for exit levels off the tick or not on their side of the
            entry's price (``field`` ``stop_loss.stop_price`` or ``take_profit.stop_price``).
        DuplicateOrder, OrderRejected
            As :meth:`place`.
        """
        order_id = client_order_id or _new_order_id()
        return self._commands.call(lambda: self._place_bracket(request, order_id))

    def _place_bracket(self, request: BracketRequest, order_id: str) -> Bracket:
        instrument = self.instrument(request.symbol)
        intent = request.entry()
        known = self._known(order_id)
        if known is not None:
            entry = self._repeated(known, difference(known, intent, request))
            return self._bracket(entry, created=False)
        reference = request.price or self._engine().marks.get(request.symbol)
        if reference is None:
            raise InvalidOrder(
                f"no price of {request.symbol} yet to place the exits from: give a limit price",
                field="type",
            )
        plan = bracket_plan(request, reference, instrument)
        entry = self._send_new(replace(intent, exits=plan), order_id)
        return self._bracket(entry, created=True)

    def bracket(self, entry_id: str) -> Bracket:
        """The bracket whose entry is ``entry_id``, with its exits once placed, as stored.

        Raises
        ------
        OrderNotFound
            When there is no such order, or it is not a bracket's entry.
        """
        entry = self._get_order(entry_id)
        if entry.exits is None:
            raise OrderNotFound(f"order {entry_id!r} is not a bracket's entry", field="id")
        return self._bracket(entry, created=False)

    def _bracket(self, entry: Order, *, created: bool) -> Bracket:
        """``entry`` with its stored exits (the first two the kernel derives from its id)."""
        legs = [self._stored(exit_id(entry.id, k)) for k in range(2)]
        by_type = {leg.type: leg for leg in legs if leg is not None}
        return Bracket(
            entry, by_type.get(OrderType.STOP), by_type.get(OrderType.TAKE_PROFIT), created
        )

    def instrument(self, symbol: str) -> Instrument:
        """The rules of ``symbol``; raises ``UnknownSymbol`` when the run does not trade it."""
        instrument = self._engine().instruments.get(symbol)
        if instrument is None:
            raise UnknownSymbol(f"unknown symbol {symbol!r}", field="symbol")
        return instrument

    def _known(self, order_id: str) -> Order | None:
        return self._engine().ledger.get(order_id) or self._stored(order_id)

    @staticmethod
    def _repeated(known: Order, different: str | None) -> Order:
        """``known``, asked for again: refused when the request's terms differ (``different``
        names the first), and rejected again when the venue rejected it."""
        if different is not None:
            raise DuplicateOrder(
                f"client_order_id {known.id!r} is already used by an order with other terms: "
                f"{different}",
                field="client_order_id",
            )
        if known.status is OrderStatus.REJECTED:
            reason = known.reject_reason or "rejected by the venue"
            raise OrderRejected(
                f"order {known.id} rejected: {reason}", order_id=known.id, reason=reason
            )
        return known

    def _send_new(self, intent: OrderIntent, order_id: str) -> Order:
        """Check, store, then send the order of ``intent``; its state after the venue's
        answer."""
        engine = self._engine()
        instrument = self.instrument(intent.symbol)
        intent = trailing_start(intent, instrument, engine.marks.get(intent.symbol))
        try:
            order = build_order(intent, order_id, engine.clock.now_ms(), API_TAG)
        except ValueError as exc:
            raise invalid_order(exc) from None
        held = engine.ledger.position(intent.symbol).qty
        problem = order_problem(order, instrument, held, engine.marks.get(intent.symbol))
        if problem is not None:
            raise InvalidOrder(problem[1], field=problem[0])
        self._risk_check(order, held)
        engine.submit_now([order])
        self._commit(engine.flush())
        sent = engine.send([order])
        self._commit(sent)
        final = engine.ledger.get(order_id) or order
        if final.status is OrderStatus.REJECTED:
            reason = final.reject_reason or "rejected by the venue"
            raise OrderRejected(
                f"order {order_id} rejected: {reason}", order_id=order_id, reason=reason
            )
        return final

    def modify_order(
        self,
        order_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Amend a working order: its ``qty`` (base asset; more than has filled), limit
        ``price`` or ``stop_price`` (quote currency), None keeping a value; the order after the
        venue's answer.

        Raises
        ------
        OrderNotFound
            When there is no such order.
        OrderNotCancelable
            When the order is already final.
        InvalidOrder
            When the order has no such term (a price on a market order) or the instrument's
            rules refuse the new one (tick, lot step, minimum notional); ``field`` names it.
        OrderRejected
            When the venue refuses the change (``reason`` says why: a qty not above what has
            filled, margin); the order is unchanged.
        """
        return self._commands.call(lambda: self._modify(order_id, qty, price, stop_price))

    def _modify(
        self,
        order_id: str,
        qty: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
    ) -> Order:
        engine = self._engine()
        order = self._known(order_id)
        if order is None:
            raise OrderNotFound(f"no order with id {order_id!r}", field="id")
        if order.status.is_final:
            raise OrderNotCancelable(
                f"order {order_id} is already {order.status}: it can no longer be modified",
                field="id",
            )
        if price is not None and order.type is not OrderType.LIMIT:
            raise InvalidOrder(f"price applies to limit orders, not {order.type}", field="price")
        if stop_price is not None and not order.type.is_triggered:
            raise InvalidOrder(
                f"stop_price applies to stop, take-profit and trailing-stop orders, "
                f"not {order.type}",
                field="stop_price",
            )
        new_qty = order.qty if qty is None else qty
        if new_qty > order.filled_qty:  # else the venue refuses it, saying why
            rest = replace(
                order,
                qty=new_qty - order.filled_qty,
                filled_qty=ZERO,
                price=order.price if price is None else price,
                stop_price=order.stop_price if stop_price is None else stop_price,
            )
            held = engine.ledger.position(order.symbol).qty
            instrument = self.instrument(order.symbol)
            problem = order_problem(rest, instrument, held, engine.marks.get(order.symbol))
            if problem is not None:
                raise InvalidOrder(problem[1], field=problem[0])
        engine.request_modify(order_id, qty=qty, price=price, stop_price=stop_price)
        changes = engine.flush()
        self._commit(changes)
        reason = modify_refusal(changes.refused, order_id)
        if reason is not None:
            field = "qty" if qty is not None else "price" if price is not None else "stop_price"
            raise OrderRejected(
                f"modify of order {order_id} rejected: {reason}",
                order_id=order_id,
                reason=reason,
                field=field,
            )
        return engine.ledger.get(order_id) or order

    def cancel_order(self, order_id: str) -> Order:
        """Cancel an open order; raises ``OrderNotFound`` or ``OrderNotCancelable``."""
        return self._commands.call(lambda: self._cancel(order_id))

    def _cancel(self, order_id: str) -> Order:
        engine = self._engine()
        order = engine.ledger.get(order_id) or self._stored(order_id)
        if order is None:
            raise OrderNotFound(f"no order with id {order_id!r}", field="id")
        if order.status.is_final:
            raise OrderNotCancelable(f"order {order_id} is already {order.status}", field="id")
        engine.request_cancel(order_id)
        self._commit(engine.flush())
        return engine.ledger.get(order_id) or order

    def _risk_check(self, order: Order, held: Decimal) -> None:
        """Pass ``order`` (against the position ``held``) through the run's risk gate, as the
        strategy's orders are: one it refuses (trading halted, reducing and the order adds
        exposure, an entry over the max open positions or leverage) is stored as rejected with
        the gate's reason and raised as ``OrderRejected`` (409)."""
        engine = self._engine()
        gate = engine.risk
        if gate is None:
            return
        now = engine.clock.now_ms()
        reason = gate.check(order, held, engine.portfolio(), now)
        if reason is None:
            return
        engine.submit_now([order])
        refused = ExecutionEvent(ExecutionEventKind.REJECTED, order.id, now, reason=reason)
        engine.ledger.apply(refused)
        self._commit(engine.flush())
        message = f"order {order.id} rejected by the risk gate: {reason}"
        raise OrderRejected(message, order_id=order.id, reason=reason)
