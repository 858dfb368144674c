"""The funding a live account paid or received at MEXC futures, as the ledger's payments.

MEXC settles funding itself (see :mod:`domain.funding`) and lists each settlement in the
account's funding records: ``GET /api/v1/private/position/funding_records`` (what ccxt's
``fetch_funding_history`` reads; ``symbol``, ``page_num``, ``page_size`` up to 100, newest
first), one row per position and funding time::

    {"id": 7423910, "symbol": "BTC_USDT", "positionType": 1, "positionValue": 29.30024,
     "funding": 0.00076180624, "rate": -0.000026, "settleTime": 1643299200000}

``funding`` is what the account received (negative: paid), ``positionType`` 1 long, 2 short.
:class:`MexcFunding` turns the rows of the traded contracts into
:class:`~domain.funding.FundingPayment` s, which the reconciliation books once each, as
Binance's (:mod:`adapters.venues.binance_usdm.funding_income`):

- ``amount`` = −``funding``, as the venue wrote it; rows of one contract and time (a hedged
  account's long and short) are summed;
- ``time_ms``: ``settleTime`` floored to the minute; a (symbol, time) pair is one payment;
- ``rate``: the row's; ``mark``: the open of the 1 h fair-price kline (MEXC's mark price) of
  that hour, ``GET /api/v1/contract/kline/fair_price/{symbol}``;
- ``qty``: the signed position charged, ``amount / (mark × rate)`` rounded to the contract's
  size (base units), as :func:`~adapters.venues.funding_income_common.funding_payment`
  derives it.

A row at rate 0 charges nothing and books nothing; a row whose hour has no fair-price kline yet
is left for a later reconciliation.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.venues.funding_income_common import FundingFee, funding_minute, funding_payment
from adapters.venues.mexc.account import AccountExchange
from adapters.venues.mexc.capabilities import VENUE
from adapters.venues.mexc.client import Retrying
from adapters.venues.mexc.market_data import Contract
from domain.errors import DataError
from domain.funding import HOUR_MS, FundingPayment

log = logging.getLogger(__name__)

RECORDS_PER_PAGE = 100
"""The venue's maximum ``page_size`` of ``position/funding_records``."""


def funding_rows(
    rows: list[Mapping[str, Any]], contract: Contract, since: int
) -> dict[int, tuple[Decimal, Decimal]]:
    """``contract``'s funding records at ``since`` (ms UTC) or later, as (amount paid, rate)
    by funding time (ms UTC, floored to the minute); rows of one time summed.

    Raises
    ------
    DataError
        A row without its fields, or whose time, funding or rate is not a number.
    """
    found: dict[int, tuple[Decimal, Decimal]] = {}
    for row, entry in enumerate(rows, start=1):
        if entry.get("symbol") != contract.id:
            continue
        try:
            stamp = int(entry["settleTime"])
            paid, rate = -Decimal(str(entry["funding"])), Decimal(str(entry["rate"]))
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            message = f"bad funding record {entry!r:.200}: {exc!r}"
            raise DataError(message, source=f"{VENUE} funding records", row=row) from None
        time_ms = funding_minute(stamp)
        if time_ms >= since:
            amount, _ = found.get(time_ms, (Decimal(0), rate))
            found[time_ms] = (amount + paid, rate)
    return found


class MexcFunding:
    """Reads the account's funding payments at MEXC.

    Parameters
    ----------
    exchange:
        The signed ccxt exchange (its markets loaded).
    call:
        Runs a request with retries of transient failures.
    contracts:
        The run's contracts by our symbol (others' payments are not the run's).
    """

    def __init__(
        self, exchange: AccountExchange, call: Retrying, contracts: Mapping[str, Contract]
    ) -> None:
        self._exchange = exchange
        self._call = call
        self._contracts = dict(contracts)

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
        payments = []
        for symbol, contract in sorted(self._contracts.items()):
            records = await self._records(contract, since)
            for time_ms, (amount, rate) in sorted(records.items()):
                if (symbol, time_ms) in booked or rate == 0 or amount == 0:
                    continue
                mark = await self._mark(contract, time_ms)
                if mark is None:
                    log.info("%s %s funding at %d: no mark yet", VENUE, symbol, time_ms)
                    continue
                fee = FundingFee(symbol, time_ms, amount)
                payment = funding_payment(fee, rate, mark, contract.size)
                if payment is not None:
                    payments.append(payment)
        return sorted(payments, key=lambda p: (p.time_ms, p.symbol))

    async def _records(self, contract: Contract, since: int) -> dict[int, tuple[Decimal, Decimal]]:
        """``contract``'s records from ``since`` on, page by page (newest first: the pages
        stop at the first row older than ``since``)."""
        method = self._exchange.contract_private_get_position_funding_records
        found: dict[int, tuple[Decimal, Decimal]] = {}
        page = 1
        while True:
            request = {"symbol": contract.id, "page_num": page, "page_size": RECORDS_PER_PAGE}
            answer = await self._call(lambda q=request: method(q))
            data = answer.get("data") if isinstance(answer, Mapping) else None
            rows = data.get("resultList") if isinstance(data, Mapping) else None
            if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
                message = f"expected a page of records, got {data!r:.200}"
                raise DataError(message, source=f"{VENUE} funding records")
            for time_ms, (amount, rate) in funding_rows(rows, contract, since).items():
                earlier, _ = found.get(time_ms, (Decimal(0), rate))
                found[time_ms] = (earlier + amount, rate)
            oldest = min((int(r.get("settleTime") or 0) for r in rows), default=0)
            if len(rows) < RECORDS_PER_PAGE or oldest < since:
                return found
            page += 1

    async def _mark(self, contract: Contract, time_ms: int) -> Decimal | None:
        """The open of the 1 h fair-price kline of ``time_ms``'s hour, None without one."""
        hour = time_ms - time_ms % HOUR_MS
        method = self._exchange.contract_public_get_kline_fair_price_symbol
        request = {
            "symbol": contract.id, "interval": "Min60", "start": hour // 1000,
            "end": hour // 1000,
        }  # fmt: skip
        answer = await self._call(lambda: method(request))
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, Mapping):
            return None
        for stamp, price in zip(data.get("time") or [], data.get("open") or [], strict=False):
            if int(stamp) * 1000 == hour:
                return Decimal(str(price))
        return None
