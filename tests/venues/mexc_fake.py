"""A fake MEXC futures (contract API) on loopback, speaking the venue's wire format for what
ccxt's ``mexc`` calls for swap market data and the order-entry probe.

REST (``{"success": true, "code": 0, "data": ...}``; refusals as HTTP 200 with ``{"success":
false, "code": N, "message": ...}``, as MEXC answers them):

- ``GET /api/v1/contract/detail``: the real contract list in ``shared/data``
  (``mexc_contract_detail_20250803.json``);
- ``GET /api/v1/contract/ping``: the server time (ms);
- ``GET /api/v1/contract/kline/fair_price/{symbol}?interval=Min60&start=&end=``: hourly
  fair-price (mark) bars, the same columns, built from the served bars (the fake's fair price
  is its last price);
- ``GET /api/v1/contract/kline/{symbol}?interval=Min5&start=&end=``: ``start``/``end`` in
  seconds, inclusive; at most 2000 bars (the first ones from ``start``; the newest up to ``end``
  or now without ``start``); the column-array answer (``time`` in seconds, ``open``, ``close``,
  ``high``, ``low``, ``vol`` in contracts, ``amount``, ``realOpen``...), the bar still forming
  included;
- signed (headers ``ApiKey``, ``Request-Time``, ``Signature`` = HMAC-SHA256 of key + time +
  sorted query or JSON body): ``GET /api/v1/private/account/assets`` and ``POST
  /api/v1/private/order/create``, which refuses orders with code 1002 "Contract not allow place
  order!" when :attr:`FakeMexc.order_entry` is off (MEXC's answer while API order placement is
  closed to the account), and a quantity below ``minVol`` with 2011; other orders, and the
  account's other endpoints (plan orders, lookups, cancels, positions), are the
  :class:`~tests.venues.mexc_fake_trading.ContractBook`'s.

WebSocket ``/edge``: ``{"method": "login", "param": {"apiKey", "reqTime", "signature"}}``
answered ``rs.login`` (the account's pushes follow, see the book); ``{"method": "sub.kline",
"param": {"symbol", "interval"}}`` answered ``{"channel": "rs.sub.kline", "data":
"success"}``, then ``push.kline`` messages (``t`` in seconds, ``q`` volume in contracts, ``a``
amount); ``{"method": "ping"}`` answered ``{"channel": "pong"}``. As on MEXC, a push carries
the bar's whole state at an update and no closed flag.

**The bars are Binance's, relabelled**: MEXC klines are not in the data set, so the contract
``BTC_USDT`` serves ``binance_usdm_BTCUSDT_<interval>.csv.gz`` (the wire format is MEXC's, the
prices Binance's). Volumes are the file's base volume in contracts of the contract's
``contractSize`` (computed in decimal: 547.689 BTC is 5476890 contracts of 0.0001), which can
be fractional where the file's precision is finer than a contract. The file has no quote
turnover: ``amount`` is 0; the ``real*`` prices equal the others. A forming bar is its opening
state (open = high = low = close, no volume); a bar's updates are its opening state when it
opens and its final state 1 ms before it closes. The fake's clock is the test's
:class:`SimulatedClock`, shared with the client; :meth:`FakeMexc.advance_to` pushes the updates
a move produces.

Faults for tests: an HTTP status (or any body) answered instead of the next requests to a
path, websockets dropped and refused while "down", a symbol gone quiet (no updates), a bar's
final update sent again late, bars the venue leaves out. Every HTTP request is counted by path
and status.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
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
from tests.venues.mexc_fake_trading import ContractBook, json_body

CONTRACT_DETAIL = "mexc_contract_detail_20250803.json"
INTERVALS = {"1m": "Min1", "5m": "Min5", "15m": "Min15", "30m": "Min30", "1h": "Min60"}
API_KEY = "mx0vglFAKEMEXCKEY0000001"
API_SECRET = "fake0mexc0secret0do0not0use0000000000001"
_MAX_BARS = 2000
_DEFAULT_BODIES = {
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
}


@dataclass(frozen=True)
class _Series:
    """One file's bars: times (ms) and each price and volume column as the file writes it."""

    open_time: np.ndarray
    columns: dict[str, np.ndarray]


@lru_cache(maxsize=8)
def _series(path: Path) -> _Series:
    frame = pd.read_csv(path, dtype=str)
    names = ("open", "high", "low", "close", "volume")
    return _Series(
        frame["open_time"].to_numpy(np.int64), {c: frame[c].to_numpy(object) for c in names}
    )


@dataclass
class _Fault:
    status: int
    retry_after_s: int | None
    body: str | None


@dataclass(eq=False)
class _Connection:
    websocket: WebSocket
    streams: set[str] = field(default_factory=set)  # "BTC_USDT@Min5"
    private: bool = False  # logged in: receives the account's pushes


class FakeMexc:
    """The fake venue; a context manager that serves on ``127.0.0.1`` at an ephemeral port.

    Parameters
    ----------
    clock:
        The venue's clock (ms UTC), shared with the client under test.
    symbols:
        Contracts with bars, MEXC's spelling (``BTC_USDT`` serves
        ``binance_usdm_BTCUSDT_<interval>.csv.gz``).
    interval:
        The one kline interval served, our name (``"5m"``: MEXC's ``Min5``).
    order_entry:
        Whether this account may place orders through the API (see the module's docstring).

    Attributes
    ----------
    requests:
        HTTP requests by ``(path, status)``.
    queries:
        Each kline request's query parameters, in order.
    orders:
        Each ``order/create`` request's JSON body, in order.
    handshakes:
        Websocket connections accepted.
    signatures:
        Every signature received, in order: each signed request's ``Signature`` header and
        each websocket login's ``signature``.
    """

    def __init__(
        self,
        *,
        clock: SimulatedClock,
        symbols: Sequence[str] = ("BTC_USDT",),
        interval: str = "5m",
        order_entry: bool = True,
    ) -> None:
        self.clock = clock
        self.interval = INTERVALS[interval]
        self.step = timeframe_ms(interval)
        self.order_entry = order_entry
        self._detail = json.loads(shared_file(CONTRACT_DETAIL).read_bytes())
        contracts = {c["symbol"]: c for c in self._detail["data"]}
        self._contracts = {s: contracts[s] for s in symbols}
        self._sizes = {s: Decimal(str(contracts[s]["contractSize"])) for s in symbols}
        self._bars = {
            s: _series(shared_file(f"binance_usdm_{s.replace('_', '')}_{interval}.csv.gz"))
            for s in symbols
        }
        self._omitted: dict[str, set[int]] = {s: set() for s in symbols}
        self._muted: set[str] = set()
        self._repeat_close: set[str] = set()
        self._late: dict[str, dict[str, Any]] = {}  # symbol: final update to send again
        self._faults: dict[str, deque[_Fault | None]] = {}  # None: served as usual
        self._connections: set[_Connection] = set()
        self._refusing = False
        self.requests: Counter[tuple[str, int]] = Counter()
        self.queries: list[dict[str, str]] = []
        self.orders: list[dict[str, Any]] = []
        self.handshakes = 0
        self.signatures: list[str] = []
        self.book = ContractBook(
            now=clock.now_ms, last_price=self._last_price, sizes=self._sizes,
            push=self._push_private,
        )  # fmt: skip
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- life cycle

    def __enter__(self) -> FakeMexc:
        app = Starlette(
            routes=[
                Route("/api/v1/contract/detail", self._detail_endpoint),
                Route("/api/v1/contract/ping", self._ping_endpoint),
                Route("/api/v1/contract/kline/fair_price/{symbol}", self._fair_price_endpoint),
                Route("/api/v1/contract/kline/{symbol}", self._kline_endpoint),
                Route("/api/v1/private/account/assets", self._assets_endpoint),
                Route("/api/v1/private/order/create", self._order_endpoint, methods=["POST"]),
                *self.book.routes(self._private),
                WebSocketRoute("/edge", self._websocket),
                Route("/{path:path}", self._not_found, methods=["GET", "POST", "DELETE"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="fake-mexc", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self._server.started and self._loop is not None):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake MEXC server did not start")
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
        ``status`` (and ``Retry-After`` seconds) and ``body`` (default: a gateway's page for 502
        and 503, else ``{}``; ``status`` 200 with a body: any answer, e.g. a refusal)."""
        queued = self._faults.setdefault(path, deque())
        queued.extend([None] * after + [_Fault(status, retry_after_s, body)] * times)

    def fair_price(self, symbol: str, time_ms: int) -> Decimal:
        """The open of the hourly fair-price bar of ``time_ms``'s hour (the open of the served
        bar opening at that hour)."""
        hour = time_ms - time_ms % 3_600_000
        series = self._bars[symbol]
        i = int(np.searchsorted(series.open_time, hour))
        return Decimal(series.columns["open"][i])

    def settle_funding(self, symbol: str, time_ms: int, rate: str) -> None:
        """Charge the account's ``symbol`` position funding at ``rate`` and the fair price of
        ``time_ms``'s hour (see :meth:`ContractBook.settle_funding`)."""
        mark = self.fair_price(symbol, time_ms)
        self.book.settle_funding(symbol, time_ms, Decimal(rate), mark)

    def omit(self, symbol: str, open_times: Sequence[int]) -> None:
        """Leave these bars out of every answer and push (a hole in the venue's data)."""
        self._omitted[symbol].update(int(t) for t in open_times)

    def mute(self, symbol: str) -> None:
        """Push no more updates of ``symbol`` (a quiet market); REST still serves its bars."""
        self._muted.add(symbol)

    def repeat_next_close(self, symbol: str) -> None:
        """Send the final update of ``symbol``'s next bar to close again, late: after the
        next bar's first update."""
        self._repeat_close.add(symbol)

    def advance_to(self, ms: int) -> None:
        """Move the clock to ``ms`` and push the kline updates the move produces, in order:
        for each bar, its opening update if it opened after the old time, then its final
        update if it closed at or before ``ms``."""
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

    def subscribed(self) -> set[str]:
        """The kline subscriptions on open connections (``"BTC_USDT@Min5"``)."""
        return {s for c in list(self._connections) for s in c.streams}

    def _call(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # ----------------------------------------------------------------- REST

    def _faulted(self, request: Request) -> Response | None:
        queued = self._faults.get(request.url.path)
        fault = queued.popleft() if queued else None
        if fault is None:
            return None
        body = fault.body or _DEFAULT_BODIES.get(fault.status, "{}")
        headers = {} if fault.retry_after_s is None else {"Retry-After": str(fault.retry_after_s)}
        kind = "text/html" if body.startswith("<") else "application/json"
        self.requests[(request.url.path, fault.status)] += 1
        return Response(body, status_code=fault.status, headers=headers, media_type=kind)

    def _answer(self, request: Request, data: Any) -> Response:
        self.requests[(request.url.path, 200)] += 1
        body = json.dumps({"success": True, "code": 0, "data": data})
        return Response(body, media_type="application/json")

    def _refuse(self, request: Request, code: int, message: str) -> Response:
        self.requests[(request.url.path, 200)] += 1
        body = json.dumps({"success": False, "code": code, "message": message})
        return Response(body, media_type="application/json")

    async def _not_found(self, request: Request) -> Response:
        self.requests[(request.url.path, 404)] += 1
        return Response(b"", status_code=404)

    async def _detail_endpoint(self, request: Request) -> Response:
        return self._faulted(request) or self._answer(request, self._detail["data"])

    async def _ping_endpoint(self, request: Request) -> Response:
        return self._faulted(request) or self._answer(request, self.clock.now_ms())

    async def _kline_endpoint(self, request: Request) -> Response:
        self.queries.append(dict(request.query_params))
        faulted = self._faulted(request)
        if faulted is not None:
            return faulted
        symbol, q = request.path_params["symbol"], request.query_params
        if symbol not in self._bars:
            return self._refuse(request, 1001, "Contract does not exist!")
        if q.get("interval", "Min1") != self.interval:
            return self._refuse(request, 600, "Parameter error")
        start = int(q["start"]) * 1000 if "start" in q else None
        end = int(q["end"]) * 1000 if "end" in q else None
        return self._answer(request, self._columns(symbol, start, end))

    async def _fair_price_endpoint(self, request: Request) -> Response:
        faulted = self._faulted(request)
        if faulted is not None:
            return faulted
        symbol, q = request.path_params["symbol"], request.query_params
        if symbol not in self._bars:
            return self._refuse(request, 1001, "Contract does not exist!")
        if q.get("interval") != "Min60":
            return self._refuse(request, 600, "Parameter error")
        series, hour_ms = self._bars[symbol], 3_600_000
        start, end = int(q["start"]) * 1000, int(q["end"]) * 1000
        columns: dict[str, list[Any]] = {k: [] for k in ("time", "open", "close", "high", "low")}
        for hour in range(start - start % hour_ms, min(end, self.clock.now_ms()) + 1, hour_ms):
            inside = (series.open_time >= hour) & (series.open_time < hour + hour_ms)
            index = np.flatnonzero(inside & (series.open_time <= self.clock.now_ms()))
            if len(index) == 0:
                continue
            c = series.columns
            columns["time"].append(hour // 1000)
            columns["open"].append(float(c["open"][index[0]]))
            columns["close"].append(float(c["close"][index[-1]]))
            columns["high"].append(max(float(c["high"][i]) for i in index))
            columns["low"].append(min(float(c["low"][i]) for i in index))
        return self._answer(request, columns)

    def _columns(self, symbol: str, start: int | None, end: int | None) -> dict[str, list[Any]]:
        series = self._bars[symbol]
        times = series.open_time
        last = min(self.clock.now_ms(), end if end is not None else self.clock.now_ms())
        index = np.flatnonzero((times <= last) & ((times >= start) if start is not None else True))
        index = [int(i) for i in index if int(times[i]) not in self._omitted[symbol]]
        index = index[:_MAX_BARS] if start is not None else index[-_MAX_BARS:]
        bars = [self._values(symbol, i) for i in index]
        columns: dict[str, list[Any]] = {"time": [int(times[i]) // 1000 for i in index]}
        for name, key in (("open", "o"), ("close", "c"), ("high", "h"), ("low", "l")):
            columns[name] = [bar[key] for bar in bars]
        columns["vol"] = [bar["q"] for bar in bars]
        columns["amount"] = [bar["a"] for bar in bars]
        for name in ("Open", "Close", "High", "Low"):
            columns["real" + name] = columns[name.lower()]
        return columns

    def _closed(self, series: _Series, i: int) -> bool:
        return int(series.open_time[i]) + self.step <= self.clock.now_ms()

    def _values(self, symbol: str, i: int, *, final: bool | None = None) -> dict[str, Any]:
        """Bar ``i`` as MEXC's push data: final (closed by default), or its opening state."""
        series = self._bars[symbol]
        c = series.columns
        prices = {k: float(c[n][i]) for k, n in (("o", "open"), ("h", "high"), ("l", "low"))}
        prices["c"] = float(c["close"][i])
        volume = float(Decimal(c["volume"][i]) / self._sizes[symbol])
        if not (self._closed(series, i) if final is None else final):
            prices = dict.fromkeys(prices, prices["o"])
            volume = 0.0
        return prices | {"q": volume, "a": 0.0}

    def _signed(self, request: Request, payload: str) -> Response | None:
        """MEXC's refusal of a request not signed with the account's key, or None."""
        headers = request.headers
        self.signatures.append(headers.get("Signature", ""))
        if headers.get("ApiKey") != API_KEY:
            return self._refuse(request, 401, "Unauthorized")
        target = API_KEY + headers.get("Request-Time", "") + payload
        expected = hmac.new(API_SECRET.encode(), target.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("Signature", "")):
            return self._refuse(request, 602, "Signature verification failed!")
        return None

    async def _assets_endpoint(self, request: Request) -> Response:
        faulted = self._faulted(request) or self._signed(request, request.url.query)
        if faulted is not None:
            return faulted
        return self._answer(request, self.book.assets())

    async def _order_endpoint(self, request: Request) -> Response:
        body = (await request.body()).decode()
        faulted = self._faulted(request) or self._signed(request, body)
        if faulted is not None:
            return faulted
        order = json.loads(body)
        self.orders.append(order)
        if not self.order_entry:
            return self._refuse(request, 1002, "Contract not allow place order!")
        contract = self._contracts.get(order.get("symbol"))
        if contract is None:
            return self._refuse(request, 1001, "Contract does not exist!")
        if float(order.get("vol", 0)) < contract["minVol"]:
            return self._refuse(request, 2011, "Order quantity error")
        return self._reply(request, *await self.book.create(order), may_lose=True)

    def _reply(self, request: Request, code: int, data: Any, *, may_lose: bool = False) -> Response:
        """The book's answer: data, or a refusal with MEXC ``code`` and message ``data``;
        answered 504 instead (the venue acted, the answer is lost) while the book loses
        answers."""
        if may_lose and code == 0 and self.book.lose_answers > 0:
            self.book.lose_answers -= 1
            self.requests[(request.url.path, 504)] += 1
            return Response(_DEFAULT_BODIES[503], status_code=504, media_type="text/html")
        return self._answer(request, data) if code == 0 else self._refuse(request, code, data)

    def _private(self, handler: Any, method: str, placing: bool = False) -> Any:
        """An endpoint of the book's: faults, the signature (of the query, or the body),
        entry refused for new orders (``placing``) when :attr:`order_entry` is off, then
        ``handler``."""

        async def endpoint(request: Request) -> Response:
            raw = (await request.body()).decode()
            payload = raw if method == "POST" else request.url.query
            faulted = self._faulted(request) or self._signed(request, payload)
            if faulted is not None:
                return faulted
            if placing and not self.order_entry:
                return self._refuse(request, 1002, "Contract not allow place order!")
            code, data = await handler(request, json_body(raw))
            return self._reply(request, code, data, may_lose=placing)

        return endpoint

    def _last_price(self, symbol: str) -> Decimal:
        """The open of the bar forming now, else (past the data) the last close."""
        series = self._bars[symbol]
        i = max(0, int(np.searchsorted(series.open_time, self.clock.now_ms(), "right")) - 1)
        column = "close" if self._closed(series, i) else "open"
        return Decimal(series.columns[column][i])

    async def _push_private(self, message: dict[str, Any]) -> None:
        for conn in list(self._connections):
            if conn.private:
                await self._send(conn, message | {"ts": self.clock.now_ms()})

    # ----------------------------------------------------------------- websocket

    async def _websocket(self, websocket: WebSocket) -> None:
        if self._refusing:
            await websocket.close(code=1013)  # before accept: the handshake gets HTTP 403
            return
        await websocket.accept()
        self.handshakes += 1
        conn = _Connection(websocket)
        self._connections.add(conn)
        try:
            while True:
                await self._request(conn, json.loads(await websocket.receive_text()))
        except WebSocketDisconnect:
            pass
        finally:
            self._connections.discard(conn)

    async def _request(self, conn: _Connection, message: dict[str, Any]) -> None:
        method, param = message.get("method"), message.get("param") or {}
        now = self.clock.now_ms()
        if method == "ping":
            await self._send(conn, {"channel": "pong", "data": now})
            return
        if method == "login":
            await self._login(conn, param)
            return
        symbol = param.get("symbol")
        if (
            method != "sub.kline"
            or symbol not in self._bars
            or param.get("interval") != self.interval
        ):
            await self._send(
                conn, {"channel": "rs.error", "data": "Contract does not exist!", "ts": now}
            )
            return
        conn.streams.add(f"{symbol}@{self.interval}")
        await self._send(conn, {"channel": "rs.sub.kline", "data": "success", "ts": now})
        series = self._bars[symbol]
        i = int(np.searchsorted(series.open_time, now, "right")) - 1
        forming = i >= 0 and not self._closed(series, i)
        if forming and int(series.open_time[i]) not in self._omitted[symbol]:
            await self._send(conn, self._push_message(symbol, i, now, final=False))

    async def _login(self, conn: _Connection, param: dict[str, Any]) -> None:
        """``{"method": "login", "param": {"apiKey", "reqTime", "signature"}}``: the signature
        is HMAC-SHA256 of key + time; answered ``rs.login``."""
        self.signatures.append(str(param.get("signature") or ""))
        target = (param.get("apiKey") or "") + str(param.get("reqTime") or "")
        expected = hmac.new(API_SECRET.encode(), target.encode(), hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(expected, str(param.get("signature") or ""))
        conn.private = param.get("apiKey") == API_KEY and signed
        answer = "success" if conn.private else "Signature verification failed!"
        channel = "rs.login" if conn.private else "rs.error"
        await self._send(conn, {"channel": channel, "data": answer, "ts": self.clock.now_ms()})

    def _push_message(self, symbol: str, i: int, ts: int, *, final: bool) -> dict[str, Any]:
        t = int(self._bars[symbol].open_time[i])
        v = self._values(symbol, i, final=final)
        data = v | {"interval": self.interval, "symbol": symbol, "t": t // 1000}
        data |= {"ro": v["o"], "rc": v["c"], "rh": v["h"], "rl": v["l"]}
        return {"channel": "push.kline", "data": data, "symbol": symbol, "ts": ts}

    def _updates(self, old: int, new: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(symbol, message) of every update a move of the clock from ``old`` to ``new`` makes."""
        for symbol, series in self._bars.items():
            if symbol in self._muted:
                continue
            times = series.open_time
            lo = int(np.searchsorted(times, old - self.step, "right"))
            hi = int(np.searchsorted(times, new, "right"))
            for i in range(lo, hi):
                t = int(times[i])
                if t in self._omitted[symbol]:
                    continue
                if t > old:  # opened during the move: its opening update
                    yield symbol, self._push_message(symbol, i, t, final=False)
                    if symbol in self._late:
                        yield symbol, self._late.pop(symbol)
                if old < t + self.step <= new:
                    final = self._push_message(symbol, i, t + self.step - 1, final=True)
                    yield symbol, final
                    if symbol in self._repeat_close:
                        self._repeat_close.discard(symbol)
                        self._late[symbol] = final

    async def _push(self, old: int, new: int) -> None:
        for symbol, message in self._updates(old, new):
            for conn in list(self._connections):
                if f"{symbol}@{self.interval}" in conn.streams:
                    await self._send(conn, message)

    async def _send(self, conn: _Connection, message: dict[str, Any]) -> None:
        try:
            await conn.websocket.send_text(json.dumps(message))
        except (WebSocketDisconnect, RuntimeError):
            self._connections.discard(conn)

    async def _close_all(self) -> None:
        for conn in list(self._connections):
            self._connections.discard(conn)
            with contextlib.suppress(RuntimeError):
                await conn.websocket.close(code=1001)
