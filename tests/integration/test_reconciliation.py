"""Reconciliation of a live run with the venue: the real server stack against the fake Binance
USDⓈ-M on loopback (see :mod:`tests.integration.test_live_trading`, whose helpers these tests
use), with the venue changed behind the server's back: fills and a liquidation while the
server was down, orders placed and canceled by hand, positions moved.

The fake and the server share one simulated clock, so a reconciliation that is due every
``reconcile_s`` runs when the test moves the clock that far (no wall-clock sleep).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from adapters.clock import SimulatedClock
from api.venue_metrics import VenueCollector
from domain.candles import Candles
from domain.model import ExitReason, OrderStatus, OrderType, Side
from domain.reconciliation import DriftKind, ReconciliationEvent
from lootcapital.bootstrap import Container
from lootcapital.settings import Settings
from tests.fixtures.data import load_candles as file_candles
from tests.integration.live_harness import M5, OPEN, T0, costed_key, stored_bars, wait
from tests.integration.paper_harness import every, wait_stopped
from tests.integration.test_live_trading import (
    SYMBOLS,
    _backtest,
    _play,
    _settings,
    _start,
    clock,
    fake,
)
from tests.venues.binance_fake import FakeBinanceUsdm

__all__ = ["clock", "fake"]  # the fixtures, shared with the live-trading tests

BARS = 80
D = DriftKind


def _reconcile_every(settings: Settings, seconds: float) -> Settings:
    venue = settings.venues.binance_usdm.model_copy(update={"reconcile_s": seconds})
    venues = settings.venues.model_copy(update={"binance_usdm": venue})
    return settings.model_copy(update={"venues": venues})


def _file_bars(symbol: str) -> Candles:
    return file_candles(f"binance_usdm_{symbol}_5m.csv.gz").between(T0, T0 + BARS * M5)


def _an_entry_bar(settings: Settings) -> tuple[int, str]:
    """The bar whose close decides an entry of the backtest of the first bars, and its
    symbol."""
    trades = _backtest(settings, {s: _file_bars(s) for s in SYMBOLS})
    trade = sorted(trades, key=lambda t: t.entry_time)[len(trades) // 2]
    return (trade.entry_time - T0) // M5 - 1, trade.symbol


def _shut_down(container: Container, fake: FakeBinanceUsdm) -> None:
    container.service.stop()
    wait_stopped(container)
    container.close()
    wait(lambda: fake.connections == 0, "the run's kline streams closed")


def _events(container: Container) -> list[ReconciliationEvent]:
    reconciler = container.service.reconciler
    assert reconciler is not None
    return list(reversed(reconciler.log.recent(1_000)))


def _kinds(container: Container) -> list[DriftKind]:
    return [e.kind for e in _events(container)]


def _reconciled_at(container: Container, fake: FakeBinanceUsdm, ms: int) -> None:
    """Move the shared clock to ``ms`` and wait for the reconciliation due then."""
    fake.advance_to(ms)
    wait(lambda: container.service.venues()[0].last_reconciliation == ms, f"reconciled at {ms}")


def _by_hand(fake: FakeBinanceUsdm, symbol: str, side: str, kind: str, **terms: str) -> str:
    """Place an order at the venue as a person would in its UI (the server not told); its
    client id."""
    client_id = f"web_{symbol}_{len(fake.account.orders)}"
    params = {"symbol": symbol, "side": side, "type": kind, "newClientOrderId": client_id}
    fake.account.new_order(params | terms)
    return client_id


def test_a_fill_missed_while_the_server_was_down_is_applied_once_at_start(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _reconcile_every(_settings(tmp_path, fake), 86_400)  # at start only
    k, _ = _an_entry_bar(settings)
    first = _start(settings, fake, clock)
    _play(fake, first, 0, k - 1)
    fake.drop_user_streams(refuse=True)  # the entry fills unheard
    fake.advance_to(T0 + (k + 1) * M5)
    wait(lambda: first.service.status().candles_processed >= (k + 1) * len(SYMBOLS), "bar")
    missed = first.service.orders(statuses=OPEN).items
    _shut_down(first, fake)
    fake.private.refusing = False

    second = _start(settings, fake, clock)
    open_after_start = second.service.orders(statuses=OPEN).items
    _play(fake, second, k + 1, BARS - 1)
    _shut_down(second, fake)
    events = _events(second)

    assert missed, "the entry was open in the ledger when the server went down"
    assert open_after_start == []
    assert [e.kind for e in events] == [D.MISSED_FILL, D.VANISHED_ORDER] * len(missed)
    assert all(any(o.id in e.details for e in events[::2]) for o in missed)
    assert len(every(second.service.fills)) == len(fake.account.trades)  # each applied once
    live = every(second.service.trades)
    backtested = _backtest(settings, stored_bars(settings))
    assert sorted(map(costed_key, live)) == sorted(map(costed_key, backtested))


def test_an_order_placed_by_hand_at_the_venue_is_adopted_as_external_once(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    price = int(fake.price_now("BTCUSDT") / 2)
    fake.account.positions["BTCUSDT"].margin_type = "ISOLATED"  # set before by hand
    hand = _by_hand(fake, "BTCUSDT", "BUY", "LIMIT", quantity="0.010", price=str(price),
                    timeInForce="GTC")  # fmt: skip
    settings = _settings(tmp_path, fake)
    container = _start(settings, fake, clock)
    adopted = container.service.get_order(hand)
    at_start = container.service.venues()[0]

    _reconciled_at(container, fake, T0 + 120_000)  # 60 s later: again, nothing new
    again = container.service.venues()[0]
    canceled = container.service.desk.cancel_order(hand)
    wait(lambda: container.service.get_order(hand).status is OrderStatus.CANCELED, "canceled")
    _shut_down(container, fake)

    assert adopted.tag == "external" and adopted.status is OrderStatus.NEW
    assert (adopted.side, adopted.type, adopted.qty, adopted.price) == (
        Side.BUY, OrderType.LIMIT, Decimal("0.010"), Decimal(price),
    )  # fmt: skip
    assert at_start.last_reconciliation == T0 + 60_000
    assert at_start.drift == {"unknown_order": 1}
    assert again.drift == {"unknown_order": 1}  # the second reconciliation adopted nothing
    assert _kinds(container) == [D.UNKNOWN_ORDER]
    assert canceled.id == hand  # the adopted order is ours to cancel
    assert [o.status for o in fake.account.orders.values()] == ["CANCELED"]


def test_a_stop_still_working_at_the_venue_across_a_restart_is_tracked_again(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    first = _start(settings, fake, clock)
    trigger = Decimal(int(fake.price_now("ETHUSDT") * 2))
    stop = first.service.desk.place_order(
        symbol="ETHUSDT", side=Side.BUY, type=OrderType.STOP, qty=Decimal("0.10"),
        stop_price=trigger,
    )  # fmt: skip
    wait(lambda: first.service.get_order(stop.id).status is OrderStatus.NEW, "stop working")
    _shut_down(first, fake)

    second = _start(settings, fake, clock)
    (venue,) = second.service.venues()
    second.service.desk.cancel_order(stop.id)  # refused as unknown if it were not tracked
    wait(lambda: second.service.get_order(stop.id).status is OrderStatus.CANCELED, "canceled")
    _shut_down(second, fake)
    (algo,) = fake.account.algos.values()

    assert (algo.client_id, algo.status) == (stop.id, "CANCELED")
    assert venue.last_reconciliation == T0 + 60_000 and venue.drift == {}
    assert _kinds(second) == []  # at the venue and in the ledger alike: nothing differed


def test_a_position_the_venue_liquidated_while_the_server_was_down_closes_as_a_liquidation(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    k, symbol = _an_entry_bar(settings)
    first = _start(settings, fake, clock)
    _play(fake, first, 0, k)
    held = first.service.engine.ledger.position(symbol).qty
    _shut_down(first, fake)
    autoclose = fake.liquidate(symbol)

    second = _start(settings, fake, clock)
    position = second.service.engine.ledger.position(symbol)
    _shut_down(second, fake)
    liquidated = [
        t for t in every(second.service.trades) if t.exit_reason is ExitReason.LIQUIDATION
    ]
    events = _events(second)

    assert held != 0
    assert position.qty == 0
    assert [(t.symbol, t.qty) for t in liquidated] == [(symbol, abs(held))]
    assert [e.kind for e in events] == [D.VANISHED_POSITION, D.MISSED_FILL]
    assert autoclose in events[0].details
    assert len(every(second.service.fills)) == len(fake.account.trades)


def test_each_kind_of_difference_is_counted_and_repaired_every_reconcile_s_of_the_run_clock(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _reconcile_every(_settings(tmp_path, fake), 30)
    fake.account.positions["BTCUSDT"].margin_type = "ISOLATED"  # set before by hand
    hand = _by_hand(fake, "BTCUSDT", "BUY", "LIMIT", quantity="0.010",
                    price=str(int(fake.price_now("BTCUSDT") / 2)), timeInForce="GTC")  # fmt: skip
    container = _start(settings, fake, clock)  # unknown_order
    eth = fake.account.positions["ETHUSDT"]
    service, t = container.service, T0 + 60_000
    positions: list[Decimal] = []

    def step() -> None:
        """The reconciliation 30 s later (ETHUSDT's position in the ledger after it)."""
        nonlocal t
        t += 30_000
        _reconciled_at(container, fake, t)
        positions.append(service.engine.ledger.position("ETHUSDT").qty)

    eth.qty, eth.entry = Decimal("0.50"), fake.price_now("ETHUSDT")
    step()  # unknown_position
    eth.qty = Decimal("0.80")
    step()  # position_mismatch
    eth.qty = Decimal(0)
    step()  # vanished_position
    fake.drop_user_streams(refuse=True)  # what follows is not streamed
    fake.account.cancel_order({"symbol": "BTCUSDT", "origClientOrderId": hand})
    step()  # vanished_order
    _by_hand(fake, "BTCUSDT", "BUY", "MARKET", quantity="0.002")
    step()  # the market order: unknown_order, missed_fill
    fake.private.refusing = False
    step()  # nothing new
    venue = service.venues()[0]
    collector = VenueCollector()
    collector.update(service.venues())
    counted = {
        s.labels["kind"]: s.value
        for family in collector.collect()
        for s in family.samples
        if s.name == "lootcapital_reconciliation_drift_total"
    }
    btc = service.engine.ledger.position("BTCUSDT")
    _shut_down(container, fake)

    assert positions == [Decimal("0.50"), Decimal("0.80"), Decimal(0), Decimal(0),
                         Decimal(0), Decimal(0)]  # fmt: skip
    assert btc.qty == Decimal("0.002")  # the order filled by hand, adopted with its fill
    assert venue.drift == {
        "unknown_order": 2, "unknown_position": 1, "position_mismatch": 1,
        "vanished_position": 1, "vanished_order": 1, "missed_fill": 1,
    }  # fmt: skip
    assert counted == {kind: float(n) for kind, n in venue.drift.items()}
    assert set(_kinds(container)) == set(DriftKind)
