"""Strategies by name, and building one from ``key=value`` parameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from domain.errors import ConfigError
from domain.strategies.base import Strategy
from domain.strategies.sma_cross import SmaCross
from domain.strategies.trend_follow import TrendFollow

STRATEGIES: Mapping[str, type[SmaCross] | type[TrendFollow]] = {
    "sma_cross": SmaCross,
    "trend_follow": TrendFollow,
}


def build_strategy(name: str, params: Mapping[str, str | int | float], timeframe: str) -> Strategy:
    """The strategy ``name`` with ``params`` (strings are converted to the field's type).

    Raises
    ------
    ConfigError
        Unknown strategy, unknown parameter, or a value of the wrong type or range.
    """
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ConfigError(
            f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}", field="strategy"
        )
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "name"}
    kwargs: dict[str, object] = {}
    for key, raw in params.items():
        if key not in fields or key == "timeframe":
            allowed = ", ".join(k for k in fields if k != "timeframe")
            raise ConfigError(
                f"unknown parameter {key!r} for {name}; allowed: {allowed}", field=key
            )
        kind = type(fields[key].default)
        try:
            kwargs[key] = kind(raw) if kind is not int else int(str(raw))
        except ValueError:
            raise ConfigError(
                f"parameter {key} must be {kind.__name__}, was {raw!r}", field=key
            ) from None
    if "timeframe" in fields:
        kwargs["timeframe"] = timeframe
    return cls(**kwargs)  # type: ignore[arg-type]
