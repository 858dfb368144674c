"""Decimal strings at the precision of what they measure.

Prices are written with the instrument's tick decimals, quantities with its lot step decimals,
money (balances, equity, PnL, fees) with the quote asset's precision; rounding is half-even.
An average (a position's entry, an order's average fill price) is rounded the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import overload

from domain.model import Instrument
from service_layer.engine import Engine


def decimals(increment: Decimal) -> int:
    """Decimal places of ``increment`` (``0.10`` → 1, ``0.001`` → 3, ``10`` → 0)."""
    exponent = increment.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _fixed(x: Decimal, places: int) -> str:
    return format(x.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN), "f")


class Numbers:
    """Formats prices, quantities and money of the traded ``instruments`` (symbol → rules).

    A symbol without an instrument (stored by an older run) keeps its exact value, written
    without exponent or trailing zeros.
    """

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        money_places: int,
        money_currency: str | None = None,
    ) -> None:
        self._price = {s: decimals(i.tick_size) for s, i in instruments.items()}
        self._qty = {s: decimals(i.step_size) for s, i in instruments.items()}
        self._quote = {s: i.quote_asset for s, i in instruments.items()}
        self._money = money_places
        quotes = sorted(set(self._quote.values()))
        self.money_currency: str = money_currency or (quotes[0] if quotes else "USDT")
        """The account's currency (balances, equity): the instruments' quote asset."""

    def currency(self, symbol: str) -> str:
        """The quote asset of ``symbol`` (fees, PnL), the account's currency when unknown."""
        return self._quote.get(symbol, self.money_currency)

    @overload
    def price(self, symbol: str, x: Decimal) -> str: ...
    @overload
    def price(self, symbol: str, x: None) -> None: ...
    @overload
    def price(self, symbol: str, x: Decimal | None) -> str | None: ...
    def price(self, symbol: str, x: Decimal | None) -> str | None:
        """A price (quote currency) at the tick's decimals; None stays None."""
        return _at(x, self._price.get(symbol))

    @overload
    def qty(self, symbol: str, x: Decimal) -> str: ...
    @overload
    def qty(self, symbol: str, x: None) -> None: ...
    @overload
    def qty(self, symbol: str, x: Decimal | None) -> str | None: ...
    def qty(self, symbol: str, x: Decimal | None) -> str | None:
        """A quantity (base asset) at the lot step's decimals; None stays None."""
        return _at(x, self._qty.get(symbol))

    @overload
    def money(self, x: Decimal) -> str: ...
    @overload
    def money(self, x: None) -> None: ...
    @overload
    def money(self, x: Decimal | None) -> str | None: ...
    def money(self, x: Decimal | None) -> str | None:
        """An amount of the quote asset at its precision; None stays None."""
        return _at(x, self._money)

    def bar_price(self, symbol: str, x: float) -> str:
        """A bar's price (stored as a float) at the tick's decimals."""
        return _at(Decimal(repr(x)), self._price.get(symbol))

    def bar_qty(self, symbol: str, x: float) -> str:
        """A bar's volume (stored as a float) at the lot step's decimals."""
        return _at(Decimal(repr(x)), self._qty.get(symbol))


@overload
def _at(x: Decimal, places: int | None) -> str: ...
@overload
def _at(x: Decimal | None, places: int | None) -> str | None: ...
def _at(x: Decimal | None, places: int | None) -> str | None:
    if x is None:
        return None
    if places is None:
        return format(x.normalize(), "f")
    return _fixed(x, places)


def numbers_of(engine: Engine) -> Numbers:
    """The formats of ``engine``'s instruments and account (money at its quote precision)."""
    account = engine.ledger.account
    return Numbers(engine.instruments, decimals(account.money))
