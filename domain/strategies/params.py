"""Declaring a strategy's parameters with their meaning, and converting one given as text (CLI
``--param k=v``, environment, TOML) to the type of the parameter's default."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TypeVar

from domain.errors import ConfigError

_T = TypeVar("_T")
MEANING = "meaning"
"""The key of a parameter's meaning in its dataclass field's ``metadata``."""


def param(default: _T, meaning: str) -> _T:
    """A strategy parameter's dataclass field: its ``default`` and what it means (units and
    range), shown by ``lootcapital strategies``.

    >>> from dataclasses import dataclass, fields
    >>> @dataclass(frozen=True)
    ... class P:
    ...     fast: int = param(50, "fast SMA period, bars")
    >>> fields(P)[0].metadata["meaning"]
    'fast SMA period, bars'
    """
    if not meaning.strip():
        raise ValueError("a parameter's meaning must not be empty")
    return dataclasses.field(default=default, metadata={MEANING: meaning})


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter of a strategy: ``name``, ``type`` (``int``, ``float``, ``bool``, ``str``),
    ``default`` and ``meaning`` (empty when the strategy did not declare one)."""

    name: str
    type: str
    default: bool | int | float | str
    meaning: str


def param_specs(params_cls: type) -> tuple[ParamSpec, ...]:
    """The :class:`ParamSpec` of every field of the parameters dataclass ``params_cls``, in
    declaration order."""
    return tuple(
        ParamSpec(f.name, type(f.default).__name__, f.default, f.metadata.get(MEANING, ""))
        for f in dataclasses.fields(params_cls)
    )


_TRUE = frozenset(("true", "1", "yes"))
_FALSE = frozenset(("false", "0", "no"))


def parse_param(name: str, raw: object, default: object) -> object:
    """``raw`` converted to the type of ``default``.

    * ``bool``: ``True``/``False``, the ints 1/0, or the text ``true``/``false``, ``1``/``0``,
      ``yes``/``no`` (any case, surrounding blanks ignored);
    * ``int``: an int, or text that is a whole decimal number (``"20"``, ``" -3 "``); never a
      float or ``"1.5"``; a bool is refused;
    * ``float``: an int or float, or text Python's ``float`` reads (``"0.5"``, ``"1e-3"``), as
      long as it is finite; a bool is refused;
    * any other type (``str``, e.g. a timeframe): ``type(default)(raw)``, as before.

    Parameters
    ----------
    name:
        The parameter's name, used in error messages and as the error's ``field``.
    raw:
        The value as given: text, or an already typed value from a TOML/JSON source.
    default:
        The parameter's default value; only its type is used.

    Raises
    ------
    ConfigError
        (``field=name``) When ``raw`` is not a valid value of that type; the message names the
        parameter, the expected type and the value.
    """
    kind = type(default)
    if kind is bool:
        return _bool(name, raw)
    if kind is int:
        return _int(name, raw)
    if kind is float:
        return _float(name, raw)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise _wrong(name, kind.__name__, raw) from None


def _bool(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _wrong(name, "true/false (or 1/0, yes/no)", raw)


def _int(name: str, raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise _wrong(name, "int", raw)


def _float(name: str, raw: object) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise _wrong(name, "float", raw) from None
    else:
        raise _wrong(name, "float", raw)
    if not math.isfinite(value):
        raise _wrong(name, "a finite float", raw)
    return value


def _wrong(name: str, expected: str, raw: object) -> ConfigError:
    return ConfigError(f"parameter {name} must be {expected}, was {raw!r}", field=name)
