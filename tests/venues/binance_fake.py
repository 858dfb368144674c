"""A fake Binance USDⓈ-M on loopback, speaking the venue's wire format for market data.

It serves what ccxt's ``binanceusdm`` calls to load markets and read bars: ``GET
/fapi/v1/exchangeInfo`` (the real snapshot in ``shared/data``), ``GET /fapi/v1/time`` and ``GET
/fapi/v1/klines`` (Binance's semantics: at most ``limit`` bars, default 500, max 1500, with
``startTime <= open_time <= endTime``; the newest ones when only ``endTime`` or neither is given;
the bar still forming included), and the kline stream ``<symbol>@kline_<interval>`` as raw
events on the ``/market`` route (``/market/ws[/<stream>]``, subscribed by ``{"method":
"SUBSCRIBE"}``; Binance delivers no kline on the unrouted ``/ws``). As on Binance, a bar's
updates carry ``k.x = false`` while it forms and ``true`` once, at its close.
Funding rates and 1 h mark prices: :mod:`tests.venues.binance_fake_funding`.

The bars are real (``binance_usdm_<SYMBOL>_<interval>.csv.gz``, prices as the file writes
them) up to a "now" the test moves: the fake's clock is the test's :class:`SimulatedClock`,
shared with the client under test. :meth:`FakeBinanceUsdm.advance_to` pushes every update the
move produces; :meth:`FakeBinanceUsdm.play` streams bar after bar at high speed. The 5m files
carry OHLCV only: their quote volume, trade count and taker columns are served as ``"0"``/``0``
(the file has no value; the client reads only OHLCV); a forming bar is its opening state,
open = high = low = close and no volume.

Faults for tests: an HTTP status answered instead of the next requests to a path (5xx, 429 with
``Retry-After``, 418 with the ban's end, as Binance words them), websockets dropped (close
1001, what Binance sends at a connection's 24-hour mark) and refused while "down", a closed
kline sent twice, bars the venue leaves out. Every HTTP request is counted by path and status.

Trading: one account (:attr:`FakeBinanceUsdm.account`, a
:class:`~tests.venues.binance_fake_trading.FakeAccount`) behind the signed endpoints and the
user-data stream (:attr:`FakeBinanceUsdm.private`, see
:mod:`tests.venues.binance_fake_private`). Its orders fill against the same real bars: at the
price now (the open of the bar forming at the fake's clock) at once, or on each bar's close for
resting and conditional orders. The symbols' lot steps and ticks come from the exchange-info
snapshot, their maximum leverage from the leverage-bracket snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from adapters.clock import SimulatedClock
from domain.timeframes import timeframe_ms
from tests.fixtures.data import shared_file
from tests.venues.binance_fake_funding import FundingApi
from tests.venues.binance_fake_private import PrivateApi
from tests.venues.binance_fake_records import Rules
from tests.venues.binance_fake_trading import FakeAccount

EXCHANGE_INFO = "binance_usdm_exchange_info_20251030.json"
LEVERAGE_BRACKETS = "binance_usdm_leverage_brackets_20241024.json"
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
_EXTRA_COLUMNS = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")
_MAX_LIMIT = 1500
_DEFAULT_LIMIT = 500
_DEFAULT_BODIES = {
    418: '{{"code":-1003,"msg":"Way too many requests; IP(127.0.0.1) banned until {until}. '
    'Please use the websocket for live updates to avoid bans."}}',
    429: '{{"code":-1003,"msg":"Too many requests; current limit of IP(127.0.0.1) is 2400 '
    'requests per minute. Please use the websocket for live updates to avoid polling the API."}}',
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: '{{"code":-1001,"msg":"Internal error; unable to process your request. Please try '
    'again."}}',
}


_OHLC = (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"))


def _rules(symbols: Sequence[str]) -> dict[str, Rules]:
    """Each symbol's lot step and tick (exchange-info snapshot) and maximum leverage (its
    first leverage bracket)."""
    info = json.loads(shared_file(EXCHANGE_INFO).read_text())
    brackets = json.loads(shared_file(LEVERAGE_BRACKETS).read_text())
    top = {b["symbol"]: int(b["brackets"][0]["initialLeverage"]) for b in brackets}
    rules = {}
    for entry in info["symbols"]:
        if entry["symbol"] in symbols:
            filters = {f["filterType"]: f for f in entry["filters"]}
            rules[entry["symbol"]] = Rules(
                Decimal(filters["LOT_SIZE"]["stepSize"]),
                Decimal(filters["PRICE_FILTER"]["tickSize"]),
                top.get(entry["symbol"], 20),
            )
    return rules


@dataclass(frozen=True)
class _Series:
    """One file's bars: times (ms) and each column as the file writes it."""

    open_time: np.ndarray
    columns: dict[str, np.ndarray]


@lru_cache(maxsize=8)
def _series(path: Path) -> _Series:
    frame = pd.read_csv(path, dtype=str)
    return _Series(
        frame["open_time"].to_numpy(np.int64),
        {c: frame[c].to_numpy(object) for c in (*_PRICE_COLUMNS, *_EXTRA_COLUMNS) if c in frame},
    )


@dataclass
class _Fault:
    status: int
    retry_after_s: int | None
    body: str | None


@dataclass(eq=False)
class _Connection:
    websocket: WebSocket
    streams: set[str] = field(default_factory=set)


class FakeBinanceUsdm:
    """The fake venue; a context manager that serves on ``127.0.0.1`` at an ephemeral port.

    Parameters
    ----------
    clock:
        The venue's clock (ms UTC), shared with the client under test.
    symbols:
        Symbols with bars (each needs ``binance_usdm_<SYMBOL>_<interval>.csv.gz``).
    interval:
        The one kline interval served, e.g. ``"5m"``.
    charge_funding:
        Charge the account's positions funding at each funding time the clock passes (see
        :meth:`~tests.venues.binance_fake_funding.FundingApi.charge`); off, nothing is charged.

    Attributes
    ----------
    requests:
        HTTP requests by ``(path, status)``.
    queries:
        Each ``GET /fapi/v1/klines`` request's query parameters, in order.
    handshakes:
        Websocket connections accepted.
    """

    def __init__(
        self,
        *,
        clock: SimulatedClock,
        symbols: Sequence[str] = ("BTCUSDT",),
        interval: str = "5m",
        charge_funding: bool = False,
    ) -> None:
        self.clock = clock
        self.charge_funding = charge_funding
        self.interval = interval
        self.step = timeframe_ms(interval)
        self._bars = {
            s: _series(shared_file(f"binance_usdm_{s}_{interval}.csv.gz")) for s in symbols
        }
        self._omitted: dict[str, set[int]] = {s: set() for s in symbols}
        self._exchange_info = shared_file(EXCHANGE_INFO).read_bytes()
        self._faults: dict[str, deque[_Fault | None]] = {}  # None: served as usual
        self._connections: set[_Connection] = set()
        self._refusing = False
        self._repeat_close: set[str] = set()
        self._weight: Counter[int] = Counter()  # request weight by clock minute
        self.requests: Counter[tuple[str, int]] = Counter()
        self.queries: list[dict[str, str]] = []
        self.handshakes = 0
        self.account = FakeAccount(clock=clock, price=self.price_now, rules=_rules(symbols))
        self.private = PrivateApi(self.account, clock, self._fault, self._count)
        self.funding = FundingApi(clock, symbols, self._answer, self._faulted)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- life cycle

    def __enter__(self) -> FakeBinanceUsdm:
        app = Starlette(
            routes=[
                Route("/fapi/v1/exchangeInfo", self._exchange_info_endpoint),
                Route("/fapi/v1/time", self._time_endpoint),
                Route("/fapi/v1/klines", self._klines_endpoint),
                WebSocketRoute("/market/ws", self._websocket),
                WebSocketRoute("/market/ws/{name:path}", self._websocket),
                *self.funding.routes(),
                *self.private.routes(),
                Route("/{path:path}", self._not_found),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="fake-binance", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self._server.started and self._loop is not None):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Binance server did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        assert self._server is not None

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            await self._server.serve()  # type: ignore[union-attr]

        asyncio.run(serve())

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        assert self._server is not None
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def rest_url(self) -> str:
        """The REST base URL (no path), as the adapter's ``rest_url`` setting."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The websocket base URL (no path), as the adapter's ``ws_url`` setting."""
        return f"ws://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------- test controls

    def fail_next(
        self,
        path: str,
        status: int,
        *,
        times: int = 1,
        after: int = 0,
        retry_after_s: int | None = None,
        body: str | None = None,
    ) -> None:
        """Answer ``times`` requests to ``path``, once ``after`` more have been served, with
        ``status`` (and ``Retry-After`` seconds); the body is Binance's for that status unless
        given."""
        queued = self._faults.setdefault(path, deque())
        queued.extend([None] * after + [_Fault(status, retry_after_s, body)] * times)

    def omit(self, symbol: str, open_times: Sequence[int]) -> None:
        """Leave these bars out of every answer and stream (a hole in the venue's data)."""
        self._omitted[symbol].update(int(t) for t in open_times)

    def repeat_next_close(self, symbol: str) -> None:
        """Send the next closed kline of ``symbol`` twice."""
        self._repeat_close.add(symbol)

    def advance_to(self, ms: int) -> None:
        """Move the clock to ``ms`` and push the kline updates the move produces, in order:
        for each bar, its opening (forming) update if it opened after the old time, then its
        closed update if it closed at or before ``ms``."""
        old = self.clock.now_ms()
        self.clock.advance_to(ms)
        self._call(self._push(old, ms))

    def play(self, until_ms: int, *, pause_s: float = 0.002) -> None:
        """Stream bar after bar until ``until_ms``: the clock jumps to each bar close (plus
        1 ms) in turn, pushing its updates, ``pause_s`` of wall time apart."""
        now = self.clock.now_ms()
        for close in range((now // self.step + 1) * self.step, until_ms + 1, self.step):
            self.advance_to(close + 1)
            time.sleep(pause_s)
        self.advance_to(max(until_ms, self.clock.now_ms()))

    def drop_websockets(self, *, refuse: bool = True) -> None:
        """Close every websocket (code 1001, going away); with ``refuse``, refuse new ones
        (HTTP 403 on the handshake) until :meth:`accept_websockets`."""
        self._refusing = refuse
        self._call(self._close_all())

    def accept_websockets(self) -> None:
        """Accept websocket connections again."""
        self._refusing = False

    @property
    def connections(self) -> int:
        """Websockets open now."""
        return len(self._connections)

    def subscribed(self) -> set[str]:
        """The streams subscribed on open connections."""
        return {s for c in list(self._connections) for s in c.streams}

    def price_now(self, symbol: str) -> Decimal:
        """The last price of ``symbol``: the open of the bar forming now, else the last close."""
        series = self._bars[symbol]
        i = max(0, int(np.searchsorted(series.open_time, self.clock.now_ms(), "right")) - 1)
        column = "close" if self._closed(series, i) else "open"
        return Decimal(str(series.columns[column][i]))

    def liquidate(self, symbol: str) -> str:
        """Liquidate the account's position in ``symbol`` now (see
        :meth:`FakeAccount.liquidate`); returns the liquidation order's client id."""

        async def run() -> str:
            client_id = self.account.liquidate(symbol)
            await self.private.publish()
            return client_id

        return str(self._call(run()))

    def trade_by_hand(self, symbol: str, side: str, qty: str) -> str:
        """Fill a market order placed at the venue by hand now (not by the server), its
        ``ORDER_TRADE_UPDATE`` and ``ACCOUNT_UPDATE`` pushed on the user-data stream; returns
        its client id."""

        async def run() -> str:
            client_id = f"web_{symbol}_{len(self.account.orders)}"
            params = {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty,
                      "newClientOrderId": client_id}  # fmt: skip
            self.account.new_order(params)
            await self.private.publish()
            return client_id

        return str(self._call(run()))

    def drop_user_streams(self, *, refuse: bool = False) -> None:
        """Close the user-data websockets; with ``refuse``, refuse new ones until
        ``self.private.refusing`` is set back to False."""
        self.private.refusing = refuse
        self._call(self.private.drop_streams())

    def _count(self, path: str, status: int) -> None:
        self.requests[(path, status)] += 1

    def _call(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # ----------------------------------------------------------------- REST

    def _fault(self, request: Request) -> Response | None:
        queued = self._faults.get(request.url.path)
        if not queued:
            return None
        fault = queued.popleft()
        if fault is None:
            return None
        now = self.clock.now_ms()
        until = now + 1000 * (fault.retry_after_s or 120)
        body = fault.body or _DEFAULT_BODIES.get(fault.status, "{{}}").format(until=until)
        headers = {} if fault.retry_after_s is None else {"Retry-After": str(fault.retry_after_s)}
        kind = "text/html" if body.startswith("<") else "application/json"
        return Response(body, status_code=fault.status, headers=headers, media_type=kind)

    def _answer(self, request: Request, status: int, payload: Any, weight: int) -> Response:
        minute = self.clock.now_ms() // 60_000
        self._weight[minute] += weight
        self.requests[(request.url.path, status)] += 1
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"X-MBX-USED-WEIGHT-1M": str(self._weight[minute])}
        return Response(body, status_code=status, headers=headers, media_type="application/json")

    def _faulted(self, request: Request) -> Response | None:
        response = self._fault(request)
        if response is not None:
            self.requests[(request.url.path, response.status_code)] += 1
        return response

    async def _exchange_info_endpoint(self, request: Request) -> Response:
        return self._faulted(request) or self._answer(request, 200, self._exchange_info, 1)

    async def _time_endpoint(self, request: Request) -> Response:
        payload = {"serverTime": self.private.now()}
        return self._faulted(request) or self._answer(request, 200, payload, 1)

    async def _not_found(self, request: Request) -> Response:
        self.requests[(request.url.path, 404)] += 1
        return Response(b"", status_code=404)

    async def _klines_endpoint(self, request: Request) -> Response:
        self.queries.append(dict(request.query_params))
        faulted = self._faulted(request)
        if faulted is not None:
            return faulted
        q = request.query_params
        symbol, interval = q.get("symbol"), q.get("interval")
        if not symbol or not interval:
            missing = "symbol" if not symbol else "interval"
            msg = f"Mandatory parameter '{missing}' was not sent, was empty/null, or malformed."
            return self._answer(request, 400, {"code": -1102, "msg": msg}, 1)
        if symbol not in self._bars:
            return self._answer(request, 400, {"code": -1121, "msg": "Invalid symbol."}, 1)
        if interval != self.interval:
            return self._answer(request, 400, {"code": -1120, "msg": "Invalid interval."}, 1)
        limit = int(q.get("limit", _DEFAULT_LIMIT))
        if not 1 <= limit <= _MAX_LIMIT:
            msg = "Data sent for parameter 'limit' is not valid."
            return self._answer(request, 400, {"code": -1130, "msg": msg}, 1)
        start = int(q["startTime"]) if "startTime" in q else None
        end = int(q["endTime"]) if "endTime" in q else None
        rows = self._rows(symbol, start, end, limit)
        weight = 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
        return self._answer(request, 200, rows, weight)

    def _rows(self, symbol: str, start: int | None, end: int | None, limit: int) -> list[list]:
        series = self._bars[symbol]
        times = series.open_time
        last = min(self.clock.now_ms(), end if end is not None else self.clock.now_ms())
        index = np.flatnonzero((times <= last) & ((times >= start) if start is not None else True))
        omitted = self._omitted[symbol]
        index = [int(i) for i in index if int(times[i]) not in omitted]
        index = index[:limit] if start is not None else index[-limit:]
        return [self._kline_row(series, i) for i in index]

    def _closed(self, series: _Series, i: int) -> bool:
        return int(series.open_time[i]) + self.step <= self.clock.now_ms()

    def _values(self, series: _Series, i: int) -> dict[str, Any]:
        """Bar ``i`` as Binance sends it: final, or its opening state while it forms."""
        c = series.columns
        if self._closed(series, i):
            extra = {n: c[n][i] if n in c else "0" for n in _EXTRA_COLUMNS}
            values = {n: c[n][i] for n in _PRICE_COLUMNS} | extra
            values["trades"] = int(float(values["trades"]))
            return values
        opening = c["open"][i]
        return dict.fromkeys(("open", "high", "low", "close"), opening) | {
            "volume": "0", "quote_volume": "0", "trades": 0, "taker_buy_base": "0",
            "taker_buy_quote": "0",
        }  # fmt: skip

    def _kline_row(self, series: _Series, i: int) -> list:
        v = self._values(series, i)
        t = int(series.open_time[i])
        return [
            t, v["open"], v["high"], v["low"], v["close"], v["volume"], t + self.step - 1,
            v["quote_volume"], v["trades"], v["taker_buy_base"], v["taker_buy_quote"], "0",
        ]  # fmt: skip

    # ----------------------------------------------------------------- websocket

    async def _websocket(self, websocket: WebSocket) -> None:
        if self._refusing:
            await websocket.close(code=1013)  # before accept: the handshake gets HTTP 403
            return
        await websocket.accept()
        self.handshakes += 1
        conn = _Connection(websocket)
        name = websocket.url.path.removeprefix("/market/ws").strip("/")
        if "@" in name:  # /market/ws/<stream>; ccxt connects to /market/ws/0 and subscribes
            conn.streams.add(name)
        self._connections.add(conn)
        try:
            for stream in list(conn.streams):
                await self._send_forming(conn, stream)
            while True:
                await self._request(conn, json.loads(await websocket.receive_text()))
        except WebSocketDisconnect:
            pass
        finally:
            self._connections.discard(conn)

    async def _request(self, conn: _Connection, message: dict[str, Any]) -> None:
        method, ident = message.get("method"), message.get("id")
        params = message.get("params") or []
        if method == "SUBSCRIBE":
            new = [p for p in params if p not in conn.streams]
            conn.streams.update(params)
            await conn.websocket.send_text(json.dumps({"result": None, "id": ident}))
            for stream in new:
                await self._send_forming(conn, stream)
        else:
            error = {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}
            await conn.websocket.send_text(json.dumps({"error": error, "id": ident}))

    def _stream_symbol(self, stream: str) -> str | None:
        name, _, kind = stream.partition("@")
        symbol = name.upper()
        return symbol if kind == f"kline_{self.interval}" and symbol in self._bars else None

    async def _send_forming(self, conn: _Connection, stream: str) -> None:
        """The bar forming now, as the first update after a subscription."""
        symbol = self._stream_symbol(stream)
        if symbol is None:
            return
        series = self._bars[symbol]
        now = self.clock.now_ms()
        i = int(np.searchsorted(series.open_time, now, "right")) - 1
        if i < 0 or self._closed(series, i) or int(series.open_time[i]) in self._omitted[symbol]:
            return
        await self._send(conn, self._event(symbol, series, i, now))

    def _event(self, symbol: str, series: _Series, i: int, event_time: int) -> dict[str, Any]:
        v = self._values(series, i)
        t = int(series.open_time[i])
        return {
            "e": "kline", "E": event_time, "s": symbol,
            "k": {
                "t": t, "T": t + self.step - 1, "s": symbol, "i": self.interval, "f": -1, "L": -1,
                "o": v["open"], "c": v["close"], "h": v["high"], "l": v["low"], "v": v["volume"],
                "n": v["trades"], "x": self._closed(series, i), "q": v["quote_volume"],
                "V": v["taker_buy_base"], "Q": v["taker_buy_quote"], "B": "0",
            },
        }  # fmt: skip

    def _updates(self, old: int, new: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(symbol, event) of every update a move of the clock from ``old`` to ``new`` makes."""
        for symbol, series in self._bars.items():
            times = series.open_time
            lo = int(np.searchsorted(times, old - self.step, "right"))
            hi = int(np.searchsorted(times, new, "right"))
            for i in range(lo, hi):
                t = int(times[i])
                if t in self._omitted[symbol]:
                    continue
                if t > old:  # opened during the move: its opening update
                    yield symbol, self._opening_event(symbol, series, i)
                if old < t + self.step <= new:
                    yield symbol, self._event(symbol, series, i, t + self.step)
                    if symbol in self._repeat_close:
                        self._repeat_close.discard(symbol)
                        yield symbol, self._event(symbol, series, i, t + self.step)

    def _opening_event(self, symbol: str, series: _Series, i: int) -> dict[str, Any]:
        event = self._event(symbol, series, i, int(series.open_time[i]))
        opening = series.columns["open"][i]
        event["k"].update(
            o=opening, h=opening, l=opening, c=opening, v="0", n=0, x=False, q="0", V="0", Q="0"
        )
        return event

    async def _push(self, old: int, new: int) -> None:
        if self.charge_funding:
            self.funding.charge(self.account, old, new)
        for symbol, event in self._updates(old, new):
            stream = f"{symbol.lower()}@kline_{self.interval}"
            for conn in list(self._connections):
                if stream in conn.streams:
                    await self._send(conn, event)
            k = event["k"]
            if k["x"]:
                bar = {name: Decimal(str(k[key])) for name, key in _OHLC}
                self.account.bar_closed(symbol, int(k["t"]), bar)
                await self.private.publish()

    async def _send(self, conn: _Connection, event: dict[str, Any]) -> None:
        try:
            await conn.websocket.send_text(json.dumps(event))
        except (WebSocketDisconnect, RuntimeError):
            self._connections.discard(conn)

    async def _close_all(self) -> None:
        for conn in list(self._connections):
            self._connections.discard(conn)
            with contextlib.suppress(RuntimeError):
                await conn.websocket.close(code=1001)
