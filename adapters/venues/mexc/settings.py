"""Where the MEXC adapter connects, how patiently, and with which key.

The base URLs are roots (no path): the contract REST API lives under
``<rest_url>/api/v1/contract/...`` (public) and ``<rest_url>/api/v1/private/...`` (signed),
the contract websocket at ``<ws_url>/edge``. A proxy, a regional endpoint or a test server
speaking the venue's wire format can stand in for the venue by setting them.

The API key and secret are needed only to probe and use order entry; market data is public.
They come from the environment or from files readable by their owner alone (mode 600); they
are ``SecretStr`` (shown as ``**********``) and never appear in errors or logs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from adapters.venues.secret_files import load_secret_files

PRODUCTION_REST_URL = "https://api.mexc.com"
"""The contract REST host ccxt uses (MEXC's older documentation names
``https://contract.mexc.com``, which serves the same paths)."""
PRODUCTION_WS_URL = "wss://contract.mexc.com"
"""The contract websocket host (path ``/edge``, as ccxt connects)."""


class MexcSettings(BaseModel):
    """Connection settings of MEXC futures (environment: ``LOOTCAPITAL_VENUES__MEXC__*``).

    Times are seconds of wall time.
    """

    model_config = ConfigDict(extra="forbid")

    rest_url: str = Field(PRODUCTION_REST_URL, description="REST base URL (no path).")
    ws_url: str = Field(PRODUCTION_WS_URL, description="WebSocket base URL (no path).")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one REST request.")
    retries: int = Field(
        5, ge=0, le=20, description="Retries of a transient failure (timeout, 5xx, rate limit)."
    )
    backoff_s: float = Field(
        0.5, gt=0, le=60, description="First retry's wait; doubles per retry, with jitter."
    )
    max_backoff_s: float = Field(30.0, gt=0, le=600, description="Longest wait between retries.")
    close_grace_s: float = Field(
        3.0,
        ge=0,
        le=60,
        description=(
            "How long after a bar's close (venue time) the live stream waits for the next "
            "bar's first update before fetching the bar over REST instead."
        ),
    )
    poll_s: float = Field(
        1.0, gt=0, le=60, description="How often the live stream checks for overdue bars."
    )
    reconcile_s: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description=(
            "How often a live run compares its orders, fills and positions with MEXC's "
            "(also at start and after every reconnection of the private websocket)."
        ),
    )
    api_key: SecretStr | None = Field(
        None, description="API key (order entry, account); used only with api_secret."
    )
    api_secret: SecretStr | None = Field(None, description="API secret (signs requests).")
    api_key_file: Path | None = Field(
        None, description="File holding the API key (mode 600), instead of api_key."
    )
    api_secret_file: Path | None = Field(
        None, description="File holding the API secret (mode 600), instead of api_secret."
    )

    @model_validator(mode="after")
    def _key_files(self) -> MexcSettings:
        """Read the key and secret from their files (owner-only), never both ways at once."""
        load_secret_files(self, ("api_key", "api_secret"))
        return self

    @field_validator("rest_url", "ws_url")
    @classmethod
    def _base_url(cls, value: str, info: ValidationInfo) -> str:
        schemes = ("http://", "https://") if info.field_name == "rest_url" else ("ws://", "wss://")
        if not value.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}, was {value!r}")
        return value.rstrip("/")

    def secrets(self) -> tuple[str, ...]:
        """The key and secret in clear, for redacting them from messages (empty without)."""
        values = (s.get_secret_value() for s in (self.api_key, self.api_secret) if s is not None)
        return tuple(v for v in values if v)
