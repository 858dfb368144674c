"""Runs own their rows; orders gain time in force, venue id, link id, trailing offset and exits.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01 00:00:00

Every row of orders, fills, trades, positions, equity and signals gets a ``run_id``; rows stored
before this revision get the id of the most recently started run in ``runs``, or ``"legacy"``
when there is none. Positions become unique per (run_id, symbol), equity per (run_id, time),
signals per (run_id, symbol, timeframe, strategy, time).

Orders: ``stop_distance`` moves into the new JSON column ``exits`` as
``{"stop_distance": "<decimal string>"}``; ``client_order_id`` (a user-given id, no longer a
separate field: the order id is the client id now) is kept as ``legacy_client_order_id`` so no
data is lost; ``time_in_force`` is ``"gtc"`` for existing orders. Runs gain ``state`` (JSON,
``{}``), ``candles_processed`` (0) and ``error`` (null).

Every step is plain SQL over the stored rows, so the data is migrated inside the database. On
SQLite the tables are rebuilt (``batch_alter_table``); ``fills`` is copied aside and recreated
first, because rebuilding ``orders`` under a live foreign key from ``fills`` would orphan it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUN_ID = "COALESCE((SELECT id FROM runs ORDER BY started_time DESC, id DESC LIMIT 1), 'legacy')"
"""SQL for the run that existing rows are given: the latest started, or ``'legacy'``."""

_FILL_COLUMNS = "id, order_id, symbol, side, qty, price, fee, liquidity, time, realized_pnl"


def _money() -> sa.types.TypeEngine[object]:
    # Written out rather than imported, so this revision never changes with the app code.
    return sa.Numeric(38, 18).with_variant(sa.String(), "sqlite")


def _is_sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def _add_run_id(table: str) -> None:
    """Add ``run_id``, filled for the existing rows (made NOT NULL by the caller's batch)."""
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("run_id", sa.String(), nullable=True))
    op.execute(f"UPDATE {table} SET run_id = {_RUN_ID}")


def _upgrade_keyed(table: str, key: str) -> None:
    """Positions and equity: ``run_id`` joins the primary key, as ``(run_id, key)``.

    PostgreSQL named the 0001 key ``<table>_pkey``; SQLite's is unnamed and goes with the
    rebuild. The new key keeps PostgreSQL's default name on both.
    """
    _add_run_id(table)
    with warnings.catch_warnings():
        # SQLite's rebuild copies ``key`` with its old primary_key flag; SQLAlchemy warns that
        # the new, wider key overrides it, which is the intent.
        warnings.filterwarnings("ignore", ".*as primary_key=True, not matching", sa.exc.SAWarning)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("run_id", existing_type=sa.String(), nullable=False)
            if not _is_sqlite():
                batch.drop_constraint(f"{table}_pkey", type_="primary")
            batch.create_primary_key(f"{table}_pkey", ["run_id", key])


def _upgrade_runs() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("state", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch.add_column(
            sa.Column(
                "candles_processed", sa.BigInteger(), nullable=False, server_default=sa.text("0")
            )
        )
        batch.add_column(sa.Column("error", sa.String(), nullable=True))


def _save_fills() -> None:
    op.execute(f"CREATE TABLE _fills_0001 AS SELECT {_FILL_COLUMNS} FROM fills")
    op.drop_index("ix_fills_order_id", table_name="fills")
    op.drop_table("fills")


def _exits_from_stop_distance() -> str:
    if _is_sqlite():
        # 0001 stored money on SQLite as exact text without trailing zeros.
        return "json_object('stop_distance', stop_distance)"
    return "json_build_object('stop_distance', trim_scale(stop_distance)::text)"


def _upgrade_orders() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("run_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("time_in_force", sa.String(), nullable=True))
        batch.add_column(sa.Column("venue_order_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("link_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("trailing_offset", _money(), nullable=True))
        batch.add_column(sa.Column("exits", sa.JSON(), nullable=True))
    op.execute(f"UPDATE orders SET run_id = {_RUN_ID}, time_in_force = 'gtc'")
    op.execute(
        f"UPDATE orders SET exits = {_exits_from_stop_distance()} WHERE stop_distance IS NOT NULL"
    )
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_client_order_id")
        batch.drop_index("ix_orders_symbol_created_time")
        batch.alter_column("run_id", existing_type=sa.String(), nullable=False)
        batch.alter_column("time_in_force", existing_type=sa.String(), nullable=False)
        batch.alter_column(
            "client_order_id",
            new_column_name="legacy_client_order_id",
            existing_type=sa.String(),
            existing_nullable=True,
        )
        batch.drop_column("stop_distance")
        batch.create_index("ix_orders_run_id_created_time", ["run_id", "created_time", "id"])
        batch.create_index(
            "ix_orders_run_id_symbol_created_time", ["run_id", "symbol", "created_time", "id"]
        )
        batch.create_index("ix_orders_run_id_status", ["run_id", "status"])


def _restore_fills() -> None:
    op.create_table(
        "fills",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
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
    # Indexes first: PostgreSQL refuses to index a table with pending (deferred) FK checks.
    op.create_index("ix_fills_order_id", "fills", ["order_id"])
    op.create_index("ix_fills_run_id_time", "fills", ["run_id", "time", "id"])
    op.execute(
        f"INSERT INTO fills (run_id, {_FILL_COLUMNS}) "
        f"SELECT {_RUN_ID}, {_FILL_COLUMNS} FROM _fills_0001"
    )
    op.drop_table("_fills_0001")


def _upgrade_trades() -> None:
    _add_run_id("trades")
    with op.batch_alter_table("trades") as batch:
        batch.alter_column("run_id", existing_type=sa.String(), nullable=False)
        batch.drop_index("ix_trades_symbol_exit_time")
        batch.create_index("ix_trades_run_id_exit_time", ["run_id", "exit_time", "id"])
        batch.create_index(
            "ix_trades_run_id_symbol_exit_time", ["run_id", "symbol", "exit_time", "id"]
        )


def _upgrade_signals() -> None:
    _add_run_id("signals")
    with op.batch_alter_table("signals") as batch:
        batch.alter_column("run_id", existing_type=sa.String(), nullable=False)
        batch.drop_constraint("uq_signals_symbol_timeframe_strategy", type_="unique")
        batch.drop_index("ix_signals_symbol_time")
        batch.create_unique_constraint(
            "uq_signals_run_id_symbol_timeframe_strategy_time",
            ["run_id", "symbol", "timeframe", "strategy", "time"],
        )
        batch.create_index("ix_signals_run_id_time", ["run_id", "time", "id"])
        batch.create_index("ix_signals_run_id_symbol_time", ["run_id", "symbol", "time", "id"])


def upgrade() -> None:
    """Give every row a run, and add the new order and run columns, keeping all data."""
    _upgrade_runs()
    _save_fills()
    _upgrade_orders()
    _restore_fills()
    _upgrade_trades()
    _upgrade_keyed("positions", "symbol")
    _upgrade_keyed("equity", "time")
    _upgrade_signals()


def downgrade() -> None:
    """Not supported: 0001 holds one run's rows, so going back would drop the other runs'.

    Raises
    ------
    NotImplementedError
        Always; restore a backup taken before the upgrade instead.
    """
    raise NotImplementedError(
        "revision 0002 cannot be downgraded: the 0001 schema holds the rows of one run only "
        "(positions per symbol, equity per time), so the other runs' rows would be lost; "
        "restore a backup of the database taken before upgrading"
    )
