"""Futures wiring: leverage brackets into the instruments, funding and mark-price files found
beside the bars, and the simulated venue's :class:`~domain.futures.FuturesBook`."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from adapters.marketdata.funding_csv import read_funding, read_mark_prices
from adapters.marketdata.leverage_brackets import read_leverage_brackets
from domain.futures import FuturesBook, FuturesTerms, MarketFeeds
from domain.model import Instrument, MarketType
from lootcapital.settings import Settings

logger = logging.getLogger(__name__)

_KLINE_NAME = re.compile(
    r"^(?P<stem>.*_(?P<symbol>[A-Z0-9]+))_[0-9]+[mhdwM](?P<ext>\.csv(?:\.gz)?)$"
)
"""A normalized kline file name: ``binance_usdm_BTCUSDT_5m.csv.gz``."""


def with_brackets(settings: Settings, rules: Mapping[str, Instrument]) -> dict[str, Instrument]:
    """``rules`` with each perpetual's leverage brackets from ``settings.leverage_brackets_file``
    (unchanged when unset, or for a symbol the file does not list: that symbol is traded with no
    liquidation, and a warning says so).

    Raises
    ------
    DataError
        When the file cannot be read or parsed (file, symbol and bracket named).
    """
    path = settings.leverage_brackets_file
    if path is None:
        return dict(rules)
    brackets = read_leverage_brackets(path)
    out = {}
    for symbol, rule in rules.items():
        found = brackets.get(symbol) if rule.market is MarketType.PERPETUAL else None
        if found is None and rule.market is MarketType.PERPETUAL:
            logger.warning("%s: no leverage brackets in %s; no liquidation simulated", symbol, path)
        out[symbol] = rule if found is None else replace(rule, brackets=found)
    return out


def beside(path: Path, kind: str) -> Path | None:
    """The ``kind`` file (``funding`` or ``mark_1h``) next to the kline file ``path``, named as
    the shared data names it (``binance_usdm_BTCUSDT_5m.csv.gz`` →
    ``binance_usdm_BTCUSDT_funding.csv.gz``); None when the name does not follow that pattern
    or the file is not there."""
    match = _KLINE_NAME.match(path.name)
    if match is None:
        return None
    found = path.with_name(f"{match['stem']}_{kind}{match['ext']}")
    return found if found.exists() else None


def sample_files(settings: Settings, symbols: Sequence[str], timeframe: str) -> dict[str, Path]:
    """The shipped sample's kline file of each symbol that has one (the candle store's bars of
    the default exchange came from them): where their funding and mark files sit."""
    out = {}
    for symbol in symbols:
        path = settings.sample_dir / f"binance_usdm_{symbol}_{timeframe}.csv.gz"
        if path.exists():
            out[symbol] = path
    return out


def futures_book(
    settings: Settings,
    rules: Mapping[str, Instrument],
    bar_ms: int,
    *,
    funding: Mapping[str, Path | None],
    leverage: int | None = None,
) -> FuturesBook | None:
    """The futures margining of an account trading ``rules``, or None when not every symbol is
    a perpetual (spot and stocks keep the plain margin check).

    ``funding`` names each symbol's funding-rate file (None or absent: no funding); its mark
    prices are read from the ``mark_1h`` file beside it when there is one. ``leverage``
    overrides ``settings.leverage`` for every symbol.

    Raises
    ------
    ConfigError, ValueError
        A leverage above the cap (the message names it).
    DataError
        A funding or mark file that cannot be read (file and row named).
    """
    if not rules or any(r.market is not MarketType.PERPETUAL for r in rules.values()):
        return None
    terms = FuturesTerms(
        mode=settings.margin_mode,
        leverage=leverage or settings.leverage,
        max_leverage=int(settings.max_leverage),
        liquidation_fee=settings.liquidation_fee,
    )
    markets = {}
    for symbol, rule in rules.items():
        path = funding.get(symbol)
        rates = read_funding(path) if path is not None else None
        mark_path = None if path is None else _mark_file(path)
        marks = read_mark_prices(mark_path) if mark_path is not None else None
        markets[symbol] = MarketFeeds(rule.brackets, rates, marks)
    book = FuturesBook(terms, markets, bar_ms)
    for symbol in rules:
        book.set_leverage(symbol, terms.leverage)
    return book


def _mark_file(funding: Path) -> Path | None:
    name = funding.name.replace("_funding", "_mark_1h", 1)
    found = funding.with_name(name)
    return found if name != funding.name and found.exists() else None
