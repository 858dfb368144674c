"""What Binance USDⓈ-M offers the adapter: a value object the composition root, ``status`` and
the other venue adapters' callers read instead of asking ``if venue == ...``."""

from __future__ import annotations

from dataclasses import dataclass

VENUE = "binance-usdm"
"""The venue's name in settings, the candle store and messages."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """One venue's market-data facts.

    Attributes
    ----------
    venue:
        The venue's name.
    timeframes:
        Kline intervals the venue serves (REST and stream) on the same epoch-aligned grid as
        :func:`domain.timeframes.timeframe_ms` (the venue's ``3d``, ``1w`` and ``1M`` are not:
        its weeks start on Monday, the epoch's on Thursday).
    max_klines_per_request:
        Most bars one ``GET /fapi/v1/klines`` returns (1500).
    klines_per_page:
        Bars the adapter asks per page: 1000, the cheapest in request weight per bar (weight 5
        for 500-1000 bars, 10 above: 200 against 150 bars per unit of weight).
    closed_flag_in_stream:
        The kline stream marks a bar's last update as closed (``k.x``), so forming updates can
        be told apart without waiting for the next bar.
    demo_environment:
        The venue has a demo-trading environment with its own URLs.
    """

    venue: str = VENUE
    timeframes: tuple[str, ...] = (
        "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
    )  # fmt: skip
    max_klines_per_request: int = 1500
    klines_per_page: int = 1000
    closed_flag_in_stream: bool = True
    demo_environment: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.klines_per_page <= self.max_klines_per_request:
            raise ValueError(
                f"klines_per_page must be in 1..{self.max_klines_per_request}, "
                f"was {self.klines_per_page}"
            )


CAPABILITIES = Capabilities()
"""Binance USDⓈ-M's capabilities."""
