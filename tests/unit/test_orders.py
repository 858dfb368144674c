"""The order state machine (domain/orders.py), one transition at a time, and client order ids."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from domain.model import ZERO, Fill, Liquidity, Order, OrderStatus, OrderType, Side
from domain.orders import (
    TRANSITIONS,
    VENUE_EVENTS,
    ExecutionEvent,
    ExecutionEventKind,
    IllegalTransition,
    OrderOrigin,
    apply_event,
    client_order_id,
    order_origin,
)

S = OrderStatus
K = ExecutionEventKind

ID = "lc0f3c2a9d41b7e6c85a0d9e4f1b2c3d"
QTY = Decimal("0.010")
PRICE = Decimal("64250.5")
T0 = 1_718_000_000_000


def order(
    status: OrderStatus = S.PENDING_NEW, filled: str = "0", qty: Decimal = QTY, avg: str = "64250.5"
) -> Order:
    """A BTCUSDT limit buy of ``qty`` in ``status`` with ``filled`` done at ``avg``."""
    done = Decimal(filled)
    return Order(
        ID, "BTCUSDT", Side.BUY, OrderType.LIMIT, qty, T0, price=PRICE, status=status,
        filled_qty=done, avg_fill_price=Decimal(avg) if done else None,
    )  # fmt: skip


def fill(qty: str, price: str = "64250.5", fill_id: str = "t1") -> ExecutionEvent:
    f = Fill(
        fill_id, ID, "BTCUSDT", Side.BUY, Decimal(qty), Decimal(price), ZERO, Liquidity.MAKER,
        T0 + 2,
    )  # fmt: skip
    return ExecutionEvent(K.FILL, ID, T0 + 2, venue_order_id="v-88", fill=f)


def event(kind: ExecutionEventKind, **values: object) -> ExecutionEvent:
    if kind is K.FILL:
        return fill("0.001")
    return ExecutionEvent(kind, ID, T0 + 1, **values)  # type: ignore[arg-type]


def in_status(status: OrderStatus) -> Order:
    """An order that could be in ``status`` (partially filled ones have something filled)."""
    return order(status, "0.004" if status is S.PARTIALLY_FILLED else "0")


# -- the table ---------------------------------------------------------------------------------
FIXED_MOVES = [(s, k, t) for (s, k), t in TRANSITIONS.items() if t is not None]
REFUSED = [
    (s, k)
    for s in S
    if not s.is_final
    for k in K
    if (s, k) not in TRANSITIONS and k not in VENUE_EVENTS
]


def test_no_final_status_has_an_outgoing_transition() -> None:
    assert not [key for key in TRANSITIONS if key[0].is_final]


@pytest.mark.parametrize(("status", "kind", "target"), FIXED_MOVES, ids=str)
def test_allowed_event_moves_the_order_to_its_table_target(
    status: OrderStatus, kind: ExecutionEventKind, target: OrderStatus
) -> None:
    before = in_status(status)

    after = apply_event(before, event(kind))

    assert after.status is target
    assert after.updated_time == T0 + 1
    assert (after.filled_qty, after.avg_fill_price) == (before.filled_qty, before.avg_fill_price)


@pytest.mark.parametrize(("status", "kind"), REFUSED, ids=str)
def test_event_outside_the_table_raises_illegal_transition_naming_status_and_event(
    status: OrderStatus, kind: ExecutionEventKind
) -> None:
    with pytest.raises(IllegalTransition, match=f"is {status.value}: cannot apply {kind.value}"):
        apply_event(in_status(status), event(kind))


# -- fills -------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED])
def test_partial_fill_leaves_the_order_partially_filled(status: OrderStatus) -> None:
    before = in_status(status)

    after = apply_event(before, fill("0.001"))

    assert after.status is S.PARTIALLY_FILLED
    assert after.filled_qty == before.filled_qty + Decimal("0.001")
    assert after.venue_order_id == "v-88"


@pytest.mark.parametrize("status", [S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL])
def test_fill_of_the_remaining_qty_fills_the_order(status: OrderStatus) -> None:
    before = in_status(status)

    after = apply_event(before, fill(str(before.remaining_qty)))

    assert after.status is S.FILLED
    assert after.filled_qty == QTY


def test_partial_fill_during_pending_cancel_keeps_the_cancel_pending() -> None:
    after = apply_event(order(S.PENDING_CANCEL), fill("0.003"))

    assert after.status is S.PENDING_CANCEL
    assert after.filled_qty == Decimal("0.003")


def test_fill_before_acknowledgement_is_kept_by_the_late_acknowledgement() -> None:
    filled = apply_event(order(S.PENDING_NEW), fill("0.004"))

    acked = apply_event(filled, event(K.ACCEPTED, venue_order_id="v-88"))

    assert acked.status is S.PARTIALLY_FILLED
    assert acked.filled_qty == Decimal("0.004")


def test_fills_move_avg_fill_price_to_their_vwap() -> None:
    fills = [("0.002", "64250.5"), ("0.005", "64251.0"), ("0.003", "64240.3")]
    o = order(S.NEW)
    for i, (qty, price) in enumerate(fills):
        o = apply_event(o, fill(qty, price, f"t{i}"))

    vwap = sum((Decimal(q) * Decimal(p) for q, p in fills), ZERO) / QTY
    assert o.status is S.FILLED
    assert o.avg_fill_price is not None
    assert abs(o.avg_fill_price - vwap) <= Decimal("1e-12")


def test_fill_past_the_order_qty_is_refused_naming_the_quantities() -> None:
    with pytest.raises(IllegalTransition, match=r"0\.007 would take filled qty to 0\.011 > 0\.010"):
        apply_event(order(S.PARTIALLY_FILLED, "0.004"), fill("0.007"))


def test_event_for_another_order_is_refused() -> None:
    other = ExecutionEvent(K.ACCEPTED, "lc-someone-else", T0 + 1)

    with pytest.raises(IllegalTransition, match="event for order lc-someone-else"):
        apply_event(order(), other)


# -- cancels, rejections, modifications ----------------------------------------------------------
def test_refused_cancel_returns_an_unfilled_order_to_new() -> None:
    assert apply_event(order(S.PENDING_CANCEL), event(K.CANCEL_REJECTED)).status is S.NEW


def test_refused_cancel_returns_a_partly_filled_order_to_partially_filled() -> None:
    before = order(S.PENDING_CANCEL, "0.004")

    assert apply_event(before, event(K.CANCEL_REJECTED)).status is S.PARTIALLY_FILLED


@pytest.mark.parametrize(
    ("status", "kind"),
    [(S.PENDING_NEW, K.REJECTED), (S.NEW, K.EXPIRED), (S.PENDING_CANCEL, K.EXPIRED)],
)
def test_rejection_and_expiry_keep_the_venue_reason(
    status: OrderStatus, kind: ExecutionEventKind
) -> None:
    after = apply_event(order(status), event(kind, reason="-2019 margin is insufficient"))

    assert after.reject_reason == "-2019 margin is insufficient"


def test_acknowledgement_records_the_venue_order_id() -> None:
    after = apply_event(order(), event(K.ACCEPTED, venue_order_id="4061978112"))

    assert after.venue_order_id == "4061978112"


def test_modification_changes_qty_and_price_and_keeps_the_status() -> None:
    before = order(S.PARTIALLY_FILLED, "0.004")

    after = apply_event(before, event(K.MODIFIED, qty=Decimal("0.020"), price=Decimal("64100")))

    assert (after.status, after.qty, after.price) == (
        S.PARTIALLY_FILLED,
        Decimal("0.020"),
        Decimal(64100),
    )
    assert after.filled_qty == before.filled_qty


def test_modification_below_the_filled_qty_is_refused() -> None:
    with pytest.raises(IllegalTransition, match=r"new qty 0\.003 is below the filled 0\.004"):
        apply_event(order(S.PARTIALLY_FILLED, "0.004"), event(K.MODIFIED, qty=Decimal("0.003")))


def test_modification_down_to_the_filled_qty_fills_the_order() -> None:
    before = order(S.PARTIALLY_FILLED, "0.004")

    after = apply_event(before, event(K.MODIFIED, qty=Decimal("0.004")))

    assert after.status is S.FILLED


def test_modification_to_a_non_positive_qty_is_an_illegal_transition() -> None:
    with pytest.raises(IllegalTransition):
        apply_event(order(S.NEW), event(K.MODIFIED, qty=ZERO))


def test_fill_for_another_symbol_or_side_is_an_illegal_transition() -> None:
    wrong = Fill("t9", ID, "ETHUSDT", Side.SELL, QTY, PRICE, ZERO, Liquidity.TAKER, T0 + 2)

    with pytest.raises(IllegalTransition):
        apply_event(order(S.NEW), ExecutionEvent(K.FILL, ID, T0 + 2, fill=wrong))


# -- events themselves ---------------------------------------------------------------------------
def test_fill_event_without_a_fill_is_refused() -> None:
    with pytest.raises(ValueError, match="a fill event needs a fill"):
        ExecutionEvent(K.FILL, ID, T0)


def test_non_fill_event_carrying_a_fill_is_refused() -> None:
    with pytest.raises(ValueError, match="a canceled event must not have a fill"):
        ExecutionEvent(K.CANCELED, ID, T0, fill=fill("0.001").fill)


# -- client order ids ----------------------------------------------------------------------------
KEY = ("run-7f3a", "sma_cross", "BTCUSDT", T0, 0)


def test_client_order_id_is_the_same_for_the_same_intent() -> None:
    assert client_order_id(*KEY) == client_order_id(*KEY)


@pytest.mark.parametrize(
    "changed",
    [
        ("run-7f3b", "sma_cross", "BTCUSDT", T0, 0),
        ("run-7f3a", "rsi_reversal", "BTCUSDT", T0, 0),
        ("run-7f3a", "sma_cross", "ETHUSDT", T0, 0),
        ("run-7f3a", "sma_cross", "BTCUSDT", T0 + 60_000, 0),
        ("run-7f3a", "sma_cross", "BTCUSDT", T0, 1),
    ],
    ids=["run", "strategy", "symbol", "bar_time", "index"],
)
def test_client_order_id_differs_when_any_part_of_the_intent_differs(
    changed: tuple[str, str, str, int, int],
) -> None:
    assert client_order_id(*changed) != client_order_id(*KEY)


def test_client_order_ids_of_many_intents_are_distinct() -> None:
    ids = {client_order_id("run-7f3a", "sma_cross", "BTCUSDT", T0, i) for i in range(10_000)}

    assert len(ids) == 10_000


def test_client_order_id_fits_venue_limits() -> None:
    for i in range(200):
        cid = client_order_id("run-7f3a", "sma_cross", "BTCUSDT", T0 + i * 60_000, i % 3)

        assert len(cid) <= 36
        assert re.fullmatch(r"[0-9a-z]+", cid), cid


@pytest.mark.parametrize(
    ("tag", "kind", "source", "leg"),
    [
        ("api", "api", "", ""),
        ("api:stop", "api", "", "stop"),  # an exit keeps its entry's origin
        ("trend_follow", "strategy", "trend_follow", ""),
        ("trend_follow:tp2", "strategy", "trend_follow", "tp2"),
        ("end", "run", "", ""),
        (None, "strategy", "", ""),
    ],
)
def test_order_origin_reads_who_placed_an_order_from_its_tag(
    tag: str | None, kind: str, source: str, leg: str
) -> None:
    assert order_origin(tag) == OrderOrigin(kind, source, leg)
