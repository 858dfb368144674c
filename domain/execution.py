"""Simulated order execution against closed bars (backtest and paper share these rules).

Rules (a bar is ``open, high, low, close`` in quote currency):

* **market**: fills at the open of the first bar after the decision, ± ``slippage_bps``
  (a buy pays ``open × (1 + bps/10⁴)`` rounded up to the tick, a sell gets
  ``open × (1 − bps/10⁴)`` rounded down); taker fee.
* **limit**: fills when the bar trades *through* the limit (buy: ``low < limit``; sell:
  ``high > limit``) at the limit, or at the open when the bar opens beyond it (then it crossed on
  arrival and pays the taker fee, otherwise the maker fee).
* **stop** (stop market): triggers when the bar touches the stop (buy: ``high >= stop``; sell:
  ``low <= stop``) and fills at the stop, or at the open when the bar gaps through it; taker fee.
* **take_profit** (take-profit market): triggers when the bar touches the level in the
  position's favour (sell: ``high >= level``; buy: ``low <= level``) and fills at the level, or at
  the open when the bar opens beyond it (a better price); taker fee.
* **trailing_stop**: a stop whose level follows the best price since it was placed, ``offset``
  behind it. On each bar the level is first checked against the bar's range with the best price
  of the *previous* bars (a bar's own high is not assumed to come before its low), then moved
  with the bar. Fills like a stop; taker fee.

Fees are a fraction of notional per side (Binance USD-M defaults: taker 0.0005, maker 0.0002).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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


class DecimalMarks(Mapping[str, Decimal]):
    """A live, read-only view of prices by symbol kept as floats, read as Decimal
    (:func:`to_decimal`): marks move on every decision, and most are never read as money."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[str, float]) -> None:
        self._prices = prices

    def __getitem__(self, symbol: str) -> Decimal:
        return to_decimal(self._prices[symbol])

    def get(self, symbol: str, default: Any = None) -> Any:
        """The price of ``symbol``, or ``default`` when it has none."""
        price = self._prices.get(symbol)
        return default if price is None else to_decimal(price)

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def __repr__(self) -> str:
        return f"DecimalMarks({dict(self)!r})"


def _triggered(order: Order, o: np.ndarray, h: np.ndarray, low: np.ndarray) -> np.ndarray:
    if order.type is OrderType.LIMIT:
        limit = float(order.price)  # type: ignore[arg-type]
        return low < limit if order.side is Side.BUY else h > limit
    level = float(order.stop_price)  # type: ignore[arg-type]
    if order.type is OrderType.TAKE_PROFIT:
        return low <= level if order.side is Side.BUY else h >= level
    return h >= level if order.side is Side.BUY else low <= level


def trailing_levels(
    side: Side, anchor: float, offset: float, high: np.ndarray, low: np.ndarray
) -> np.ndarray:
    """The trailing-stop level in force on each bar of ``high``/``low`` (length n).

    ``anchor`` is the best price seen before the first bar (highest for a sell stop protecting
    a long, lowest for a buy stop). Bar ``j``'s level uses the best price of bars ``< j`` only.
    """
    if side is Side.SELL:
        best = np.maximum.accumulate(np.r_[anchor, high[:-1]])
        return np.maximum(best, anchor) - offset
    best = np.minimum.accumulate(np.r_[anchor, low[:-1]])
    return np.minimum(best, anchor) + offset


def first_trailing_trigger(
    side: Side, anchor: float, offset: float, candles: Candles, start: int
) -> tuple[int, float] | None:
    """``(index, level)`` of the first bar ``>= start`` that touches the trailing level, or None.

    See :func:`trailing_levels`; a sell stop triggers when ``low <= level``, a buy stop when
    ``high >= level``.
    """
    high, low = candles.high[start:], candles.low[start:]
    if not len(high):
        return None
    levels = trailing_levels(side, anchor, offset, high, low)
    hit = low <= levels if side is Side.SELL else high >= levels
    if not hit.any():
        return None
    k = int(hit.argmax())
    return start + k, float(levels[k])


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
    if order.type is OrderType.TRAILING_STOP:
        raise ValueError("trailing stops are searched with first_trailing_trigger")
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

    Call only for a bar where :func:`first_trigger` said the order fills; for a trailing stop,
    with ``order.stop_price`` set to the level in force on that bar.
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
    level: Decimal = order.stop_price  # type: ignore[assignment]
    if order.type is OrderType.TAKE_PROFIT:
        beyond = opening <= level if buy else opening >= level
    else:
        beyond = opening >= level if buy else opening <= level
    return Execution(opening if beyond else level, Liquidity.TAKER)


def trigger_distance(order: Order, bar_open: float) -> float:
    """How far from the open an order's trigger lies (orders closer to the open fill first)."""
    if order.type is OrderType.MARKET:
        return 0.0
    level = order.price if order.type is OrderType.LIMIT else order.stop_price
    return abs(float(level) - bar_open)  # type: ignore[arg-type]
