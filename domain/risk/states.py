"""Trading states of the account and of each symbol, their change events, and the order check.

Three states, from least to most restrictive:

* ``active``: every order is admitted (the other risk checks still apply);
* ``reducing``: only orders that shrink ``|position|`` without flipping it;
* ``halted``: no order at all.

**Cancels are not orders**: canceling a working order never adds exposure, so it is allowed in
every state, and nothing here is asked about it. Orders already working when the state changes
stay working (a stop attached to an entry still protects the position); the state decides only
which *new* orders the risk gate passes on.

A symbol's effective state is the more restrictive of the account's and its own
(:func:`most_restrictive`). Positions are signed (long > 0), quantities in base asset, times
in ms UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from domain.model import Side

ACCOUNT = "account"
"""The scope of account-wide states and events (any other scope is a symbol)."""


class TradingState(StrEnum):
    """What new orders a scope (the account or a symbol) accepts; see the module docstring."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    @property
    def severity(self) -> int:
        """0 for active, 1 for reducing, 2 for halted (higher is more restrictive)."""
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def most_restrictive(*states: TradingState) -> TradingState:
    """The most restrictive of ``states`` (``active`` when none is given).

    >>> most_restrictive(TradingState.REDUCING, TradingState.ACTIVE)
    <TradingState.REDUCING: 'reducing'>
    """
    return max(states, key=_SEVERITY.__getitem__, default=TradingState.ACTIVE)


@dataclass(frozen=True, slots=True)
class StateChange:
    """The trading state of ``scope`` (:data:`ACCOUNT` or a symbol) went from ``from_state`` to
    ``to_state`` at ``time`` (ms UTC).

    ``reason`` is the human text shown to the user (with its numbers); ``source`` names what
    caused it (a breaker such as ``"daily_loss"``, or ``"manual"``), for metrics labels.

    Raises
    ------
    ValueError
        When ``scope`` is empty or the two states are the same (that is no transition).
    """

    scope: str
    from_state: TradingState
    to_state: TradingState
    reason: str
    time: int
    source: str = ""

    def __post_init__(self) -> None:
        if not self.scope:
            raise ValueError("scope must not be empty")
        if self.from_state is self.to_state:
            raise ValueError(f"a state change needs two different states, was {self.to_state}")


def position_after(
    position_qty: Decimal, order_side: Side, order_qty: Decimal, reduce_only: bool
) -> Decimal:
    """The signed position (base asset) after ``order_qty`` of ``order_side`` fills completely.

    A reduce-only order is executed as a venue executes it: clipped to the position when it is
    on the closing side, and not at all when it is not (Binance rejects a reduce-only order
    that would increase the position, ``-2022 ReduceOnly Order is rejected``).

    Raises
    ------
    ValueError
        When ``order_qty`` is not > 0.
    """
    if not order_qty > 0:
        raise ValueError(f"order_qty must be > 0, was {order_qty}")
    signed = order_qty * order_side.sign
    if not reduce_only:
        return position_qty + signed
    if position_qty == 0 or (position_qty > 0) == (signed > 0):
        return position_qty
    return position_qty + signed if order_qty < abs(position_qty) else Decimal(0)


def reduces(position_qty: Decimal, order_side: Side, order_qty: Decimal, reduce_only: bool) -> bool:
    """True when the order shrinks ``|position_qty|`` and cannot flip it: it is on the closing
    side and either reduce-only (the venue clips it) or no larger than the position."""
    if position_qty == 0 or (position_qty > 0) == (order_side is Side.BUY):
        return False
    return reduce_only or order_qty <= abs(position_qty)


def admits(
    state: TradingState,
    position_qty: Decimal,
    order_side: Side,
    order_qty: Decimal,
    reduce_only: bool,
) -> str | None:
    """None when ``state`` admits a new order of ``order_qty`` (base asset, > 0) on
    ``order_side`` against the signed position ``position_qty``; else the refusal reason.

    ``active`` admits every order; ``reducing`` only orders for which :func:`reduces` holds;
    ``halted`` none. Cancels are not orders and are always allowed.

    Raises
    ------
    ValueError
        When ``order_qty`` is not > 0.
    """
    if not order_qty > 0:
        raise ValueError(f"order_qty must be > 0, was {order_qty}")
    if state is TradingState.ACTIVE:
        return None
    if state is TradingState.HALTED:
        return f"trading is halted: {order_side} {order_qty} refused (only cancels are allowed)"
    if reduces(position_qty, order_side, order_qty, reduce_only):
        return None
    return (
        f"trading is reducing: {order_side} {order_qty} would not reduce position "
        f"{position_qty} without flipping it"
    )
