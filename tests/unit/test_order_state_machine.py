"""Stateful test of the order state machine and the kernel's ledger under a hostile venue.

A :class:`~hypothesis.stateful.RuleBasedStateMachine` places a handful of BTC orders (both sides,
market and limit, quantities on a 0.001 step, prices of 60,000–120,000 on a 0.1 tick) and writes
a venue script for each: an acknowledgement, fills of random sizes that sum to at most the order
qty (sometimes past it), cancel requests, cancels, expiries, rejections, refused cancels and
modifications. The rules then deliver those events in order, out of order, duplicated (the same
fill id twice), late (an acknowledgement after the fill) and in bursts. After every step:

* an order that reached a final state (filled, canceled, rejected, expired) never changes again;
* ``filled_qty <= qty`` and ``avg_fill_price`` is the VWAP of the fills the ledger applied;
* each symbol's position is the signed sum of the fills the ledger applied, no fill id is
  applied twice, and :meth:`Ledger.drain` reports exactly the applied fills and the refusals.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from decimal import Decimal

import hypothesis
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from domain.account import MONEY_QUANTUM
from domain.ledger import Ledger
from domain.model import ZERO, Fill, Liquidity, Order, OrderStatus, OrderType, Side
from domain.orders import (
    TRANSITIONS,
    VENUE_EVENTS,
    ExecutionEvent,
    ExecutionEventKind,
    IllegalTransition,
    apply_event,
    client_order_id,
)

S = OrderStatus
K = ExecutionEventKind

SYMBOLS = ("BTCUSDT", "BTCUSDC")
STEP = Decimal("0.001")
TICK = Decimal("0.1")
FEE_RATE = Decimal("0.0005")
CASH = Decimal(100_000)
RUN_ID = "run-7f3a"
STRATEGY = "sma_cross"
BAR_TIME = 1_718_000_000_000
MAX_ORDERS = 6
HALF_PRICE_QUANTUM = Decimal("0.5e-12")

quantities = st.integers(1, 2_000).map(lambda steps: steps * STEP)
prices = st.integers(600_000, 1_200_000).map(lambda ticks: ticks * TICK)


@dataclass
class Script:
    """The events the venue will send about one order, and which of them were delivered."""

    events: list[ExecutionEvent]
    delivered: set[int] = field(default_factory=set)

    def undelivered(self) -> list[int]:
        return [i for i in range(len(self.events)) if i not in self.delivered]


@st.composite
def venue_scripts(draw: st.DrawFn, order: Order) -> list[ExecutionEvent]:
    """What a venue may say about ``order``, in the order it happened at the venue."""
    venue_id = "v" + order.id[2:14]
    clock = itertools.count(order.created_time + 1)
    reference = order.price if order.price is not None else draw(prices)
    ahead = order.side.sign  # a buyer's fills are at or below the reference, a seller's above

    def fill_event(n: int, qty: Decimal) -> ExecutionEvent:
        price = reference - ahead * draw(st.integers(0, 500)) * TICK
        fee = (qty * price * FEE_RATE).quantize(MONEY_QUANTUM)
        time = next(clock)
        fill = Fill(
            f"{order.id}-t{n}", order.id, order.symbol, order.side, qty, price, fee,
            draw(st.sampled_from(Liquidity)), time,
        )  # fmt: skip
        return ExecutionEvent(K.FILL, order.id, time, venue_order_id=venue_id, fill=fill)

    events = [ExecutionEvent(K.ACCEPTED, order.id, next(clock), venue_order_id=venue_id)]
    remaining = int(order.qty / STEP)
    for n in range(draw(st.integers(0, 4))):
        if remaining == 0:
            break
        steps = draw(st.integers(1, remaining))
        remaining -= steps
        events.append(fill_event(n, steps * STEP))
    if draw(st.booleans()):  # a fill the order has no room for (unless a modify grows it)
        events.append(fill_event(9, (remaining + draw(st.integers(1, 100))) * STEP))

    kinds = [k for k in K if k is not K.FILL and k not in VENUE_EVENTS]
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=4)):
        event = ExecutionEvent(kind, order.id, next(clock))
        if kind in (K.REJECTED, K.EXPIRED, K.CANCEL_REJECTED):
            event = replace(event, reason=draw(st.sampled_from(["margin", "ioc", "too late"])))
        if kind is K.MODIFIED:
            new_price = draw(prices) if order.type is OrderType.LIMIT else None
            event = replace(event, qty=draw(st.none() | quantities), price=new_price)
        events.insert(draw(st.integers(1, len(events))), event)
    return events


class LedgerUnderHostileVenue(RuleBasedStateMachine):
    """Orders in a :class:`Ledger` fed by scripted venue events, delivered badly."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(CASH)
        self.scripts: dict[str, Script] = {}
        self.index = 0
        self.first_final: dict[str, Order] = {}
        self.applied: dict[str, list[Fill]] = {}
        self.applied_ids: set[str] = set()
        self.booked: list[Fill] = []
        self.expected_orders: list[Order] = []
        self.expected_fill_ids: list[str] = []
        self.expected_refusals: list[str] = []

    # -- placing ----------------------------------------------------------------------------
    @precondition(lambda self: len(self.scripts) < MAX_ORDERS)
    @rule(
        target=orders,
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        order_type=st.sampled_from((OrderType.MARKET, OrderType.LIMIT)),
        qty=quantities,
        price=prices,
        data=st.data(),
    )
    def place(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        qty: Decimal,
        price: Decimal,
        data: st.DataObject,
    ) -> str:
        oid = client_order_id(RUN_ID, STRATEGY, symbol, BAR_TIME, self.index)
        self.index += 1
        limit = price if order_type is OrderType.LIMIT else None
        order = Order(oid, symbol, side, order_type, qty, BAR_TIME, price=limit, tag=STRATEGY)
        self.ledger.add(order)
        self.expected_orders.append(order)
        self.scripts[oid] = Script(data.draw(venue_scripts(order), label="venue script"))
        self.applied[oid] = []
        self.check_changes()
        return oid

    # -- delivering -------------------------------------------------------------------------
    @rule(oid=orders)
    def deliver_next_in_venue_order(self, oid: str) -> None:
        script = self.scripts[oid]
        pending = script.undelivered()
        if pending:
            self.deliver_from(script, pending[0])
        self.check_changes()

    @rule(oid=orders, data=st.data())
    def deliver_out_of_order(self, oid: str, data: st.DataObject) -> None:
        script = self.scripts[oid]
        pending = script.undelivered()
        if pending:
            self.deliver_from(script, data.draw(st.sampled_from(pending), label="event"))
        self.check_changes()

    @rule(oid=orders, data=st.data(), later=st.integers(0, 60_000))
    def deliver_duplicate(self, oid: str, data: st.DataObject, later: int) -> None:
        """The venue (or a reconnect) sends an event it already sent, maybe stamped later."""
        script = self.scripts[oid]
        if script.delivered:
            i = data.draw(st.sampled_from(sorted(script.delivered)), label="event")
            event = script.events[i]
            self.deliver(replace(event, time=event.time + later))
        self.check_changes()

    @rule(oid=orders)
    def deliver_late_acknowledgement(self, oid: str) -> None:
        """The acknowledgement arrives last, after whatever the other stream said."""
        script = self.scripts[oid]
        pending = script.undelivered()
        if 0 in pending:
            pending.remove(0)
        for i in pending:
            self.deliver_from(script, i)
        self.deliver_from(script, 0)
        self.check_changes()

    @rule(oid=orders, time=st.integers(BAR_TIME, BAR_TIME + 3_600_000))
    def engine_requests_cancel(self, oid: str, time: int) -> None:
        self.deliver(ExecutionEvent(K.CANCEL_REQUESTED, oid, time))
        self.check_changes()

    @precondition(lambda self: self.scripts)
    @rule(data=st.data())
    def deliver_burst_then_drain(self, data: st.DataObject) -> None:
        """Several events across orders between two drains: the changes accumulate."""
        for _ in range(data.draw(st.integers(2, 8), label="burst size")):
            script = self.scripts[data.draw(st.sampled_from(sorted(self.scripts)), label="order")]
            i = data.draw(st.integers(0, len(script.events) - 1), label="event")
            self.deliver_from(script, i)
        self.check_changes()

    @rule(kind=st.sampled_from(sorted(set(K) - VENUE_EVENTS)), qty=quantities, price=prices)
    def deliver_event_for_unknown_order(self, kind: K, qty: Decimal, price: Decimal) -> None:
        oid = client_order_id(RUN_ID, "someone_else", SYMBOLS[0], BAR_TIME, 0)
        fill = None
        if kind is K.FILL:
            fill = Fill("x-1", oid, SYMBOLS[0], Side.BUY, qty, price, ZERO, Liquidity.MAKER, 1)
        self.deliver(ExecutionEvent(kind, oid, BAR_TIME, fill=fill))
        self.check_changes()

    # -- helpers ----------------------------------------------------------------------------
    def deliver_from(self, script: Script, i: int) -> None:
        script.delivered.add(i)
        self.deliver(script.events[i])

    def deliver(self, event: ExecutionEvent) -> None:
        """Apply ``event`` and check the ledger's answer against what it must be."""
        before = self.ledger.get(event.order_id)
        refusal = self.expected_refusal(before, event)
        result = self.ledger.apply(event)
        after = self.ledger.get(event.order_id)
        status = before.status if before is not None else "unknown"
        hypothesis.event(f"{event.kind} on {status}: {'refused' if result is None else 'applied'}")
        if refusal is not None:
            assert result is None, f"{event.kind} should be refused ({refusal}), gave {result}"
            assert after == before, f"refused {event.kind} changed the order to {after}"
            self.expected_refusals.append(refusal)
            return
        assert before is not None
        assert result is not None, f"{event.kind} on {before} should be applied, was refused"
        assert after == result
        self.expected_orders.append(result)
        if event.fill is not None:
            self.check_applied_fill(before, event.fill, result)
        else:
            self.check_applied_control(before, event, result)

    def expected_refusal(self, before: Order | None, event: ExecutionEvent) -> str | None:
        """Words the ledger's refusal of ``event`` must contain, or None if it must apply it."""
        if before is None:
            return "unknown order"
        if before.status.is_final:
            return f"is {before.status}"
        fill = event.fill
        if fill is not None and fill.id in self.applied_ids:
            return f"fill {fill.id} of order {before.id} already applied"
        if (before.status, event.kind) not in TRANSITIONS:
            return f"cannot apply {event.kind}"
        if fill is not None and before.filled_qty + fill.qty > before.qty:
            return "would take filled qty to"
        if event.kind is K.MODIFIED and event.qty is not None and event.qty < before.filled_qty:
            return "is below the filled"
        return None

    def check_applied_fill(self, before: Order, fill: Fill, result: Order) -> None:
        assert result.filled_qty == before.filled_qty + fill.qty
        if result.filled_qty == result.qty:
            assert result.status is S.FILLED
        elif before.status is S.PENDING_CANCEL:  # the cancel is still unanswered
            assert result.status is S.PENDING_CANCEL
        else:
            assert result.status is S.PARTIALLY_FILLED
        self.applied_ids.add(fill.id)
        self.applied[before.id].append(fill)
        self.expected_fill_ids.append(fill.id)

    def check_applied_control(self, before: Order, event: ExecutionEvent, result: Order) -> None:
        assert result.filled_qty == before.filled_qty
        assert result.avg_fill_price == before.avg_fill_price
        target = TRANSITIONS[(before.status, event.kind)]
        if event.kind is K.MODIFIED and event.qty == before.filled_qty:  # nothing left: filled
            assert result.status is S.FILLED
        elif target is not None:
            assert result.status is target
        elif before.filled_qty > 0:  # a refused cancel returns the order to work
            assert result.status is S.PARTIALLY_FILLED
        else:
            assert result.status is S.NEW
        if event.kind is K.MODIFIED and event.qty is not None:
            assert result.qty == event.qty

    def check_changes(self) -> None:
        """What :meth:`Ledger.drain` reports equals what this step applied and refused."""
        changes = self.ledger.drain()
        assert changes.orders == self.expected_orders
        assert [f.id for f in changes.fills] == self.expected_fill_ids
        assert len(changes.refused) == len(self.expected_refusals), changes.refused
        for reported, expected in zip(changes.refused, self.expected_refusals, strict=True):
            assert expected in reported, f"refusal {reported!r} does not say {expected!r}"
        for position in changes.positions:
            assert position.symbol in SYMBOLS
        self.booked.extend(changes.fills)
        self.expected_orders, self.expected_fill_ids, self.expected_refusals = [], [], []

    # -- invariants -------------------------------------------------------------------------
    @invariant()
    def final_states_never_change(self) -> None:
        for oid in self.scripts:
            order = self.ledger.get(oid)
            assert order is not None
            if oid in self.first_final:
                assert order == self.first_final[oid], f"final {oid} changed to {order}"
            elif order.status.is_final:
                self.first_final[oid] = order

    @invariant()
    def filled_qty_is_within_qty_and_avg_price_is_vwap_of_applied_fills(self) -> None:
        for oid, fills in self.applied.items():
            order = self.ledger.get(oid)
            assert order is not None
            assert ZERO <= order.filled_qty <= order.qty
            assert order.filled_qty == sum((f.qty for f in fills), ZERO)
            if not fills:
                assert order.avg_fill_price is None
                continue
            vwap = sum((f.qty * f.price for f in fills), ZERO) / order.filled_qty
            # Each fill after the first quantizes the average to 1e-12; the errors shrink by
            # filled_before / filled_after each time, so they add up to at most n - 1 halves.
            assert order.avg_fill_price is not None
            assert abs(order.avg_fill_price - vwap) <= HALF_PRICE_QUANTUM * (len(fills) - 1)

    @invariant()
    def status_agrees_with_filled_qty(self) -> None:
        for oid in self.scripts:
            order = self.ledger.get(oid)
            assert order is not None
            if order.status in (S.PENDING_NEW, S.NEW):
                assert order.filled_qty == 0, order
            if order.status is S.PARTIALLY_FILLED:
                assert order.filled_qty > 0, order
            if order.status is S.FILLED:
                assert order.filled_qty == order.qty, order

    @invariant()
    def positions_are_the_signed_sums_of_applied_fills(self) -> None:
        for symbol in SYMBOLS:
            fills = [f for fs in self.applied.values() for f in fs if f.symbol == symbol]
            signed = sum((f.qty * f.side.sign for f in fills), ZERO)
            assert self.ledger.position(symbol).qty == signed

    @invariant()
    def cash_moves_by_realized_pnl_less_fees_of_booked_fills(self) -> None:
        assert len({f.id for f in self.booked}) == len(self.booked), "a fill id booked twice"
        realized = sum((f.realized_pnl for f in self.booked), ZERO)
        fees = sum((f.fee for f in self.booked), ZERO)
        assert self.ledger.cash == CASH + realized - fees

    @invariant()
    def open_orders_are_the_non_final_ones(self) -> None:
        open_ids = {o.id for o in self.ledger.open_orders()}
        expected = {oid for oid in self.scripts if not self.ledger.get(oid).status.is_final}
        assert open_ids == expected


LedgerUnderHostileVenue.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None
)
TestLedgerUnderHostileVenue = LedgerUnderHostileVenue.TestCase


# -- every event on a final order is refused --------------------------------------------------
FINAL_STATUSES = [s for s in S if s.is_final]


def _final_order(status: OrderStatus) -> Order:
    filled = Decimal("0.010") if status is S.FILLED else Decimal("0.004")
    return Order(
        "lc-final", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.010"), BAR_TIME,
        price=Decimal("64250.5"), status=status, filled_qty=filled,
        avg_fill_price=Decimal("64250.5"), venue_order_id="v1",
    )  # fmt: skip


def _event(kind: ExecutionEventKind, order_id: str) -> ExecutionEvent:
    fill = None
    if kind is K.FILL:
        fill = Fill(
            "t-late", order_id, "BTCUSDT", Side.BUY, STEP, Decimal("64250.5"), ZERO,
            Liquidity.MAKER, BAR_TIME + 5,
        )  # fmt: skip
    return ExecutionEvent(kind, order_id, BAR_TIME + 5, fill=fill)


@pytest.mark.parametrize("status", FINAL_STATUSES)
@pytest.mark.parametrize("kind", sorted(set(K) - VENUE_EVENTS))
def test_any_event_on_a_final_order_raises_illegal_transition_naming_status_and_event(
    status: OrderStatus, kind: ExecutionEventKind
) -> None:
    order = _final_order(status)

    with pytest.raises(IllegalTransition) as raised:
        apply_event(order, _event(kind, order.id))

    assert f"is {status.value}" in raised.value.message
    assert f"cannot apply {kind.value}" in raised.value.message
