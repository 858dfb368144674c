"""The strategy interface shared by every strategy.

A strategy is a pure function of the bar history. :meth:`Strategy.evaluate` computes its
indicators over the whole history at once (vectorized, causal) and returns an
:class:`Evaluation`: the bar indices where it may act (``candidates``) and a ``decide`` function
that turns one candidate bar plus the account context into a :class:`Decision`. The engine calls
``decide`` only at candidates, in time order, so a backtest costs time per decision, not per bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import numpy as np

from domain.candles import Candles
from domain.model import Instrument, Order, OrderType, Position, Side, Signal


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order a strategy wants placed (the engine assigns id and time).

    ``stop_distance`` (quote currency) asks the engine to place a reduce-only protective stop at
    ``fill_price ∓ stop_distance`` once this order fills.
    """

    side: Side
    qty: Decimal
    type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    stop_price: Decimal | None = None
    reduce_only: bool = False
    stop_distance: Decimal | None = None


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What a strategy may know about the account when deciding on bar ``index``'s close.

    ``equity`` is cash plus unrealized PnL at the latest closes (quote currency); ``allocation``
    the fraction of equity this symbol may use; ``time`` the bar's close time (ms UTC).
    """

    symbol: str
    timeframe: str
    time: int
    position: Position
    equity: Decimal
    allocation: Decimal
    instrument: Instrument
    open_orders: tuple[Order, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """A strategy's output for one bar: the ``signal`` it saw (with reasons), the orders to
    place and the ids of orders to cancel."""

    signal: Signal | None
    orders: tuple[OrderIntent, ...] = ()
    cancel: tuple[str, ...] = ()


class Evaluation(Protocol):
    """A strategy's view of one history: candidate bars and the decision at each."""

    candidates: np.ndarray

    def decide(self, i: int, ctx: DecisionContext) -> Decision:
        """The decision on bar ``i``'s close."""
        ...


class Strategy(Protocol):
    """A named, parameterized strategy."""

    name: str

    def params(self) -> dict[str, float | int | str]:
        """The parameters in effect (for storage and display)."""
        ...

    def evaluate(self, candles: Candles, start: int) -> Evaluation:
        """Indicators over ``candles`` (the whole history); candidates are indices ``>= start``."""
        ...


def cross_up(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bars ``t`` where ``a[t-1] < b[t-1]`` and ``a[t] > b[t]`` (strict both times; NaN never
    crosses). Returns sorted indices."""
    return np.flatnonzero((a[:-1] < b[:-1]) & (a[1:] > b[1:])) + 1


def floor_qty(notional: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
    """The largest lot-step quantity whose value at ``price`` is at most ``notional``;
    zero when that is below the instrument's minimum notional."""
    if price <= 0 or notional <= 0:
        return Decimal(0)
    qty = instrument.round_qty(notional / price)
    if qty <= 0 or qty * price < instrument.min_notional:
        return Decimal(0)
    return qty
