"""ccxt's number formatting leaves our Decimal context alone (:mod:`adapters.venues.ccxt_decimal`):
ccxt 4.5 sets the current context's rounding to half up and traps Underflow, which would make the
ledger round half up on the thread that formatted an order's quantity."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from ccxt.base.decimal_to_precision import ROUND

from adapters.clock import SimulatedClock
from adapters.venues.binance_usdm.client import UsdmExchange
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.mexc.client import MexcExchange
from adapters.venues.mexc.settings import MexcSettings


def _binance() -> UsdmExchange:
    return UsdmExchange(BinanceUsdmSettings(), clock=SimulatedClock(0), on_kline=lambda e: None)


def _mexc() -> MexcExchange:
    return MexcExchange(MexcSettings(), clock=SimulatedClock(0), on_kline=lambda e: None)


@pytest.mark.parametrize("make", [_binance, _mexc], ids=["binance-usdm", "mexc"])
def test_formatting_a_number_keeps_the_callers_rounding_half_even(make: Callable[[], Any]) -> None:
    exchange = make()
    with decimal.localcontext() as ours:
        assert exchange.decimal_to_precision("0.125", ROUND, 2) == "0.13"  # ccxt: half up

        assert ours.rounding == ROUND_HALF_EVEN and not ours.traps[decimal.Underflow]
        assert Decimal("0.125").quantize(Decimal("0.01")) == Decimal("0.12")
