"""Timeframes: parsing ``"5m"``-style names into milliseconds.

Supported units: ``m`` (minute), ``h`` (hour), ``d`` (day), ``w`` (week, 7 days from the epoch).
"""

from __future__ import annotations

import re

from domain.errors import ConfigError

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_PATTERN = re.compile(r"^(\d+)([mhdw])$")


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar of ``timeframe`` in milliseconds.

    >>> timeframe_ms("5m"), timeframe_ms("4h")
    (300000, 14400000)

    Raises
    ------
    ConfigError
        When the name is not ``<positive int><m|h|d|w>``.
    """
    match = _PATTERN.match(timeframe)
    if match is None or int(match.group(1)) <= 0:
        raise ConfigError(
            f"timeframe must look like 1m, 5m, 15m, 1h, 4h or 1d, was {timeframe!r}",
            field="timeframe",
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]
