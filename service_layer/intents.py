"""From a strategy's order intents to orders: ids, checks and the submission order.

* Each intent gets the deterministic client id of ``(run, strategy, symbol, decision time,
  intent index)`` (:func:`domain.orders.client_order_id`); an id the ledger already knows is
  skipped, so deciding the same bar again after a crash never places an order twice.
* An intent with a zero or negative quantity, or one the instrument's rules refuse, is dropped
  with the reason (never sent).
* Orders that reduce exposure are submitted first (reduce-only orders and orders against the
  position no larger than it), then the others, each group in intent order: margin freed by an
  exit is available to the entry decided at the same time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from domain.ledger import Ledger
from domain.model import Instrument, Order, OrderStatus, fast_constructor
from domain.order_rules import order_problem
from domain.orders import client_order_id
from domain.strategies.base import OrderIntent

_new_order = fast_constructor(Order, validate=True)  # Order(...), faster: one per intent


def build_order(intent: OrderIntent, order_id: str, time: int, tag: str) -> Order:
    """The ``pending_new`` order for ``intent``.

    Raises
    ------
    ValueError
        When the intent cannot be an order (a limit without price...), naming the field.
    """
    return _new_order(
        id=order_id,
        symbol=intent.symbol,
        side=intent.side,
        type=intent.type,
        qty=intent.qty,
        created_time=time,
        price=intent.price,
        stop_price=intent.stop_price,
        status=OrderStatus.PENDING_NEW,
        reduce_only=intent.reduce_only,
        tag=tag,
        time_in_force=intent.time_in_force,
        link_id=intent.link_id,
        trailing_offset=intent.trailing_offset,
        exits=intent.exits,
    )


def orders_for(
    intents: Sequence[OrderIntent],
    *,
    run_id: str,
    strategy: str,
    time: int,
    ledger: Ledger,
    instruments: Mapping[str, Instrument],
    marks: Mapping[str, Decimal],
) -> tuple[list[Order], list[str]]:
    """The orders to submit for ``intents`` decided at ``time`` (ms UTC), in submission order,
    and the reasons of the intents dropped."""
    reducing: list[Order] = []
    adding: list[Order] = []
    dropped: list[str] = []
    for index, intent in enumerate(intents):
        where = f"{intent.symbol} at {time}"
        if intent.qty <= 0:
            dropped.append(f"{where}: {intent.side} qty {intent.qty} is not > 0; dropped")
            continue
        instrument = instruments.get(intent.symbol)
        if instrument is None:
            dropped.append(f"{where}: unknown symbol; dropped")
            continue
        order_id = client_order_id(run_id, strategy, intent.symbol, time, index)
        if ledger.get(order_id) is not None:
            continue
        try:
            tag = strategy if intent.leg is None else f"{strategy}:{intent.leg}"
            order = build_order(intent, order_id, time, tag)
        except ValueError as exc:
            dropped.append(f"{where}: {exc}; dropped")
            continue
        held = ledger.position(intent.symbol).qty
        problem = order_problem(order, instrument, held, marks.get(intent.symbol))
        if problem is not None:
            dropped.append(f"{where}: {problem[1]}")
            continue
        against = held != 0 and (held > 0) != (order.side.sign > 0) and order.qty <= abs(held)
        (reducing if order.reduce_only or against else adding).append(order)
    return reducing + adding, dropped
