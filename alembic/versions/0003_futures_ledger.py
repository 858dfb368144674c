"""Futures ledger: trades gain their exit reason; funding settlements get a table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:00:00

``trades.exit_reason`` (``signal``, ``stop``, ``take_profit``, ``liquidation``, ``time``,
``regime``, ``end``) is ``signal`` for the trades stored before this revision: the only
reason the kernel had then for a trade that was not closed by an exit leg; the stored exit
orders' tags still tell those apart. ``funding_payments`` holds one row per run, symbol and
funding time: the position held, the mark price and rate applied and the amount paid (positive:
the account paid; negative: it received).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine[object]:
    # Written out rather than imported, so this revision never changes with the app code.
    return sa.Numeric(38, 18).with_variant(sa.String(), "sqlite")


def upgrade() -> None:
    """Add ``trades.exit_reason`` and create ``funding_payments``."""
    with op.batch_alter_table("trades") as batch:
        batch.add_column(
            sa.Column("exit_reason", sa.String(), nullable=False, server_default="signal")
        )
    op.create_table(
        "funding_payments",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("mark", _money(), nullable=False),
        sa.Column("rate", _money(), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "symbol", "time"),
    )


def downgrade() -> None:
    """Drop ``funding_payments`` and ``trades.exit_reason`` (the payments are lost)."""
    op.drop_table("funding_payments")
    with op.batch_alter_table("trades") as batch:
        batch.drop_column("exit_reason")
