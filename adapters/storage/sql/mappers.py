"""Conversions between the SQL rows of :mod:`adapters.storage.sql.tables` and domain objects.

Enums are stored as their values and rebuilt from them; signal reasons become JSON objects
``{"component", "message", "values"}``. JSON has no NaN or infinity (PostgreSQL rejects them), so a
non-finite reason value is stored as the string ``"nan"``, ``"inf"`` or ``"-inf"`` and read back as
the float it was.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from adapters.storage.sql.tables import (
    EquityRow,
    FillRow,
    OrderRow,
    PositionRow,
    RunRow,
    SignalRow,
    TradeRow,
)
from domain.model import (
    Direction,
    EquityPoint,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Reason,
    Side,
    Signal,
    Trade,
)
from domain.ports import RunState


def order_to_row(order: Order) -> OrderRow:
    """The row that stores ``order``."""
    return OrderRow(
        id=order.id,
        symbol=order.symbol,
        side=order.side.value,
        type=order.type.value,
        qty=order.qty,
        created_time=order.created_time,
        price=order.price,
        stop_price=order.stop_price,
        client_order_id=order.client_order_id,
        status=order.status.value,
        filled_qty=order.filled_qty,
        avg_fill_price=order.avg_fill_price,
        updated_time=order.updated_time,
        reduce_only=order.reduce_only,
        tag=order.tag,
        reject_reason=order.reject_reason,
        stop_distance=order.stop_distance,
    )


def row_to_order(row: OrderRow) -> Order:
    """The order stored in ``row``."""
    return Order(
        id=row.id,
        symbol=row.symbol,
        side=Side(row.side),
        type=OrderType(row.type),
        qty=row.qty,
        created_time=row.created_time,
        price=row.price,
        stop_price=row.stop_price,
        client_order_id=row.client_order_id,
        status=OrderStatus(row.status),
        filled_qty=row.filled_qty,
        avg_fill_price=row.avg_fill_price,
        updated_time=row.updated_time,
        reduce_only=row.reduce_only,
        tag=row.tag,
        reject_reason=row.reject_reason,
        stop_distance=row.stop_distance,
    )


def fill_to_row(fill: Fill) -> FillRow:
    """The row that stores ``fill``."""
    return FillRow(
        id=fill.id,
        order_id=fill.order_id,
        symbol=fill.symbol,
        side=fill.side.value,
        qty=fill.qty,
        price=fill.price,
        fee=fill.fee,
        liquidity=fill.liquidity.value,
        time=fill.time,
        realized_pnl=fill.realized_pnl,
    )


def row_to_fill(row: FillRow) -> Fill:
    """The fill stored in ``row``."""
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


def trade_to_row(trade: Trade) -> TradeRow:
    """The row that stores ``trade``."""
    return TradeRow(
        id=trade.id,
        symbol=trade.symbol,
        side=trade.side.value,
        qty=trade.qty,
        entry_time=trade.entry_time,
        entry_price=trade.entry_price,
        exit_time=trade.exit_time,
        exit_price=trade.exit_price,
        pnl=trade.pnl,
        fees=trade.fees,
    )


def row_to_trade(row: TradeRow) -> Trade:
    """The trade stored in ``row``."""
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
    )


def position_to_row(position: Position) -> PositionRow:
    """The row that stores ``position``."""
    return PositionRow(
        symbol=position.symbol,
        qty=position.qty,
        entry_price=position.entry_price,
        opened_time=position.opened_time,
        entry_fees=position.entry_fees,
    )


def row_to_position(row: PositionRow) -> Position:
    """The position stored in ``row``."""
    return Position(
        symbol=row.symbol,
        qty=row.qty,
        entry_price=row.entry_price,
        opened_time=row.opened_time,
        entry_fees=row.entry_fees,
    )


def equity_to_row(point: EquityPoint) -> EquityRow:
    """The row that stores ``point``."""
    return EquityRow(time=point.time, equity=point.equity, cash=point.cash)


def row_to_equity(row: EquityRow) -> EquityPoint:
    """The equity point stored in ``row``."""
    return EquityPoint(time=row.time, equity=row.equity, cash=row.cash)


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


def signal_to_row(signal: Signal) -> SignalRow:
    """The row that stores ``signal`` (its ``id`` is assigned by the database)."""
    return SignalRow(
        symbol=signal.symbol,
        timeframe=signal.timeframe,
        time=signal.time,
        direction=signal.direction.value,
        confidence=float(signal.confidence),
        reasons=reasons_to_json(signal.reasons),
        strategy=signal.strategy,
    )


def row_to_signal(row: SignalRow) -> Signal:
    """The signal stored in ``row``."""
    return Signal(
        symbol=row.symbol,
        timeframe=row.timeframe,
        time=row.time,
        direction=Direction(row.direction),
        confidence=row.confidence,
        reasons=reasons_from_json(row.reasons),
        strategy=row.strategy,
    )


def run_to_row(run: RunState) -> RunRow:
    """The row that stores ``run``; parameters, symbols and bar times as JSON."""
    return RunRow(
        id=run.id,
        mode=run.mode,
        strategy=run.strategy,
        params=dict(run.params),
        symbols=list(run.symbols),
        timeframe=run.timeframe,
        started_time=run.started_time,
        initial_cash=run.initial_cash,
        cash=run.cash,
        last_bar_time={symbol: int(time) for symbol, time in run.last_bar_time.items()},
        stopped_reason=run.stopped_reason,
    )


def row_to_run(row: RunRow) -> RunState:
    """The run state stored in ``row``."""
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
    )


def row_values(row: SQLModel) -> dict[str, Any]:
    """Column name → value of a row instance, for Core ``INSERT`` statements.

    A primary key that is ``None`` (a database-assigned id) is left out.
    """
    table = sa.inspect(type(row)).local_table
    values = {column.name: getattr(row, column.name) for column in table.columns}
    for column in table.primary_key.columns:
        if values.get(column.name) is None:
            values.pop(column.name, None)
    return values
