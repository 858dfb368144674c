"""The funding a live account paid or received at Binance USDⓈ-M, as the ledger's payments.

Binance settles funding itself (see :mod:`domain.funding`) and lists each settlement in the
account's income history: ``GET /fapi/v1/income`` with ``incomeType=FUNDING_FEE`` (what ccxt's
``fetch_funding_history`` reads), one row per symbol and funding time, ``income`` negative when
the account paid. :class:`FundingIncome` turns the rows of the traded symbols into
:class:`~domain.funding.FundingPayment` s, which the reconciliation books once each:

- ``amount`` = −``income``, exactly as the venue wrote it (so the ledger's cash follows the
  venue's wallet to its 8 decimals);
- ``time_ms``: the row's time floored to the minute (the venue stamps a settlement a few ms
  late), as funding times are everywhere else; a (symbol, time) pair is one payment;
- ``rate`` and ``mark``: the funding rate settled then and the mark price it was settled at,
  from ``GET /fapi/v1/fundingRate`` (its ``markPrice``; when a row has none, the open of the
  1 h mark-price kline of that hour, ``GET /fapi/v1/markPriceKlines``);
- ``qty``: the signed position the venue charged, ``amount / (mark × rate)`` rounded to the
  symbol's lot step (``LOT_SIZE``). The income row does not carry it; derived this way,
  ``qty × mark × rate`` gives the venue's amount back within half a cent, as a payment must.
  When the rounded qty does not (a venue amount off the formula), the unrounded qty is kept.

A trader sees these rows in ``GET /api/v1/funding`` as in a backtest (qty × mark × rate at each
funding time, positive: paid), with the venue's amounts. A row whose rate the venue has not
published yet (or published as 0, which charges nothing) is left for a later reconciliation.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.venues.binance_usdm.account_exchange import AccountExchange
from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.client import Retrying
from adapters.venues.funding_income_common import (
    MINUTE_MS,
    FundingFee,
    funding_minute,
    funding_payment,
)
from domain.errors import DataError
from domain.funding import HOUR_MS, FundingPayment

log = logging.getLogger(__name__)

INCOME_PER_PAGE = 1000
"""The venue's maximum ``limit`` of ``GET /fapi/v1/income``."""


@dataclass(frozen=True, slots=True)
class SettledRate:
    """A funding time's ``rate`` (fraction) and the ``mark`` (quote currency) it settled at,
    None when the venue's row has none."""

    rate: Decimal
    mark: Decimal | None


def funding_fees(rows: Sequence[Mapping[str, Any]], symbols: Collection[str]) -> list[FundingFee]:
    """The ``FUNDING_FEE`` rows of ``symbols`` among ``GET /fapi/v1/income`` rows
    (``{"symbol", "incomeType", "income": "-0.01234567", "time": 1746432000003, ...}``).

    Raises
    ------
    DataError
        A row without its fields, or whose time or income is not a number.
    """
    fees = []
    for row, entry in enumerate(rows, start=1):
        if entry.get("incomeType") != "FUNDING_FEE" or entry.get("symbol") not in symbols:
            continue
        try:
            stamp, income = int(entry["time"]), Decimal(str(entry["income"]))
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            message = f"bad income row {entry!r:.200}: {exc!r}"
            raise DataError(message, source=VENUE, row=row) from None
        fees.append(FundingFee(str(entry["symbol"]), funding_minute(stamp), -income))
    return fees


def settled_rates(rows: Sequence[Mapping[str, Any]]) -> dict[int, SettledRate]:
    """``GET /fapi/v1/fundingRate`` rows by funding time (ms UTC, floored to the minute).

    Raises
    ------
    DataError
        A row without its fields, or whose time, rate or mark is not a number.
    """
    rates = {}
    for row, entry in enumerate(rows, start=1):
        try:
            stamp = int(entry["fundingTime"])
            rate = Decimal(str(entry["fundingRate"]))
            mark_text = str(entry.get("markPrice") or "")
            mark = Decimal(mark_text) if mark_text else None
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            message = f"bad funding row {entry!r:.200}: {exc!r}"
            raise DataError(message, source=VENUE, row=row) from None
        rates[funding_minute(stamp)] = SettledRate(rate, mark if mark else None)
    return rates


class FundingIncome:
    """Reads the account's funding payments at the venue.

    Parameters
    ----------
    exchange:
        The signed ccxt exchange (its markets loaded).
    call:
        Runs a request with retries of transient failures.
    symbols:
        The run's symbols (others' payments are not the run's).
    """

    def __init__(self, exchange: AccountExchange, call: Retrying, symbols: Sequence[str]) -> None:
        self._exchange = exchange
        self._call = call
        self._symbols = frozenset(symbols)

    async def payments(
        self, since: int, booked: Collection[tuple[str, int]]
    ) -> list[FundingPayment]:
        """The payments at funding times from ``since`` (ms UTC) on that are not in ``booked``
        (``(symbol, time_ms)`` pairs), oldest first.

        Raises
        ------
        VenueError
            The venue cannot be asked.
        DataError
            It answers rows that do not parse.
        """
        fees = [f for f in await self._fees(since) if (f.symbol, f.time_ms) not in booked]
        payments = []
        for symbol in sorted({f.symbol for f in fees}):
            mine = [f for f in fees if f.symbol == symbol]
            rates = await self._rates(symbol, mine[0].time_ms, mine[-1].time_ms)
            step = self._step(symbol)
            for fee in mine:
                settled = rates.get(fee.time_ms)
                if settled is None:
                    log.info("%s %s funding at %d: no rate yet", VENUE, symbol, fee.time_ms)
                    continue
                mark = settled.mark or await self._mark(symbol, fee.time_ms)
                payment = funding_payment(fee, settled.rate, mark, step) if mark else None
                if payment is not None:
                    payments.append(payment)
        return sorted(payments, key=lambda p: (p.time_ms, p.symbol))

    async def _fees(self, since: int) -> list[FundingFee]:
        """``FUNDING_FEE`` income rows of the run's symbols from ``since`` on, page by page."""
        fees: list[FundingFee] = []
        start = since
        while True:
            request = {
                "incomeType": "FUNDING_FEE", "startTime": str(start),
                "limit": str(INCOME_PER_PAGE),
            }  # fmt: skip
            rows = await self._call(lambda q=request: self._exchange.fapiPrivateGetIncome(q))
            fees += funding_fees(rows, self._symbols)
            if len(rows) < INCOME_PER_PAGE:
                return fees
            start = max(int(r["time"]) for r in rows) + 1

    async def _rates(self, symbol: str, first: int, last: int) -> dict[int, SettledRate]:
        request = {
            "symbol": symbol, "startTime": str(first), "endTime": str(last + MINUTE_MS - 1),
            "limit": "1000",
        }  # fmt: skip
        rows = await self._call(lambda: self._exchange.fapiPublicGetFundingRate(request))
        return settled_rates(rows)

    async def _mark(self, symbol: str, time_ms: int) -> Decimal | None:
        """The open of the 1 h mark-price kline of ``time_ms``'s hour, None without one."""
        hour = time_ms - time_ms % HOUR_MS
        request = {"symbol": symbol, "interval": "1h", "startTime": str(hour), "limit": "1"}
        rows = await self._call(lambda: self._exchange.fapiPublicGetMarkPriceKlines(request))
        if not rows or int(rows[0][0]) != hour:
            return None
        return Decimal(str(rows[0][1]))

    def _step(self, symbol: str) -> Decimal | None:
        """The symbol's lot step (``LOT_SIZE``'s ``stepSize``), None when not listed."""
        for market in (self._exchange.markets_by_id or {}).get(symbol, []):
            for rule in market.get("info", {}).get("filters", []):
                if rule.get("filterType") == "LOT_SIZE":
                    return Decimal(str(rule["stepSize"]))
        return None
