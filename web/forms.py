"""The control centre's forms read into the bodies of the API that bots use.

The stop-rules form posts every field of the risk limits document (``daily_loss.limit``,
``max_open_positions.enabled``…, the JSON form of :mod:`service_layer.risk_config`) as HTML form
fields named by their dotted path. :func:`read_limits` turns them into that document, checks it
with the ``PUT /api/v1/risk/limits`` body model (:class:`api.risk_schemas.RiskLimitsIn`) and
keeps only what differs from the limits in force, so a save records what the person changed and
leaves alone what a bot changed meanwhile. Errors are keyed by the dotted field they name, as
the API's 422 ``field`` is, so the page shows each next to its input.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from api.risk_schemas import RiskLimitsIn

Kind = Literal["bool", "number", "optional", "state", "text", "steps"]
"""How a field is shown and read: a checkbox, a required number, a number that may be left
empty (null: no cap), ``reducing``/``halted``, free text, or drawdown steps."""

M = TypeVar("M", bound=BaseModel)

FORM_ERROR = "form"
"""The key of an error that names no field of the form."""


@dataclass(frozen=True, slots=True)
class LimitField:
    """One input of the stop-rules form: ``key`` in its section, its ``label``, how it is
    read (``kind``) and a ``hint`` shown under it."""

    key: str
    label: str
    kind: Kind
    hint: str = ""


@dataclass(frozen=True, slots=True)
class LimitSection:
    """A section of the limits document (``daily_loss``…) as a fieldset."""

    name: str
    title: str
    help: str
    fields: tuple[LimitField, ...]

    def path(self, f: LimitField) -> str:
        """The field's dotted path and form name: ``daily_loss.limit``."""
        return f"{self.name}.{f.key}"


_ON = LimitField("enabled", "On", "bool")


def _state(what: str) -> LimitField:
    return LimitField("state", "Then", "state", f"reducing: only orders that reduce {what}")


SECTIONS: tuple[LimitSection, ...] = (
    LimitSection("daily_loss", "Daily loss limit",
                 "Once equity is this far below the day's start, until 00:00 UTC.", (
        _ON,
        LimitField("limit", "Loss", "number", "fraction of the day's starting equity: 0.05 = 5 %"),
        LimitField("close_all", "Close every position too", "bool"),
        _state("positions"),
    )),
    LimitSection("consecutive_losses", "Losing streak",
                 "After this many losing trades in a row, until resumed.", (
        _ON,
        LimitField("count", "Losing trades", "number"),
        LimitField("cooldown_ms", "Cooldown (ms)", "optional",
                   "lifts by itself after this long; empty: only by hand"),
        _state("positions"),
    )),
    LimitSection("volatility_spike", "Volatility spike",
                 "On a symbol while its ATR percentile is above the trigger.", (
        _ON,
        LimitField("percentile_pct", "Trigger (percentile)", "number", "0 to 100"),
        LimitField("release_pct", "Release (percentile)", "optional", "empty: at the trigger"),
        _state("that symbol's position"),
        LimitField("timeframe", "ATR bars", "text", "5m, 1h, 1d…"),
        LimitField("atr_period", "ATR period", "number"),
        LimitField("window", "Ranked over (bars)", "number"),
    )),
    LimitSection("unusual_volume", "Unusual volume",
                 "An alert (no hold) when a bar's volume is this many times the mean.", (
        _ON,
        LimitField("rvol", "Relative volume", "number"),
        LimitField("period", "Mean over (bars)", "number"),
    )),
    LimitSection("max_open_positions", "Max open positions",
                 "Entries that would open more positions are refused.", (
        _ON,
        LimitField("limit", "Positions", "number"),
    )),
    LimitSection("max_leverage", "Max leverage",
                 "Entries that would take gross notional above this × equity are refused.", (
        _ON,
        LimitField("limit", "Gross / equity", "number"),
    )),
    LimitSection("sizing", "Position sizing",
                 "Resize strategy entries to lose this much at their stop, then cap them.", (
        _ON,
        LimitField("risk_fraction", "Risk per trade", "number", "fraction of equity: 0.01 = 1 %"),
        LimitField("max_notional", "Max notional per symbol", "optional", "money; empty: no cap"),
        LimitField("max_leverage", "Max gross / equity", "optional", "empty: no cap"),
        LimitField("heat_fraction", "Max open risk", "optional",
                   "fraction of equity at all stops; empty: no cap"),
        LimitField("drawdown_steps", "Drawdown steps", "steps",
                   "drawdown:multiplier pairs, e.g. 0.10:0.5, 0.20:0.25"),
    )),
)  # fmt: skip
"""The form's sections and fields, in the order shown."""

FIELDS: dict[str, tuple[LimitSection, LimitField]] = {
    s.path(f): (s, f) for s in SECTIONS for f in s.fields
}
"""Every field by its dotted path."""

_STEP = re.compile(r"^\s*([^:\s]+)\s*:\s*([^:\s]+)\s*$")


def _steps_text(steps: list[list[str]] | list[tuple[str, str]]) -> str:
    return ", ".join(f"{t}:{m}" for t, m in steps)


def _read_steps(text: str) -> list[list[str]] | None:
    """``"0.10:0.5, 0.20:0.25"`` as ``[["0.10", "0.5"], ["0.20", "0.25"]]`` (None when
    malformed); an empty text is no step."""
    pairs = []
    for part in (p for p in text.split(",") if p.strip()):
        match = _STEP.match(part)
        if match is None:
            return None
        pairs.append([match.group(1), match.group(2)])
    return pairs


def form_values(limits: Mapping[str, Mapping[str, Any]]) -> dict[str, str | bool]:
    """What each input shows for ``limits`` (the JSON form), by dotted path."""
    values: dict[str, str | bool] = {}
    for path, (section, f) in FIELDS.items():
        value = limits[section.name][f.key]
        if f.kind == "bool":
            values[path] = bool(value)
        elif f.kind == "steps":
            values[path] = _steps_text(value)
        else:
            values[path] = "" if value is None else str(value)
    return values


def posted_values(form: Mapping[str, str]) -> dict[str, str | bool]:
    """What each input shows after a post of ``form``: what was typed (an unchecked box is
    not posted: false)."""
    return {
        path: (form.get(path) in ("true", "on")) if f.kind == "bool" else form.get(path, "").strip()
        for path, (_, f) in FIELDS.items()
    }


@dataclass(frozen=True, slots=True)
class LimitsRead:
    """A posted stop-rules form: ``changes`` (the parts of the limits document that differ
    from the limits in force, for ``PUT /api/v1/risk/limits``; empty when nothing changed)
    or ``errors`` by dotted field."""

    changes: dict[str, dict[str, Any]]
    errors: dict[str, str]


def read_limits(form: Mapping[str, str], current: Mapping[str, Mapping[str, Any]]) -> LimitsRead:
    """Read the posted ``form`` against ``current`` (the limits in force, JSON form)."""
    document: dict[str, dict[str, Any]] = {s.name: {} for s in SECTIONS}
    errors: dict[str, str] = {}
    for path, typed in posted_values(form).items():
        section, f = FIELDS[path]
        value: Any = typed
        if f.kind == "optional":
            value = typed or None  # empty: null, no cap
        elif f.kind == "steps":
            value = _read_steps(str(typed))
            if value is None:
                errors[path] = "write drawdown:multiplier pairs separated by commas: 0.10:0.5"
        document[section.name][f.key] = value
    if errors:
        return LimitsRead({}, errors)
    try:
        body = RiskLimitsIn.model_validate(document)
    except ValidationError as exc:
        return LimitsRead({}, field_errors(exc))
    return LimitsRead(_changed(body.changes(), current), {})


def field_errors(exc: ValidationError, known: Collection[str] = FIELDS.keys()) -> dict[str, str]:
    """The first message of each field a body model refused, keyed by its dotted path (the
    API's 422 ``field``: ``daily_loss.limit``); an error deeper in a ``known`` field (a
    drawdown step) goes to that field, one that names no known field to :data:`FORM_ERROR`."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        field = next(
            (".".join(loc[:n]) for n in range(len(loc), 0, -1) if ".".join(loc[:n]) in known),
            FORM_ERROR,
        )
        errors.setdefault(field, message)
    return errors


def _same(a: Any, b: Any) -> bool:
    """Equal as limits: decimals by value (``"0.050"`` is ``"0.05"``), lists item by item."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except InvalidOperation:
        return a == b


def _changed(
    new: Mapping[str, Mapping[str, Any]], current: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {}
    for section, values in new.items():
        for key, value in values.items():
            if not _same(value, current[section][key]):
                changes.setdefault(section, {})[key] = value
    return changes


def changed_paths(changes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The dotted paths of ``changes``, in the form's order."""
    return [path for path, (s, f) in FIELDS.items() if f.key in changes.get(s.name, {})]


def validated(model: type[M], data: Mapping[str, Any]) -> tuple[M | None, dict[str, str]]:
    """``data`` read by ``model`` (an API body), or None and the errors by field."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, field_errors(exc, data.keys())
