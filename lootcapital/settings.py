"""Settings: defaults < TOML file < environment (``LOOTCAPITAL_*``) < CLI options.

The TOML file is named by ``LOOTCAPITAL_CONFIG`` or the CLI's ``--config``
(:func:`load_settings`); its keys are the field names below. Unknown keys are errors, and an
invalid value stops the start with a message naming the setting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.mexc.settings import MexcSettings
from domain.errors import ConfigError
from domain.futures import DEFAULT_LIQUIDATION_FEE
from domain.margin import MarginMode
from domain.strategies import STRATEGIES
from domain.timeframes import timeframe_ms
from lootcapital.alert_settings import AlertSettings

_SECRETS = {"api_token", "database_url"}
_ALERT_SECRETS = {"url", "password"}
_VENUE_SECRETS = {"api_key", "api_secret"}
REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "data" / "sample"
SAMPLE_INFO = (
    "binance_usdm_exchange_info_20251030.json",
    "binance_spot_exchange_info_20230813.json",
)
"""The exchange-info snapshots shipped in the sample: USD-M perpetuals, then spot."""
SAMPLE_BRACKETS = "binance_usdm_leverage_brackets_20241024.json"
"""The USD-M leverage brackets shipped in the sample."""


HoldState = Literal["reducing", "halted"]
"""What a tripped breaker allows: only orders that reduce exposure, or nothing but cancels."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SizingSettings(_Section):
    """Resize a strategy's entries: ``risk_fraction`` of equity lost at the stop (spec 003),
    then capped by ``max_notional`` per symbol (quote currency), ``max_leverage`` (gross
    notional / equity), the available margin and ``heat_fraction`` (open risk / equity);
    ``drawdown_steps`` ``[[threshold, multiplier], ...]`` scale sizes down in a drawdown."""

    enabled: bool = False
    risk_fraction: Decimal = Field(default=Decimal("0.01"), gt=0, le=1)
    max_notional: Decimal | None = Field(default=None, gt=0)
    max_leverage: Decimal | None = Field(default=None, gt=0)
    heat_fraction: Decimal | None = Field(default=None, gt=0, le=1)
    drawdown_steps: list[tuple[Decimal, Decimal]] = Field(default_factory=list)


class DailyLossSettings(_Section):
    """No new entries (``state``) until 00:00 UTC once equity is ``limit`` (a fraction) below
    the day's starting equity; ``close_all`` also closes every position."""

    enabled: bool = False
    limit: Decimal = Field(default=Decimal("0.05"), gt=0, lt=1)
    close_all: bool = False
    state: HoldState = "reducing"


class ConsecutiveLossesSettings(_Section):
    """``state`` after ``count`` losing trades in a row, until resumed by hand or, with
    ``cooldown_ms``, after that long."""

    enabled: bool = False
    count: int = Field(default=2, ge=1)
    cooldown_ms: int | None = Field(default=None, gt=0)
    state: HoldState = "halted"


class VolatilitySpikeSettings(_Section):
    """``state`` on a symbol while its ATR percentile is above ``percentile_pct``, until it is
    below ``release_pct``: ATR(``atr_period``) on ``timeframe`` bars ranked within the last
    ``window`` of them (720 one-hour bars: 30 days)."""

    enabled: bool = False
    percentile_pct: float = Field(default=95.0, ge=0, le=100)
    release_pct: float | None = Field(default=90.0, ge=0, le=100)
    state: HoldState = "reducing"
    timeframe: str = "1h"
    atr_period: int = Field(default=14, ge=1)
    window: int = Field(default=720, ge=1)


class UnusualVolumeSettings(_Section):
    """An alert when a bar's volume is ``rvol`` times the mean of the ``period`` before."""

    enabled: bool = False
    rvol: float = Field(default=5.0, gt=0)
    period: int = Field(default=20, ge=1)


class MaxOpenPositionsSettings(_Section):
    """Refuse an entry that would open more than ``limit`` positions."""

    enabled: bool = False
    limit: int = Field(default=5, ge=1)


class MaxLeverageSettings(_Section):
    """Refuse an entry that would take gross notional over ``limit`` × equity."""

    enabled: bool = False
    limit: Decimal = Field(default=Decimal(3), gt=0)


class RiskSettings(_Section):
    """The risk gate (every part off by default; manual halts always work). Environment:
    ``LOOTCAPITAL_RISK__DAILY_LOSS__ENABLED=true``, or ``LOOTCAPITAL_RISK`` as JSON. Limits
    changed through ``PUT /api/v1/risk/limits`` are stored and win over these for that run."""

    sizing: SizingSettings = Field(default_factory=lambda: SizingSettings())
    daily_loss: DailyLossSettings = Field(default_factory=lambda: DailyLossSettings())
    consecutive_losses: ConsecutiveLossesSettings = Field(
        default_factory=lambda: ConsecutiveLossesSettings()
    )
    volatility_spike: VolatilitySpikeSettings = Field(
        default_factory=lambda: VolatilitySpikeSettings()
    )
    unusual_volume: UnusualVolumeSettings = Field(default_factory=lambda: UnusualVolumeSettings())
    max_open_positions: MaxOpenPositionsSettings = Field(
        default_factory=lambda: MaxOpenPositionsSettings()
    )
    max_leverage: MaxLeverageSettings = Field(default_factory=lambda: MaxLeverageSettings())


class VenuesSettings(_Section):
    """Live venues' connections, one section per venue. Environment:
    ``LOOTCAPITAL_VENUES__BINANCE_USDM__REST_URL``, ``..._WS_URL``, ``..._DEMO``;
    ``LOOTCAPITAL_VENUES__MEXC__REST_URL``, ``..._WS_URL``, ``..._API_KEY``, ``..._API_SECRET``."""

    binance_usdm: BinanceUsdmSettings = Field(default_factory=lambda: BinanceUsdmSettings())
    mexc: MexcSettings = Field(default_factory=lambda: MexcSettings())


class Settings(BaseSettings):
    """Every setting of the server and the CLI (env prefix ``LOOTCAPITAL_``).

    Money is in quote currency (USDT); fees are fractions of notional; ``speed`` is market
    seconds replayed per wall second.
    """

    model_config = SettingsConfigDict(
        env_prefix="LOOTCAPITAL_", extra="forbid", env_nested_delimiter="__"
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Path("var")
    api_token: SecretStr | None = None
    database_url: SecretStr | None = None
    sample_dir: Path = SAMPLE_DIR
    instruments_files: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [SAMPLE_DIR / name for name in SAMPLE_INFO],
        min_length=1,
        description=(
            "Binance exchangeInfo JSON files (spot and/or USD-M futures, told apart by content) "
            "giving each instrument's tick, lot step, quantity caps and minimum notional, keyed "
            "by venue, market and symbol; a later file overrides an earlier one for the same "
            "market and symbol. Default: the perpetual and spot snapshots shipped in the repo's "
            "data/sample (whatever sample_dir says). Environment: a JSON list or "
            "comma-separated paths."
        ),
    )
    instruments_file: Path | None = Field(
        None, description="Old name of instruments_files (one file); use instruments_files."
    )
    exchange: str = "binance-usdm"
    symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    timeframe: str = "5m"
    strategy: str = "adaptive"
    strategy_params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    speed: float = Field(300.0, gt=0, le=10_000_000)
    feed: Literal["replay", "binance-usdm", "mexc"] = Field(
        "replay",
        description=(
            "Where paper trading's bars come from: replay (the candle store's bars, paced by "
            "speed), binance-usdm or mexc (the venue's live closed klines, funding rates and "
            "mark prices, no API key needed; venues.binance_usdm or venues.mexc says where to "
            "connect)."
        ),
    )
    history_days: float = Field(
        14,
        ge=0,
        le=3650,
        description=(
            "Days of the stored bars that a new paper run reads as history before it trades "
            "(they warm the strategy up and fill the price chart; at most half of the bars); 0 "
            "replays from the first stored bar."
        ),
    )
    initial_cash: Decimal = Field(Decimal(10_000), gt=0)
    fee_taker: Decimal = Field(Decimal("0.0005"), ge=0, lt=1)
    fee_maker: Decimal = Field(Decimal("0.0002"), ge=0, lt=1)
    slippage_bps: Decimal = Field(Decimal(2), ge=0, le=1000)
    max_leverage: Decimal = Field(
        Decimal(20),
        gt=0,
        le=125,
        description=(
            "Leverage cap: no perpetual symbol's leverage may exceed it; on other markets, the "
            "cap on gross notional / equity."
        ),
    )
    leverage: int = Field(
        1,
        ge=1,
        le=125,
        description=(
            "Leverage every perpetual symbol starts at (at most max_leverage and the symbol's "
            "bracket maximum); initial margin = notional / leverage."
        ),
    )
    margin_mode: MarginMode = Field(
        MarginMode.ISOLATED, description="isolated (each position its own margin) or cross."
    )
    liquidation_fee: Decimal = Field(
        DEFAULT_LIQUIDATION_FEE,
        ge=0,
        lt=1,
        description="Fee of a liquidation, a fraction of the liquidated notional.",
    )
    leverage_brackets_file: Path | None = Field(
        SAMPLE_DIR / SAMPLE_BRACKETS,
        description=(
            "Binance leverageBracket JSON: each perpetual's maximum leverage and maintenance "
            "margin brackets (liquidation prices). Unset: no liquidation is simulated."
        ),
    )
    participation: Decimal | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "Largest share of a bar's volume one order may fill on that bar (the rest fills "
            "on later bars or expires by its time in force); unset: no cap."
        ),
    )
    autostart: bool = True
    live_confirm: bool = Field(
        False,
        description=(
            "Allow trading with real money: `serve --mode live` without --demo starts only "
            "with --live and this set to true."
        ),
    )
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    risk: RiskSettings = Field(default_factory=lambda: RiskSettings())
    alerts: AlertSettings = Field(default_factory=lambda: AlertSettings())
    venues: VenuesSettings = Field(default_factory=lambda: VenuesSettings())

    @field_validator("instruments_files", mode="before")
    @classmethod
    def _instruments_files(cls, value: Any) -> Any:
        """A JSON list, or comma-separated paths (environment), or one path, as a list."""
        if isinstance(value, Path):
            return [value]
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list of paths: {exc}") from None
        return [part.strip() for part in value.split(",") if part.strip()]

    @model_validator(mode="after")
    def _old_instruments_file(self) -> Settings:
        """Reads the old setting ``instruments_file`` (one path) as ``instruments_files``."""
        if self.instruments_file is None:
            return self
        if "instruments_files" in self.model_fields_set:
            raise ValueError("set instruments_files only; instruments_file is its old name")
        self.instruments_files = [self.instruments_file]
        return self

    @model_validator(mode="after")
    def _leverage_within_cap(self) -> Settings:
        if self.leverage > self.max_leverage:
            raise ValueError(
                f"leverage {self.leverage} is above max_leverage {self.max_leverage}: raise "
                "max_leverage or lower leverage"
            )
        return self

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        cleaned = [s.strip().upper() for s in value if s.strip()]
        if not cleaned:
            raise ValueError("at least one symbol is required")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"symbols must be unique, were {cleaned}")
        return cleaned

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        timeframe_ms(value)
        return value

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown strategy {value!r}; choose one of {', '.join(STRATEGIES)}")
        return value

    @property
    def database(self) -> str:
        """The SQLAlchemy URL: ``database_url`` or a SQLite file in the data directory."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'lootcapital.db').resolve()}"


def load_settings(config: Path | None = None, **overrides: object) -> Settings:
    """Settings from ``overrides`` (CLI) > environment > the TOML file ``config`` (or the one
    named by ``LOOTCAPITAL_CONFIG``) > defaults.

    Raises
    ------
    ConfigError
        When the TOML file does not exist. ``pydantic.ValidationError`` for invalid values.
    """
    named = config or os.environ.get("LOOTCAPITAL_CONFIG")
    if not named:
        return Settings(**overrides)  # type: ignore[arg-type]
    path = Path(named)
    if not path.is_file():
        raise ConfigError(f"settings file {path} does not exist", field="config")

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
            return init_settings, env_settings, toml

    return _FromFile(**overrides)  # type: ignore[arg-type]


def describe_error(exc: Exception) -> str:
    """A one-line-per-problem message naming each invalid setting (for the CLI)."""
    errors: list[dict[str, Any]] = getattr(exc, "errors", lambda: [])()
    if not errors:
        return str(exc)
    lines = []
    for e in errors:
        name = ".".join(str(p) for p in e.get("loc", ())) or "settings"
        parts = name.split(".")
        # Nested sections are set one key at a time: LOOTCAPITAL_RISK__DAILY_LOSS__LIMIT.
        nested = parts[0] in ("risk", "alerts", "venues")
        env = "LOOTCAPITAL_" + ("__".join(parts) if nested else parts[0]).upper()
        secret = (
            parts[0] in _SECRETS
            or (parts[0] == "alerts" and parts[-1] in _ALERT_SECRETS)
            or (parts[0] == "venues" and parts[-1] in _VENUE_SECRETS)
        )
        value = e.get("input")
        if secret:
            shown = "***"
        elif isinstance(value, Mapping):  # a section's check: its keys, never its values
            shown = "a section setting " + (", ".join(sorted(map(str, value))) or "nothing")
        else:
            shown = repr(value)
        lines.append(f"invalid setting {name} ({env}): {e.get('msg')} (got {shown})")
    return "\n".join(lines)
