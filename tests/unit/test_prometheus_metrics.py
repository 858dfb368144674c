"""The metrics the Grafana dashboard and the alert rules read (deploy/): order acknowledgement
latency, exposure, unrealized PnL and open orders per symbol, the engine's state, the bar
timeframe and the feature-error counters that exist before any failure."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from decimal import Decimal
from typing import cast

from api.metrics import Metrics, open_orders
from domain.events import OrderUpdated
from domain.model import Order, OrderStatus, OrderType, Position, Side
from domain.ports import Page
from domain.strategies.base import PipelineView
from service_layer.trading import PositionView, Status, TradingService

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def order(status: OrderStatus, updated_time: int | None = None, symbol: str = "BTCUSDT") -> Order:
    return Order("o1", symbol, Side.BUY, OrderType.MARKET, Decimal("0.1"), created_time=1_000,
                 status=status, updated_time=updated_time)  # fmt: skip


def status(*, running: bool = True, error: str | None = None) -> Status:
    return Status(
        mode="paper", running=running, clock_time=0, symbols=SYMBOLS, timeframe="5m",
        strategy="adaptive", candles_processed=0, equity=Decimal(10_000), cash=Decimal(10_000),
        stopped_reason=None if running else "stopped", error=error,
    )  # fmt: skip


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_order_latency_runs_from_creation_to_the_venues_first_answer_only() -> None:
    metrics = Metrics("5m")

    metrics.handle(OrderUpdated(order(OrderStatus.PENDING_NEW)))
    metrics.handle(OrderUpdated(order(OrderStatus.NEW, updated_time=1_250)))
    metrics.handle(OrderUpdated(order(OrderStatus.NEW, updated_time=9_000)))  # an amendment
    metrics.handle(OrderUpdated(order(OrderStatus.FILLED, updated_time=12_000)))

    assert sample(metrics, "lootcapital_order_ack_latency_seconds_count") == 1
    assert sample(metrics, "lootcapital_order_ack_latency_seconds_sum") == 0.25


def test_a_rejection_answers_an_order_and_a_local_cancel_of_an_unsent_one_does_not() -> None:
    metrics = Metrics("5m")

    metrics.handle(OrderUpdated(order(OrderStatus.PENDING_NEW)))
    metrics.handle(OrderUpdated(order(OrderStatus.REJECTED, updated_time=3_000)))
    metrics.handle(OrderUpdated(replace(order(OrderStatus.PENDING_NEW), id="o2")))
    metrics.handle(OrderUpdated(replace(order(OrderStatus.CANCELED, 1_000), id="o2")))

    assert sample(metrics, "lootcapital_order_ack_latency_seconds_count") == 1
    assert sample(metrics, "lootcapital_order_ack_latency_seconds_sum") == 2.0


def test_exposure_is_signed_qty_times_mark_and_zero_for_flat_symbols() -> None:
    metrics = Metrics("5m")
    short = Position("BTCUSDT", qty=Decimal("-0.5"), entry_price=Decimal(100))
    unmarked = Position("SOLUSDT", qty=Decimal(2), entry_price=Decimal(20))
    views = [
        PositionView(short, Decimal(90), short.unrealized_pnl(Decimal(90))),
        PositionView(unmarked, None, Decimal(0)),
    ]

    metrics.set_engine(status(), views, [])

    assert sample(metrics, "lootcapital_exposure", symbol="BTCUSDT") == -45.0
    assert sample(metrics, "lootcapital_unrealized_pnl", symbol="BTCUSDT") == 5.0
    assert sample(metrics, "lootcapital_exposure", symbol="SOLUSDT") == 40.0  # at its entry
    assert sample(metrics, "lootcapital_exposure", symbol="ETHUSDT") == 0.0
    assert sample(metrics, "lootcapital_unrealized_pnl", symbol="ETHUSDT") == 0.0


def test_open_orders_are_counted_per_symbol_and_a_closed_position_drops_to_zero() -> None:
    metrics = Metrics("5m")
    long = Position("ETHUSDT", qty=Decimal(1), entry_price=Decimal(2_000))
    metrics.set_engine(status(), [PositionView(long, Decimal(2_100), Decimal(100))], [])

    working = [order(OrderStatus.NEW, symbol="ETHUSDT"), order(OrderStatus.PENDING_NEW, 1_000)]
    metrics.set_engine(status(), [], [*working, order(OrderStatus.NEW, symbol="ETHUSDT")])

    assert sample(metrics, "lootcapital_open_orders", symbol="ETHUSDT") == 2
    assert sample(metrics, "lootcapital_open_orders", symbol="BTCUSDT") == 1
    assert sample(metrics, "lootcapital_open_orders", symbol="SOLUSDT") == 0
    assert sample(metrics, "lootcapital_exposure", symbol="ETHUSDT") == 0.0


def test_engine_error_is_one_only_when_the_engine_stopped_on_an_error() -> None:
    metrics = Metrics("5m")
    seen = []
    for state in (status(), status(running=False), status(running=False, error="venue down")):
        metrics.set_engine(state, [], [])
        running, error = "lootcapital_engine_running", "lootcapital_engine_error"
        seen.append((sample(metrics, running), sample(metrics, error)))

    assert seen == [(1.0, 0.0), (0.0, 0.0), (0.0, 1.0)]


def test_the_bar_timeframe_is_exported_in_seconds() -> None:
    assert sample(Metrics("4h"), "lootcapital_bar_timeframe_seconds") == 14_400


def test_feature_error_counters_exist_at_zero_before_any_failure() -> None:
    metrics = Metrics("5m")
    view = PipelineView("BTCUSDT", "RANGING", 0.5, 40.0, 20.0, 1.1, {"regime": "on"},
                        {"regime": 0})  # fmt: skip

    metrics.set_pipeline([view])

    errors = sample(metrics, "lootcapital_feature_errors_total", symbol="BTCUSDT", feature="regime")
    assert errors == 0.0


class PagedOrders:
    """The order listing of a trading service, two orders a page, answering only open ones."""

    def __init__(self, orders: list[Order]) -> None:
        self.stored = orders

    def orders(self, *, statuses: Collection[OrderStatus], limit: int, cursor: str | None) -> Page:
        chosen = [o for o in self.stored if o.status in statuses]
        start = int(cursor or 0)
        end = start + min(limit, 2)
        return Page(chosen[start:end], str(end) if end < len(chosen) else None)


def test_open_orders_reads_every_page_of_the_orders_not_final() -> None:
    stored = [
        replace(order(s), id=f"o{i}")
        for i, s in enumerate((*OrderStatus, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED))
    ]
    service = cast(TradingService, PagedOrders(stored))

    found = open_orders(service)

    assert len(found) == 6  # three pages
    assert sorted(o.status for o in found) == sorted(
        [*(s for s in OrderStatus if not s.is_final), OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED]
    )
