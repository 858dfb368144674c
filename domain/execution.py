"""Simulated order execution against closed bars (backtest and paper share these rules).

Rules (a bar is ``open, high, low, close`` in quote currency):

* **market**: fills at the open of the first bar after the decision, ± ``slippage_bps``
  (a buy pays ``open × (1 + bps/10⁴)`` rounded up to the tick, a sell gets
  ``open × (1 − bps/10⁴)`` rounded down); taker fee.
* **limit**: fills when the bar trades *through* the limit (buy: ``low < limit``; sell:
  ``high > limit``) at the limit, or at the open when the bar opens beyond it (then it crossed on
  arrival and pays the taker fee, otherwise the maker fee).
* **stop**: triggers when the bar touches the stop (buy: ``high >= stop``; sell: ``low <= stop``)
  and fills at the stop, or at the open when the bar gaps through it; taker fee.

Fees are a fraction of notional per side (Binance USD-M defaults: taker 0.0005, maker 0.0002).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from domain.candles import Candles
from domain.model import Instrument, Liquidity, Order, OrderType, Side

_BPS = Decimal(10_000)
_SEARCH_WINDOWS = (64, 4096)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rates as fractions of notional (0.0005 = 5 bps)."""

    taker: Decimal = Decimal("0.0005")
    maker: Decimal = Decimal("0.0002")

    def __post_init__(self) -> None:
        if not (0 <= self.taker < 1 and 0 <= self.maker < 1):
            raise ValueError(f"fee rates must be in [0, 1), were {self.taker}, {self.maker}")

    def rate(self, liquidity: Liquidity) -> Decimal:
        """The fee rate for ``liquidity``."""
        return self.taker if liquidity is Liquidity.TAKER else self.maker


def to_decimal(x: float) -> Decimal:
    """A float as the shortest Decimal that round-trips (``95123.4`` → ``Decimal('95123.4')``)."""
    return Decimal(repr(float(x)))


def _triggered(order: Order, o: np.ndarray, h: np.ndarray, low: np.ndarray) -> np.ndarray:
    if order.type is OrderType.LIMIT:
        limit = float(order.price)  # type: ignore[arg-type]
        return low < limit if order.side is Side.BUY else h > limit
    stop = float(order.stop_price)  # type: ignore[arg-type]
    return h >= stop if order.side is Side.BUY else low <= stop


def first_trigger(order: Order, candles: Candles, start: int) -> int | None:
    """Index of the first bar ``>= start`` at which ``order`` fills, or None.

    Market orders fill at ``start``; limit and stop orders are searched vectorized, in growing
    windows so that a near trigger does not scan the whole series.
    """
    n = len(candles)
    if start >= n:
        return None
    if order.type is OrderType.MARKET:
        return start
    lo = start
    for width in (*_SEARCH_WINDOWS, n):
        hi = min(n, lo + width)
        hit = _triggered(order, candles.open[lo:hi], candles.high[lo:hi], candles.low[lo:hi])
        if hit.any():
            return lo + int(hit.argmax())
        if hi == n:
            return None
        lo = hi
    return None


@dataclass(frozen=True, slots=True)
class Execution:
    """Where and how an order fills on one bar."""

    price: Decimal
    liquidity: Liquidity


def execute_on_bar(
    order: Order,
    bar_open: float,
    instrument: Instrument,
    slippage_bps: Decimal,
) -> Execution:
    """Fill price and liquidity of ``order`` on a bar that triggers it (see module rules).

    Call only for a bar where :func:`first_trigger` said the order fills.
    """
    opening = to_decimal(bar_open)
    buy = order.side is Side.BUY
    if order.type is OrderType.MARKET:
        slip = opening * slippage_bps / _BPS
        price = opening + slip if buy else opening - slip
        return Execution(instrument.round_price(price, up=buy), Liquidity.TAKER)
    if order.type is OrderType.LIMIT:
        limit: Decimal = order.price  # type: ignore[assignment]
        crossed = opening < limit if buy else opening > limit
        if crossed:
            return Execution(opening, Liquidity.TAKER)
        return Execution(limit, Liquidity.MAKER)
    stop: Decimal = order.stop_price  # type: ignore[assignment]
    gapped = opening >= stop if buy else opening <= stop
    return Execution(opening if gapped else stop, Liquidity.TAKER)


def trigger_distance(order: Order, bar_open: float) -> float:
    """How far from the open an order's trigger lies (orders closer to the open fill first)."""
    if order.type is OrderType.MARKET:
        return 0.0
    level = order.price if order.type is OrderType.LIMIT else order.stop_price
    return abs(float(level) - bar_open)  # type: ignore[arg-type]
