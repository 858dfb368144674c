"""When a reconciliation is due (:meth:`service_layer.reconciliation.Reconciler.due`): a
position the venue's stream reported that differs from the ledger's brings one on once it has
differed for :data:`~service_layer.reconciliation.POSITION_GRACE_MS`, once per report."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal

from adapters.clock import SimulatedClock
from domain.model import Order, Position
from domain.reconciliation import OrderReconciliation, ReconciliationEvent
from service_layer.reconciliation import POSITION_GRACE_MS, Reconciler

T = 1_746_403_200_000


class _Client:
    """A venue client as the reconciler sees it: its stream's opens and reported positions."""

    venue = "binance-usdm"

    def __init__(self) -> None:
        self.stream_opens = 1
        self.reported: dict[str, tuple[int, Decimal]] = {}

    def reported_positions(self) -> Mapping[str, tuple[int, Decimal]]:
        return dict(self.reported)

    def reconcile_orders(
        self, orders: Sequence[Order], known_fills: Collection[str], since: int
    ) -> OrderReconciliation:
        return OrderReconciliation([], [])

    def positions(self) -> list[Position]:
        return []


class _Log:
    def add(self, events: Sequence[ReconciliationEvent]) -> None: ...

    def recent(self, limit: int = 100) -> list[ReconciliationEvent]:
        return []


def _reconciled(clock: SimulatedClock, client: _Client) -> Reconciler:
    """A reconciler (every hour) whose first reconciliation has just run."""
    reconciler = Reconciler(
        interval_ms=3_600_000, clock=clock, log=_Log(), publish=lambda _: None, since=T
    )
    reconciler.last, reconciler._opens = clock.now_ms(), client.stream_opens
    return reconciler


def test_a_reported_position_unlike_ours_brings_a_reconciliation_after_the_grace_once() -> None:
    clock, client = SimulatedClock(T), _Client()
    reconciler = _reconciled(clock, client)
    ours = {"ETHUSDT": Position("ETHUSDT", Decimal("0.5"))}
    client.reported["ETHUSDT"] = (T, Decimal("0.6"))

    seen = [reconciler.due(client, ours)]
    clock.advance_to(T + POSITION_GRACE_MS - 1)
    seen.append(reconciler.due(client, ours))
    clock.advance_to(T + POSITION_GRACE_MS)
    seen.append(reconciler.due(client, ours))
    clock.advance_to(T + 10 * POSITION_GRACE_MS)
    seen.append(reconciler.due(client, ours))  # the same report: asked for once

    assert seen == [False, False, True, False]


def test_a_difference_that_goes_away_within_the_grace_brings_none() -> None:
    clock, client = SimulatedClock(T), _Client()
    reconciler = _reconciled(clock, client)
    client.reported["ETHUSDT"] = (T, Decimal("0.6"))

    first = reconciler.due(client, {"ETHUSDT": Position("ETHUSDT", Decimal("0.5"))})
    clock.advance_to(T + 500)
    ours = {"ETHUSDT": Position("ETHUSDT", Decimal("0.6"))}  # our fill arrived
    settled = reconciler.due(client, ours)
    clock.advance_to(T + 5 * POSITION_GRACE_MS)
    later = reconciler.due(client, ours)

    assert (first, settled, later) == (False, False, False)


def test_a_matching_flat_report_brings_none_nor_a_call_without_our_positions() -> None:
    clock, client = SimulatedClock(T), _Client()
    reconciler = _reconciled(clock, client)
    client.reported = {"BTCUSDT": (T, Decimal(0)), "ETHUSDT": (T, Decimal("0.1"))}

    reconciler.due(client, {"ETHUSDT": Position("ETHUSDT", Decimal("0.1"))})
    clock.advance_to(T + 2 * POSITION_GRACE_MS)

    assert reconciler.due(client, {"ETHUSDT": Position("ETHUSDT", Decimal("0.1"))}) is False
    assert reconciler.due(client) is False
