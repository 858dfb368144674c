"""The fake Binance USDⓈ-M's funding endpoints: ``GET /fapi/v1/fundingRate`` and ``GET
/fapi/v1/markPriceKlines``, in the venue's wire format, from the real files in ``shared/data``
(``binance_usdm_<SYMBOL>_funding.csv.gz`` and ``..._mark_1h.csv.gz``).

As on Binance: a funding rate is listed once its funding time has come (``fundingRate`` as the
venue writes it, 8 decimals; ``markPrice`` the mark at that time), at most ``limit`` rows
(default 100, max 1000) with ``startTime <= fundingTime <= endTime``, the oldest first from
``startTime``, else the newest; mark-price klines as klines (default 500, max 1500; interval
``1h`` only here), the bar still forming included in its opening state (open = high = low =
close), since the fake knows only whole hours.

:meth:`FundingApi.charge` settles the funding of the account's positions at each funding time
the clock passes, at the rate and mark these endpoints serve (``GET /fapi/v1/income`` then lists
the payments: :meth:`~tests.venues.binance_fake_trading.FakeAccount.income_history`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.clock import SimulatedClock
from tests.fixtures.data import shared_file
from tests.venues.binance_fake_trading import FakeAccount

HOUR_MS = 3_600_000
Answer = Callable[[Request, int, Any, int], Response]
"""Answers a request: ``(request, status, payload, weight)`` (the fake's, counted)."""
Faulted = Callable[[Request], Response | None]
"""The fault queued for the request's path, if any (the fake's)."""


@dataclass(frozen=True)
class _Table:
    """One file: its times (ms) and each column as the file writes it."""

    times: np.ndarray
    columns: dict[str, np.ndarray]


@lru_cache(maxsize=16)
def _table(path: Path, time_column: str) -> _Table:
    frame = pd.read_csv(path, dtype=str)
    columns = {c: frame[c].to_numpy(object) for c in frame.columns if c != time_column}
    return _Table(frame[time_column].to_numpy(np.int64), columns)


def _window(times: np.ndarray, last: int, start: int | None, limit: int) -> list[int]:
    """Indices with ``start <= time <= last``: the first ``limit`` from ``start``, else the
    last ``limit``."""
    index = np.flatnonzero((times <= last) & ((times >= start) if start is not None else True))
    picked = index[:limit] if start is not None else index[-limit:]
    return [int(i) for i in picked]


class FundingApi:
    """The two endpoints over one fake's ``clock``, for ``symbols``; ``answer`` and ``faulted``
    are the fake's, so requests are counted, weighed and fault-injected as the others."""

    def __init__(
        self, clock: SimulatedClock, symbols: Sequence[str], answer: Answer, faulted: Faulted
    ) -> None:
        self.clock = clock
        self.symbols = tuple(symbols)
        self._answer = answer
        self._faulted = faulted

    def routes(self) -> list[Route]:
        return [
            Route("/fapi/v1/fundingRate", self._funding_rate),
            Route("/fapi/v1/markPriceKlines", self._mark_klines),
        ]

    def charge(self, account: FakeAccount, old: int, new: int) -> None:
        """Charge ``account`` the funding of each symbol's funding times in ``(old, new]``
        (ms UTC) on the position it holds then, at the file's rate and the mark served with it
        (a time without a mark bar is not charged)."""
        for symbol in self.symbols:
            rates, marks = self._rates(symbol), self._marks(symbol)
            for i in np.flatnonzero((rates.times > old) & (rates.times <= new)):
                time_ms = int(rates.times[i])
                at = np.flatnonzero(marks.times == time_ms)
                if len(at):
                    rate = Decimal(f"{Decimal(rates.columns['funding_rate'][i]):.8f}")
                    mark = Decimal(f"{Decimal(marks.columns['open'][at[0]]):.8f}")
                    account.charge_funding(symbol, time_ms, rate, mark)

    def _rates(self, symbol: str) -> _Table:
        return _table(shared_file(f"binance_usdm_{symbol}_funding.csv.gz"), "funding_time")

    def _marks(self, symbol: str) -> _Table:
        return _table(shared_file(f"binance_usdm_{symbol}_mark_1h.csv.gz"), "open_time")

    def _refused(self, request: Request, max_limit: int, default: int) -> Response | int:
        """The error answer of a bad symbol or limit, else the limit asked for."""
        symbol = request.query_params.get("symbol")
        if symbol not in self.symbols:
            return self._answer(request, 400, {"code": -1121, "msg": "Invalid symbol."}, 1)
        limit = int(request.query_params.get("limit", default))
        if not 1 <= limit <= max_limit:
            msg = "Data sent for parameter 'limit' is not valid."
            return self._answer(request, 400, {"code": -1130, "msg": msg}, 1)
        return limit

    async def _funding_rate(self, request: Request) -> Response:
        faulted = self._faulted(request)
        if faulted is not None:
            return faulted
        limit = self._refused(request, 1000, 100)
        if isinstance(limit, Response):
            return limit
        q = request.query_params
        symbol = str(q["symbol"])
        rates, marks = self._rates(symbol), self._marks(symbol)
        now = self.clock.now_ms()
        last = min(now, int(q["endTime"])) if "endTime" in q else now
        start = int(q["startTime"]) if "startTime" in q else None
        rows = []
        for i in _window(rates.times, last, start, limit):
            time_ms = int(rates.times[i])
            at = np.flatnonzero(marks.times == time_ms)
            mark = f"{Decimal(marks.columns['open'][at[0]]):.8f}" if len(at) else ""
            rate = f"{Decimal(rates.columns['funding_rate'][i]):.8f}"
            rows.append(
                {"symbol": symbol, "fundingTime": time_ms, "fundingRate": rate, "markPrice": mark}
            )
        return self._answer(request, 200, rows, 1)

    async def _mark_klines(self, request: Request) -> Response:
        faulted = self._faulted(request)
        if faulted is not None:
            return faulted
        limit = self._refused(request, 1500, 500)
        if isinstance(limit, Response):
            return limit
        q = request.query_params
        if q.get("interval") != "1h":
            return self._answer(request, 400, {"code": -1120, "msg": "Invalid interval."}, 1)
        marks = self._marks(str(q["symbol"]))
        now = self.clock.now_ms()
        last = min(now, int(q["endTime"])) if "endTime" in q else now
        start = int(q["startTime"]) if "startTime" in q else None
        rows = []
        for i in _window(marks.times, last, start, limit):
            t = int(marks.times[i])
            ohlc = [marks.columns[c][i] for c in ("open", "high", "low", "close")]
            if t + HOUR_MS > now:
                ohlc = [ohlc[0]] * 4  # forming: its opening state
            rows.append([t, *ohlc, "0", t + HOUR_MS - 1, "0", 0, "0", "0", "0"])
        weight = 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
        return self._answer(request, 200, rows, weight)
