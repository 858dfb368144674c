"""Symbol spellings: the venue's (``BTCUSDT``) and ccxt's unified form (``BTC/USDT:USDT``).

The kernel, storage and files use the venue's spelling. Clients may also write ccxt's unified
symbol: ``BASE/QUOTE`` for spot and ``BASE/QUOTE:SETTLE`` for a linear perpetual
(https://docs.ccxt.com/#/README?id=contract-naming-conventions).
"""

from __future__ import annotations

import re

from domain.model import Instrument, MarketType

_UNIFIED = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+)(?::([A-Z0-9]+))?$")


def venue_symbol(text: str) -> str:
    """``text`` in the venue's spelling: ``BTC/USDT:USDT`` and ``BTC/USDT`` become ``BTCUSDT``;
    any other text is returned upper-cased and stripped.

    Raises
    ------
    ValueError
        When ``text`` has a ``/`` but is not a unified symbol, or settles in another asset than
        its quote (an inverse contract, which this server does not trade).
    """
    cleaned = text.strip().upper()
    if "/" not in cleaned:
        return cleaned
    match = _UNIFIED.match(cleaned)
    if match is None:
        raise ValueError(f"not a symbol: {text!r} (write BTCUSDT or BTC/USDT:USDT)")
    base, quote, settle = match.groups()
    if settle is not None and settle != quote:
        raise ValueError(f"{text!r} settles in {settle}, not its quote asset {quote}")
    return base + quote


def unified_symbol(instrument: Instrument) -> str:
    """ccxt's unified symbol of ``instrument`` (``BTC/USDT:USDT`` for a USDT perpetual,
    ``BTC/USDT`` on spot; the plain symbol for stocks or when the quote asset is not its
    suffix)."""
    symbol, quote = instrument.symbol, instrument.quote_asset
    if instrument.market is MarketType.STOCK or not symbol.endswith(quote) or symbol == quote:
        return symbol
    base = symbol[: -len(quote)]
    if instrument.market is MarketType.PERPETUAL:
        return f"{base}/{quote}:{quote}"
    return f"{base}/{quote}"
