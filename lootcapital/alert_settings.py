"""The ``alerts`` section of the settings: the rules, the channels and the delivery.

Environment: ``LOOTCAPITAL_ALERTS__ENABLED=false``, ``LOOTCAPITAL_ALERTS__WEBHOOK__URL=...``,
``LOOTCAPITAL_ALERTS__RULES__DRAWDOWN__LIMIT=0.1``, or ``LOOTCAPITAL_ALERTS`` as JSON. Secrets
(the webhook URL, which holds Slack's and Discord's token, and the SMTP password) are
``SecretStr``: never logged, never shown in an error.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from domain.alerts import AlertRule


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Toggle(_Section):
    """A rule with nothing to set but whether it is on."""

    enabled: bool = True


class PnlRule(_Section):
    """Alert once when the run's PnL (equity / initial cash − 1) reaches ``gain`` or falls to
    ``-loss`` (fractions); again after it has come back inside."""

    enabled: bool = True
    gain: Decimal = Field(default=Decimal("0.10"), gt=0)
    loss: Decimal = Field(default=Decimal("0.05"), gt=0, lt=1)


class DrawdownRule(_Section):
    """Alert once when equity falls ``limit`` (a fraction) below its peak since the server
    started; again after the drawdown has come back under it."""

    enabled: bool = True
    limit: Decimal = Field(default=Decimal("0.10"), gt=0, lt=1)


class AlertRules(_Section):
    """Each rule's toggle and thresholds."""

    trade_executed: Toggle = Field(default_factory=lambda: Toggle())
    pnl: PnlRule = Field(default_factory=lambda: PnlRule())
    drawdown: DrawdownRule = Field(default_factory=lambda: DrawdownRule())
    risk: Toggle = Field(default_factory=lambda: Toggle())
    ml_disabled: Toggle = Field(default_factory=lambda: Toggle())
    venue: Toggle = Field(default_factory=lambda: Toggle())
    health: Toggle = Field(default_factory=lambda: Toggle())


RuleFilter = list[AlertRule] | None
"""The rules whose alerts a channel takes (None: every rule)."""


class WebhookChannel(_Section):
    """POST each alert as JSON to ``url``: ``format`` ``json`` (the alert's fields), ``slack``
    (``{"text": ...}``) or ``discord`` (``{"content": ...}``)."""

    url: SecretStr | None = None
    format: Literal["json", "slack", "discord"] = "json"
    rules: RuleFilter = None


class EmailChannel(_Section):
    """Send each alert as an e-mail from ``sender`` to ``to`` through the SMTP server at
    ``host``:``port``; ``security`` ``auto`` upgrades with STARTTLS when the server offers it,
    ``starttls`` requires it, ``tls`` connects with TLS, ``none`` sends in clear. Login with
    ``username`` and ``password`` when a username is set."""

    enabled: bool = False
    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = "lootcapital@localhost"
    to: Annotated[list[str], NoDecode] = Field(default_factory=list)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["auto", "starttls", "tls", "none"] = "auto"
    rules: RuleFilter = None

    @field_validator("to", mode="before")
    @classmethod
    def _to(cls, value: Any) -> Any:
        """A JSON list or comma-separated addresses (environment)."""
        if isinstance(value, str):
            text = value.strip().removeprefix("[").removesuffix("]")
            return [part.strip().strip('"') for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _recipients(self) -> EmailChannel:
        if self.enabled and not self.to:
            raise ValueError("e-mail alerts need at least one recipient in alerts.email.to")
        return self


class WebSocketChannel(_Section):
    """Push each alert to the WebSocket's clients (and the panel) as ``{"type": "alert"}``."""

    enabled: bool = True
    rules: RuleFilter = None


class AlertSettings(_Section):
    """Alerts (on by default: the panel's alert log and the WebSocket; a webhook when its
    ``url`` is set, e-mail when enabled). Delivery runs beside the engine: a channel is tried
    ``attempts`` times with exponential backoff from ``backoff_s`` up to ``backoff_max_s``
    seconds, each try cut at ``timeout_s``; at most ``queue_size`` alerts wait (more are
    dropped and counted)."""

    enabled: bool = True
    rules: AlertRules = Field(default_factory=lambda: AlertRules())
    webhook: WebhookChannel = Field(default_factory=lambda: WebhookChannel())
    email: EmailChannel = Field(default_factory=lambda: EmailChannel())
    websocket: WebSocketChannel = Field(default_factory=lambda: WebSocketChannel())
    attempts: int = Field(default=5, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0, le=60)
    backoff_max_s: float = Field(default=60.0, ge=0, le=3600)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    queue_size: int = Field(default=1000, ge=1, le=100_000)
