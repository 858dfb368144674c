"""Settings: defaults < TOML file < environment (``LOOTCAPITAL_*``) < CLI options.

The TOML file is named by ``LOOTCAPITAL_CONFIG`` or the CLI's ``--config``
(:func:`load_settings`); its keys are the field names below. Unknown keys are errors, and an
invalid value stops the start with a message naming the setting.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from domain.errors import ConfigError
from domain.strategies import STRATEGIES
from domain.timeframes import timeframe_ms

_SECRETS = {"api_token", "database_url"}
REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "data" / "sample"


class Settings(BaseSettings):
    """Every setting of the server and the CLI (env prefix ``LOOTCAPITAL_``).

    Money is in quote currency (USDT); fees are fractions of notional; ``speed`` is market
    seconds replayed per wall second.
    """

    model_config = SettingsConfigDict(env_prefix="LOOTCAPITAL_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Path("var")
    api_token: SecretStr | None = None
    database_url: SecretStr | None = None
    sample_dir: Path = SAMPLE_DIR
    instruments_file: Path | None = None
    exchange: str = "binance-usdm"
    symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    timeframe: str = "5m"
    strategy: str = "trend_follow"
    strategy_params: dict[str, str | int | float] = Field(default_factory=dict)
    speed: float = Field(300.0, gt=0, le=10_000_000)
    initial_cash: Decimal = Field(Decimal(10_000), gt=0)
    fee_taker: Decimal = Field(Decimal("0.0005"), ge=0, lt=1)
    fee_maker: Decimal = Field(Decimal("0.0002"), ge=0, lt=1)
    slippage_bps: Decimal = Field(Decimal(2), ge=0, le=1000)
    max_leverage: Decimal = Field(Decimal(5), gt=0, le=125)
    autostart: bool = True
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

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

    @property
    def instruments_path(self) -> Path:
        """Exchange-info JSON with the symbols' tick, lot step and minimum notional."""
        return self.instruments_file or self.sample_dir / "binance_usdm_exchange_info_20251030.json"


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
        env = f"LOOTCAPITAL_{name.split('.')[0].upper()}"
        secret = name.split(".")[0] in _SECRETS
        shown = "***" if secret else repr(e.get("input"))
        lines.append(f"invalid setting {name} ({env}): {e.get('msg')} (got {shown})")
    return "\n".join(lines)
