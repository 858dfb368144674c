"""Initial schema: orders, fills, trades, positions, equity, signals, runs.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

Money and quantity columns are NUMERIC(38, 18) on PostgreSQL and text on SQLite (whose NUMERIC is a
64-bit float); ``adapters.storage.sql.tables.ExactDecimal`` converts both to ``Decimal``. Times are
BIGINT ms UTC.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine[object]:
    # Written out rather than imported, so this revision never changes with the app code.
    return sa.Numeric(38, 18).with_variant(sa.String(), "sqlite")


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "orders",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("created_time", sa.BigInteger(), nullable=False),
        sa.Column("price", _money(), nullable=True),
        sa.Column("stop_price", _money(), nullable=True),
        sa.Column("client_order_id", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("filled_qty", _money(), nullable=False),
        sa.Column("avg_fill_price", _money(), nullable=True),
        sa.Column("updated_time", sa.BigInteger(), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("tag", sa.String(), nullable=False),
        sa.Column("reject_reason", sa.String(), nullable=True),
        sa.Column("stop_distance", _money(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_orders_symbol_created_time", "orders", ["symbol", "created_time"])
    op.create_index("ix_orders_client_order_id", "orders", ["client_order_id"])

    op.create_table(
        "fills",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("price", _money(), nullable=False),
        sa.Column("fee", _money(), nullable=False),
        sa.Column("liquidity", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("realized_pnl", _money(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name="fk_fills_order_id_orders",
            deferrable=True,
            initially="DEFERRED",
        ),
    )
    op.create_index("ix_fills_order_id", "fills", ["order_id"])

    op.create_table(
        "trades",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("entry_time", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", _money(), nullable=False),
        sa.Column("exit_time", sa.BigInteger(), nullable=False),
        sa.Column("exit_price", _money(), nullable=False),
        sa.Column("pnl", _money(), nullable=False),
        sa.Column("fees", _money(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trades_symbol_exit_time", "trades", ["symbol", "exit_time"])

    op.create_table(
        "positions",
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("entry_price", _money(), nullable=False),
        sa.Column("opened_time", sa.BigInteger(), nullable=True),
        sa.Column("entry_fees", _money(), nullable=False),
        sa.PrimaryKeyConstraint("symbol"),
    )

    op.create_table(
        "equity",
        sa.Column("time", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("equity", _money(), nullable=False),
        sa.Column("cash", _money(), nullable=False),
        sa.PrimaryKeyConstraint("time"),
    )

    op.create_table(
        "signals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("timeframe", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "symbol", "timeframe", "strategy", "time", name="uq_signals_symbol_timeframe_strategy"
        ),
    )
    op.create_index("ix_signals_symbol_time", "signals", ["symbol", "time"])

    op.create_table(
        "runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("symbols", sa.JSON(), nullable=False),
        sa.Column("timeframe", sa.String(), nullable=False),
        sa.Column("started_time", sa.BigInteger(), nullable=False),
        sa.Column("initial_cash", _money(), nullable=False),
        sa.Column("cash", _money(), nullable=False),
        sa.Column("last_bar_time", sa.JSON(), nullable=False),
        sa.Column("stopped_reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_mode_started_time", "runs", ["mode", "started_time"])


def downgrade() -> None:
    """Drop every table (children first)."""
    op.drop_index("ix_runs_mode_started_time", table_name="runs")
    op.drop_table("runs")
    op.drop_index("ix_signals_symbol_time", table_name="signals")
    op.drop_table("signals")
    op.drop_table("equity")
    op.drop_table("positions")
    op.drop_index("ix_trades_symbol_exit_time", table_name="trades")
    op.drop_table("trades")
    op.drop_index("ix_fills_order_id", table_name="fills")
    op.drop_table("fills")
    op.drop_index("ix_orders_client_order_id", table_name="orders")
    op.drop_index("ix_orders_symbol_created_time", table_name="orders")
    op.drop_table("orders")
