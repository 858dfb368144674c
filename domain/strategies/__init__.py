"""Strategies by name, and building one from ``key=value`` parameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from domain.errors import ConfigError
from domain.strategies.adaptive import Adaptive
from domain.strategies.base import Strategy
from domain.strategies.ml_mean_reversion import MLMeanReversion
from domain.strategies.params import parse_param
from domain.strategies.sma_cross import SmaCross
from domain.strategies.trend_follow import TrendFollow

STRATEGIES: Mapping[
    str, type[SmaCross] | type[TrendFollow] | type[Adaptive] | type[MLMeanReversion]
] = {
    "sma_cross": SmaCross,
    "trend_follow": TrendFollow,
    "adaptive": Adaptive,
    "ml_mean_reversion": MLMeanReversion,
}


def build_strategy(
    name: str,
    params: Mapping[str, str | int | float | bool],
    timeframe: str,
    *,
    incremental: bool = False,
) -> Strategy:
    """A fresh instance of strategy ``name`` with ``params`` (strings are converted to the
    parameter's type) on bars of ``timeframe``; ``incremental`` selects the features'
    incremental form (paper and live) over the batch form (backtests).

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
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    kwargs: dict[str, object] = {}
    for key, raw in params.items():
        if key not in fields:
            allowed = ", ".join(fields)
            raise ConfigError(
                f"unknown parameter {key!r} for {name}; allowed: {allowed}", field=key
            )
        kwargs[key] = parse_param(key, raw, fields[key].default)
    return cls(cls.Params(**kwargs), timeframe=timeframe, incremental=incremental)  # type: ignore[arg-type]
