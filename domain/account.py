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

from domain.model import ZERO, Fill, Position, Side, Trade


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """What one fill did: the new ``position``, the PnL it ``realized`` (before fees) and the
    ``trade`` it closed, if any."""

    position: Position
    realized: Decimal
    trade: Trade | None


def apply_fill(position: Position, fill: Fill, trade_id: Callable[[], str]) -> FillOutcome:
    """Apply ``fill`` to ``position`` (same symbol).

    Raises
    ------
    ValueError
        When the symbols differ.
    """
    if position.symbol != fill.symbol:
        raise ValueError(f"fill for {fill.symbol} applied to position in {position.symbol}")
    signed = fill.qty * fill.side.sign
    held = position.qty
    if held == 0 or (held > 0) == (signed > 0):
        return FillOutcome(_increase(position, fill, signed), ZERO, None)
    closed = min(abs(held), fill.qty)
    direction = 1 if held > 0 else -1
    realized = closed * (fill.price - position.entry_price) * direction
    # Whole shares need no division (the common case, and exact).
    entry_fees = (
        position.entry_fees if closed == abs(held) else (position.entry_fees * closed / abs(held))
    )
    exit_fees = fill.fee if closed == fill.qty else fill.fee * closed / fill.qty
    trade = Trade(
        id=trade_id(),
        symbol=fill.symbol,
        side=Side.BUY if direction > 0 else Side.SELL,
        qty=closed,
        entry_time=position.opened_time if position.opened_time is not None else fill.time,
        entry_price=position.entry_price,
        exit_time=fill.time,
        exit_price=fill.price,
        pnl=realized - entry_fees - exit_fees,
        fees=entry_fees + exit_fees,
    )
    remaining = held + signed
    if remaining == 0:
        new = Position(fill.symbol)
    elif (remaining > 0) == (held > 0):
        new = Position(
            fill.symbol,
            remaining,
            position.entry_price,
            position.opened_time,
            position.entry_fees - entry_fees,
        )
    else:
        new = Position(fill.symbol, remaining, fill.price, fill.time, fill.fee - exit_fees)
    return FillOutcome(new, realized, trade)


def _increase(position: Position, fill: Fill, signed: Decimal) -> Position:
    if position.qty == 0:
        return Position(fill.symbol, signed, fill.price, fill.time, fill.fee)
    qty = position.qty + signed
    cost = abs(position.qty) * position.entry_price + fill.qty * fill.price
    return Position(
        fill.symbol,
        qty,
        cost / abs(qty),
        position.opened_time if position.qty != 0 else fill.time,
        position.entry_fees + fill.fee,
    )


@dataclass(slots=True)
class Account:
    """Cash and positions of one account; mutable, owned by one broker.

    ``cash`` is in quote currency; ``positions`` maps symbol → non-flat :class:`Position`.
    """

    cash: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    fees_paid: Decimal = ZERO

    def position(self, symbol: str) -> Position:
        """Net position in ``symbol`` (a flat one when none is open)."""
        return self.positions.get(symbol) or Position(symbol)

    def apply(self, fill: Fill, trade_id: Callable[[], str]) -> FillOutcome:
        """Book ``fill``: update the position, add realized PnL and subtract the fee from cash."""
        outcome = apply_fill(self.position(fill.symbol), fill, trade_id)
        if outcome.position.qty == 0:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = outcome.position
        self.cash += outcome.realized - fill.fee
        self.fees_paid += fill.fee
        return outcome

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Cash plus unrealized PnL of every position at ``marks`` (entry price when unmarked)."""
        return self.cash + sum(
            (p.unrealized_pnl(marks.get(s, p.entry_price)) for s, p in self.positions.items()),
            ZERO,
        )

    def margin_usage(
        self, marks: Mapping[str, Decimal], symbol: str, qty: Decimal, mark: Decimal
    ) -> tuple[float, float]:
        """``(gross notional, equity)`` if ``symbol``'s position were ``qty`` (signed) at
        ``mark``, other positions at ``marks`` (entry price when unmarked), in quote currency.

        A risk check, computed in float64 on purpose: it runs on every order, and Decimal sums
        of 28-digit average prices cost more than the check is worth. Money stays Decimal.
        """
        gross = 0.0
        equity = float(self.cash)
        for s, p in self.positions.items():
            price = float(mark if s == symbol else marks.get(s, p.entry_price))
            held = float(p.qty)
            equity += held * (price - float(p.entry_price))
            if s != symbol:
                gross += abs(held) * price
        gross += abs(float(qty)) * float(mark)
        return gross, equity
