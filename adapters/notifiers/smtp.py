"""Alerts sent as e-mails over SMTP (aiosmtplib).

The subject is ``[LootCapital SEVERITY] title``; the body the message, then the alert's data
one ``key: value`` a line. The password never appears in an error message or a log line.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

import aiosmtplib

from domain.alerts import AlertRecord
from domain.errors import PermanentDeliveryError, TransientDeliveryError

Security = Literal["auto", "starttls", "tls", "none"]
_START_TLS: dict[str, bool | None] = {"auto": None, "starttls": True, "tls": False, "none": False}
"""aiosmtplib's ``start_tls`` per security setting (None: when the server offers it)."""


def email_message(record: AlertRecord, sender: str, to: Sequence[str]) -> EmailMessage:
    """The e-mail of ``record`` from ``sender`` to ``to`` (dated at the alert's time)."""
    alert = record.alert
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = f"[LootCapital {alert.severity.upper()}] {alert.title}"
    message["Date"] = formatdate(alert.time / 1000, usegmt=True)
    lines = [alert.message, "", f"rule: {alert.rule}", f"alert id: {record.id}"]
    lines += [f"{key}: {value}" for key, value in alert.data.items()]
    message.set_content("\n".join(lines) + "\n")
    return message


class EmailNotifier:
    """Sends each alert from ``sender`` to ``to`` through the SMTP server at ``host``:``port``
    (``security``: see :class:`lootcapital.alert_settings.EmailChannel`), logging in with
    ``username`` and ``password`` when a username is given.

    Connection failures, timeouts, a dropped connection and 4xx answers raise
    :class:`~domain.errors.TransientDeliveryError`; a refused login and 5xx answers
    :class:`~domain.errors.PermanentDeliveryError`.

    Raises
    ------
    ValueError
        When ``to`` is empty.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        to: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        security: Security = "auto",
        timeout_s: float = 10.0,
        name: str = "email",
    ) -> None:
        if not to:
            raise ValueError("an e-mail channel needs at least one recipient (to)")
        self.name = name
        self.host, self.port, self.sender, self.to = host, port, sender, tuple(to)
        self._username, self._password = username, password
        self._security = security
        self._timeout = timeout_s

    async def send(self, record: AlertRecord) -> None:
        """Send the alert's e-mail once."""
        message = email_message(record, self.sender, self.to)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password if self._username else None,
                use_tls=self._security == "tls",
                start_tls=_START_TLS[self._security],
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(self._say(f"login refused ({exc.code})")) from None
        except aiosmtplib.SMTPResponseException as exc:
            error = TransientDeliveryError if 400 <= exc.code < 500 else PermanentDeliveryError
            raise error(self._say(f"answered {exc.code} {exc.message}")) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(self._say(f"{type(exc).__name__}: {exc}")) from None

    def _say(self, text: str) -> str:
        """``text`` about the server, without the password."""
        if self._password:
            text = text.replace(self._password, "***")
        return f"{self.name} via {self.host}:{self.port}: {text}"
