"""Account bookkeeping: cash, net positions, realized PnL and round-trip trades from fills.

A futures-style account in one quote currency: ``cash`` (the wallet balance) changes by realized
PnL and fees; open positions add unrealized PnL to equity. A fill that reduces
a position realizes ``closed_qty × (fill_price − entry_price) × sign(position)`` and records a
:class:`~domain.model.Trade` for the closed quantity; a fill that flips a position closes it and
opens the remainder at the fill price. Entry fees are carried with the position and charged to
the trade that closes it, pro rata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from domain.model import ZERO, Fill, Position, Side, Trade, fast_constructor

PRICE_QUANTUM = Decimal("1e-12")
"""Average entry prices are kept to 12 decimal places (any tick is coarser), so a stored and
restored position continues exactly."""
MONEY_QUANTUM = Decimal("1e-8")
"""Default money precision (USDT's 8 places): realized PnL and pro-rata fees are rounded to it."""


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """What one fill did: the new ``position``, the PnL it ``realized`` (before fees) and the
    ``trade`` it closed, if any."""

    position: Position
    realized: Decimal
    trade: Trade | None


def apply_fill(
    position: Position,
    fill: Fill,
    trade_id: Callable[[], str],
    money: Decimal = MONEY_QUANTUM,
) -> FillOutcome:
    """Apply ``fill`` to ``position`` (same symbol); a trade it closes gets the id
    ``trade_id()``.

    Realized PnL and the pro-rata split of fees are rounded half-even to ``money`` (the quote
    asset's precision); the average entry price to :data:`PRICE_QUANTUM`.

    Raises
    ------
    ValueError
        When the symbols differ.
    """
    return FillOutcome(*_apply_fill(position, fill, trade_id, money))


def _apply_fill(
    position: Position, fill: Fill, trade_id: Callable[[], str] | None, money: Decimal
) -> tuple[Position, Decimal, Trade | None]:
    """:func:`apply_fill` as a tuple; with ``trade_id`` None no trade is built."""
    if position.symbol != fill.symbol:
        raise ValueError(f"fill for {fill.symbol} applied to position in {position.symbol}")
    signed = fill.qty * fill.side.sign
    held = position.qty
    if held == 0 or (held > 0) == (signed > 0):
        return _increase(position, fill, signed), ZERO, None
    closed = min(abs(held), fill.qty)
    direction = 1 if held > 0 else -1
    realized = (closed * (fill.price - position.entry_price) * direction).quantize(money)
    # Whole shares need no division (the common case, and exact).
    entry_fees = (
        position.entry_fees
        if closed == abs(held)
        else (position.entry_fees * closed / abs(held)).quantize(money)
    )
    exit_fees = fill.fee if closed == fill.qty else (fill.fee * closed / fill.qty).quantize(money)
    trade = None
    if trade_id is not None:
        trade = _trade(
            trade_id(),
            fill.symbol,
            Side.BUY if direction > 0 else Side.SELL,
            closed,
            position.opened_time if position.opened_time is not None else fill.time,
            position.entry_price,
            fill.time,
            fill.price,
            realized - entry_fees - exit_fees,
            entry_fees + exit_fees,
        )
    remaining = held + signed
    if remaining == 0:
        new = _position(fill.symbol, ZERO, ZERO, None, ZERO)
    elif (remaining > 0) == (held > 0):
        new = _position(
            fill.symbol,
            remaining,
            position.entry_price,
            position.opened_time,
            position.entry_fees - entry_fees,
        )
    else:
        new = _position(fill.symbol, remaining, fill.price, fill.time, fill.fee - exit_fees)
    return new, realized, trade


def _increase(position: Position, fill: Fill, signed: Decimal) -> Position:
    if position.qty == 0:
        return _position(fill.symbol, signed, fill.price, fill.time, fill.fee)
    qty = position.qty + signed
    cost = abs(position.qty) * position.entry_price + fill.qty * fill.price
    return _position(
        fill.symbol,
        qty,
        (cost / abs(qty)).quantize(PRICE_QUANTUM),
        position.opened_time if position.qty != 0 else fill.time,
        position.entry_fees + fill.fee,
    )


# Every fill builds positions and trades: unchecked (they have no checks to skip).
_position = fast_constructor(Position, validate=False)
_trade = fast_constructor(Trade, validate=False)
_outcome = fast_constructor(FillOutcome, validate=False)


@dataclass(slots=True)
class Account:
    """Cash and positions of one account; mutable, owned by one broker.

    ``cash`` is in quote currency; ``positions`` maps symbol → non-flat :class:`Position`;
    ``fees_paid`` and ``funding_paid`` the totals since the account was built (funding
    received counts negative).
    """

    cash: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    fees_paid: Decimal = ZERO
    money: Decimal = MONEY_QUANTUM
    funding_paid: Decimal = ZERO
    _flat: dict[str, Position] = field(default_factory=dict, init=False, repr=False, compare=False)

    def position(self, symbol: str) -> Position:
        """Net position in ``symbol`` (a flat one when none is open)."""
        held = self.positions.get(symbol)
        if held is None:
            held = self._flat.get(symbol)
            if held is None:
                held = self._flat[symbol] = Position(symbol)
        return held

    def apply(self, fill: Fill, trade_id: Callable[[], str]) -> FillOutcome:
        """Book ``fill``: update the position, add realized PnL and subtract the fee from cash.
        A trade it closes gets the id ``trade_id()``."""
        return _outcome(*self._book(fill, trade_id))

    def book(self, fill: Fill) -> None:
        """Book ``fill`` as :meth:`apply` does, recording no trade (a venue's own account)."""
        self._book(fill, None)

    def _book(
        self, fill: Fill, trade_id: Callable[[], str] | None
    ) -> tuple[Position, Decimal, Trade | None]:
        position, realized, trade = _apply_fill(
            self.position(fill.symbol), fill, trade_id, self.money
        )
        if position.qty == 0:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = position
        self.cash += realized - fill.fee
        self.fees_paid += fill.fee
        return position, realized, trade

    def pay_funding(self, amount: Decimal) -> None:
        """Book a funding payment: ``amount`` (quote currency) leaves the wallet (a negative
        amount is funding received)."""
        self.cash -= amount
        self.funding_paid += amount

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Cash plus unrealized PnL of every position at ``marks`` (entry price when unmarked)."""
        return self.cash + sum(
            (p.unrealized_pnl(marks.get(s, p.entry_price)) for s, p in self.positions.items()),
            ZERO,
        )

    def margin_usage(
        self, marks: Mapping[str, float], symbol: str, qty: float, mark: float
    ) -> tuple[float, float]:
        """``(gross notional, equity)`` if ``symbol``'s position were ``qty`` (signed) at
        ``mark``, other positions at ``marks`` (entry price when unmarked), in quote currency.

        A risk check, computed in float64 on purpose: it runs on every order, and Decimal sums
        of 28-digit average prices cost more than the check is worth. Money stays Decimal.
        """
        gross = 0.0
        equity = float(self.cash)
        for s, p in self.positions.items():
            entry = float(p.entry_price)
            price = mark if s == symbol else marks.get(s, entry)
            held = float(p.qty)
            equity += held * (price - entry)
            if s != symbol:
                gross += abs(held) * price
        gross += abs(qty) * mark
        return gross, equity
