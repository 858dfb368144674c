"""Positions from Binance's user-data stream (``ACCOUNT_UPDATE``): the real server stack against
the fake Binance USDⓈ-M on loopback (see :mod:`tests.integration.test_reconciliation`), with
reconciliation every day only, so that only a position the stream reported can bring one on
early.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from adapters.clock import SimulatedClock
from adapters.venues.binance_usdm.account_stream import account_positions
from domain.reconciliation import DriftKind
from service_layer.reconciliation import POSITION_GRACE_MS
from tests.integration.live_harness import T0, wait
from tests.integration.test_live_trading import SYMBOLS, _play, _settings, _start, clock, fake
from tests.integration.test_reconciliation import (
    _an_entry_bar,
    _kinds,
    _reconcile_every,
    _shut_down,
)
from tests.venues.binance_fake import FakeBinanceUsdm

__all__ = ["clock", "fake"]

DAY_S = 86_400


def test_an_account_update_is_parsed_into_net_positions_per_symbol() -> None:
    message = {
        "e": "ACCOUNT_UPDATE", "E": 1_564_745_798_939, "T": 1_564_745_798_938,
        "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": "122624.1", "cw": "100.1", "bc": "50"}],
              "P": [{"s": "BTCUSDT", "pa": "0", "ep": "0.00000", "cr": "200", "up": "0",
                     "mt": "isolated", "iw": "0.00000000", "ps": "BOTH"},
                    {"s": "ETHUSDT", "pa": "20", "ep": "6563.66500", "cr": "0", "up": "2.5",
                     "mt": "isolated", "iw": "0", "ps": "LONG"},
                    {"s": "ETHUSDT", "pa": "-10", "ep": "6563.86000", "cr": "-45", "up": "-1",
                     "mt": "isolated", "iw": "0", "ps": "SHORT"}]},
    }  # fmt: skip

    positions = account_positions(message)

    assert [(p.symbol, p.qty, p.entry_price, p.time, p.reason) for p in positions] == [
        ("BTCUSDT", Decimal(0), Decimal(0), 1_564_745_798_939, "ORDER"),
        ("ETHUSDT", Decimal(10), Decimal("6563.66500"), 1_564_745_798_939, "ORDER"),
    ]


def test_a_trade_made_by_hand_at_the_venue_is_reconciled_at_once_not_at_the_next_period(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _reconcile_every(_settings(tmp_path, fake), DAY_S)
    container = _start(settings, fake, clock)
    service, client = container.service, container.venue.client  # type: ignore[union-attr]
    at_start = service.venues()[0].last_reconciliation
    kinds_at_start = _kinds(container)

    hand = fake.trade_by_hand("ETHUSDT", "BUY", "0.10")
    wait(lambda: "ETHUSDT" in client.reported_positions(), "the position update streamed")
    time.sleep(0.2)  # the engine's waits between bars see the difference meanwhile
    later = clock.now_ms() + POSITION_GRACE_MS
    fake.advance_to(later)
    wait(lambda: service.venues()[0].last_reconciliation == later, "reconciled after the grace")
    position = service.engine.ledger.position("ETHUSDT")
    wait(lambda: any(o.id == hand for o in service.orders().items), "the adoption stored")
    adopted = service.get_order(hand)
    _shut_down(container, fake)

    assert at_start == T0 + 60_000 and kinds_at_start == []
    assert later - at_start < 60_000  # well before the 60 s period, let alone a day
    assert client.reported_positions()["ETHUSDT"][1] == Decimal("0.10")
    assert position.qty == fake.account.positions["ETHUSDT"].qty == Decimal("0.10")
    assert adopted.tag == "external"
    assert _kinds(container) == [DriftKind.UNKNOWN_ORDER, DriftKind.MISSED_FILL]


def test_the_position_updates_of_the_runs_own_fills_bring_no_reconciliation(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _reconcile_every(_settings(tmp_path, fake), DAY_S)
    k, symbol = _an_entry_bar(settings)
    container = _start(settings, fake, clock)
    service, client = container.service, container.venue.client  # type: ignore[union-attr]
    _play(fake, container, 0, k + 4)
    time.sleep(0.2)
    fake.advance_to(clock.now_ms() + 2 * POSITION_GRACE_MS)
    time.sleep(0.2)
    reported = client.reported_positions()
    last = service.venues()[0].last_reconciliation
    ours = {s: service.engine.ledger.position(s).qty for s in SYMBOLS}
    _shut_down(container, fake)

    assert reported[symbol][1] != 0  # the entry's fills were streamed with their positions
    assert {s: q for s, (_, q) in reported.items()} == {
        s: fake.account.positions[s].qty for s in reported
    }
    assert ours == {s: fake.account.positions[s].qty for s in SYMBOLS}
    assert last == T0 + 60_000  # only the start's
    assert _kinds(container) == []
