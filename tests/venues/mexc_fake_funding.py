"""The fake MEXC futures with its public funding-rate history: ``GET
/api/v1/contract/funding_rate/history?symbol=BTC_USDT&page_num=1&page_size=20``, in the venue's
wire format, from the real rates in ``shared/data``.

As the fake's bars, **the rates are Binance's, relabelled**: ``BTC_USDT`` serves
``binance_usdm_BTCUSDT_funding.csv.gz``. As on MEXC: a rate is listed once its settlement time
has come, newest first, ``page_size`` rows a page (default 20, at most 100; more is refused with
code 600), pages from 1::

    {"pageSize": 20, "totalCount": 375, "totalPage": 19, "currentPage": 1,
     "resultList": [{"symbol": "BTC_USDT", "fundingRate": 0.0001,
                     "settleTime": 1746403200000, "collectCycle": 8}, ...]}

The fair price (MEXC's mark) is the base fake's ``kline/fair_price``: the hourly bars built from
the served bars.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response

from adapters.clock import SimulatedClock
from adapters.marketdata.funding_csv import read_funding
from domain.funding import FundingRates
from tests.fixtures.data import shared_file
from tests.venues.mexc_fake import FakeMexc

FUNDING_HISTORY = "/api/v1/contract/funding_rate/history"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@lru_cache(maxsize=8)
def _rates(path: Path) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(path, dtype=str)
    return frame["funding_time"].to_numpy(np.int64), frame["funding_rate"].to_numpy(object)


def rates_file(contract: str) -> Path:
    """The file whose rates ``contract`` (``BTC_USDT``) serves."""
    return shared_file(f"binance_usdm_{contract.replace('_', '')}_funding.csv.gz")


class FakeMexcFunding(FakeMexc):
    """:class:`~tests.venues.mexc_fake.FakeMexc` that also serves the funding-rate history
    (module docstring); requests to it are counted and fault-injected as the others.

    The base fake answers every path it has no route for through its catch-all route's
    handler, which this class extends with the history endpoint.
    """

    def __init__(self, *, clock: SimulatedClock, symbols: tuple[str, ...] = ("BTC_USDT",)) -> None:
        super().__init__(clock=clock, symbols=symbols)
        self.funded = symbols

    async def _not_found(self, request: Request) -> Response:
        if request.url.path != FUNDING_HISTORY:
            return await super()._not_found(request)
        faulted = self._faulted(request)
        if faulted is not None:
            return faulted
        q = request.query_params
        symbol = q.get("symbol", "")
        if symbol not in self.funded:
            return self._refuse(request, 1001, "Contract does not exist!")
        size, page = int(q.get("page_size", DEFAULT_PAGE_SIZE)), int(q.get("page_num", 1))
        if not 1 <= size <= MAX_PAGE_SIZE or page < 1:
            return self._refuse(request, 600, "Parameter error")
        times, rates = _rates(rates_file(symbol))
        listed = np.flatnonzero(times <= self.clock.now_ms())[::-1]  # newest first
        shown = listed[(page - 1) * size : page * size]
        rows = [
            {
                "symbol": symbol,
                "fundingRate": float(Decimal(rates[i])),
                "settleTime": int(times[i]),
                "collectCycle": 8,
            }
            for i in shown
        ]
        data = {
            "pageSize": size,
            "totalCount": len(listed),
            "totalPage": -(-len(listed) // size),
            "currentPage": page,
            "resultList": rows,
        }
        return self._answer(request, data)


def file_rates(contract: str) -> FundingRates:
    """The rates ``contract`` serves, as a backtest reads them from the file."""
    return read_funding(rates_file(contract))
