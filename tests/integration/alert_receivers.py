"""Real local receivers for the alert tests: a webhook (``http.server`` on 127.0.0.1) and an SMTP
server (aiosmtpd), and one synthetic bus event per alert rule."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from domain.alerts import AlertRule
from domain.events import (
    EngineStopped,
    EquityUpdated,
    FeedStale,
    OrderFilled,
    VenueDisconnected,
)
from domain.model import EquityPoint, Fill, Liquidity, Side
from domain.pipeline_events import ML, PipelineEvent
from domain.risk import StateChange, TradingState

T0 = 1_756_771_200_000  # 2025-09-02 00:00 UTC
INITIAL = Decimal(10_000)
SMTP_USER = "alerts"
SMTP_PASSWORD = "s3cret-smtp-Pa55word"


@dataclass
class WebhookReceiver:
    """Records each POSTed JSON body; answers ``statuses`` in turn, then 200. While ``hold`` is
    set (cleared), a request waits for it before answering."""

    statuses: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    bodies: list[Any] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    url: str = ""

    def answer(self, body: Any) -> int:
        if self.hold is not None:
            self.hold.wait(30)
        status = self.statuses.pop(0) if self.statuses else 200
        self.bodies.append(body)
        self.answered.append(status)
        return status


@contextmanager
def webhook_receiver(
    statuses: Sequence[int] = (), hold: threading.Event | None = None, path: str = "/hook"
) -> Iterator[WebhookReceiver]:
    """A :class:`WebhookReceiver` serving on a free port of 127.0.0.1 at ``path``."""
    receiver = WebhookReceiver(list(statuses), hold)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"null")
            status = receiver.answer(body) if self.path == path else 404
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if hold is not None:
            hold.set()
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """What the SMTP server took: ``(from, to, message text)`` per e-mail."""

    host: str = "127.0.0.1"
    port: int = 0
    mails: list[tuple[str, list[str], str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        text = content.decode() if isinstance(content, bytes) else str(content)
        self.mails.append((str(envelope.mail_from), list(envelope.rcpt_tos), text))
        return "250 OK"


def _authenticate(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that requires a login (``SMTP_USER``,
    ``SMTP_PASSWORD``; allowed without TLS here) and keeps every mail it takes."""
    mailbox = Mailbox(port=free_port())
    controller = Controller(
        mailbox,
        hostname=mailbox.host,
        port=mailbox.port,
        authenticator=_authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def fill(time: int = T0, qty: str = "0.5") -> Fill:
    return Fill(
        "f-1", "o-1", "BTCUSDT", Side.BUY, Decimal(qty), Decimal("65000.5"), Decimal("16.25"),
        Liquidity.TAKER, time,
    )  # fmt: skip


def one_event_per_rule() -> list[tuple[AlertRule, list[object]]]:
    """For each rule, the events that make it fire once (in order; the equity ones build on
    each other: a 12 % gain, then a 15 % drawdown from that peak)."""
    halt = StateChange(
        "account", TradingState.ACTIVE, TradingState.HALTED, "2 losses in a row", T0 + 3,
        "consecutive_losses",
    )  # fmt: skip
    ml = PipelineEvent(
        T0 + 4, "ETHUSDT", ML,
        {"model_id": "m-1", "accuracy": 0.41, "min_accuracy": 0.5, "window": 50},
    )  # fmt: skip
    return [
        (AlertRule.TRADE_EXECUTED, [OrderFilled(fill())]),
        (AlertRule.PNL, [EquityUpdated(EquityPoint(T0 + 1, Decimal(11_200), Decimal(11_200)))]),
        (AlertRule.DRAWDOWN, [EquityUpdated(EquityPoint(T0 + 2, Decimal(9_520), Decimal(9_520)))]),
        (AlertRule.RISK, [halt]),
        (AlertRule.ML_DISABLED, [ml]),
        (AlertRule.VENUE, [VenueDisconnected("binance-usdm", "websocket closed (1006)", T0 + 5)]),
        (AlertRule.HEALTH, [EngineStopped("error: RuntimeError: strategy broke", T0 + 6)]),
    ]


def stale_feed() -> FeedStale:
    return FeedStale("SOLUSDT", 900_000, T0 + 7, last_bar_time=T0 - 600_000)
