"""The pure side of reconciliation: position differences and the orders that repair them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.ledger import Ledger
from domain.model import Position, Side
from domain.orders import ExecutionEvent
from domain.reconciliation import EXTERNAL_TAG, DriftKind, ReconciliationEvent, position_repairs

T = 1_746_403_200_000
D = Decimal


def _repaired(ledger: Ledger, venue: list[Position], marks: dict[str, Decimal]) -> list:
    repairs = position_repairs("binance-usdm", ledger.account.positions, venue, marks, T)
    for r in repairs:
        ledger.add(r.order)
        ledger.apply(ExecutionEvent.accepted(r.order.id, T, None))
        ledger.apply(ExecutionEvent.filled(r.order.id, T, None, r.fill))
    return repairs


def test_a_position_only_the_venue_holds_is_adopted_at_its_entry_price() -> None:
    ledger = Ledger(D(10_000))

    (repair,) = _repaired(ledger, [Position("ETHUSDT", D("-0.5"), D(1800))], {"ETHUSDT": D(1850)})

    assert repair.event.kind is DriftKind.UNKNOWN_POSITION
    assert (repair.order.side, repair.order.tag) == (Side.SELL, EXTERNAL_TAG)
    assert ledger.position("ETHUSDT") == Position("ETHUSDT", D("-0.5"), D(1800), T)


def test_a_position_only_the_ledger_holds_is_closed_at_the_mark() -> None:
    ledger = Ledger(D(10_000), [Position("BTCUSDT", D("0.2"), D(90_000), T - 1)])

    (repair,) = _repaired(ledger, [], {"BTCUSDT": D(91_000)})

    assert repair.event.kind is DriftKind.VANISHED_POSITION
    assert repair.order.reduce_only and repair.fill.price == D(91_000)
    assert ledger.position("BTCUSDT").qty == 0
    assert ledger.cash == D(10_000) + D("0.2") * D(1_000)


def test_a_quantity_that_differs_is_brought_to_the_venues() -> None:
    ledger = Ledger(D(10_000), [Position("BTCUSDT", D("0.2"), D(90_000), T - 1)])

    (repair,) = _repaired(ledger, [Position("BTCUSDT", D("0.5"), D(90_500))], {})

    assert repair.event.kind is DriftKind.POSITION_MISMATCH
    assert (repair.order.side, repair.order.qty, repair.fill.price) == (
        Side.BUY,
        D("0.3"),
        D(90_500),
    )
    assert ledger.position("BTCUSDT").qty == D("0.5")


def test_equal_positions_need_no_repair() -> None:
    held = [Position("BTCUSDT", D("0.2"), D(90_000), T - 1)]
    ledger = Ledger(D(10_000), held)

    assert _repaired(ledger, [Position("BTCUSDT", D("0.2"), D(89_000))], {}) == []


def test_an_event_names_its_venue_and_symbol() -> None:
    with pytest.raises(ValueError, match="venue and symbol must be set"):
        ReconciliationEvent(DriftKind.MISSED_FILL, "binance-usdm", "", "trade 1", T)
