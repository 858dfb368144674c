"""The exits of a filled entry: a stop, take-profit levels and a trailing stop, linked.

When an order carrying an :class:`~domain.model.ExitPlan` is completely filled, the engine places
its exits at once, priced from the entry's average fill price (quote currency): reduce-only,
linked to the entry (``link_id`` = the entry's id) and with client ids derived from the entry's,
so placing them again after a restart is idempotent. A stop or trailing stop that fills cancels
the other exits; a take-profit leaves them (the stop is clipped to what is left), and every exit
is canceled once the position is flat.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from domain.model import Instrument, Order, OrderStatus, OrderType, Position, fast_constructor

_new_order = fast_constructor(Order, validate=True)  # Order(...), faster: exits of every entry


def exit_id(entry_id: str, k: int) -> str:
    """The client id of the ``k``-th exit of entry ``entry_id`` (32 chars of ``[0-9a-z]``)."""
    return "lc" + hashlib.sha256(f"{entry_id}|exit|{k}".encode()).hexdigest()[:30]


def exit_orders(entry: Order, position: Position, instrument: Instrument, time: int) -> list[Order]:
    """The ``pending_new`` exits of ``entry`` once it is completely filled (empty before, when
    it has no plan, or when the position is not on the entry's side).

    Levels are rounded to the tick away from the entry (a stop a little further, a
    take-profit a little further); take-profit quantities are rounded down to the lot step and
    never add up to more than the position (a plan whose fractions sum to 1 gives the last
    level what is left).
    """
    plan = entry.exits
    if plan is None or entry.status is not OrderStatus.FILLED or entry.avg_fill_price is None:
        return []
    if position.qty == 0 or (position.qty > 0) != (entry.side.sign > 0):
        return []
    qty = min(entry.filled_qty, abs(position.qty))
    price = entry.avg_fill_price
    long = entry.side.sign > 0
    orders: list[Order] = []

    def add(kind: OrderType, amount: Decimal, level: Decimal, tag: str, **extra: object) -> None:
        if amount <= 0 or level <= 0:
            return
        orders.append(
            _new_order(
                id=exit_id(entry.id, len(orders)),
                symbol=entry.symbol,
                side=entry.side.opposite,
                type=kind,
                qty=amount,
                created_time=time,
                stop_price=level,
                reduce_only=True,
                tag=f"{entry.tag}:{tag}",
                link_id=entry.id,
                **extra,  # type: ignore[arg-type]
            )
        )

    def against(distance: Decimal) -> Decimal:
        level = price - distance if long else price + distance
        return instrument.round_price(level, up=not long)

    if plan.stop_distance is not None:
        add(OrderType.STOP, qty, against(plan.stop_distance), "stop")
    if plan.trailing_distance is not None:
        offset = instrument.round_price(plan.trailing_distance, up=True)
        add(OrderType.TRAILING_STOP, qty, against(offset), "trail", trailing_offset=offset)
    whole = sum((tp.fraction for tp in plan.take_profits), Decimal(0)) == 1
    left = qty
    for k, tp in enumerate(plan.take_profits):
        last = k == len(plan.take_profits) - 1
        amount = left if last and whole else min(left, instrument.round_qty(qty * tp.fraction))
        level = price + tp.distance if long else price - tp.distance
        add(OrderType.TAKE_PROFIT, amount, instrument.round_price(level, up=long), f"tp{k + 1}")
        left -= amount
    return orders
