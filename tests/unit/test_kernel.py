"""The kernel's contracts with its ports, driven through in-memory fakes (tests/fakes.py).

A scripted strategy says what to do at which bar close; a scripted venue acknowledges what it
is sent and plays the venue events the test chooses. Bars are real BTCUSDT/ETHUSDT 5m bars.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from adapters.marketdata.exchange_info import load_instruments
from domain.candles import Candles
from domain.ledger import Ledger
from domain.model import Fill, Instrument, Liquidity, OrderStatus, Position, Side
from domain.orders import ExecutionEvent, client_order_id
from domain.orders import ExecutionEventKind as K
from domain.strategies.base import Decision, DecisionContext, OrderIntent
from service_layer.engine import Engine
from tests.fakes import ManualClock, ScriptedVenue
from tests.fixtures.data import load_sample_candles, sample_dir

TF_MS = 300_000
RUN = "run-1"
SYMBOLS = ("BTCUSDT", "ETHUSDT")


class Scripted:
    """A strategy that wants to decide at given bar indices and places given intents there;
    it records every decision context it gets."""

    name = "scripted"

    def __init__(self, plan: Mapping[int, list[OrderIntent]]) -> None:
        self.plan = dict(plan)
        self.contexts: list[DecisionContext] = []
        self._times: dict[int, list[OrderIntent]] = {}
        self._seen = 0

    def params(self) -> dict[str, float | int | str | bool]:
        return {}

    def warmup_bars(self) -> int:
        return 1

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        self.symbols = symbols

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        out = {}
        for symbol, block in bars.items():
            close = block.open_time + TF_MS
            first = self._seen if symbol == self.symbols[0] else self._seen - len(block)
            wanted = [int(close[i - first]) for i in self.plan if first <= i < first + len(block)]
            for i in self.plan:
                if first <= i < first + len(block):
                    self._times[int(close[i - first])] = self.plan[i]
            out[symbol] = np.array(sorted(wanted), dtype=np.int64)
            if symbol == self.symbols[0]:
                self._seen += len(block)
        return out

    def decide(self, ctx: DecisionContext) -> Decision:
        self.contexts.append(ctx)
        return Decision(orders=tuple(self._times.get(ctx.time, ())))

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        return None


def _instruments() -> dict[str, Instrument]:
    rules = load_instruments(sample_dir() / "binance_usdm_exchange_info_20251030.json")
    return {s: rules[s] for s in SYMBOLS}


def _bars(symbol: str, n: int = 50) -> Candles:
    return load_sample_candles(symbol).slice(0, n)


def _engine(strategy: Scripted, venue: ScriptedVenue, ledger: Ledger | None = None) -> Engine:
    return Engine(
        strategy=strategy,
        execution=venue,
        matcher=None,
        clock=venue.clock,
        instruments=_instruments(),
        symbols=SYMBOLS,
        timeframe="5m",
        run_id=RUN,
        ledger=ledger or Ledger(Decimal(10_000)),
    )


def _buy(qty: str, symbol: str = "BTCUSDT", **extra: Any) -> OrderIntent:
    return OrderIntent(symbol, Side.BUY, Decimal(qty), **extra)


def test_a_duplicate_or_out_of_order_bar_is_skipped_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    venue = ScriptedVenue(ManualClock())
    engine = _engine(Scripted({}), venue)
    bars = _bars("BTCUSDT", 10)
    engine.process({"BTCUSDT": bars.slice(0, 5)})

    with caplog.at_level(logging.WARNING):
        outcome = engine.process({"BTCUSDT": bars.slice(3, 7)})

    assert len(outcome.bars["BTCUSDT"]) == 2
    assert outcome.skipped and "skipped 2" in outcome.skipped[0]
    assert "out-of-order" in caplog.text
    assert engine.candles_processed == 7


def test_an_intent_with_zero_quantity_is_dropped_with_its_reason() -> None:
    venue = ScriptedVenue(ManualClock())
    engine = _engine(Scripted({5: [_buy("0"), _buy("0.010")]}), venue)

    outcome = engine.process({"BTCUSDT": _bars("BTCUSDT", 10)})

    assert any("qty 0 is not > 0" in r for r in outcome.rejections)
    assert [o.qty for o in engine.ledger.open_orders()] == [Decimal("0.010")]


def test_orders_decided_at_the_last_close_wait_unsent_until_stored() -> None:
    venue = ScriptedVenue(ManualClock())
    engine = _engine(Scripted({9: [_buy("0.010")]}), venue)

    outcome = engine.process({"BTCUSDT": _bars("BTCUSDT", 10)})

    assert [o.status for o in outcome.outbox] == [OrderStatus.PENDING_NEW]
    assert outcome.changes.orders[-1].status is OrderStatus.PENDING_NEW
    assert venue.submitted == {}
    sent = engine.send(outcome.outbox)
    assert venue.submitted == {outcome.outbox[0].id: 1}
    assert sent.orders[-1].status is OrderStatus.NEW


def test_orders_decided_mid_batch_are_sent_at_once_with_deterministic_client_ids() -> None:
    venue = ScriptedVenue(ManualClock())
    bars = _bars("BTCUSDT", 10)
    engine = _engine(Scripted({4: [_buy("0.010"), _buy("0.020")]}), venue)

    engine.process({"BTCUSDT": bars})

    close = int(bars.open_time[4]) + TF_MS
    expected = [client_order_id(RUN, "scripted", "BTCUSDT", close, k) for k in (0, 1)]
    assert list(venue.submitted) == expected


def test_exposure_reducing_orders_are_submitted_before_the_others() -> None:
    venue = ScriptedVenue(ManualClock())
    bars = _bars("BTCUSDT", 10)
    buy = _buy("0.050")
    engine = _engine(Scripted({2: [buy]}), venue)
    engine.process({"BTCUSDT": bars.slice(0, 3)})
    entry = engine.send(engine.ledger.open_orders())
    order = entry.orders[-1]
    fill = Fill(f"{order.id}-f", order.id, "BTCUSDT", Side.BUY, order.qty, Decimal(90_000),
                Decimal("2.25"), Liquidity.TAKER, int(bars.open_time[3]))  # fmt: skip
    venue.play(ExecutionEvent(K.FILL, order.id, fill.time, fill=fill))
    exit_ = OrderIntent("BTCUSDT", Side.SELL, Decimal("0.050"), reduce_only=True)
    engine.strategy.plan[6] = [_buy("0.010", "ETHUSDT"), exit_]  # type: ignore[attr-defined]

    engine.process({"BTCUSDT": bars.slice(3, 10)})

    sides = [venue.orders[i].side for i in list(venue.submitted)[1:]]
    assert sides == [Side.SELL, Side.BUY]


def test_one_decision_per_timestamp_sees_every_due_symbol() -> None:
    venue = ScriptedVenue(ManualClock())
    strategy = Scripted({3: [], 7: []})
    engine = _engine(strategy, venue)

    engine.process({"BTCUSDT": _bars("BTCUSDT", 10), "ETHUSDT": _bars("ETHUSDT", 10)})

    assert [sorted(c.due) for c in strategy.contexts] == [list(SYMBOLS), list(SYMBOLS)]
    assert [c.time for c in strategy.contexts] == sorted({c.time for c in strategy.contexts})


def test_reconcile_resends_only_what_the_venue_never_saw_and_adopts_what_it_did() -> None:
    clock = ManualClock()
    first = ScriptedVenue(clock)
    engine = _engine(Scripted({9: [_buy("0.010"), _buy("0.020")]}), first)
    outcome = engine.process({"BTCUSDT": _bars("BTCUSDT", 10)})
    known, unknown = outcome.outbox
    first.submit(known)  # the venue took it, but its answer was lost in a crash
    first.drain_events()
    restored = Ledger(Decimal(10_000), orders=outcome.outbox)
    engine = _engine(Scripted({}), first, restored)

    engine.reconcile()
    engine.flush()

    assert first.submitted == {known.id: 1, unknown.id: 1}
    assert {o.id: o.status for o in restored.open_orders()} == {
        known.id: OrderStatus.NEW,
        unknown.id: OrderStatus.NEW,
    }


def test_deciding_a_bar_again_after_a_restart_places_no_second_order() -> None:
    clock = ManualClock()
    venue = ScriptedVenue(clock)
    bars = _bars("BTCUSDT", 10)
    engine = _engine(Scripted({9: [_buy("0.010")]}), venue)
    outcome = engine.process({"BTCUSDT": bars})
    engine.send(outcome.outbox)
    restored = Ledger(Decimal(10_000), orders=[engine.ledger.open_orders()[0]])
    again = _engine(Scripted({9: [_buy("0.010")]}), venue, restored)

    replay = again.process({"BTCUSDT": bars})

    assert replay.outbox == []
    assert list(venue.submitted.values()) == [1]


def test_a_fill_before_its_acknowledgement_counts_once_and_the_late_ack_is_refused() -> None:
    venue = ScriptedVenue(ManualClock())
    bars = _bars("BTCUSDT", 10)
    engine = _engine(Scripted({9: [_buy("0.010")]}), venue)
    order = engine.process({"BTCUSDT": bars}).outbox[0]
    fill = Fill(f"{order.id}-1", order.id, "BTCUSDT", Side.BUY, order.qty, Decimal(90_000),
                Decimal("0.45"), Liquidity.TAKER, int(bars.open_time[-1]) + TF_MS)  # fmt: skip

    venue.play(ExecutionEvent(K.FILL, order.id, fill.time, fill=fill))
    venue.play(ExecutionEvent(K.FILL, order.id, fill.time, fill=fill))
    venue.play(ExecutionEvent(K.ACCEPTED, order.id, fill.time + 1, "v1"))
    changes = engine.flush()

    assert engine.ledger.get(order.id).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert engine.ledger.position("BTCUSDT").qty == Decimal("0.010")
    assert len(changes.fills) == 1
    assert len(changes.refused) == 2


def test_a_fill_sent_again_after_a_restart_is_refused_by_its_id() -> None:
    venue = ScriptedVenue(ManualClock())
    bars = _bars("BTCUSDT", 10)
    engine = _engine(Scripted({9: [_buy("0.010")]}), venue)
    order = engine.process({"BTCUSDT": bars}).outbox[0]
    engine.send([order])
    time = int(bars.open_time[-1]) + TF_MS

    def fill(n: int) -> ExecutionEvent:
        part = Fill(f"{order.id}-{n}", order.id, "BTCUSDT", Side.BUY, Decimal("0.004"),
                    Decimal(90_000), Decimal("0.18"), Liquidity.TAKER, time + n)  # fmt: skip
        return ExecutionEvent(K.FILL, order.id, part.time, fill=part)

    venue.play(fill(1))
    engine.flush()
    stored = engine.ledger.get(order.id)
    held = engine.ledger.position("BTCUSDT")
    assert stored is not None and stored.status is OrderStatus.PARTIALLY_FILLED
    restored = Ledger(
        engine.ledger.cash, [held], [stored], fill_ids=[f"{order.id}-1"]
    )  # as bootstrap restores a run: the stored fills of its open orders
    again = _engine(Scripted({}), venue, restored)

    venue.play(fill(1))
    venue.play(fill(2))
    changes = again.flush()

    assert [f.id for f in changes.fills] == [f"{order.id}-2"]
    assert changes.refused == [f"fill {order.id}-1 of order {order.id} already applied"]
    assert again.ledger.position("BTCUSDT").qty == Decimal("0.008")


def test_reconcile_resends_the_orders_of_one_time_exits_first() -> None:
    venue = ScriptedVenue(ManualClock())
    held = Position("BTCUSDT", Decimal("0.010"), Decimal(100_000), 0)
    close = OrderIntent("BTCUSDT", Side.SELL, Decimal("0.010"), reduce_only=True)
    plan = Scripted({9: [_buy("0.010"), close]})
    outcome = _engine(plan, venue, Ledger(Decimal(10_000), [held])).process(
        {"BTCUSDT": _bars("BTCUSDT", 10)}
    )
    exit_first, entry = outcome.outbox
    # Storage lists open orders by creation time and id: within one time, in hash order.
    restored = Ledger(Decimal(10_000), [held], orders=[entry, exit_first])

    _engine(Scripted({}), venue, restored).reconcile()

    assert exit_first.reduce_only and not entry.reduce_only
    assert list(venue.submitted) == [exit_first.id, entry.id]
