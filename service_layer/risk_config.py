"""The risk gate's configuration and its one JSON form.

The same document is the ``risk`` section of the settings, the body of ``PUT
/api/v1/risk/limits``, the ``limits`` of ``GET /api/v1/risk`` and what a stored limits change
holds. Decimals are strings; each section has its own ``enabled`` toggle:

.. code-block:: json

    {"sizing": {"enabled": false, "risk_fraction": "0.01", "max_notional": null,
                "max_leverage": null, "heat_fraction": null, "drawdown_steps": []},
     "daily_loss": {"enabled": false, "limit": "0.05", "close_all": false, "state": "reducing"},
     "consecutive_losses": {"enabled": false, "count": 2, "cooldown_ms": null,
                            "state": "halted"},
     "volatility_spike": {"enabled": false, "percentile_pct": 95.0, "release_pct": 90.0,
                          "state": "reducing", "timeframe": "1h", "atr_period": 14,
                          "window": 720},
     "unusual_volume": {"enabled": false, "rvol": 5.0, "period": 20},
     "max_open_positions": {"enabled": false, "limit": 5},
     "max_leverage": {"enabled": false, "limit": "3"}}

``sizing`` resizes the entries a strategy asks for (:func:`domain.risk.size_position`: risk
fraction to the stop, caps); ``max_leverage`` the breaker refuses an entry that would take the
gross notional over ``limit`` × equity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from domain.errors import ConfigError
from domain.risk import (
    BreakerConfig,
    ConsecutiveLosses,
    DailyLossLimit,
    EntryLimit,
    RiskLimits,
    TradingState,
    UnusualVolume,
    VolatilitySpike,
)
from service_layer.risk_inputs import BarInputs

SECTIONS = (
    "sizing", "daily_loss", "consecutive_losses", "volatility_spike", "unusual_volume",
    "max_open_positions", "max_leverage",
)  # fmt: skip
"""The sections of the JSON form, in order."""
T = TypeVar("T")


def _off() -> BreakerConfig:
    return BreakerConfig(
        daily_loss=DailyLossLimit(enabled=False),
        consecutive_losses=ConsecutiveLosses(enabled=False),
        volatility_spike=VolatilitySpike(enabled=False, release_pct=90.0),
        unusual_volume=UnusualVolume(enabled=False),
        max_open_positions=EntryLimit(enabled=False, limit=Decimal(5)),
        max_leverage=EntryLimit(enabled=False, limit=Decimal(3)),
    )


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """What the risk gate enforces: ``limits`` (sizing rules, applied to a strategy's entries
    when ``sizing`` is on), the circuit ``breakers`` and how their per-bar ``inputs`` are
    computed. The default enforces nothing."""

    limits: RiskLimits = field(default_factory=RiskLimits)
    breakers: BreakerConfig = field(default_factory=_off)
    sizing: bool = False
    inputs: BarInputs = field(default_factory=BarInputs)

    @property
    def enforces_anything(self) -> bool:
        """True when sizing or some breaker is on (manual halts work either way)."""
        b = self.breakers
        return self.sizing or any(
            s.enabled
            for s in (
                b.daily_loss, b.consecutive_losses, b.volatility_spike, b.unusual_volume,
                b.max_open_positions, b.max_leverage,
            )
        )  # fmt: skip

    def to_json(self) -> dict[str, dict[str, Any]]:
        """The JSON form (see the module docstring)."""
        b, limits, inputs = self.breakers, self.limits, self.inputs
        return {
            "sizing": {
                "enabled": self.sizing,
                "risk_fraction": str(limits.risk_fraction),
                "max_notional": _str(limits.max_notional),
                "max_leverage": _str(limits.max_leverage),
                "heat_fraction": _str(limits.heat_fraction),
                "drawdown_steps": [[str(t), str(m)] for t, m in limits.drawdown_steps],
            },
            "daily_loss": {
                "enabled": b.daily_loss.enabled,
                "limit": str(b.daily_loss.limit),
                "close_all": b.daily_loss.close_all,
                "state": b.daily_loss.state.value,
            },
            "consecutive_losses": {
                "enabled": b.consecutive_losses.enabled,
                "count": b.consecutive_losses.count,
                "cooldown_ms": b.consecutive_losses.cooldown_ms,
                "state": b.consecutive_losses.state.value,
            },
            "volatility_spike": {
                "enabled": b.volatility_spike.enabled,
                "percentile_pct": b.volatility_spike.percentile_pct,
                "release_pct": b.volatility_spike.release,
                "state": b.volatility_spike.state.value,
                "timeframe": inputs.atr_timeframe,
                "atr_period": inputs.atr_period,
                "window": inputs.atr_window,
            },
            "unusual_volume": {
                "enabled": b.unusual_volume.enabled,
                "rvol": b.unusual_volume.rvol,
                "period": inputs.rvol_period,
            },
            "max_open_positions": {
                "enabled": b.max_open_positions.enabled,
                "limit": int(b.max_open_positions.limit),
            },
            "max_leverage": {
                "enabled": b.max_leverage.enabled,
                "limit": str(b.max_leverage.limit),
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base: RiskConfig | None = None) -> RiskConfig:
        """The config of ``data`` (the JSON form); a section or key left out keeps ``base``'s
        value (the default config's when None).

        Raises
        ------
        ConfigError
            On an unknown section or key, or a bad value; ``field`` is its dotted path
            (``daily_loss.limit``).
        """
        merged = (base or cls()).to_json()
        for section, values in data.items():
            if section not in merged:
                raise ConfigError(f"unknown risk section {section!r}", field=section)
            if not isinstance(values, Mapping):
                raise ConfigError(f"{section} must be an object, was {values!r}", field=section)
            for key, value in values.items():
                if key not in merged[section]:
                    raise ConfigError(f"unknown key {key!r} in {section}", field=f"{section}.{key}")
                merged[section][key] = value
        return _build(merged)


def _str(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


class _Reader:
    """Reads typed values of one section, naming ``section.key`` in errors."""

    def __init__(self, section: str, values: Mapping[str, Any]) -> None:
        self.section, self.values = section, values

    def where(self, key: str) -> str:
        return f"{self.section}.{key}"

    def boolean(self, key: str) -> bool:
        value = self.values[key]
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where(key)} must be true or false, was {value!r}",
                              field=self.where(key))  # fmt: skip
        return value

    def decimal(self, key: str) -> Decimal:
        value = self.values[key]
        try:
            if isinstance(value, bool | float) or value is None:
                raise InvalidOperation
            number = Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise ConfigError(
                f"{self.where(key)} must be a decimal string, was {value!r}", field=self.where(key)
            ) from None
        if not number.is_finite():
            raise ConfigError(f"{self.where(key)} must be finite, was {value!r}",
                              field=self.where(key))  # fmt: skip
        return number

    def optional_decimal(self, key: str) -> Decimal | None:
        return None if self.values[key] is None else self.decimal(key)

    def integer(self, key: str) -> int:
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.where(key)} must be an integer, was {value!r}",
                              field=self.where(key))  # fmt: skip
        return value

    def number(self, key: str) -> float:
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{self.where(key)} must be a number, was {value!r}",
                              field=self.where(key))  # fmt: skip
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{self.where(key)} must be a number, was {value!r}",
                              field=self.where(key)) from None  # fmt: skip

    def state(self, key: str) -> TradingState:
        value = self.values[key]
        try:
            return TradingState(value)
        except ValueError:
            raise ConfigError(
                f"{self.where(key)} must be reducing or halted, was {value!r}",
                field=self.where(key),
            ) from None


def _build(data: Mapping[str, Mapping[str, Any]]) -> RiskConfig:
    return _checked({name: _Reader(name, data[name]) for name in SECTIONS})


_INPUT_FIELDS = {
    "atr_period": "volatility_spike.atr_period",
    "atr_window": "volatility_spike.window",
    "timeframe": "volatility_spike.timeframe",
    "rvol_period": "unusual_volume.period",
}
"""Where each :class:`BarInputs` field is in the JSON form."""


def _section(name: str, build: Callable[[], T]) -> T:
    """``build()``, a domain error's bare field named as ``name.field``."""
    try:
        return build()
    except ConfigError as exc:
        if exc.field is None or "." in exc.field:
            raise
        where = _INPUT_FIELDS.get(exc.field) if name == "inputs" else f"{name}.{exc.field}"
        raise ConfigError(exc.message, field=where or f"{name}.{exc.field}") from None


def _checked(r: Mapping[str, _Reader]) -> RiskConfig:
    s, dl, cl = r["sizing"], r["daily_loss"], r["consecutive_losses"]
    vs, uv, mp, ml = (
        r["volatility_spike"], r["unusual_volume"], r["max_open_positions"], r["max_leverage"]
    )  # fmt: skip
    steps = s.values["drawdown_steps"]
    if not isinstance(steps, list | tuple) or not all(
        isinstance(p, list | tuple) and len(p) == 2 for p in steps
    ):
        raise ConfigError(
            f"sizing.drawdown_steps must be a list of [threshold, multiplier] pairs, was {steps!r}",
            field="sizing.drawdown_steps",
        )
    pairs = tuple(
        (_Reader("sizing.drawdown_steps", {"threshold": t}).decimal("threshold"),
         _Reader("sizing.drawdown_steps", {"multiplier": m}).decimal("multiplier"))
        for t, m in steps
    )  # fmt: skip
    limits = _section(
        "sizing",
        lambda: RiskLimits(
            risk_fraction=s.decimal("risk_fraction"),
            max_notional=s.optional_decimal("max_notional"),
            max_leverage=s.optional_decimal("max_leverage"),
            heat_fraction=s.optional_decimal("heat_fraction"),
            drawdown_steps=pairs,
        ),
    )
    cooldown = cl.values["cooldown_ms"]
    release = vs.values["release_pct"]
    breakers = BreakerConfig(
        daily_loss=_section("daily_loss", lambda: DailyLossLimit(
            dl.boolean("enabled"), dl.decimal("limit"), dl.boolean("close_all"),
            dl.state("state"),
        )),
        consecutive_losses=_section("consecutive_losses", lambda: ConsecutiveLosses(
            cl.boolean("enabled"), cl.integer("count"),
            None if cooldown is None else cl.integer("cooldown_ms"), cl.state("state"),
        )),
        volatility_spike=_section("volatility_spike", lambda: VolatilitySpike(
            vs.boolean("enabled"), vs.number("percentile_pct"),
            None if release is None else vs.number("release_pct"), vs.state("state"),
        )),
        unusual_volume=_section("unusual_volume", lambda: UnusualVolume(
            uv.boolean("enabled"), uv.number("rvol"),
        )),
        max_open_positions=_section("max_open_positions", lambda: EntryLimit(
            mp.boolean("enabled"), Decimal(mp.integer("limit")),
        )),
        max_leverage=_section("max_leverage", lambda: EntryLimit(
            ml.boolean("enabled"), ml.decimal("limit"),
        )),
    )  # fmt: skip
    inputs = _section("inputs", lambda: BarInputs(
        atr_timeframe=str(vs.values["timeframe"]), atr_period=vs.integer("atr_period"),
        atr_window=vs.integer("window"), rvol_period=uv.integer("period"),
    ))  # fmt: skip
    return RiskConfig(limits, breakers, s.boolean("enabled"), inputs)
