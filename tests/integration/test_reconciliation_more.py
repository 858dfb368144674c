"""More reconciliation of a live run with the fake Binance USDⓈ-M on loopback (see
:mod:`tests.integration.test_reconciliation`, whose helpers these tests use): a conditional
(algo) order placed by hand at the venue.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from adapters.clock import SimulatedClock
from domain.model import OrderStatus, OrderType, Side
from domain.reconciliation import DriftKind
from tests.integration.live_harness import T0, wait
from tests.integration.test_live_trading import _settings, _start, clock, fake
from tests.integration.test_reconciliation import _kinds, _reconciled_at, _shut_down
from tests.venues.binance_fake import FakeBinanceUsdm

__all__ = ["clock", "fake"]


def _algo_by_hand(fake: FakeBinanceUsdm, symbol: str, trigger: Decimal) -> str:
    """Place a stop-market buy of 0.10 at the venue's Algo Order API as a person would in its
    UI (the server not told); its client algo id."""
    client_id = f"webalgo_{symbol}_{len(fake.account.algos)}"
    fake.account.new_algo({
        "symbol": symbol, "side": "BUY", "algoType": "CONDITIONAL", "type": "STOP_MARKET",
        "quantity": "0.10", "triggerPrice": str(trigger), "clientAlgoId": client_id,
    })  # fmt: skip
    return client_id


def test_an_algo_order_placed_by_hand_at_the_venue_is_adopted_as_external_and_is_ours_to_cancel(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    container = _start(_settings(tmp_path, fake), fake, clock)
    service = container.service
    trigger = Decimal(int(fake.price_now("ETHUSDT") * 2))
    hand = _algo_by_hand(fake, "ETHUSDT", trigger)

    _reconciled_at(container, fake, T0 + 120_000)  # the next reconciliation adopts it
    wait(lambda: any(o.id == hand for o in service.orders().items), "the adoption stored")
    adopted = service.get_order(hand)
    _reconciled_at(container, fake, T0 + 180_000)  # and the one after adopts nothing more
    drift = service.venues()[0].drift
    service.desk.cancel_order(hand)
    wait(lambda: service.get_order(hand).status is OrderStatus.CANCELED, "canceled")
    _shut_down(container, fake)
    (algo,) = fake.account.algos.values()

    assert adopted.tag == "external" and adopted.status is OrderStatus.NEW
    assert (adopted.symbol, adopted.side, adopted.type, adopted.qty, adopted.stop_price) == (
        "ETHUSDT", Side.BUY, OrderType.STOP, Decimal("0.10"), trigger,
    )  # fmt: skip
    assert drift == {"unknown_order": 1}
    assert _kinds(container) == [DriftKind.UNKNOWN_ORDER]
    assert (algo.client_id, algo.status) == (hand, "CANCELED")
    assert fake.account.placed[hand] == 1  # never sent again by the server
