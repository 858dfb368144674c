"""Binance USDⓈ-M's trading rules for a live or paper-on-live run, read from the venue at start.

``GET /fapi/v1/exchangeInfo`` gives each symbol's tick size, lot step and minimum notional;
``GET /fapi/v1/leverageBracket`` (signed: the account's own brackets) its maximum leverage and
maintenance-margin brackets. Both are Binance's JSON, parsed by the same readers as the
catalogue shipped with the repo (:mod:`adapters.marketdata.exchange_info`,
:mod:`adapters.marketdata.leverage_brackets`), which stays the rules of replays and backtests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

from adapters.marketdata.exchange_info import parse_exchange_info
from adapters.marketdata.leverage_brackets import parse_leverage_brackets
from adapters.venues.binance_usdm.account_exchange import AccountExchange
from adapters.venues.binance_usdm.capabilities import VENUE
from adapters.venues.binance_usdm.client import Retrying, UsdmExchange
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.binance_usdm.trading_api import TradingApi
from domain.errors import UnknownSymbol
from domain.margin import LeverageBrackets
from domain.model import Instrument, MarketType
from domain.ports import Clock

_BRACKETS = f"{VENUE} GET /fapi/v1/leverageBracket"


def venue_instruments(
    settings: BinanceUsdmSettings,
    symbols: Sequence[str],
    *,
    clock: Clock,
    signed: bool,
) -> dict[str, Instrument]:
    """The perpetual rules of ``symbols`` as the venue lists them now, keyed by symbol; with
    ``signed`` (a live run: the settings hold the API key and secret) each carries the
    account's leverage brackets, else none (the caller keeps the shipped ones). Runs on a loop
    of its own, so the caller may be on one.

    Returns
    -------
    dict[str, Instrument]
        Tick size (quote currency), lot step (base asset), minimum notional (quote currency)
        and quantity caps from ``exchangeInfo``; ``brackets`` from ``leverageBracket``.

    Raises
    ------
    UnknownSymbol
        (``field="symbols"``) Naming every symbol the venue does not list as a trading
        perpetual.
    DataError
        An answer that is not Binance's layout (the symbol and filter named).
    VenueError
        The venue cannot be reached, or refuses the signed request.
    """

    async def fetch() -> dict[str, Instrument]:
        return await _fetch(settings, list(symbols), clock, signed)

    with ThreadPoolExecutor(1, thread_name_prefix="binance-usdm-rules") as pool:
        return pool.submit(asyncio.run, fetch()).result()


async def _fetch(
    settings: BinanceUsdmSettings, symbols: list[str], clock: Clock, signed: bool
) -> dict[str, Instrument]:
    call = Retrying(settings)
    if not signed:
        public = UsdmExchange(settings, clock=clock, on_kline=_ignore)
        try:
            return await _listed(public, call, symbols)
        finally:
            await public.close()
    account = AccountExchange(settings, clock=clock, on_user_event=_ignore, on_user_stream=_none)
    try:
        rules = await _listed(account, call, symbols)
        await TradingApi(account, call, clock).sync_time()  # signed: stamped in the venue's time
        answer = await call(account.fapiPrivateGetLeverageBracket)
        return _with_brackets(rules, parse_leverage_brackets(_decimals(answer), _BRACKETS))
    finally:
        await account.close()


async def _listed(
    exchange: UsdmExchange, call: Retrying, symbols: list[str]
) -> dict[str, Instrument]:
    """``symbols``' perpetual rules in the venue's ``exchangeInfo``; every missing one named."""
    info = await call(exchange.fapiPublicGetExchangeInfo)
    catalog = parse_exchange_info(info, f"{VENUE} exchangeInfo")
    found = {i.symbol: i for i in catalog if i.market is MarketType.PERPETUAL}
    missing = [s for s in symbols if s not in found]
    if missing:
        raise UnknownSymbol(
            f"{VENUE} lists no trading perpetual {', '.join(missing)} (GET /fapi/v1/exchangeInfo)"
            ": remove it from the symbols",
            field="symbols",
        )
    return {s: found[s] for s in symbols}


def _with_brackets(
    rules: dict[str, Instrument], brackets: dict[str, LeverageBrackets]
) -> dict[str, Instrument]:
    missing = [s for s in rules if s not in brackets]
    if missing:
        raise UnknownSymbol(
            f"{VENUE} gives this account no leverage brackets for {', '.join(missing)} "
            f"({_BRACKETS})",
            field="symbols",
        )
    return {s: replace(rule, brackets=brackets[s]) for s, rule in rules.items()}


def _decimals(value: Any) -> Any:
    """``value`` with every float as the Decimal of its shortest text (ccxt decodes Binance's
    JSON numbers, e.g. ``"maintMarginRatio": 0.004``, as floats; their text is what was sent)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    return value


def _ignore(_: dict[str, Any]) -> None:
    """No stream is opened here."""


def _none() -> None:
    """No stream is opened here."""
