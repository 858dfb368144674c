"""Prometheus metrics: counters fed by bus events, gauges from the service, HTTP timings."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from domain.events import EquityUpdated, OrderFilled, OrderUpdated, PositionChanged, SignalGenerated
from domain.model import OrderStatus
from service_layer.engine import BatchOutcome


class Metrics:
    """The app's metrics in their own registry (so tests and several apps do not collide).

    ``timeframe`` labels the candle counter (the engine's bar timeframe).
    """

    def __init__(self, timeframe: str) -> None:
        self.timeframe = timeframe
        self.registry = CollectorRegistry()
        r = self.registry
        self.candles = Counter(
            "lootcapital_candles_processed", "Closed bars processed.", ["symbol", "timeframe"],
            registry=r,
        )  # fmt: skip
        self.signals = Counter(
            "lootcapital_signals", "Strategy signals.", ["symbol", "direction"], registry=r
        )
        self.orders = Counter(
            "lootcapital_orders", "Order state changes by final or new status.",
            ["symbol", "side", "type", "status"], registry=r,
        )  # fmt: skip
        self.fills = Counter("lootcapital_fills", "Fills.", ["symbol", "side"], registry=r)
        self.equity = Gauge("lootcapital_equity", "Account equity (quote currency).", registry=r)
        self.open_positions = Gauge("lootcapital_open_positions", "Open positions.", registry=r)
        self.realized_pnl = Gauge(
            "lootcapital_realized_pnl", "Realized PnL since start, net of fees.", registry=r
        )
        self.bar_seconds = Histogram(
            "lootcapital_bar_processing_seconds", "Engine time per processed bar.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )  # fmt: skip
        self.http = Histogram(
            "lootcapital_http_request_duration_seconds", "HTTP request duration.",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.ws_clients = Gauge(
            "lootcapital_ws_clients", "Connected WebSocket clients.", registry=r
        )
        self._positions: dict[str, bool] = {}
        self._realized = 0.0
        self._candle_counters: dict[str, Counter] = {}  # per symbol: labels() costs a lookup

    def on_batch(self, outcome: BatchOutcome, seconds: float) -> None:
        """Count a processed batch's bars and time them."""
        bars = 0
        counters = self._candle_counters
        for symbol, candles in outcome.bars.items():
            bars += len(candles)
            counter = counters.get(symbol)
            if counter is None:
                counter = counters[symbol] = self.candles.labels(symbol, self.timeframe)
            counter.inc(len(candles))
        if bars:
            self.bar_seconds.observe(seconds / bars)

    def handle(self, event: object) -> None:
        """Bus handler updating counters and gauges."""
        match event:
            case SignalGenerated(signal=s):
                self.signals.labels(s.symbol, str(s.direction)).inc()
            case OrderUpdated(order=o):
                if o.status in (OrderStatus.NEW, OrderStatus.FILLED, OrderStatus.CANCELED,
                                OrderStatus.REJECTED):  # fmt: skip
                    self.orders.labels(o.symbol, str(o.side), str(o.type), str(o.status)).inc()
            case OrderFilled(fill=f):
                self.fills.labels(f.symbol, str(f.side)).inc()
                self._realized += float(f.realized_pnl - f.fee)
                self.realized_pnl.set(self._realized)
            case PositionChanged(position=p):
                self._positions[p.symbol] = p.qty != 0
                self.open_positions.set(sum(self._positions.values()))
            case EquityUpdated(point=p):
                self.equity.set(float(p.equity))
