"""Pre-trade checks of an order against its instrument's rules and the position it would change.

The engine runs them before storing an order (an API caller gets a 400 at once, a strategy
intent is dropped with the reason), and the simulated venue runs them again on receipt, as a real
venue would.
"""

from __future__ import annotations

from decimal import Decimal

from domain.model import Instrument, Order, OrderType


def order_problem(
    order: Order, instrument: Instrument, position_qty: Decimal, mark: Decimal | None
) -> tuple[str, str] | None:
    """Why ``order`` breaks ``instrument``'s rules, as ``(field, message)``, or None when it
    does not.

    Checks: qty on the lot step and within the type's maximum (``LOT_SIZE`` for limit and
    triggered orders, ``MARKET_LOT_SIZE`` for market orders), prices on the tick, notional at
    ``price``/``stop_price``/``mark`` (quote currency) at least the minimum for orders that may
    add exposure, and that a reduce-only order reduces ``position_qty`` (signed, base asset).
    """
    if not instrument.on_step(order.qty):
        return "qty", f"qty must be a multiple of {instrument.step_size}, was {order.qty}"
    limit = instrument.max_order_qty(order.type)
    if limit is not None and order.qty > limit:
        return "qty", f"{order.type} order qty must be <= {limit}, was {order.qty}"
    for name in ("price", "stop_price"):
        level = getattr(order, name)
        if level is not None and not instrument.on_tick(level):
            return name, f"{name} must be a multiple of {instrument.tick_size}, was {level}"
    if order.type is OrderType.TRAILING_STOP and not instrument.on_tick(
        order.trailing_offset or Decimal(0)
    ):
        return "trailing_offset", (
            f"trailing_offset must be a multiple of {instrument.tick_size}, "
            f"was {order.trailing_offset}"
        )
    if order.reduce_only:
        held = position_qty
        if held == 0 or (held > 0) == (order.side.sign > 0) or order.qty > abs(held):
            return "reduce_only", (
                f"reduce-only {order.side} {order.qty} would not reduce position {held}"
            )
        return None
    reference = order.price or order.stop_price or mark
    if reference is not None and order.qty * reference < instrument.min_notional:
        return "qty", (
            f"notional {order.qty * reference} is below the minimum "
            f"{instrument.min_notional} for {order.symbol}"
        )
    return None
