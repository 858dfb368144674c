"""Prometheus metrics: counters fed by bus events, gauges from the service, HTTP timings."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from api.venue_metrics import VenueCollector
from domain.events import (
    EngineStarted,
    EquityUpdated,
    OrderFilled,
    OrderUpdated,
    PositionChanged,
    SignalGenerated,
)
from domain.futures import MarginReport
from domain.model import ExitReason, Order, OrderStatus
from domain.regime import Regime
from domain.risk import AlertKind, RiskAlert, StateChange, TradingState
from domain.strategies.base import PipelineView
from domain.timeframes import timeframe_ms
from domain.venues import ORDER_LATENCY_BOUNDS_S
from service_layer.engine import BatchOutcome
from service_layer.risk_service import RiskGauges
from service_layer.trading import PositionView, Status, TradingService

OPEN_STATUSES = tuple(s for s in OrderStatus if not s.is_final)
_ORDERS_PAGE = 500
_ACKS = frozenset(
    (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.REJECTED,
     OrderStatus.EXPIRED)
)  # fmt: skip
"""The venue's first answers to an order (a local cancel of a ``pending_new`` order is none)."""


def open_orders(service: TradingService) -> list[Order]:
    """Every order of ``service``'s run that is not final yet (as stored: all pages)."""
    orders: list[Order] = []
    cursor = None
    while True:
        page = service.orders(statuses=OPEN_STATUSES, limit=_ORDERS_PAGE, cursor=cursor)
        orders += page.items
        cursor = page.next_cursor
        if cursor is None:
            return orders


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
        self.trading_state = Gauge(
            "lootcapital_trading_state",
            "1 for the current trading state of each scope (account or symbol), else 0.",
            ["scope", "state"], registry=r,
        )  # fmt: skip
        self.drawdown = Gauge(
            "lootcapital_drawdown_ratio", "Equity's fall below its peak (fraction).", registry=r
        )
        self.var = Gauge(
            "lootcapital_var", "1-day historical VaR of the equity curve (fraction of equity).",
            ["confidence"], registry=r,
        )  # fmt: skip
        self.breaker_trips = Counter(
            "lootcapital_circuit_breaker_trips",
            "Trading-state changes to a more restrictive state, and unusual-volume alerts, by "
            "the breaker (or manual) that caused them.",
            ["breaker"], registry=r,
        )  # fmt: skip
        self.margin_ratio = Gauge(
            "lootcapital_margin_ratio",
            "Maintenance margin / margin balance (fraction; liquidation at 1).",
            registry=r,
        )
        self.liquidations = Counter(
            "lootcapital_liquidations", "Positions closed by liquidation.", registry=r
        )
        self.funding_paid = Gauge(
            "lootcapital_funding_paid_total",
            "Funding paid over the run (quote currency; funding received counts negative).",
            registry=r,
        )
        self.regime = Gauge(
            "lootcapital_regime",
            "1 for each symbol's confirmed market regime, 0 for the others (adaptive strategy).",
            ["symbol", "regime"],
            registry=r,
        )
        self.signal_confidence = Gauge(
            "lootcapital_signal_confidence",
            "The timeframe coordinator's confidence at the last bar, 0 to 1.",
            ["symbol"],
            registry=r,
        )
        self.threshold = Gauge(
            "lootcapital_threshold",
            "The adaptive threshold an entry must reach (adx: points, rvol: ratio).",
            ["symbol", "name"],
            registry=r,
        )
        self.volatility_percentile = Gauge(
            "lootcapital_volatility_percentile",
            "The 1h ATR(24) percentile over 30 days, percent.",
            ["symbol"],
            registry=r,
        )
        self.feature_errors = Counter(
            "lootcapital_feature_errors",
            "Failures of a pipeline feature (isolated: the pipeline went on without it).",
            ["symbol", "feature"],
            registry=r,
        )
        self.alerts = Counter(
            "lootcapital_alerts",
            "Alert deliveries by channel and result (delivered, retried, failed, dropped).",
            ["channel", "result"],
            registry=r,
        )
        self._add_engine_metrics()
        self.venues = VenueCollector()
        """The live venues' metrics (:meth:`VenueCollector.update` on each scrape)."""
        r.register(self.venues)
        self._feature_failures: dict[tuple[str, str], int] = {}
        self._awaiting_ack: dict[str, int] = {}  # pending_new order id -> created_time (ms)
        self._positions: dict[str, bool] = {}
        self._realized = 0.0
        self._candle_counters: dict[str, Counter] = {}  # per symbol: labels() costs a lookup

    def _add_engine_metrics(self) -> None:
        """The engine's and the account's gauges set on each scrape (:meth:`set_engine`), the
        time of the last processed bar and the order acknowledgement latency."""
        r = self.registry
        self.engine_running = Gauge(
            "lootcapital_engine_running", "1 while the engine runs, else 0.", registry=r
        )
        self.engine_error = Gauge(
            "lootcapital_engine_error",
            "1 when the engine stopped on an error (GET /api/v1/engine/status says which), else 0.",
            registry=r,
        )
        self.last_bar = Gauge(
            "lootcapital_last_bar_processed_timestamp_seconds",
            "Wall-clock Unix time at which the engine last processed a bar (or started, before "
            "its first bar; 0 before any start).",
            registry=r,
        )
        self.bar_timeframe = Gauge(
            "lootcapital_bar_timeframe_seconds", "Market time between two bars of the engine.",
            registry=r,
        )  # fmt: skip
        self.bar_timeframe.set(timeframe_ms(self.timeframe) / 1000)
        self.exposure = Gauge(
            "lootcapital_exposure",
            "Signed notional of each symbol's position, qty x mark (quote currency; short < 0).",
            ["symbol"], registry=r,
        )  # fmt: skip
        self.unrealized_pnl = Gauge(
            "lootcapital_unrealized_pnl",
            "Unrealized PnL of each symbol's position at its mark (quote currency).",
            ["symbol"], registry=r,
        )  # fmt: skip
        self.open_orders = Gauge(
            "lootcapital_open_orders",
            "Orders not final yet (pending_new, new, partially_filled, pending_cancel).",
            ["symbol"], registry=r,
        )  # fmt: skip
        self.order_ack = Histogram(
            "lootcapital_order_ack_latency_seconds",
            "Engine-clock time from an order's creation to the venue's first answer (accepted, "
            "filled, rejected or expired). 0 in paper mode: the simulated venue answers at once.",
            buckets=ORDER_LATENCY_BOUNDS_S,
            registry=r,
        )  # fmt: skip
        self.feed_stale = Gauge(
            "lootcapital_feed_stale",
            "1 while a symbol's live feed has had no closed bar for more than 2 bar periods, "
            "else 0 (live feeds only: a replay is never stale).",
            ["venue", "symbol"], registry=r,
        )  # fmt: skip

    def set_engine(
        self, status: Status, positions: Sequence[PositionView], orders: Sequence[Order]
    ) -> None:
        """Set the engine's and the account's gauges (read on each scrape): running, stopped
        on an error, equity; every traded symbol's exposure, unrealized PnL and open orders
        (0 when flat or none), from ``positions`` and the ``orders`` not final yet; with a live
        feed, whether each symbol's feed is stale."""
        self.engine_running.set(1.0 if status.running else 0.0)
        self.engine_error.set(1.0 if not status.running and status.error is not None else 0.0)
        self.equity.set(float(status.equity))
        exposure = dict.fromkeys(status.symbols, 0.0)
        unrealized = dict.fromkeys(status.symbols, 0.0)
        working = dict.fromkeys(status.symbols, 0)
        for view in positions:
            p = view.position
            exposure[p.symbol] = float(p.qty * (view.mark_price or p.entry_price))
            unrealized[p.symbol] = float(view.unrealized_pnl)
        for order in orders:
            working[order.symbol] = working.get(order.symbol, 0) + 1
        for symbol, value in exposure.items():
            self.exposure.labels(symbol).set(value)
            self.unrealized_pnl.labels(symbol).set(unrealized[symbol])
        for symbol, count in working.items():
            self.open_orders.labels(symbol).set(count)
        if status.feed_venue is not None:
            stale = {f.symbol for f in status.stale_feeds}
            for symbol in status.symbols:
                self.feed_stale.labels(status.feed_venue, symbol).set(float(symbol in stale))

    def on_batch(self, outcome: BatchOutcome, seconds: float) -> None:
        """Count a processed batch's bars, time them and note when it was processed."""
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
            self.last_bar.set_to_current_time()
        liquidated = sum(
            1 for t in outcome.changes.trades if t.exit_reason is ExitReason.LIQUIDATION
        )
        if liquidated:
            self.liquidations.inc(liquidated)

    def on_alert(self, channel: str, result: str) -> None:
        """Count one alert delivery's ``result`` on ``channel``."""
        self.alerts.labels(channel, result).inc()

    def set_margin(self, report: MarginReport) -> None:
        """Set the margin gauges from the balance breakdown (read on each scrape)."""
        if report.margin_ratio is not None:
            self.margin_ratio.set(float(report.margin_ratio))
        self.funding_paid.set(float(report.funding_paid))

    def handle(self, event: object) -> None:
        """Bus handler updating counters and gauges."""
        match event:
            case SignalGenerated(signal=s):
                self.signals.labels(s.symbol, str(s.direction)).inc()
            case OrderUpdated(order=o):
                if o.status in (OrderStatus.NEW, OrderStatus.FILLED, OrderStatus.CANCELED,
                                OrderStatus.REJECTED):  # fmt: skip
                    self.orders.labels(o.symbol, str(o.side), str(o.type), str(o.status)).inc()
                self._observe_ack(o)
            case OrderFilled(fill=f):
                self.fills.labels(f.symbol, str(f.side)).inc()
                self._realized += float(f.realized_pnl - f.fee)
                self.realized_pnl.set(self._realized)
            case PositionChanged(position=p):
                self._positions[p.symbol] = p.qty != 0
                self.open_positions.set(sum(self._positions.values()))
            case EquityUpdated(point=p):
                self.equity.set(float(p.equity))
            case EngineStarted():
                self.last_bar.set_to_current_time()
            case StateChange(scope=scope, from_state=before, to_state=after, source=source):
                if after.severity > before.severity:
                    self.breaker_trips.labels(source or "manual").inc()
                self._set_state(scope, after)
            case RiskAlert(kind=AlertKind.UNUSUAL_VOLUME):
                self.breaker_trips.labels("unusual_volume").inc()

    def set_risk(self, gauges: RiskGauges) -> None:
        """Set the risk gauges (read on each scrape: states, drawdown, VaR)."""
        for scope, state in gauges.states.items():
            self._set_state(scope, state)
        self.drawdown.set(gauges.drawdown)
        for confidence, var in gauges.var.items():
            if var is not None:
                self.var.labels(f"{confidence:g}").set(var)

    def set_pipeline(self, views: Sequence[PipelineView]) -> None:
        """Set the adaptive pipeline's gauges (read on each scrape) and count the features'
        new failures."""
        for view in views:
            for regime in Regime:
                self.regime.labels(view.symbol, regime.value).set(
                    1.0 if view.regime == regime.value else 0.0
                )
            self.signal_confidence.labels(view.symbol).set(view.confidence)
            self.threshold.labels(view.symbol, "adx").set(view.adx_threshold)
            self.threshold.labels(view.symbol, "rvol").set(view.rvol_threshold)
            self.volatility_percentile.labels(view.symbol).set(view.volatility_pct)
            for feature, total in view.failures.items():
                key = (view.symbol, feature)
                new = total - self._feature_failures.get(key, 0)
                # created at 0 before any failure, so that increase() sees the first one
                errors = self.feature_errors.labels(view.symbol, feature)
                if new > 0:
                    errors.inc(new)
                self._feature_failures[key] = total

    def _observe_ack(self, order: Order) -> None:
        """Time an order from its creation (``pending_new``) to the venue's first answer, in
        the engine's clock (market time; the wall clock with a live venue)."""
        if order.status is OrderStatus.PENDING_NEW:
            self._awaiting_ack[order.id] = order.created_time
            return
        created = self._awaiting_ack.pop(order.id, None)
        if created is not None and order.status in _ACKS and order.updated_time is not None:
            self.order_ack.observe(max(order.updated_time - created, 0) / 1000)

    def _set_state(self, scope: str, state: TradingState) -> None:
        for s in TradingState:
            self.trading_state.labels(scope, s.value).set(1.0 if s is state else 0.0)
