"""Jinja filters of the web panel: times in UTC and decimals with a trader's precision.

Every filter accepts ``None`` (shown as an em dash) and a ``Decimal``, ``int``, ``float`` or
decimal string, so templates can pass domain values as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from jinja2 import Environment

from domain.orders import order_origin

MISSING = "—"
MAX_PLACES = 8
"""Most decimals shown for a price or quantity (crypto lot and tick sizes go to 1e-8)."""

Number = Decimal | int | float | str | None


def _decimal(value: Number) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def utc(ms: int | None, seconds: bool = False) -> str:
    """``ms`` (int milliseconds UTC) as ``"YYYY-MM-DD HH:MM UTC"`` (with ``:SS`` if asked).

    >>> utc(1_700_000_000_000)
    '2023-11-14 22:13 UTC'
    """
    if ms is None:
        return MISSING
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def money(value: Number, places: int = 2) -> str:
    """An amount of quote currency with thousands separators and ``places`` decimals.

    >>> money(Decimal("10234.5"))
    '10,234.50'
    """
    d = _decimal(value)
    return MISSING if d is None else f"{d:,.{places}f}"


def signed(value: Number, places: int = 2) -> str:
    """Like :func:`money` with an explicit sign (PnL): ``"+12.30"``, ``"-4.00"``."""
    d = _decimal(value)
    return MISSING if d is None else f"{d:+,.{places}f}"


def price(value: Number) -> str:
    """A price or quantity: its own decimals (trailing zeros dropped, at most
    :data:`MAX_PLACES`), at least 2 for prices of 1 or more, thousands separators.

    >>> price(Decimal("67234.10000000")), price("0.00012340"), price(Decimal("0.015"))
    ('67,234.10', '0.0001234', '0.015')
    """
    d = _decimal(value)
    if d is None:
        return MISSING
    if d.as_tuple().exponent < -MAX_PLACES:  # type: ignore[operator]
        d = d.quantize(Decimal(1).scaleb(-MAX_PLACES))
    if d == 0:
        d = abs(d)  # no "-0" after rounding away a tiny negative
    places = max(0, -d.normalize().as_tuple().exponent)  # type: ignore[operator]
    if abs(d) >= 1:
        places = max(places, 2)
    return f"{d:,.{places}f}"


def qty(value: Number) -> str:
    """A quantity in base asset: its own decimals, trailing zeros dropped.

    >>> qty(Decimal("1.50000000")), qty(Decimal("2"))
    ('1.5', '2')
    """
    d = _decimal(value)
    if d is None:
        return MISSING
    places = max(0, -d.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{d:,.{min(places, MAX_PLACES)}f}"


def pct(fraction: Number, places: int = 2, sign: bool = False) -> str:
    """A fraction as a percentage: ``0.1234`` → ``"12.34%"`` (``"+12.34%"`` with ``sign``)."""
    d = _decimal(fraction)
    if d is None:
        return MISSING
    return f"{d * 100:{'+' if sign else ''},.{places}f}%"


def pnl_class(value: Number) -> str:
    """CSS class for a signed amount: ``"pos"``, ``"neg"`` or ``""`` at zero."""
    d = _decimal(value)
    if d is None or d == 0:
        return ""
    return "pos" if d > 0 else "neg"


MARGIN_WARN = Decimal("0.5")
MARGIN_DANGER = Decimal("0.8")
"""Margin ratios (maintenance margin / margin balance; liquidation at 1) shown as a warning
and as a danger."""


def ratio_class(ratio: Number) -> str:
    """CSS class for a margin ratio: ``"neg"`` from :data:`MARGIN_DANGER`, ``"warn"`` from
    :data:`MARGIN_WARN`, else ``""``."""
    d = _decimal(ratio)
    if d is None or d < MARGIN_WARN:
        return ""
    return "neg" if d >= MARGIN_DANGER else "warn"


def num(value: float | int | None) -> str:
    """A float from an indicator or model, to 6 significant digits (reasons' values)."""
    return MISSING if value is None else f"{value:.6g}"


class Origin(NamedTuple):
    """Who placed an order, read from its ``tag``.

    ``kind`` is ``"api"``, ``"strategy"`` or ``"run"`` (the close at the end of a backtest);
    ``label`` is what the panel shows (``"API"`` or the strategy's name); ``leg`` names the
    exit order of a position (``"stop-loss"``, ``"take-profit 1"``…), ``""`` for the entry.
    """

    kind: str
    label: str
    leg: str

    @property
    def title(self) -> str:
        """A sentence for the tooltip: ``"take-profit 1 of an order placed through the API"``."""
        placed = {
            "api": "placed through the API",
            "run": "placed to close the position at the end of the run",
        }.get(self.kind, f"placed by the strategy {self.label}")
        return f"{self.leg} of an order {placed}" if self.leg else placed


_LEGS = {"stop": "stop-loss", "trail": "trailing stop"}


def origin(tag: str | None) -> Origin:
    """Who placed the order tagged ``tag``.

    Tags are set where orders are built: ``"api"`` for the REST API, the strategy's name for
    its orders, ``"end"`` for the backtest's closing orders, and ``"<entry tag>:<leg>"`` for
    the exits placed when an entry fills (``service_layer.exits``).

    >>> origin("api")
    Origin(kind='api', label='API', leg='')
    >>> origin("trend_follow:tp2")
    Origin(kind='strategy', label='trend_follow', leg='take-profit 2')
    """
    found = order_origin(tag)
    leg = found.leg
    if leg.startswith("tp") and leg[2:].isdigit():
        leg = f"take-profit {leg[2:]}"
    leg = _LEGS.get(leg, leg)
    label = {"api": "API", "run": "end of run"}.get(found.kind, found.source or MISSING)
    return Origin(found.kind, label, leg)


FILTERS = {
    "utc": utc,
    "money": money,
    "signed": signed,
    "price": price,
    "qty": qty,
    "pct": pct,
    "pnl_class": pnl_class,
    "ratio_class": ratio_class,
    "num": num,
    "origin": origin,
}


def register_filters(env: Environment) -> None:
    """Add every filter of this module to ``env`` under its function name."""
    env.filters.update(FILTERS)
