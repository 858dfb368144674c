"""Position sizing: a fixed fraction of equity at risk to the stop, then capped.

The risk size is the fixed-fractional formula of spec 003 ("Position Size = (Account × Risk%) /
(Entry − StopLoss)"; R. Vince, *The Mathematics of Money Management*, 1992, fixed fractional
trading)::

    uncapped = equity × risk_fraction / |entry − stop|

It is scaled down by the drawdown step in effect (``> 10 % → × 0.5``), then each cap gives the
largest quantity it allows and the smallest wins:

=================  ========================================================================
cap                largest quantity
=================  ========================================================================
max_notional       ``(max_notional − symbol_notional) / entry``
max_leverage       ``(max_leverage × equity − gross_notional) / entry``
available_margin   ``available_margin × leverage / entry`` (initial margin = notional / lev.)
heat               ``(heat_fraction × equity − open_risk) / |entry − stop|``
=================  ========================================================================

The result is rounded down to the lot step, and is zero (never negative) when nothing fits.
Money is ``Decimal`` in the quote currency, quantities in base asset, prices in quote currency
per base unit, and every ratio a fraction (0.01 = 1 %). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from itertools import pairwise
from typing import NamedTuple

from domain.errors import ConfigError
from domain.model import Reason

ZERO = Decimal(0)
ONE = Decimal(1)


class SizingCap(StrEnum):
    """What set a :class:`Sizing`'s quantity.

    ``risk``: the risk size itself; ``drawdown``: the risk size scaled down by a drawdown step;
    ``max_notional``, ``max_leverage``, ``available_margin``, ``heat``: that cap; ``lot_step`` and
    ``min_notional``: a positive size that rounding to the lot step, or the instrument's minimum
    order value, turned into zero.
    """

    RISK = "risk"
    DRAWDOWN = "drawdown"
    MAX_NOTIONAL = "max_notional"
    MAX_LEVERAGE = "max_leverage"
    AVAILABLE_MARGIN = "available_margin"
    HEAT = "heat"
    LOT_STEP = "lot_step"
    MIN_NOTIONAL = "min_notional"


def _fraction(name: str, value: Decimal, *, upper: Decimal = ONE) -> None:
    if not isinstance(value, Decimal) or not ZERO < value <= upper:
        raise ConfigError(f"{name} must be a Decimal in (0, {upper}], was {value!r}", field=name)


def _optional_positive(name: str, value: Decimal | None) -> None:
    if value is not None and (not isinstance(value, Decimal) or not value > 0):
        raise ConfigError(f"{name} must be a Decimal > 0 or None, was {value!r}", field=name)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The sizing rules of an account.

    Parameters
    ----------
    risk_fraction:
        Fraction of equity lost when a new position's stop is hit, in (0, 1] (0.01 = 1 %).
    max_notional:
        Largest position value in one symbol, quote currency (None: no cap).
    max_leverage:
        Largest gross notional of all positions over equity, e.g. ``Decimal(3)`` (None: no cap).
    heat_fraction:
        Largest open risk of all positions (sum of ``|entry − stop| × |qty|``) as a fraction of
        equity, in [risk_fraction, 1] (None: no cap).
    drawdown_steps:
        ``((threshold, multiplier), ...)``: once the drawdown from the equity peak is strictly
        above ``threshold`` (a fraction in (0, 1)), sizes are multiplied by ``multiplier`` (in
        [0, 1]; 0 stops new entries). Thresholds strictly increasing, multipliers
        non-increasing; the step with the largest threshold exceeded applies.

    Raises
    ------
    ConfigError
        On a value out of its range, a heat fraction below the risk fraction (no full-size
        trade could ever pass), or drawdown steps out of order; the message names the field.
    """

    risk_fraction: Decimal = Decimal("0.01")
    max_notional: Decimal | None = None
    max_leverage: Decimal | None = None
    heat_fraction: Decimal | None = None
    drawdown_steps: tuple[tuple[Decimal, Decimal], ...] = ()

    def __post_init__(self) -> None:
        _fraction("risk_fraction", self.risk_fraction)
        _optional_positive("max_notional", self.max_notional)
        _optional_positive("max_leverage", self.max_leverage)
        if self.heat_fraction is not None:
            _fraction("heat_fraction", self.heat_fraction)
            if self.heat_fraction < self.risk_fraction:
                raise ConfigError(
                    f"heat_fraction {self.heat_fraction} must be >= risk_fraction "
                    f"{self.risk_fraction}",
                    field="heat_fraction",
                )
        for threshold, multiplier in self.drawdown_steps:
            if not (isinstance(threshold, Decimal) and ZERO < threshold < ONE):
                raise ConfigError(
                    f"drawdown threshold must be a Decimal in (0, 1), was {threshold!r}",
                    field="drawdown_steps",
                )
            if not (isinstance(multiplier, Decimal) and ZERO <= multiplier <= ONE):
                raise ConfigError(
                    f"drawdown multiplier must be a Decimal in [0, 1], was {multiplier!r}",
                    field="drawdown_steps",
                )
        for (t0, m0), (t1, m1) in pairwise(self.drawdown_steps):
            if not (t0 < t1 and m0 >= m1):
                raise ConfigError(
                    "drawdown steps need increasing thresholds and non-increasing multipliers, "
                    f"were ({t0}, {m0}) then ({t1}, {m1})",
                    field="drawdown_steps",
                )

    def drawdown_multiplier(self, drawdown: Decimal) -> Decimal:
        """The size multiplier at ``drawdown`` (fraction below the equity peak): that of the
        last step whose threshold ``drawdown`` exceeds strictly, 1 when none."""
        multiplier = ONE
        for threshold, step_multiplier in self.drawdown_steps:
            if drawdown > threshold:
                multiplier = step_multiplier
        return multiplier


def drawdown_from_peak(equity: Decimal, peak: Decimal) -> Decimal:
    """``max(0, 1 − equity / peak)``: the fall from the equity peak as a fraction (1 when
    equity is at or below 0).

    Raises
    ------
    ValueError
        When ``peak`` is not > 0.
    """
    if not peak > 0:
        raise ValueError(f"peak must be > 0, was {peak}")
    return min(ONE, max(ZERO, ONE - equity / peak))


@dataclass(frozen=True, slots=True)
class Sizing:
    """The size of a new position and why.

    ``qty`` (base asset, >= 0, a whole number of lot steps) is what to order; ``uncapped_qty``
    the bare risk size ``equity × risk_fraction / |entry − stop|`` (not rounded, not scaled);
    ``bound_by`` what set ``qty``; ``limits`` the largest quantity each rule allowed (the risk
    size after the drawdown multiplier under ``risk`` or ``drawdown``, then each enabled cap;
    never negative); ``drawdown_multiplier`` the multiplier applied; ``step_size`` and
    ``min_notional`` the instrument's lot step (base asset) and minimum order value (quote
    currency) it was sized to. :attr:`message` gives the decision in words, with its numbers.
    """

    qty: Decimal
    uncapped_qty: Decimal
    bound_by: SizingCap
    limits: Mapping[SizingCap, Decimal] = field(default_factory=dict)
    drawdown_multiplier: Decimal = ONE
    step_size: Decimal = ONE
    min_notional: Decimal = ZERO

    @property
    def message(self) -> str:
        """The decision in words, with its numbers (formatted when asked: most sizings pass
        unchanged and are never shown)."""
        return _message(
            self.qty, self.uncapped_qty, self.bound_by, self.limits,
            self.drawdown_multiplier, self.step_size, self.min_notional,
        )  # fmt: skip

    def as_reason(self) -> Reason:
        """The decision as a stored and shown :class:`~domain.model.Reason` (``"sizing"``)."""
        values = {"qty": float(self.qty), "uncapped_qty": float(self.uncapped_qty)}
        values.update({f"limit_{cap}": float(v) for cap, v in self.limits.items()})
        values["drawdown_multiplier"] = float(self.drawdown_multiplier)
        return Reason("sizing", self.message, values)


def size_position(
    limits: RiskLimits,
    *,
    equity: Decimal,
    entry: Decimal,
    stop: Decimal,
    step_size: Decimal,
    available_margin: Decimal,
    leverage: Decimal = ONE,
    gross_notional: Decimal = ZERO,
    symbol_notional: Decimal = ZERO,
    open_risk: Decimal = ZERO,
    drawdown: Decimal = ZERO,
    min_notional: Decimal = ZERO,
) -> Sizing:
    """The quantity of a new position entered at ``entry`` with its stop at ``stop``.

    Parameters
    ----------
    limits:
        The account's :class:`RiskLimits`.
    equity:
        Account equity (wallet balance + unrealized PnL), quote currency.
    entry, stop:
        Expected entry price and stop price, quote currency per base unit.
    step_size:
        The instrument's lot step (base asset); the result is rounded down to it.
    available_margin:
        Margin free for a new position, quote currency (negative counts as 0).
    leverage:
        The symbol's leverage setting: the new position needs ``qty × entry / leverage`` margin.
    gross_notional:
        Sum of ``|qty| × mark`` over all open positions, quote currency.
    symbol_notional:
        ``|qty| × mark`` of the position already held in this symbol, quote currency.
    open_risk:
        Sum over the open positions of ``|entry − stop| × |qty|``, quote currency.
    drawdown:
        Fall of equity from its peak, a fraction in [0, 1] (:func:`drawdown_from_peak`).
    min_notional:
        The instrument's minimum order value, quote currency: a smaller size becomes 0.

    Returns
    -------
    Sizing
        ``qty = floor_step(min(uncapped × drawdown multiplier, caps...))``, with the binding
        rule; see the module docstring for each cap's formula. The result meets every cap
        exactly in ``Decimal`` arithmetic (checked after rounding).

    Raises
    ------
    ValueError
        When ``entry``, ``stop``, ``step_size`` or ``leverage`` is not > 0, ``stop`` equals
        ``entry``, ``drawdown`` is outside [0, 1], or a notional or the open risk is negative.
    """
    for name, value in (("entry", entry), ("stop", stop), ("step_size", step_size)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, was {value}")
    if not leverage > 0:
        raise ValueError(f"leverage must be > 0, was {leverage}")
    if stop == entry:
        raise ValueError(f"stop must differ from entry, both were {entry}")
    if not ZERO <= drawdown <= ONE:
        raise ValueError(f"drawdown must be in [0, 1], was {drawdown}")
    for name, value in (
        ("gross_notional", gross_notional),
        ("symbol_notional", symbol_notional),
        ("open_risk", open_risk),
        ("min_notional", min_notional),
    ):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, was {value}")

    x = _Inputs(
        equity, entry, abs(entry - stop), available_margin, leverage,
        gross_notional, symbol_notional, open_risk,
    )  # fmt: skip
    uncapped = max(ZERO, equity * limits.risk_fraction / x.distance)
    multiplier = limits.drawdown_multiplier(drawdown)
    first = SizingCap.RISK if multiplier == ONE else SizingCap.DRAWDOWN
    allowed = {first: uncapped * multiplier}
    allowed.update({cap: max(ZERO, capped) for cap, capped in _caps(limits, x).items()})
    bound_by = min(allowed, key=allowed.__getitem__)  # ties: the first in order

    qty = (allowed[bound_by] / step_size).to_integral_value(ROUND_FLOOR) * step_size
    # The divisions above round to 28 digits; check the products each cap promises, so that
    # rounding can never let through a quantity that breaks one.
    while qty > 0 and not _fits(limits, x, qty, allowed[first]):
        qty -= step_size
    qty = max(ZERO, qty)
    if qty == 0 and allowed[bound_by] > 0:
        bound_by = SizingCap.LOT_STEP
    elif qty > 0 and qty * entry < min_notional:
        qty, bound_by = ZERO, SizingCap.MIN_NOTIONAL
    return Sizing(qty, uncapped, bound_by, allowed, multiplier, step_size, min_notional)


class _Inputs(NamedTuple):
    equity: Decimal
    entry: Decimal
    distance: Decimal
    available_margin: Decimal
    leverage: Decimal
    gross_notional: Decimal
    symbol_notional: Decimal
    open_risk: Decimal


def _caps(limits: RiskLimits, x: _Inputs) -> dict[SizingCap, Decimal]:
    caps: dict[SizingCap, Decimal] = {}
    if limits.max_notional is not None:
        caps[SizingCap.MAX_NOTIONAL] = (limits.max_notional - x.symbol_notional) / x.entry
    if limits.max_leverage is not None:
        caps[SizingCap.MAX_LEVERAGE] = (limits.max_leverage * x.equity - x.gross_notional) / x.entry
    caps[SizingCap.AVAILABLE_MARGIN] = x.available_margin * x.leverage / x.entry
    if limits.heat_fraction is not None:
        caps[SizingCap.HEAT] = (limits.heat_fraction * x.equity - x.open_risk) / x.distance
    return caps


def _fits(limits: RiskLimits, x: _Inputs, qty: Decimal, risk_size: Decimal) -> bool:
    notional = qty * x.entry
    if qty > risk_size or notional > x.available_margin * x.leverage:
        return False
    if limits.max_notional is not None and x.symbol_notional + notional > limits.max_notional:
        return False
    if limits.max_leverage is not None and (
        x.gross_notional + notional > limits.max_leverage * x.equity
    ):
        return False
    return limits.heat_fraction is None or (
        x.open_risk + qty * x.distance <= limits.heat_fraction * x.equity
    )


_WHY = {
    SizingCap.RISK: "the risk size",
    SizingCap.DRAWDOWN: "the risk size scaled down for the drawdown",
    SizingCap.MAX_NOTIONAL: "the max notional per symbol",
    SizingCap.MAX_LEVERAGE: "the max leverage",
    SizingCap.AVAILABLE_MARGIN: "the available margin",
    SizingCap.HEAT: "the portfolio heat",
}


def _message(
    qty: Decimal,
    uncapped: Decimal,
    bound_by: SizingCap,
    allowed: Mapping[SizingCap, Decimal],
    multiplier: Decimal,
    step_size: Decimal,
    min_notional: Decimal,
) -> str:
    head = f"qty {qty} (risk size {float(uncapped):.8g}"
    if multiplier != ONE:
        head += f", × {multiplier} for the drawdown"
    head += ")"
    if bound_by is SizingCap.LOT_STEP:
        smallest = min(allowed.values())
        largest = f"{float(smallest):.8g}"
        return f"{head}: the largest size allowed, {largest}, is below one lot step {step_size}"
    if bound_by is SizingCap.MIN_NOTIONAL:
        return f"{head}: below the minimum order value {min_notional}"
    return f"{head}: set by {_WHY[bound_by]} ({float(allowed[bound_by]):.8g})"
