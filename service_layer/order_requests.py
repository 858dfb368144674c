"""Orders asked for over the API: idempotent client ids, brackets, trailing stops, amendments.

* A ``client_order_id`` names one order. Asked for again with the same terms, the service
  answers with the order placed first and sends nothing (:func:`difference` is None); with
  other terms it refuses, naming the first term that differs.
* A bracket is an entry carrying an :class:`~domain.model.ExitPlan` (:func:`bracket_plan`): the
  kernel places its stop-loss and take-profit, reduce-only and linked to the entry, the moment
  the entry has filled completely (:mod:`service_layer.exits`), so they are stored with the
  fill, placed again idempotently after a restart and may trigger on the fill's own bar. The
  request's absolute levels become distances from the entry's price (its limit price, or the
  last close for a market entry), kept from the average fill price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum

from domain.errors import InvalidOrder
from domain.model import ExitPlan, Instrument, Order, OrderType, Side, TakeProfit
from domain.orders import ExecutionEventKind as K
from domain.strategies.base import OrderIntent


@dataclass(frozen=True, slots=True)
class BracketRequest:
    """An entry of ``qty`` (base asset) on ``symbol``, a limit at ``price`` or a market order
    (``price`` None), with a stop-loss and a take-profit at absolute trigger prices ``stop_loss``
    and ``take_profit`` (quote currency)."""

    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None
    stop_loss: Decimal
    take_profit: Decimal

    def entry(self) -> OrderIntent:
        """The entry order, without its exits."""
        kind = OrderType.MARKET if self.price is None else OrderType.LIMIT
        return OrderIntent(self.symbol, self.side, self.qty, type=kind, price=self.price)


_TERMS = (
    "symbol", "side", "type", "qty", "price", "stop_price", "trailing_offset", "reduce_only",
    "time_in_force", "link_id",
)  # fmt: skip
"""The terms of an order that a repeated ``client_order_id`` must ask for again."""


def difference(
    placed: Order, intent: OrderIntent, bracket: BracketRequest | None = None
) -> str | None:
    """The first term in which ``intent`` (with the exits of ``bracket``, when it is one) asks
    for another order than ``placed``, as ``"qty 0.02 (the order has 0.01)"``; None when it
    asks for the same one.

    A trailing stop's ``stop_price`` is not compared (it follows the price). A bracket's exits
    are compared as far as the stored plan tells: for a limit entry, the same levels; for a
    market entry (priced from the last close when it was placed), the same span between the
    stop and the take-profit.
    """
    for name in _TERMS:
        if name == "stop_price" and placed.type is OrderType.TRAILING_STOP:
            continue
        wanted, held = getattr(intent, name), getattr(placed, name)
        if wanted != held:
            return f"{name} {_show(wanted)} (the order has {_show(held)})"
    if bracket is None:
        return None if placed.exits is None else "exits (the order is a bracket's entry)"
    return _bracket_difference(placed.exits, bracket)


def _bracket_difference(plan: ExitPlan | None, bracket: BracketRequest) -> str | None:
    if plan is None or plan.stop_distance is None or len(plan.take_profits) != 1:
        return "exits (the order is not a bracket's entry)"
    stop, target = plan.stop_distance, plan.take_profits[0].distance
    span = abs(bracket.take_profit - bracket.stop_loss)
    if span != stop + target:
        return f"take_profit - stop_loss {span} (the order's is {stop + target})"
    if bracket.price is not None and abs(bracket.price - bracket.stop_loss) != stop:
        return f"price - stop_loss {abs(bracket.price - bracket.stop_loss)} (the order's is {stop})"
    return None


def _show(value: object) -> str:
    if value is None:
        return "none"
    return str(value.value) if isinstance(value, Enum) else str(value)


def bracket_plan(request: BracketRequest, reference: Decimal, instrument: Instrument) -> ExitPlan:
    """The exits of ``request``'s entry as distances (quote currency) from ``reference``, its
    limit price or for a market entry the last close: a stop at ``|reference - stop_loss|``
    and one take-profit of the whole quantity at ``|take_profit - reference|``.

    Raises
    ------
    InvalidOrder
        Naming ``stop_loss.stop_price`` or ``take_profit.stop_price``: a level off the tick, or
        not on its side of ``reference`` (a buy's stop below it and take-profit above it, the
        other way round for a sell).
    """
    long = request.side is Side.BUY
    what = "last price" if request.price is None else "limit price"
    for leg, level, below in (
        ("stop_loss", request.stop_loss, long),
        ("take_profit", request.take_profit, not long),
    ):
        field = f"{leg}.stop_price"
        if not instrument.on_tick(level):
            raise InvalidOrder(
                f"{field} must be a multiple of {instrument.tick_size}, was {level}", field=field
            )
        if (level >= reference) if below else (level <= reference):
            where = "below" if below else "above"
            raise InvalidOrder(
                f"{field} {level} must be {where} the entry's {what} {reference} "
                f"for a {request.side} entry",
                field=field,
            )
    return ExitPlan(
        stop_distance=abs(reference - request.stop_loss),
        take_profits=(TakeProfit(abs(request.take_profit - reference), Decimal(1)),),
    )


def trailing_start(
    intent: OrderIntent, instrument: Instrument, mark: Decimal | None
) -> OrderIntent:
    """``intent`` with the first level of a trailing stop given none: ``mark`` (quote
    currency) minus the offset for a sell, plus it for a buy, rounded to the tick away from the
    mark as the venue moves the level; any other intent unchanged.

    Raises
    ------
    InvalidOrder
        Naming ``stop_price`` when there is no mark yet, ``trailing_offset`` when the level
        would not be > 0.
    """
    offset = intent.trailing_offset
    if intent.type is not OrderType.TRAILING_STOP or intent.stop_price is not None or not offset:
        return intent
    if mark is None:
        raise InvalidOrder(
            f"no price of {intent.symbol} yet to start the trailing stop from: give stop_price",
            field="stop_price",
        )
    sell = intent.side is Side.SELL
    level = instrument.round_price(mark - offset if sell else mark + offset, up=not sell)
    if level <= 0:
        raise InvalidOrder(
            f"trailing_offset {offset} puts the first stop at {level} (last price {mark})",
            field="trailing_offset",
        )
    return replace(intent, stop_price=level)


_FIELDS = (
    ("trailing_offset", "trailing_offset"),
    ("stop_price", "stop_price"),
    ("price", "price"),
    ("post_only", "time_in_force"),
    ("qty", "qty"),
)
"""What an :class:`~domain.model.Order` validation message names → the input field."""


def invalid_order(exc: ValueError) -> InvalidOrder:
    """The ``InvalidOrder`` of an order's validation error, naming the field it is about."""
    message = str(exc)
    field = next((f for word, f in _FIELDS if word in message), "type")
    return InvalidOrder(message, field=field)


def modify_refusal(refused: Iterable[str], order_id: str) -> str | None:
    """The venue's reason for refusing to amend ``order_id``, from what a flush refused (the
    engine reports a ``modify_rejected`` event as ``"<symbol> at <time>: modify_rejected of
    <id>: <reason>"``), or None when it did not refuse."""
    marker = f"{K.MODIFY_REJECTED} of {order_id}: "
    for line in refused:
        _, found, reason = line.partition(marker)
        if found:
            return reason
    return None
