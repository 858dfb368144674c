"""What the venues' funding readers share (see :mod:`domain.funding`): a venue's funding charge
at one funding time, and the ledger payment it books as.

Each venue's funding module asks its venue (its endpoints, its rows, its mark price); this module
reads only the venue-neutral charge:

- ``time_ms``: the venue's settlement stamp floored to the minute (venues stamp a settlement a
  few ms late), as funding times are everywhere else; a (symbol, time) pair is one payment;
- ``qty``: the signed position the venue charged, ``amount / (mark × rate)`` rounded to the
  symbol's lot step. The venues' rows do not carry it; derived this way, ``qty × mark × rate``
  gives the venue's amount back within half a cent, as a payment must. When the rounded qty does
  not (a venue amount off the formula), the unrounded qty is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from domain.funding import FundingPayment
from domain.model import ZERO

MINUTE_MS = 60_000
"""A minute (ms): funding times are whole minutes."""
_HALF_CENT = Decimal("0.005")
_FINE = Decimal("1e-12")


def funding_minute(stamp: int) -> int:
    """The funding time (ms UTC) of a settlement the venue stamped at ``stamp`` (ms UTC): the
    stamp floored to the minute.

    >>> funding_minute(1746432000003)
    1746432000000
    """
    return stamp - stamp % MINUTE_MS


@dataclass(frozen=True, slots=True)
class FundingFee:
    """One funding charge: ``symbol``, ``time_ms`` (ms UTC, floored to the minute) and
    ``amount`` the account paid (quote currency; negative: received)."""

    symbol: str
    time_ms: int
    amount: Decimal


def funding_payment(
    fee: FundingFee, rate: Decimal, mark: Decimal, step: Decimal | None
) -> FundingPayment | None:
    """``fee`` as a ledger payment at ``rate`` (fraction) and ``mark`` (quote currency), its qty
    derived and rounded to the lot ``step`` (base units; None: unknown, the qty is kept
    unrounded), see the module's docstring; None when ``rate`` or the amount is 0.

    >>> fee = FundingFee("BTCUSDT", 0, Decimal("0.03636"))
    >>> funding_payment(fee, Decimal("0.00003636"), Decimal("100000"), Decimal("0.001")).qty
    Decimal('0.010')
    """
    if rate == 0 or fee.amount == 0:
        return None
    exact = fee.amount / (mark * rate)
    qty = (exact / step).quantize(Decimal(1), ROUND_HALF_EVEN) * step if step else ZERO
    if qty == 0 or abs(fee.amount - qty * mark * rate) > _HALF_CENT:
        qty = exact.quantize(_FINE)
    return FundingPayment(fee.time_ms, fee.symbol, qty, mark, rate, fee.amount)
