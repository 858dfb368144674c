"""Where the Binance USDⓈ-M adapter connects, and how patiently.

The base URLs are roots (no path): the REST API lives under ``<rest_url>/fapi/...``, the
market streams under ``<ws_url>/market/ws`` (Binance routes USDⓈ-M streams by path since 2025:
``/public``, ``/market``, ``/private``). A proxy, a regional endpoint or a test server speaking
the venue's wire format can stand in for the venue by setting them.

The API key and secret (needed for orders only) come from the environment or from files
readable by their owner alone (mode 600); they are ``SecretStr``, shown as ``**********``.
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

PRODUCTION_REST_URL = "https://fapi.binance.com"
PRODUCTION_WS_URL = "wss://fstream.binance.com"
DEMO_REST_URL = "https://demo-fapi.binance.com"
DEMO_WS_URL = "wss://demo-fstream.binance.com"
"""Binance's demo-trading endpoints for USDⓈ-M futures (REST as ccxt's ``urls['demo']`` names
it; the market streams' host as NautilusTrader's Binance adapter has it: ccxt still names the
old testnet's ``fstream.binancefuture.com``)."""


class BinanceUsdmSettings(BaseModel):
    """Connection settings of Binance USDⓈ-M (environment: ``LOOTCAPITAL_VENUES__BINANCE_USDM__*``).

    ``rest_url`` and ``ws_url`` default to production, or to the demo-trading endpoints with
    ``demo = true`` unless set explicitly. Times are seconds of wall time.
    """

    model_config = ConfigDict(extra="forbid")

    rest_url: str = Field(PRODUCTION_REST_URL, description="REST base URL (no path).")
    ws_url: str = Field(PRODUCTION_WS_URL, description="WebSocket streams base URL (no path).")
    demo: bool = Field(False, description="Use Binance's demo-trading endpoints by default.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one REST request.")
    weight_limit: int = Field(
        2400,
        ge=1,
        le=100_000,
        description=(
            "Request weight a minute shared by every caller of the venue (Binance USDⓈ-M's "
            "published IP limit is 2400); each request takes ccxt's cost of its endpoint."
        ),
    )
    request_limit: int = Field(
        1200,
        ge=1,
        le=100_000,
        description=(
            "REST requests a minute shared by every caller of the venue, whatever their weight "
            "(spec Property 30: 1200)."
        ),
    )
    order_limit_10s: int = Field(
        300,
        ge=1,
        le=100_000,
        description=(
            "Orders in any 10 s (Binance USDⓈ-M's published account limit, exchangeInfo "
            "rateLimits ORDERS: 300); new, amended and algo orders count, cancels do not."
        ),
    )
    order_limit_1m: int = Field(
        1200,
        ge=1,
        le=100_000,
        description="Orders in any minute (Binance USDⓈ-M's published account limit: 1200).",
    )
    retries: int = Field(
        5, ge=0, le=20, description="Retries of a transient failure (timeout, 5xx, 429)."
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
            "How long after a bar's close (venue time) the live stream waits for the closed "
            "kline before fetching the bar over REST instead."
        ),
    )
    time_sync_s: float = Field(
        600.0,
        gt=0,
        le=86_400,
        description="How often the venue's clock offset is measured again while connected.",
    )
    reconcile_s: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description=(
            "How often a live run compares its orders, fills and positions with the venue's "
            "(also at start and after every reconnection of the user-data stream)."
        ),
    )
    poll_s: float = Field(
        1.0, gt=0, le=60, description="How often the live stream checks for overdue bars."
    )
    api_key: SecretStr | None = Field(None, description="API key (orders, account, user data).")
    api_secret: SecretStr | None = Field(None, description="API secret (signs requests).")
    api_key_file: Path | None = Field(
        None, description="File holding the API key (mode 600), instead of api_key."
    )
    api_secret_file: Path | None = Field(
        None, description="File holding the API secret (mode 600), instead of api_secret."
    )
    recv_window_ms: int = Field(
        5000,
        ge=100,
        le=60_000,
        description=(
            "How long after its timestamp the venue may still execute a signed request (ms); "
            "an order whose answer was lost is looked up again after it before it is re-sent."
        ),
    )

    @model_validator(mode="after")
    def _key_files(self) -> BinanceUsdmSettings:
        """Read the key and secret from their files (owner-only), never both ways at once."""
        load_secret_files(self, ("api_key", "api_secret"))
        return self

    @model_validator(mode="after")
    def _demo_urls(self) -> BinanceUsdmSettings:
        """With ``demo``, the URLs not set explicitly are the demo endpoints."""
        if self.demo:
            if "rest_url" not in self.model_fields_set:
                self.rest_url = DEMO_REST_URL
            if "ws_url" not in self.model_fields_set:
                self.ws_url = DEMO_WS_URL
        return self

    @field_validator("rest_url", "ws_url")
    @classmethod
    def _base_url(cls, value: str, info: ValidationInfo) -> str:
        schemes = ("http://", "https://") if info.field_name == "rest_url" else ("ws://", "wss://")
        if not value.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}, was {value!r}")
        return value.rstrip("/")
