"""Reconciliation of a live run's ledger with its venue: when it runs, and its repairs applied.

It runs before the first bar is decided, after every reopening of the venue's user-data
stream, every ``interval_ms`` of the run's wall clock, and at once when a position the venue's
stream reported (Binance's ``ACCOUNT_UPDATE``) has differed from the ledger's for
:data:`POSITION_GRACE_MS` (a change made at the venue: a trade by hand, a liquidation). The
venue's client compares orders and fills and queues the repairs as execution events
(:class:`~domain.reconciliation.Reconciling`); then positions are compared
(:func:`~domain.reconciliation.position_repairs`), but only when the venue's positions read
the same before and after the orders were reconciled (a fill meanwhile would make the
comparison wrong: it waits for the next run). Each difference is stored,
published on the bus and counted by kind. Last, with a :class:`FundingWindow`, the funding the
venue settled on the account (a :class:`PaysFunding` client's) since the run's first fill that
the run has not stored is booked, once per (symbol, funding time), as ``funding`` execution events
(payments, not differences: they are not counted as drift).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from domain.errors import DataError, VenueError
from domain.funding import FundingPayment
from domain.ledger import LedgerChanges
from domain.model import Position
from domain.orders import ExecutionEvent
from domain.orders import ExecutionEventKind as K
from domain.ports import Clock
from domain.reconciliation import (
    ReconciliationEvent,
    ReconciliationLog,
    Reconciling,
    position_repairs,
)
from service_layer.engine import Engine

logger = logging.getLogger(__name__)

TRADE_LOOKBACK_MS = 60_000
"""How far before a reconciliation's start the next one reads the venue's trades again (our
clock and the venue's differ by up to the receive window; a trade seen twice counts once)."""


@runtime_checkable
class PaysFunding(Protocol):
    """A live venue's client that reports the funding its venue settled on the account."""

    def funding_payments(
        self, since: int, booked: Collection[tuple[str, int]]
    ) -> list[FundingPayment]:
        """The account's payments in the traded symbols at funding times from ``since`` (ms
        UTC) on, but those in ``booked`` (``(symbol, time)`` pairs), oldest first."""
        ...


POSITION_GRACE_MS = 1_000
"""How long (ms of the run's clock) a position the venue's stream reported must differ from the
ledger's before a reconciliation is asked for at once (a fill and its position update race on
the stream: the fill may come a moment after the position that includes it)."""


@runtime_checkable
class ReportsPositions(Protocol):
    """A live venue's client whose user-data stream reports the account's positions."""

    def reported_positions(self) -> Mapping[str, tuple[int, Decimal]]:
        """The latest net position per symbol the stream reported: (event time ms UTC, qty:
        base asset, long > 0)."""
        ...


@dataclass(frozen=True, slots=True)
class FundingWindow:
    """Which venue payments a run books: those from ``since`` (ms UTC: the run's first fill) on;
    ``booked(t)`` gives the ``(symbol, time)`` pairs of the run's stored ones from ``t`` on."""

    since: int
    booked: Callable[[int], Collection[tuple[str, int]]]


class Reconciler:
    """Reconciles one live run's ledger with its venue.

    Parameters
    ----------
    interval_ms:
        Time between reconciliations (ms).
    clock:
        The run's wall clock (ms UTC): when each one is due and happens.
    log:
        Stores the events.
    publish:
        Hands the events to the bus.
    since:
        Start (ms UTC) of the first reconciliation's window of the venue's trades (the run's
        newest stored fill: a trade before it that the ledger lacks is not looked for).
    funding:
        The venue's funding payments to book (None: none are read).

    Attributes
    ----------
    last:
        When the last reconciliation completed (ms UTC), None before the first.
    """

    def __init__(
        self,
        *,
        interval_ms: int,
        clock: Clock,
        log: ReconciliationLog,
        publish: Callable[[list[object]], None],
        since: int,
        funding: FundingWindow | None = None,
    ) -> None:
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be > 0, was {interval_ms}")
        self.interval_ms = interval_ms
        self.clock = clock
        self.log = log
        self.publish = publish
        self.last: int | None = None
        self._since = since
        self.funding = funding
        self._opens: int | None = None
        self._differing: dict[tuple[str, int, Decimal], int] = {}  # report: first seen (ms)
        self._acted: set[tuple[str, int, Decimal]] = set()
        self._drift: dict[str, int] = {}  # replaced, never changed: read on other threads

    @property
    def drift(self) -> Mapping[str, int]:
        """Differences found by this process, by kind (read-only view)."""
        return MappingProxyType(self._drift)

    def due(self, client: Reconciling, positions: Mapping[str, Position] | None = None) -> bool:
        """True before the first reconciliation, after the client's stream reopened, once
        ``interval_ms`` has passed since the last, and, with the ledger's ``positions`` (by
        symbol) and a :class:`ReportsPositions` client, once a position its stream reported
        has differed from the ledger's for :data:`POSITION_GRACE_MS` (once per report)."""
        if self.last is None or client.stream_opens != self._opens:
            return True
        now = self.clock.now_ms()
        if now - self.last >= self.interval_ms:
            return True
        return (
            positions is not None
            and isinstance(client, ReportsPositions)
            and self._position_differs(client.reported_positions(), positions, now)
        )

    def _position_differs(
        self,
        reported: Mapping[str, tuple[int, Decimal]],
        ours: Mapping[str, Position],
        now: int,
    ) -> bool:
        """Whether a reported position has differed from ``ours`` for the grace period (the
        report then counts as acted on)."""
        differing: dict[tuple[str, int, Decimal], int] = {}
        due = False
        current = {(symbol, time, qty) for symbol, (time, qty) in reported.items()}
        self._acted &= current
        for symbol, (time, qty) in reported.items():
            held = ours.get(symbol)
            report = (symbol, time, qty)
            if (held.qty if held is not None else Decimal(0)) == qty or report in self._acted:
                continue
            since = differing[report] = self._differing.get(report, now)
            if now - since >= POSITION_GRACE_MS:
                logger.info(
                    "%s position reported by the venue's stream differs from ours: %s",
                    symbol, qty,
                )  # fmt: skip
                self._acted.add(report)
                due = True
        self._differing = differing
        return due

    def reconcile(
        self, engine: Engine, fills_since: Callable[[int], Collection[str]]
    ) -> tuple[LedgerChanges, list[ReconciliationEvent]]:
        """Reconcile ``engine``'s ledger with its execution client (a :class:`Reconciling`
        one); ``fills_since(t)`` gives the ids of the stored fills at or after ``t`` (ms UTC).
        Returns the ledger's changes (to store and publish) and the differences found, stored
        and counted here; the caller publishes them (:meth:`announce`) once it has stored the
        changes, so that a client told of a repair reads the repaired state.

        Raises
        ------
        VenueError
            The venue cannot be asked (nothing is counted; the next bar tries again).
        """
        client = engine.execution
        assert isinstance(client, Reconciling), "a live venue's client"
        start = self.clock.now_ms()
        opens = client.stream_opens
        before = _qtys(client.positions())
        found = client.reconcile_orders(
            engine.ledger.open_orders(), fills_since(self._since), self._since
        )
        for order in found.adopted:
            engine.ledger.add(order)
        changes = engine.flush()
        events = list(found.events)
        after = client.positions()
        _add(changes, engine.flush())  # what the stream brought meanwhile
        if _qtys(after) == before:
            ledger = engine.ledger
            for repair in position_repairs(
                client.venue, ledger.account.positions, after, engine.marks, start
            ):
                ledger.add(repair.order)
                ledger.apply(ExecutionEvent.accepted(repair.order.id, start, None))
                ledger.apply(ExecutionEvent(K.FILL, repair.order.id, start, fill=repair.fill))
                events.append(repair.event)
            _add(changes, engine.flush())
        else:
            logger.info("%s positions moved while reconciling: compared next time", client.venue)
        if self.funding is not None and isinstance(client, PaysFunding):
            _add(changes, _book_funding(engine, client, self.funding))
        if events:
            self.log.add(events)
            self._drift = dict(Counter(self._drift) + Counter(str(e.kind) for e in events))
        self.last, self._opens = self.clock.now_ms(), opens
        self._since = start - TRADE_LOOKBACK_MS
        return changes, events

    def announce(self, events: list[ReconciliationEvent]) -> None:
        """Publish the differences :meth:`reconcile` found (after their repairs are stored)."""
        if events:
            self.publish(list(events))


def _book_funding(engine: Engine, client: PaysFunding, window: FundingWindow) -> LedgerChanges:
    """Apply the venue's payments in ``window`` that the run has not stored (none when the
    venue cannot be asked: the next reconciliation asks again)."""
    try:
        payments = client.funding_payments(window.since, set(window.booked(window.since)))
    except (VenueError, DataError) as exc:
        logger.warning("funding payments not read: %s", exc)
        payments = []
    for payment in payments:
        engine.ledger.apply(ExecutionEvent(K.FUNDING, "", payment.time_ms, funding=payment))
        logger.info(
            "funding %s at %d: %s paid (qty %s, mark %s, rate %s)", payment.symbol,
            payment.time_ms, payment.amount, payment.qty, payment.mark, payment.rate,
        )  # fmt: skip
    return engine.flush()


def _qtys(positions: list[Position]) -> dict[str, Decimal]:
    return {p.symbol: p.qty for p in positions if p.qty != 0}


def _add(into: LedgerChanges, changes: LedgerChanges) -> None:
    into.orders.extend(changes.orders)
    into.fills.extend(changes.fills)
    into.fundings.extend(changes.fundings)
    into.trades.extend(changes.trades)
    into.positions.extend(changes.positions)
    into.refused.extend(changes.refused)
