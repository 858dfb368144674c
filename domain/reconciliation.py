"""Reconciliation of the ledger with a live venue: what differs, and the repairs that are pure.

A live run compares, at start, after every reconnection of the venue's user-data stream and
at a fixed interval, the venue's open orders, recent fills and positions with its own. Each
difference is a :class:`ReconciliationEvent` (stored, published, counted). Differences of
orders and fills are repaired by the venue adapter through the ordinary execution events (a
missed fill applied once, by trade id; an external order adopted; a vanished order settled from
the venue's answer); a position that still differs afterwards is repaired here
(:func:`position_repairs`): adopted, closed, or resized by an ``external`` order and its fill.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from domain.model import ZERO, Fill, Liquidity, Order, OrderType, Position, Side

EXTERNAL_TAG = "external"
"""The tag of an order the run did not place (by hand at the venue) that it adopted."""


class DriftKind(StrEnum):
    """What differed between the ledger and the venue.

    ``missed_fill``: a fill the venue made that the ledger had not applied; ``unknown_order``:
    an order at the venue the ledger did not hold (adopted as external); ``vanished_order``:
    an order the ledger held open that the venue has ended (settled from its answer);
    ``unknown_position`` / ``vanished_position`` / ``position_mismatch``: a position only the
    venue holds, only the ledger holds (closed by the venue: a liquidation when it says so),
    or that both hold at different quantities.
    """

    MISSED_FILL = "missed_fill"
    UNKNOWN_ORDER = "unknown_order"
    VANISHED_ORDER = "vanished_order"
    UNKNOWN_POSITION = "unknown_position"
    VANISHED_POSITION = "vanished_position"
    POSITION_MISMATCH = "position_mismatch"


@dataclass(frozen=True, slots=True)
class ReconciliationEvent:
    """One difference found at ``time`` (ms UTC) between the ledger and ``venue`` in
    ``symbol``, with ``details`` for the user (what each side said, what was repaired).

    Raises
    ------
    ValueError
        For an empty ``venue`` or ``symbol``.
    """

    kind: DriftKind
    venue: str
    symbol: str
    details: str
    time: int

    def __post_init__(self) -> None:
        if not self.venue or not self.symbol:
            raise ValueError(f"venue and symbol must be set, were {self.venue!r}, {self.symbol!r}")


@dataclass(frozen=True, slots=True)
class OrderReconciliation:
    """What comparing the orders and recent fills found: the ``events``, and the ``adopted``
    orders (``pending_new``, tagged :data:`EXTERNAL_TAG`) the ledger must record before the
    client's next execution events, which acknowledge and fill them."""

    events: list[ReconciliationEvent]
    adopted: list[Order]


@runtime_checkable
class Reconciling(Protocol):
    """An execution client whose venue can be reconciled with (a live venue's)."""

    @property
    def venue(self) -> str:
        """The venue's name (a metrics label)."""
        ...

    @property
    def stream_opens(self) -> int:
        """Times the user-data stream opened (each reopening calls for a reconciliation)."""
        ...

    def reconcile_orders(
        self, orders: Sequence[Order], known_fills: Collection[str], since: int
    ) -> OrderReconciliation:
        """Compare ``orders`` (the ledger's non-final orders) and the fills the ledger holds
        since ``since`` (ms UTC; ``known_fills`` their ids) with the venue's; the repairs
        come as execution events from ``drain_events``."""
        ...

    def positions(self) -> list[Position]:
        """Every non-flat position at the venue."""
        ...


class ReconciliationLog(Protocol):
    """Where a run's reconciliation events are kept."""

    def add(self, events: Sequence[ReconciliationEvent]) -> None:
        """Store ``events`` (committed on return)."""
        ...

    def recent(self, limit: int = 100) -> list[ReconciliationEvent]:
        """The latest ``limit`` events, newest first."""
        ...


@dataclass(frozen=True, slots=True)
class PositionRepair:
    """A position difference and its repair: an ``order`` (``pending_new``, external) to add
    to the ledger and its ``fill`` (acknowledge, then fill)."""

    event: ReconciliationEvent
    order: Order
    fill: Fill


def position_repairs(
    venue: str,
    ours: Mapping[str, Position],
    theirs: Sequence[Position],
    marks: Mapping[str, Decimal],
    time: int,
) -> list[PositionRepair]:
    """The repairs that make ``ours`` (the ledger's positions by symbol) equal ``theirs`` (the
    venue's, non-flat) at ``time`` (ms UTC).

    A position only the venue holds is adopted at its entry price; one only we hold is
    closed, and a quantity that differs is brought to the venue's, at ``marks[symbol]`` (quote
    currency; the venue's entry price, else ours, when there is no mark). Each repair is an
    external market order with one fill, no fee (the venue charged it, unseen).

    >>> from domain.model import Position
    >>> [r.event.kind for r in position_repairs(
    ...     "v", {}, [Position("BTCUSDT", Decimal("0.5"), Decimal(100))], {}, 7)]
    [<DriftKind.UNKNOWN_POSITION: 'unknown_position'>]
    """
    venue_by_symbol = {p.symbol: p for p in theirs if p.qty != 0}
    repairs: list[PositionRepair] = []
    for symbol in sorted(set(venue_by_symbol) | {s for s, p in ours.items() if p.qty != 0}):
        held = ours[symbol].qty if symbol in ours else ZERO
        at_venue = venue_by_symbol.get(symbol)
        wanted = ZERO if at_venue is None else at_venue.qty
        if held == wanted:
            continue
        if held == 0:
            assert at_venue is not None
            kind, price = DriftKind.UNKNOWN_POSITION, at_venue.entry_price
            details = f"the venue holds {wanted} at {price}, the ledger nothing: adopted"
        else:
            mark = marks.get(symbol)
            fallback = at_venue.entry_price if at_venue is not None else ours[symbol].entry_price
            price = mark if mark is not None else fallback
            if wanted == 0:
                kind = DriftKind.VANISHED_POSITION
                details = f"the ledger holds {held}, the venue nothing: closed at {price}"
            else:
                kind = DriftKind.POSITION_MISMATCH
                details = f"the ledger holds {held}, the venue {wanted}: resized at {price}"
        event = ReconciliationEvent(kind, venue, symbol, details, time)
        diff = wanted - held
        side = Side.BUY if diff > 0 else Side.SELL
        order_id = f"ext-{symbol}-{time}"[:36]
        order = Order(
            order_id, symbol, side, OrderType.MARKET, abs(diff), time, tag=EXTERNAL_TAG,
            reduce_only=kind is DriftKind.VANISHED_POSITION,
        )  # fmt: skip
        fill = Fill(
            f"{order_id}-fill", order_id, symbol, side, abs(diff), price, ZERO, Liquidity.TAKER,
            time,
        )  # fmt: skip
        repairs.append(PositionRepair(event, order, fill))
    return repairs
