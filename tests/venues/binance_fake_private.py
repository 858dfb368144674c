"""The signed REST endpoints and the user-data stream of the fake Binance USDⓈ-M.

Authentication is Binance's: the ``X-MBX-APIKEY`` header (else HTTP 401, code -2015), an
HMAC-SHA256 ``signature`` of the query string followed by the body (else -1022), and a
``timestamp`` judged against the venue's clock: refused when 1 s or more ahead of it or older
than ``recvWindow`` (default 5000 ms; code -1021). ``POST /fapi/v1/listenKey`` needs only the
key; the stream is ``/private/ws?listenKey=...`` (Binance's route since 2025), carrying the
account's ``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE`` and ``ACCOUNT_UPDATE`` events.

Faults for tests, each on the next request to a path or the next stream events: a request that
hangs past the client's timeout after the order was accepted, or before it reached the matching
engine; an answer held back until after its user-data events (a fill before the
acknowledgement); stream events duplicated or sent in reverse order; the stream dropped.
:class:`Chaos` draws such faults at random, at a rate, from a seed (the soak test's).
Counts: every signed request's signature, and order submissions per client id (attempts here,
orders accepted in :attr:`FakeAccount.placed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import re
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from adapters.clock import SimulatedClock
from tests.fixtures.data import shared_file
from tests.venues.binance_fake_records import BinanceError
from tests.venues.binance_fake_trading import FakeAccount

API_KEY = "fakeKey7mM4kPWaRuTUypdTEZKG8U8tDjO64xdBJBrmE1nXU2XSwdxGPyXcYx"
API_SECRET = "fakeSecretPuYm2bLq3nHc0ZxVfe9Wd8Tq1RsK4oGj5AhN7yBvUiOlXpEkJ6"
"""The credentials the fake accepts (made up for the tests)."""

_SIGNATURE = re.compile(r"(?:^|&)signature=([^&]*)")
_DEFAULT_RECV_WINDOW = 5000
_LEVERAGE_BRACKETS = "binance_usdm_leverage_brackets_20241024.json"
_ORDER_PATHS = {"/fapi/v1/order": "newClientOrderId", "/fapi/v1/algoOrder": "clientAlgoId"}

Faults = Callable[[Request], Response | None]
"""The main fake's queued HTTP faults for a request (None: serve it)."""


@dataclass
class _Hang:
    seconds: float
    process: bool


@dataclass
class Chaos:
    """Random faults: each signed request and each user-data event gets one at ``rate``
    (drawn from ``seed``). A request is answered 503 or 429 instead, or, an order submission,
    hangs ``hang_s`` before (``unsent``) or after (``lost``) the matching engine took it; an
    event is sent twice, swapped with the next one, or followed by the stream's drop.
    ``injected`` counts them by kind."""

    rate: float
    seed: int
    hang_s: float
    injected: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, kinds: tuple[str, ...]) -> str | None:
        """A fault of one of ``kinds`` at ``rate``, else None."""
        if self.rng.random() >= self.rate:
            return None
        kind = self.rng.choice(kinds)
        self.injected[kind] += 1
        return kind


REQUEST_FAULTS = ("503", "429")
ORDER_FAULTS = ("503", "429", "lost", "unsent")
EVENT_FAULTS = ("duplicate", "reverse", "drop")
"""The kinds of :class:`Chaos` faults: of any signed request, of an order submission, of a
user-data event."""
_STATUS_ERRORS = {503: (-1001, "Internal error; unable to process your request. Please try "
                         "again."), 429: (-1003, "Too many requests; please use the websocket "
                                          "for live updates.")}  # fmt: skip


@dataclass(eq=False)
class _Stream:
    websocket: WebSocket
    listen_key: str


@dataclass
class PrivateApi:
    """Signed endpoints, the listen key and the user-data websockets.

    Parameters
    ----------
    account:
        The account behind them.
    clock:
        The venue's clock (its time is this plus ``skew_ms``).
    faults:
        The main fake's HTTP faults (``fail_next``): answered instead of serving a request.
    count:
        Adds one request to the main fake's count by ``(path, status)``.

    Attributes
    ----------
    attempts:
        Order submissions (``POST /fapi/v1/order`` and ``/algoOrder``) per client id,
        including those a fault answered.
    signatures:
        Every signature received.
    skew_ms:
        How far the venue's clock is ahead of :attr:`clock` (ms).
    """

    account: FakeAccount
    clock: SimulatedClock
    faults: Faults
    count: Callable[[str, int], None]
    api_key: str = API_KEY
    api_secret: str = API_SECRET
    skew_ms: int = 0
    attempts: Counter[str] = field(default_factory=Counter)
    signatures: list[str] = field(default_factory=list)
    listen_keys: list[str] = field(default_factory=list)
    refusing: bool = False
    chaos: Chaos | None = None
    _streams: set[_Stream] = field(default_factory=set)
    _hangs: dict[str, deque[_Hang]] = field(default_factory=dict)
    _delays: dict[str, deque[float]] = field(default_factory=dict)
    _duplicate: int = 0
    _reverse: int = 0
    _held: list[dict[str, Any]] = field(default_factory=list)

    def now(self) -> int:
        """The venue's time (ms UTC)."""
        return self.clock.now_ms() + self.skew_ms

    # ----------------------------------------------------------------- faults
    def hang_next(self, path: str, *, seconds: float, process: bool) -> None:
        """Hold the next request to ``path`` for ``seconds`` before answering: after serving
        it (``process``: the order is accepted, its answer comes too late) or instead of it
        (it never reached the matching engine)."""
        self._hangs.setdefault(path, deque()).append(_Hang(seconds, process))

    def delay_answer(self, path: str, seconds: float) -> None:
        """Serve the next request to ``path`` and send its user-data events at once, but its
        answer only ``seconds`` later."""
        self._delays.setdefault(path, deque()).append(seconds)

    def duplicate_events(self, n: int) -> None:
        """Send each of the next ``n`` user-data events twice."""
        self._duplicate += n

    def reverse_events(self, n: int) -> None:
        """Hold the next ``n`` user-data events and send them in reverse order."""
        self._reverse += n

    @property
    def streams(self) -> int:
        """User-data websockets open now."""
        return len(self._streams)

    async def drop_streams(self) -> None:
        """Close every user-data websocket (1001, going away)."""
        for stream in list(self._streams):
            self._streams.discard(stream)
            with contextlib.suppress(RuntimeError):
                await stream.websocket.close(code=1001)

    # ----------------------------------------------------------------- routes
    def routes(self) -> list[BaseRoute]:
        """The routes to mount on the fake's app."""
        a = self.account

        def signed(operation: Callable[[Mapping[str, str]], Any]) -> Callable[..., Any]:
            async def endpoint(request: Request) -> Response:
                return await self._signed(request, operation)

            return endpoint

        return [
            Route("/fapi/v1/listenKey", self._listen_key, methods=["POST", "PUT", "DELETE"]),
            Route("/fapi/v1/order", self._order, methods=["POST", "GET", "DELETE", "PUT"]),
            Route("/fapi/v1/openOrders", signed(a.open_orders)),
            Route("/fapi/v1/algoOrder", self._algo, methods=["POST", "GET", "DELETE"]),
            Route("/fapi/v1/openAlgoOrders", signed(a.open_algos)),
            Route("/fapi/v1/userTrades", signed(a.user_trades)),
            Route("/fapi/v1/income", signed(a.income_history)),
            Route("/fapi/v3/positionRisk", signed(a.position_risk)),
            Route("/fapi/v3/account", signed(lambda _: a.account_info())),
            Route("/fapi/v1/symbolConfig", signed(a.symbol_config)),
            Route("/fapi/v1/leverageBracket", signed(leverage_brackets)),
            Route("/fapi/v1/leverage", signed(a.set_leverage), methods=["POST"]),
            Route("/fapi/v1/marginType", signed(a.set_margin_type), methods=["POST"]),
            WebSocketRoute("/private/ws", self._websocket),
        ]

    async def _order(self, request: Request) -> Response:
        a = self.account
        operations = {
            "POST": a.new_order, "GET": a.query_order, "DELETE": a.cancel_order,
            "PUT": a.amend_order,
        }  # fmt: skip
        return await self._signed(request, operations[request.method])

    async def _algo(self, request: Request) -> Response:
        a = self.account
        operations = {"POST": a.new_algo, "GET": a.query_algo, "DELETE": a.cancel_algo}
        return await self._signed(request, operations[request.method])

    async def _listen_key(self, request: Request) -> Response:
        path = request.url.path
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return self._error(path, BinanceError(-2015, _INVALID_KEY, 401))
        if request.method == "POST":
            if not self.listen_keys:
                digest = hashlib.sha256(f"{self.api_key}|listen".encode()).hexdigest()
                self.listen_keys.append(digest)
            return self._json(path, 200, {"listenKey": self.listen_keys[-1]})
        return self._json(path, 200, {})

    async def _signed(
        self, request: Request, operation: Callable[[Mapping[str, str]], Any]
    ) -> Response:
        path = request.url.path
        query, body = request.url.query, (await request.body()).decode()
        params = dict(parse_qsl(query)) | dict(parse_qsl(body))
        id_field = _ORDER_PATHS.get(path)
        if request.method == "POST" and id_field and id_field in params:
            self.attempts[params[id_field]] += 1
        faulted = self.faults(request)
        if faulted is not None:
            self.count(path, faulted.status_code)
            return faulted
        chaotic = self._chaotic(request.method == "POST" and id_field is not None)
        if isinstance(chaotic, int):
            code, msg = _STATUS_ERRORS[chaotic]
            return self._json(path, chaotic, {"code": code, "msg": msg})
        hang = self._next(self._hangs, path) or chaotic
        if hang is not None and not hang.process:
            await asyncio.sleep(hang.seconds)
            return self._json(path, 503, {"code": -1001, "msg": _INTERNAL})
        refused = self._authenticate(request, query, body, params)
        if refused is not None:
            return self._error(path, refused)
        try:
            answer = operation(params)
        except BinanceError as exc:
            return self._error(path, exc)
        finally:
            await self.publish()
        delay = self._next(self._delays, path)
        if hang is not None or delay is not None:
            await asyncio.sleep(hang.seconds if hang is not None else delay)  # type: ignore[arg-type]
        return self._json(path, 200, answer)

    def _chaotic(self, submission: bool) -> int | _Hang | None:
        """The random fault of this request: an HTTP status, a hang, or None."""
        chaos = self.chaos
        kind = None if chaos is None else chaos.draw(
            ORDER_FAULTS if submission else REQUEST_FAULTS
        )  # fmt: skip
        if chaos is None or kind is None:
            return None
        if kind in ("lost", "unsent"):
            return _Hang(chaos.hang_s, process=kind == "lost")
        return int(kind)

    def _authenticate(
        self, request: Request, query: str, body: str, params: Mapping[str, str]
    ) -> BinanceError | None:
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return BinanceError(-2015, _INVALID_KEY, 401)
        signature = params.get("signature")
        if not signature:
            return BinanceError(
                -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        self.signatures.append(signature)
        payload = _SIGNATURE.sub("", query) + _SIGNATURE.sub("", body)
        expected = hmac.new(self.api_secret.encode(), payload.encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), signature):
            return BinanceError(-1022, "Signature for this request is not valid.")
        stamp = params.get("timestamp", "")
        if not stamp.isdigit():
            return BinanceError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            )
        window = int(params.get("recvWindow", _DEFAULT_RECV_WINDOW))
        if int(stamp) >= self.now() + 1000:
            return BinanceError(-1021, _AHEAD)
        if self.now() - int(stamp) > window:
            return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return None

    def _next(self, queues: Mapping[str, deque[Any]], path: str) -> Any:
        queue = queues.get(path)
        return queue.popleft() if queue else None

    def _json(self, path: str, status: int, payload: Any) -> Response:
        self.count(path, status)
        return Response(json.dumps(payload), status_code=status, media_type="application/json")

    def _error(self, path: str, error: BinanceError) -> Response:
        return self._json(path, error.status, error.json())

    # ----------------------------------------------------------------- user-data stream
    async def _websocket(self, websocket: WebSocket) -> None:
        key = websocket.query_params.get("listenKey")
        if self.refusing or key not in self.listen_keys:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        stream = _Stream(websocket, key)
        self._streams.add(stream)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            self._streams.discard(stream)

    async def publish(self) -> None:
        """Send the account's new user-data events, with the faults asked for."""
        events, self.account.outbox[:] = list(self.account.outbox), []
        for event in events:
            kind = None if self.chaos is None else self.chaos.draw(EVENT_FAULTS)
            if kind == "duplicate":
                self._duplicate += 1
            elif kind == "reverse":
                self._reverse += 2
            elif kind == "drop":
                await self._send(event)
                await self.drop_streams()
                continue
            if self._reverse:
                self._held.append(event)
                self._reverse -= 1
                if not self._reverse:
                    held, self._held = self._held[::-1], []
                    for late in held:
                        await self._send(late)
                continue
            await self._send(event)

    async def _send(self, event: dict[str, Any]) -> None:
        copies = 1
        if self._duplicate:
            self._duplicate -= 1
            copies = 2
        text = json.dumps(event)
        for stream in list(self._streams):
            for _ in range(copies):
                try:
                    await stream.websocket.send_text(text)
                except (WebSocketDisconnect, RuntimeError):
                    self._streams.discard(stream)
                    break


_AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
_INVALID_KEY = "Invalid API-key, IP, or permissions for action, request ip: 127.0.0.1"
_INTERNAL = "Internal error; unable to process your request. Please try again."


def leverage_brackets(p: Mapping[str, str]) -> Any:
    """``GET /fapi/v1/leverageBracket``: the shipped snapshot's entries, as Binance answers
    (every symbol's, or the one object of ``symbol``; -1121 for a symbol it does not list)."""
    entries = json.loads(shared_file(_LEVERAGE_BRACKETS).read_text())
    if "symbol" not in p:
        return entries
    for entry in entries:
        if entry["symbol"] == p["symbol"]:
            return entry
    raise BinanceError(-1121, "Invalid symbol.")
