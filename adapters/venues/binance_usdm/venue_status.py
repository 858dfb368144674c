"""A live feed's :class:`~domain.venues.VenueStatus`, read from its parts (Binance USDⓈ-M's
feed and MEXC's, which extends it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from adapters.venues.budget import BudgetState
from adapters.venues.kline_stream_base import KlineStreamBase
from adapters.venues.market_data_base import VenueMarketData
from domain.venues import VenueStatus


def venue_status(
    *,
    venue: str,
    capabilities: Any,
    time: int,
    source: VenueMarketData[Any, Any, Any, Any] | None,
    answered: Mapping[tuple[str, int], int],
    streams: Sequence[KlineStreamBase[Any]],
    budget: BudgetState,
    stale: Sequence[str],
) -> VenueStatus:
    """``venue`` at ``time`` (ms UTC), with its ``capabilities`` (a dataclass; tuples listed):
    connected when ``streams`` are all open (False before the first); the REST answers of the
    connections closed before (``answered``, by path and status) and of the open ``source``,
    and its clock offset (none before it opened); the ``budget``'s weight, order counts (by
    window, ``"10s"``), hold and ban; the ``stale`` symbols. Reads counters another thread
    writes: each is copied whole (one C-level copy under the GIL)."""
    facts = asdict(capabilities)
    windows = [f"{o.window_ms // 1000}s" for o in budget.order_limits]
    listed = {k: list(v) if isinstance(v, tuple) else v for k, v in facts.items()}
    responses = Counter(answered)
    if source is not None:
        responses.update(dict(source.exchange.responses))
    return VenueStatus(
        venue=venue,
        time=time,
        connected=bool(streams) and all(s.status().connected for s in streams),
        capabilities=listed,
        weight_used=budget.used,
        weight_limit=budget.limit,
        orders_used=dict(zip(windows, budget.orders_used, strict=True)),
        order_limits={w: o.limit for w, o in zip(windows, budget.order_limits, strict=True)},
        held_until=budget.held_until,
        banned_until=budget.banned_until,
        hold_reason=budget.hold_reason,
        ban_reason=budget.ban_reason,
        clock_offset_ms=None if source is None else source.offset_ms,
        requests={f"{path} {status}": n for (path, status), n in sorted(responses.items())},
        reconnects={f"{s.symbol}@kline_{s.timeframe}": s.reconnects for s in streams},
        stale=tuple(stale),
    )
