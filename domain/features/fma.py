"""Fused multiply-add, ``a × b + c`` rounded once, as TA-Lib's EMA, MACD and ATR compute it.

TA-Lib (0.6 and later) writes these recursions with C's ``fma()``, whose single rounding differs
from Python's ``a * b + c`` (two roundings) in the last bit now and then; over a long recursion
those bits decide whether a backtest and a live stepper agree exactly. ``math.fma`` exists from
Python 3.13; before that the exact value is formed from the operands' integer ratios (their
denominators are powers of two) and rounded once by Python's correctly rounded ``int / int``.

>>> fma(0.1, 10.0, -1.0)  # 0.1 is slightly above 1/10; two roundings would give 0.0
5.551115123125783e-17
"""

from __future__ import annotations

import math
from collections.abc import Callable


def _exact_fma(a: float, b: float, c: float) -> float:
    an, ad = a.as_integer_ratio()
    bn, bd = b.as_integer_ratio()
    cn, cd = c.as_integer_ratio()
    product_den = ad * bd
    if product_den >= cd:
        return (an * bn + cn * (product_den // cd)) / product_den
    return (an * bn * (cd // product_den) + cn) / cd


fma: Callable[[float, float, float], float] = getattr(math, "fma", _exact_fma)
"""``fma(a, b, c)``: ``a × b + c`` with one IEEE-754 rounding (round half to even).

Inputs must be finite (``ValueError`` or ``OverflowError`` otherwise, before Python 3.13).
"""
