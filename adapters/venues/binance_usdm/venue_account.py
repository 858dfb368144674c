"""A live run's futures margining at Binance USDⓈ-M: the ``MarginAccount`` port over the
execution client, so the API's balance breakdown is the venue's and a leverage change is the
venue's to accept.

- :func:`margin_report` reads ``GET /fapi/v3/account``'s totals (wallet, unrealized PnL,
  margin balance, initial and maintenance margin, available balance);
- :class:`VenueMargin` gives them to the kernel (the fees and funding of the run from its
  ledger, which the venue does not total per run) and forwards leverage changes to the venue
  (``POST /fapi/v1/leverage``), keeping a change only once the venue has accepted and reads it
  back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.wire_fields import Json, field_decimal
from domain.errors import DataError, InvalidOrder, VenueError
from domain.futures import MarginReport
from domain.model import ZERO

if TYPE_CHECKING:
    from adapters.venues.binance_usdm.execution import BinanceUsdmExecution

log = logging.getLogger(__name__)

Spent = Callable[[], tuple[Decimal, Decimal]]
"""The run's fees paid and funding paid so far (quote currency; funding received negative)."""

_TOTALS = {
    "wallet": "totalWalletBalance",
    "unrealized_pnl": "totalUnrealizedProfit",
    "margin_balance": "totalMarginBalance",
    "margin_in_use": "totalInitialMargin",
    "maintenance_margin": "totalMaintMargin",
    "available": "availableBalance",
}


def margin_report(payload: Json) -> MarginReport:
    """The account's balance breakdown in ``GET /fapi/v3/account`` (quote currency, the
    account's totals in USDT): ``margin_ratio`` = maintenance margin / margin balance (None
    without a positive margin balance); fees and funding 0 and no per-position figures (the
    venue's account totals have neither).

    Raises
    ------
    DataError
        A total missing or not a number.
    """
    if not isinstance(payload, Mapping):
        raise DataError(f"expected an object, got {payload!r:.200}", source=f"{VENUE} account")
    values = {
        name: field_decimal(payload, key, f"{VENUE} account") for name, key in _TOTALS.items()
    }
    balance = values["margin_balance"]
    ratio = values["maintenance_margin"] / balance if balance > 0 else None
    return MarginReport(
        **values, fees_paid=ZERO, funding_paid=ZERO, margin_ratio=ratio, positions=()
    )


class VenueMargin:
    """The ``MarginAccount`` of a live run: the venue's balance and leverage.

    Parameters
    ----------
    client:
        The started execution client.
    max_leverage:
        The ``max_leverage`` setting: a leverage above it is refused before the venue is asked.
    spent:
        The run's fees and funding paid, added to the venue's figures.
    """

    def __init__(
        self, client: BinanceUsdmExecution, *, max_leverage: Decimal, spent: Spent
    ) -> None:
        self._client = client
        self._max = max_leverage
        self._spent = spent
        self._last: MarginReport | None = None

    @property
    def leverage(self) -> Mapping[str, int]:
        """Leverage per symbol as the venue confirmed it (a live, read-only view)."""
        return self._client.leverage

    def set_leverage(self, symbol: str, leverage: int) -> None:
        """Set ``symbol``'s leverage at the venue and read it back.

        Raises
        ------
        InvalidOrder
            (``field="leverage"``) Below 1 or above ``max_leverage`` (the venue not asked), or
            refused by the venue, with its reason (e.g. above the bracket's maximum).
        VenueError
            The venue cannot be reached.
        """
        if not 1 <= leverage <= self._max:
            raise InvalidOrder(
                f"leverage must be 1 to max_leverage {self._max}, was {leverage}",
                field="leverage",
            )
        self._client.set_leverage(symbol, leverage)

    def margin_report(self) -> MarginReport:
        """The venue's balance breakdown now, with the run's fees and funding; the last one
        read when the venue cannot be asked (the run goes on; the failure is logged).

        Raises
        ------
        VenueError
            The venue cannot be asked and no breakdown was read before.
        """
        try:
            report = self._client.margin_report()
        except VenueError as exc:
            if self._last is None:
                raise
            log.warning("%s balance not read, showing the last one: %s", VENUE, exc)
            report = self._last
        self._last = report
        fees, funding = self._spent()
        return replace(report, fees_paid=fees, funding_paid=funding)

    def capital(self, cash: Decimal) -> Decimal:
        """What the strategy may size on: ``cash`` (the run's own capital, quote currency),
        at most the venue's available balance plus the margin its positions hold.

        Raises
        ------
        VenueError
            The venue cannot be asked.
        """
        report = self._last = self._client.margin_report()
        room = report.available + report.margin_in_use
        if room < cash:
            log.warning(
                "%s: the run's capital %s is above the account's available balance and margin "
                "in use %s; sizing on %s", VENUE, cash, room, room,
            )  # fmt: skip
            return room
        return cash
