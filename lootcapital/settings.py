"""Settings: defaults < TOML file < environment (``LOOTCAPITAL_*``) < CLI options.

The TOML file is named by ``LOOTCAPITAL_CONFIG`` or the CLI's ``--config``
(:func:`load_settings`); its keys are the field names below. Unknown keys are errors, and an
invalid value stops the start with a message naming the setting.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
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
SAMPLE_INFO = (
    "binance_usdm_exchange_info_20251030.json",
    "binance_spot_exchange_info_20230813.json",
)
"""The exchange-info snapshots shipped in the sample: USD-M perpetuals, then spot."""


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
    strategy: str = "trend_follow"
    strategy_params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    speed: float = Field(300.0, gt=0, le=10_000_000)
    initial_cash: Decimal = Field(Decimal(10_000), gt=0)
    fee_taker: Decimal = Field(Decimal("0.0005"), ge=0, lt=1)
    fee_maker: Decimal = Field(Decimal("0.0002"), ge=0, lt=1)
    slippage_bps: Decimal = Field(Decimal(2), ge=0, le=1000)
    max_leverage: Decimal = Field(Decimal(5), gt=0, le=125)
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
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

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
        env = f"LOOTCAPITAL_{name.split('.')[0].upper()}"
        secret = name.split(".")[0] in _SECRETS
        shown = "***" if secret else repr(e.get("input"))
        lines.append(f"invalid setting {name} ({env}): {e.get('msg')} (got {shown})")
    return "\n".join(lines)
