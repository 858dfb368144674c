"""Request and response bodies of the HTTP API, and domain → JSON conversion.

Prices, quantities and money are decimal strings (no float rounding); times are int ms UTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.candles import Candles
from domain.events import (
    CandleClosed,
    EngineStopped,
    EquityUpdated,
    OrderFilled,
    OrderUpdated,
    PositionChanged,
    SignalGenerated,
)
from domain.model import EquityPoint, Fill, Order, Position, Signal, Trade
from service_layer.trading import PositionView, Status

PositiveDecimal = Annotated[Decimal, Field(gt=0, max_digits=38, decimal_places=18)]


class OrderIn(BaseModel):
    """``POST /api/v1/orders`` body. ``price`` is required for limit orders, ``stop_price`` for
    stop orders; quantities in base asset, prices in quote currency."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=40)
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop"]
    qty: PositiveDecimal
    price: PositiveDecimal | None = None
    stop_price: PositiveDecimal | None = None
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _prices_match_type(self) -> OrderIn:
        if self.type == "limit" and self.price is None:
            raise ValueError("price is required for a limit order")
        if self.type == "stop" and self.stop_price is None:
            raise ValueError("stop_price is required for a stop order")
        if self.type != "limit" and self.price is not None:
            raise ValueError(f"price is only allowed on limit orders, not {self.type}")
        if self.type != "stop" and self.stop_price is not None:
            raise ValueError(f"stop_price is only allowed on stop orders, not {self.type}")
        return self


def _d(x: Decimal | None) -> str | None:
    return None if x is None else format(x.normalize(), "f")


def order_json(o: Order) -> dict:
    """An order as JSON."""
    return {
        "id": o.id,
        "client_order_id": o.client_order_id,
        "symbol": o.symbol,
        "side": str(o.side),
        "type": str(o.type),
        "qty": _d(o.qty),
        "price": _d(o.price),
        "stop_price": _d(o.stop_price),
        "status": str(o.status),
        "filled_qty": _d(o.filled_qty),
        "avg_fill_price": _d(o.avg_fill_price),
        "reduce_only": o.reduce_only,
        "time_in_force": str(o.time_in_force),
        "venue_order_id": o.venue_order_id,
        "link_id": o.link_id,
        "trailing_offset": _d(o.trailing_offset),
        "tag": o.tag,
        "reject_reason": o.reject_reason,
        "created_time": o.created_time,
        "updated_time": o.updated_time,
    }


def fill_json(f: Fill) -> dict:
    """A fill as JSON."""
    return {
        "id": f.id,
        "order_id": f.order_id,
        "symbol": f.symbol,
        "side": str(f.side),
        "qty": _d(f.qty),
        "price": _d(f.price),
        "fee": _d(f.fee),
        "liquidity": str(f.liquidity),
        "realized_pnl": _d(f.realized_pnl),
        "time": f.time,
    }


def trade_json(t: Trade) -> dict:
    """A closed round trip as JSON (``pnl`` net of ``fees``)."""
    return {
        "id": t.id,
        "symbol": t.symbol,
        "side": str(t.side),
        "qty": _d(t.qty),
        "entry_time": t.entry_time,
        "entry_price": _d(t.entry_price),
        "exit_time": t.exit_time,
        "exit_price": _d(t.exit_price),
        "pnl": _d(t.pnl),
        "fees": _d(t.fees),
    }


def position_json(p: Position, mark: Decimal | None = None, upnl: Decimal | None = None) -> dict:
    """A position as JSON (``qty`` signed: long > 0)."""
    return {
        "symbol": p.symbol,
        "qty": _d(p.qty),
        "side": str(p.direction),
        "entry_price": _d(p.entry_price),
        "opened_time": p.opened_time,
        "mark_price": _d(mark),
        "unrealized_pnl": _d(upnl),
    }


def position_view_json(v: PositionView) -> dict:
    """A position with mark and unrealized PnL as JSON."""
    return position_json(v.position, v.mark_price, v.unrealized_pnl)


def equity_json(p: EquityPoint) -> dict:
    """An equity snapshot as JSON."""
    return {"time": p.time, "equity": _d(p.equity), "cash": _d(p.cash)}


def signal_json(s: Signal) -> dict:
    """A signal with its reasons as JSON."""
    return {
        "symbol": s.symbol,
        "timeframe": s.timeframe,
        "time": s.time,
        "direction": str(s.direction),
        "confidence": s.confidence,
        "strategy": s.strategy,
        "reasons": [
            {"component": r.component, "message": r.message, "values": r.values} for r in s.reasons
        ],
    }


def status_json(s: Status) -> dict:
    """Engine status as JSON."""
    return {
        "mode": s.mode,
        "running": s.running,
        "clock_time": s.clock_time,
        "symbols": list(s.symbols),
        "timeframe": s.timeframe,
        "strategy": s.strategy,
        "candles_processed": s.candles_processed,
        "equity": _d(s.equity),
        "cash": _d(s.cash),
        "stopped_reason": s.stopped_reason,
        "error": s.error,
    }


def candles_json(c: Candles) -> list[dict]:
    """Bars as JSON objects (``open_time`` ms UTC, prices as numbers)."""
    return [
        {
            "open_time": int(c.open_time[i]),
            "open": float(c.open[i]),
            "high": float(c.high[i]),
            "low": float(c.low[i]),
            "close": float(c.close[i]),
            "volume": float(c.volume[i]),
        }
        for i in range(len(c))
    ]


def event_message(event: object, ts: int) -> dict | None:
    """A bus event as a WebSocket message ``{"type", "ts", "data"}`` (None: not pushed)."""
    match event:
        case CandleClosed(symbol=symbol, timeframe=tf, candle=c):
            data = {"symbol": symbol, "timeframe": tf, "open_time": c.open_time, "open": c.open,
                    "high": c.high, "low": c.low, "close": c.close, "volume": c.volume}  # fmt: skip
            return {"type": "candle", "ts": ts, "data": data}
        case SignalGenerated(signal=s):
            return {"type": "signal", "ts": ts, "data": signal_json(s)}
        case OrderUpdated(order=o):
            return {"type": "order", "ts": ts, "data": order_json(o)}
        case OrderFilled(fill=f):
            return {"type": "fill", "ts": ts, "data": fill_json(f)}
        case PositionChanged(position=p):
            return {"type": "position", "ts": ts, "data": position_json(p)}
        case EquityUpdated(point=p):
            return {"type": "equity", "ts": ts, "data": equity_json(p)}
        case EngineStopped(reason=reason, time=t):
            return {"type": "status", "ts": ts, "data": {"running": False, "reason": reason,
                                                         "time": t}}  # fmt: skip
    return None
