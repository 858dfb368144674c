"""Conversions between SQL rows (:mod:`adapters.storage.sql.tables`) and domain objects.

Writes go through ``*_values`` functions that return the column → value dict of a Core
``INSERT`` (with the owning ``run_id``); reads through ``*_from_row`` functions that take a Core
result row holding the columns listed in the matching ``*_COLUMNS`` tuple. Enums are stored as
their values. Money stays ``Decimal`` all the way: columns are exact (``ExactDecimal``), and the
decimals inside JSON (exit plans) are strings, never floats.

Signal reasons become JSON objects ``{"component", "message", "values"}``. JSON has no NaN or
infinity (PostgreSQL rejects them), so a non-finite reason value is stored as the string
``"nan"``, ``"inf"`` or ``"-inf"`` and read back as the float it was.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from domain.funding import FundingPayment
from domain.model import (
    Direction,
    EquityPoint,
    ExitPlan,
    ExitReason,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Reason,
    Side,
    Signal,
    TakeProfit,
    TimeInForce,
    Trade,
)
from domain.ports import LimitsChange, RiskRecord, RunState
from domain.risk import AlertKind, RiskAlert, RiskEvent, StateChange, TradingState

ORDER_COLUMNS = (
    "id", "symbol", "side", "type", "qty", "created_time", "price", "stop_price", "status",
    "filled_qty", "avg_fill_price", "updated_time", "reduce_only", "tag", "reject_reason",
    "time_in_force", "venue_order_id", "link_id", "trailing_offset", "exits",
)  # fmt: skip
"""Order columns the domain reads, in :class:`~domain.model.Order` field order."""
FILL_COLUMNS = (
    "id", "order_id", "symbol", "side", "qty", "price", "fee", "liquidity", "time",
    "realized_pnl",
)  # fmt: skip
"""Fill columns, in :class:`~domain.model.Fill` field order."""
TRADE_COLUMNS = (
    "id", "symbol", "side", "qty", "entry_time", "entry_price", "exit_time", "exit_price",
    "pnl", "fees", "exit_reason",
)  # fmt: skip
"""Trade columns, in :class:`~domain.model.Trade` field order."""
FUNDING_COLUMNS = ("time", "symbol", "qty", "mark", "rate", "amount")
"""Funding payment columns, in :class:`~domain.funding.FundingPayment` field order."""
POSITION_COLUMNS = ("symbol", "qty", "entry_price", "opened_time", "entry_fees")
"""Position columns, in :class:`~domain.model.Position` field order."""
EQUITY_COLUMNS = ("time", "equity", "cash")
"""Equity columns, in :class:`~domain.model.EquityPoint` field order."""
SIGNAL_COLUMNS = (
    "symbol", "timeframe", "time", "direction", "confidence", "reasons", "strategy",
)  # fmt: skip
"""Signal columns, in :class:`~domain.model.Signal` field order."""
RUN_COLUMNS = (
    "id", "mode", "strategy", "params", "symbols", "timeframe", "started_time", "initial_cash",
    "cash", "last_bar_time", "stopped_reason", "state", "candles_processed", "error",
)  # fmt: skip
"""Run columns, in :class:`~domain.ports.RunState` field order."""


# --- exit plans -------------------------------------------------------------------------------


def exits_to_json(plan: ExitPlan | None) -> dict[str, Any] | None:
    """``plan`` as JSON with decimal strings; keys of absent exits are left out.

    ``ExitPlan(stop_distance=Decimal("1.5"), take_profits=(TakeProfit(Decimal(3),
    Decimal("0.5")),))`` → ``{"stop_distance": "1.5", "take_profits": [{"distance": "3",
    "fraction": "0.5"}]}``; an empty plan → ``{}``; None → None.
    """
    if plan is None:
        return None
    data: dict[str, Any] = {}
    if plan.stop_distance is not None:
        data["stop_distance"] = str(plan.stop_distance)
    if plan.take_profits:
        data["take_profits"] = [
            {"distance": str(tp.distance), "fraction": str(tp.fraction)} for tp in plan.take_profits
        ]
    if plan.trailing_distance is not None:
        data["trailing_distance"] = str(plan.trailing_distance)
    return data


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def exits_from_json(data: dict[str, Any] | None) -> ExitPlan | None:
    """The plan that :func:`exits_to_json` stored (missing keys: no such exit).

    Raises
    ------
    ValueError
        If the stored plan is invalid (see :class:`~domain.model.ExitPlan`).
    """
    if data is None:
        return None
    return ExitPlan(
        stop_distance=_decimal(data.get("stop_distance")),
        take_profits=tuple(
            TakeProfit(Decimal(tp["distance"]), Decimal(tp["fraction"]))
            for tp in data.get("take_profits", ())
        ),
        trailing_distance=_decimal(data.get("trailing_distance")),
    )


# --- orders, fills, trades, positions, equity -------------------------------------------------


def order_values(order: Order, run_id: str) -> dict[str, Any]:
    """The columns that store ``order`` for run ``run_id``."""
    return {
        "id": order.id,
        "run_id": run_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "qty": order.qty,
        "created_time": order.created_time,
        "price": order.price,
        "stop_price": order.stop_price,
        "status": order.status.value,
        "filled_qty": order.filled_qty,
        "avg_fill_price": order.avg_fill_price,
        "updated_time": order.updated_time,
        "reduce_only": order.reduce_only,
        "tag": order.tag,
        "reject_reason": order.reject_reason,
        "time_in_force": order.time_in_force.value,
        "venue_order_id": order.venue_order_id,
        "link_id": order.link_id,
        "trailing_offset": order.trailing_offset,
        "exits": exits_to_json(order.exits),
    }


def order_from_row(row: Any) -> Order:
    """The order in ``row`` (the :data:`ORDER_COLUMNS`)."""
    return Order(
        id=row.id,
        symbol=row.symbol,
        side=Side(row.side),
        type=OrderType(row.type),
        qty=row.qty,
        created_time=row.created_time,
        price=row.price,
        stop_price=row.stop_price,
        status=OrderStatus(row.status),
        filled_qty=row.filled_qty,
        avg_fill_price=row.avg_fill_price,
        updated_time=row.updated_time,
        reduce_only=bool(row.reduce_only),
        tag=row.tag,
        reject_reason=row.reject_reason,
        time_in_force=TimeInForce(row.time_in_force),
        venue_order_id=row.venue_order_id,
        link_id=row.link_id,
        trailing_offset=row.trailing_offset,
        exits=exits_from_json(row.exits),
    )


def fill_values(fill: Fill, run_id: str) -> dict[str, Any]:
    """The columns that store ``fill`` for run ``run_id``."""
    return {
        "id": fill.id,
        "run_id": run_id,
        "order_id": fill.order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": fill.qty,
        "price": fill.price,
        "fee": fill.fee,
        "liquidity": fill.liquidity.value,
        "time": fill.time,
        "realized_pnl": fill.realized_pnl,
    }


def fill_from_row(row: Any) -> Fill:
    """The fill in ``row`` (the :data:`FILL_COLUMNS`)."""
    return Fill(
        id=row.id,
        order_id=row.order_id,
        symbol=row.symbol,
        side=Side(row.side),
        qty=row.qty,
        price=row.price,
        fee=row.fee,
        liquidity=Liquidity(row.liquidity),
        time=row.time,
        realized_pnl=row.realized_pnl,
    )


def trade_values(trade: Trade, run_id: str) -> dict[str, Any]:
    """The columns that store ``trade`` for run ``run_id``."""
    return {
        "id": trade.id,
        "run_id": run_id,
        "symbol": trade.symbol,
        "side": trade.side.value,
        "qty": trade.qty,
        "entry_time": trade.entry_time,
        "entry_price": trade.entry_price,
        "exit_time": trade.exit_time,
        "exit_price": trade.exit_price,
        "pnl": trade.pnl,
        "fees": trade.fees,
        "exit_reason": trade.exit_reason.value,
    }


def trade_from_row(row: Any) -> Trade:
    """The trade in ``row`` (the :data:`TRADE_COLUMNS`)."""
    return Trade(
        id=row.id,
        symbol=row.symbol,
        side=Side(row.side),
        qty=row.qty,
        entry_time=row.entry_time,
        entry_price=row.entry_price,
        exit_time=row.exit_time,
        exit_price=row.exit_price,
        pnl=row.pnl,
        fees=row.fees,
        exit_reason=ExitReason(row.exit_reason),
    )


def funding_values(payment: FundingPayment, run_id: str) -> dict[str, Any]:
    """The columns that store ``payment`` for run ``run_id``."""
    return {
        "run_id": run_id,
        "symbol": payment.symbol,
        "time": payment.time_ms,
        "qty": payment.qty,
        "mark": payment.mark,
        "rate": payment.rate,
        "amount": payment.amount,
    }


def funding_from_row(row: Any) -> FundingPayment:
    """The funding payment in ``row`` (the :data:`FUNDING_COLUMNS`)."""
    return FundingPayment(row.time, row.symbol, row.qty, row.mark, row.rate, row.amount)


def position_values(position: Position, run_id: str) -> dict[str, Any]:
    """The columns that store ``position`` for run ``run_id``."""
    return {
        "run_id": run_id,
        "symbol": position.symbol,
        "qty": position.qty,
        "entry_price": position.entry_price,
        "opened_time": position.opened_time,
        "entry_fees": position.entry_fees,
    }


def position_from_row(row: Any) -> Position:
    """The position in ``row`` (the :data:`POSITION_COLUMNS`)."""
    return Position(row.symbol, row.qty, row.entry_price, row.opened_time, row.entry_fees)


def equity_values(point: EquityPoint, run_id: str) -> dict[str, Any]:
    """The columns that store ``point`` for run ``run_id``."""
    return {"run_id": run_id, "time": point.time, "equity": point.equity, "cash": point.cash}


def equity_from_row(row: Any) -> EquityPoint:
    """The equity point in ``row`` (the :data:`EQUITY_COLUMNS`)."""
    return EquityPoint(row.time, row.equity, row.cash)


# --- signals ----------------------------------------------------------------------------------


def _encode_number(value: float) -> float | str:
    number = float(value)  # numpy scalars and ints become plain floats
    return number if math.isfinite(number) else str(number)


def reasons_to_json(reasons: tuple[Reason, ...]) -> list[dict[str, Any]]:
    """``reasons`` as a JSON-ready list of ``{"component", "message", "values"}`` objects.

    Values are coerced to ``float``; NaN and ±infinity become the strings ``"nan"``/``"inf"``/
    ``"-inf"`` because JSON (and PostgreSQL's ``json`` type) cannot hold them.
    """
    return [
        {
            "component": reason.component,
            "message": reason.message,
            "values": {key: _encode_number(value) for key, value in reason.values.items()},
        }
        for reason in reasons
    ]


def reasons_from_json(items: list[dict[str, Any]]) -> tuple[Reason, ...]:
    """The reasons that :func:`reasons_to_json` stored, values back as floats."""
    return tuple(
        Reason(
            component=item["component"],
            message=item["message"],
            values={key: float(value) for key, value in item.get("values", {}).items()},
        )
        for item in items
    )


def signal_values(signal: Signal, run_id: str) -> dict[str, Any]:
    """The columns that store ``signal`` for run ``run_id`` (the database assigns ``id``)."""
    return {
        "run_id": run_id,
        "symbol": signal.symbol,
        "timeframe": signal.timeframe,
        "time": signal.time,
        "direction": signal.direction.value,
        "confidence": float(signal.confidence),
        "reasons": reasons_to_json(signal.reasons),
        "strategy": signal.strategy,
    }


def signal_from_row(row: Any) -> Signal:
    """The signal in ``row`` (the :data:`SIGNAL_COLUMNS`)."""
    return Signal(
        symbol=row.symbol,
        timeframe=row.timeframe,
        time=row.time,
        direction=Direction(row.direction),
        confidence=row.confidence,
        reasons=reasons_from_json(row.reasons),
        strategy=row.strategy,
    )


# --- runs -------------------------------------------------------------------------------------


def run_values(run: RunState) -> dict[str, Any]:
    """The columns that store ``run``; parameters, symbols, bar times and state as JSON."""
    return {
        "mode": run.mode,
        "strategy": run.strategy,
        "params": dict(run.params),
        "symbols": list(run.symbols),
        "timeframe": run.timeframe,
        "started_time": run.started_time,
        "initial_cash": run.initial_cash,
        **run_progress_values(run),
    }


def run_progress_values(run: RunState) -> dict[str, Any]:
    """The columns of ``run`` that change while it runs (with its ``id``)."""
    return {
        "id": run.id,
        "cash": run.cash,
        "last_bar_time": {symbol: int(time) for symbol, time in run.last_bar_time.items()},
        "stopped_reason": run.stopped_reason,
        "state": run.state,
        "candles_processed": run.candles_processed,
        "error": run.error,
    }


def run_from_row(row: Any) -> RunState:
    """The run state in ``row`` (the :data:`RUN_COLUMNS`)."""
    return RunState(
        id=row.id,
        mode=row.mode,
        strategy=row.strategy,
        params=dict(row.params),
        symbols=tuple(row.symbols),
        timeframe=row.timeframe,
        started_time=row.started_time,
        initial_cash=row.initial_cash,
        cash=row.cash,
        last_bar_time={symbol: int(time) for symbol, time in row.last_bar_time.items()},
        stopped_reason=row.stopped_reason,
        state=row.state,
        candles_processed=row.candles_processed,
        error=row.error,
    )


# --- risk -------------------------------------------------------------------------------------

RISK_EVENT_COLUMNS = (
    "time", "scope", "kind", "from_state", "to_state", "reason", "source", "value", "who",
)  # fmt: skip
"""Risk event columns (a state change or an alert, and who caused it by hand)."""
LIMITS_COLUMNS = ("time", "who", "limits")
"""Risk limit change columns, in :class:`~domain.ports.LimitsChange` field order."""
STATE_KIND = "state"
"""The ``kind`` of a stored trading-state change (an alert's kind is its own)."""


def risk_event_values(event: RiskEvent, who: str | None, run_id: str) -> dict[str, Any]:
    """The columns that store ``event`` (caused by hand by ``who``) for run ``run_id``."""
    if isinstance(event, StateChange):
        return {
            "run_id": run_id, "time": event.time, "scope": event.scope, "kind": STATE_KIND,
            "from_state": event.from_state.value, "to_state": event.to_state.value,
            "reason": event.reason, "source": event.source, "value": None, "who": who,
        }  # fmt: skip
    return {
        "run_id": run_id, "time": event.time, "scope": event.scope, "kind": event.kind.value,
        "from_state": None, "to_state": None, "reason": event.message,
        "source": event.kind.value,
        "value": float(event.value) if math.isfinite(event.value) else None, "who": who,
    }  # fmt: skip


def risk_record_from_row(row: Any) -> RiskRecord:
    """The risk event in ``row`` (the :data:`RISK_EVENT_COLUMNS`)."""
    event: RiskEvent
    if row.kind == STATE_KIND:
        event = StateChange(
            row.scope, TradingState(row.from_state), TradingState(row.to_state), row.reason,
            row.time, row.source,
        )  # fmt: skip
    else:
        value = math.nan if row.value is None else float(row.value)
        event = RiskAlert(row.scope, AlertKind(row.kind), row.reason, row.time, value)
    return RiskRecord(event, row.who)


def limits_values(change: LimitsChange, run_id: str) -> dict[str, Any]:
    """The columns that store ``change`` for run ``run_id``."""
    return {"run_id": run_id, "time": change.time, "who": change.who, "limits": change.limits}


def limits_from_row(row: Any) -> LimitsChange:
    """The limits change in ``row`` (the :data:`LIMITS_COLUMNS`)."""
    return LimitsChange(row.time, row.who, dict(row.limits))
