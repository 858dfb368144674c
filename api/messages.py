"""WebSocket messages ``{"type", "ts", "data"}`` of bus events, in the REST bodies' shapes.

``candle``, ``signal``, ``order``, ``fill``, ``position`` (with mark price and unrealized PnL),
``equity``, ``status`` (the body of ``GET /api/v1/status``, pushed on every start and stop,
end of data included), ``risk`` (a trading-state change or a risk alert, as ``GET
/api/v1/risk`` lists them), ``training`` (a training job's state at each step, the body of
``GET /api/v1/models/train/{job_id}``), ``alert`` (an alert as it fired, as ``GET
/api/v1/alerts`` lists it) and ``reconciliation`` (a difference between the ledger and
a live venue that reconciliation found and repaired: kind, venue, symbol, details, time).
``ts`` is the market clock (ms UTC) when the message was
built. ``backtest`` messages carry a backtest job's state as it runs (the body of ``POST
/api/v1/backtests``: ``progress`` 0 to 1, then ``done`` or ``failed``).
"""

from __future__ import annotations

from typing import Any

from api.alert_schemas import alert_out
from api.backtest_schemas import job_out
from api.model_schemas import training_job_out
from api.numbers import Numbers, numbers_of
from api.risk_schemas import event_out
from api.schemas import (
    candle_out,
    equity_out,
    fill_out,
    order_out,
    position_out,
    signal_out,
    status_out,
)
from domain.alerts import AlertRaised
from domain.events import (
    CandleClosed,
    EngineStarted,
    EngineStopped,
    EquityUpdated,
    OrderFilled,
    OrderUpdated,
    PositionChanged,
    SignalGenerated,
)
from domain.reconciliation import ReconciliationEvent
from domain.risk import RiskAlert, StateChange
from domain.timeframes import timeframe_ms
from service_layer.backtest_jobs import BacktestJob
from service_layer.trading import TradingService
from service_layer.training_jobs import TrainingJob


class WsMessages:
    """Builds the message of an event for the WebSocket clients of ``service``'s run."""

    def __init__(self, service: TradingService) -> None:
        self._service = service
        self._numbers: tuple[object, Numbers] | None = None

    def __call__(self, event: object) -> dict[str, Any] | None:
        """The message of ``event``, or None for events that are not pushed."""
        service = self._service
        kind, body = _body(event, service, self._numbers_of_engine())
        if body is None:
            return None
        return {"type": kind, "ts": service.engine.clock.now_ms(), "data": body}

    def _numbers_of_engine(self) -> Numbers:
        """The run's number formats, built again only when the kernel was rebuilt."""
        engine = self._service.engine
        if self._numbers is None or self._numbers[0] is not engine:
            self._numbers = (engine, numbers_of(engine))
        return self._numbers[1]


def _body(event: object, service: TradingService, n: Numbers) -> tuple[str, Any]:
    match event:
        case CandleClosed(symbol=symbol, timeframe=tf, candle=c):
            out = candle_out(symbol, tf, timeframe_ms(tf), c, n)
            return "candle", out.model_dump(mode="json")
        case SignalGenerated(signal=s):
            return "signal", signal_out(s).model_dump(mode="json")
        case OrderUpdated(order=o):
            return "order", order_out(o, n).model_dump(mode="json")
        case OrderFilled(fill=f):
            return "fill", fill_out(f, n).model_dump(mode="json")
        case PositionChanged(position=p, mark=mark):
            return "position", position_out(p, mark, n).model_dump(mode="json")
        case EquityUpdated(point=p):
            return "equity", equity_out(p, n).model_dump(mode="json")
        case EngineStarted() | EngineStopped():
            return "status", status_out(service.status(), n).model_dump(mode="json")
        case StateChange() | RiskAlert():
            return "risk", event_out(event).model_dump(mode="json")
        case TrainingJob():
            return "training", training_job_out(event).model_dump(mode="json")
        case BacktestJob():
            return "backtest", job_out(event).model_dump(mode="json")
        case AlertRaised(record=record):
            return "alert", alert_out(record).model_dump(mode="json")
        case ReconciliationEvent(kind=kind, venue=venue, symbol=symbol, details=d, time=t):
            return "reconciliation", {
                "kind": str(kind), "venue": venue, "symbol": symbol, "details": d, "time": t,
            }  # fmt: skip
    return "", None
