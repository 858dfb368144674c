"""ccxt's number formatting kept off our Decimal arithmetic.

ccxt 4.5's ``decimal_to_precision`` (``ccxt/base/decimal_to_precision.py``), which every
``amount_to_precision``/``price_to_precision`` goes through, sets the *current* decimal context's
rounding to ``ROUND_HALF_UP`` and traps ``Underflow``, and leaves them so: every Decimal
computation after it on that thread (or asyncio task context) would round half up, the ledger's
included, where ours round half even. Each exchange of ours runs it on a copy of the context.
"""

from __future__ import annotations

import decimal
from typing import Any

from ccxt.base.decimal_to_precision import decimal_to_precision


def isolated_decimal_to_precision(*args: Any, **kwargs: Any) -> str:
    """ccxt's ``decimal_to_precision(*args, **kwargs)`` on a copy of the current decimal
    context (the caller's context is left as it was)."""
    with decimal.localcontext():
        return decimal_to_precision(*args, **kwargs)


def isolate(exchange: Any) -> None:
    """Make ``exchange`` (a ccxt exchange) format numbers without touching the caller's
    decimal context."""
    exchange.decimal_to_precision = isolated_decimal_to_precision
