"""What MEXC futures offer the adapter: a value object the composition root, ``status`` and
callers read instead of asking ``if venue == ...``."""

from __future__ import annotations

from dataclasses import dataclass

VENUE = "mexc"
"""The venue's name in settings, the candle store and messages."""

INTERVALS = {
    "1m": "Min1", "5m": "Min5", "15m": "Min15", "30m": "Min30",
    "1h": "Min60", "4h": "Hour4", "8h": "Hour8", "1d": "Day1",
}  # fmt: skip
"""Our timeframe names and the contract API's kline intervals (REST ``interval``, websocket
``sub.kline``). MEXC's ``Week1`` and ``Month1`` are left out: they are not on the epoch-aligned
grid of :func:`domain.timeframes.timeframe_ms`."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """One venue's market-data and trading facts.

    Attributes
    ----------
    venue:
        The venue's name.
    timeframes:
        Kline intervals the venue serves (REST and websocket), in our names.
    max_klines_per_request:
        Most bars one ``GET /api/v1/contract/kline/{symbol}`` returns (2000).
    klines_per_page:
        Bars the adapter asks per request (the page's time window holds exactly this many).
    requests_per_2s:
        MEXC's published limit per endpoint: 20 requests per 2 seconds.
    closed_flag_in_stream:
        False: ``push.kline`` carries the bar's state at each update and never says it is
        final; a bar is known closed when a later bar's update arrives (or, over REST, once its
        close is past; see :mod:`adapters.venues.mexc.market_data`).
    position_stream:
        False: the contract websocket has no position channel ccxt can watch
        (``watchPositions`` is not supported); positions are polled over REST.
    order_entry_per_account:
        True: MEXC has disabled futures order placement through the API for long stretches
        and gates it per account, so whether this account can place orders is probed at start
        (:meth:`~adapters.venues.mexc.market_data.MexcMarketData.probe_order_entry`); market
        data works either way.
    quantity_in_contracts:
        True: volumes and order quantities are counted in contracts of ``contractSize`` base
        units each (the adapter converts volumes to base units).
    demo_environment:
        False: MEXC has no futures demo environment reachable through the API.
    """

    venue: str = VENUE
    timeframes: tuple[str, ...] = tuple(INTERVALS)
    max_klines_per_request: int = 2000
    klines_per_page: int = 2000
    requests_per_2s: int = 20
    closed_flag_in_stream: bool = False
    position_stream: bool = False
    order_entry_per_account: bool = True
    quantity_in_contracts: bool = True
    demo_environment: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.klines_per_page <= self.max_klines_per_request:
            raise ValueError(
                f"klines_per_page must be in 1..{self.max_klines_per_request}, "
                f"was {self.klines_per_page}"
            )
        unknown = [t for t in self.timeframes if t not in INTERVALS]
        if unknown:
            raise ValueError(f"timeframes must be among {', '.join(INTERVALS)}, were {unknown}")


CAPABILITIES = Capabilities()
"""MEXC futures' capabilities."""
