"""Reconciliation events: each difference between a live run's ledger and its venue.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 00:00:00

``reconciliation_events`` holds one row per difference that reconciliation found and repaired
(issue 9): its kind (``missed_fill``, ``unknown_order``, ``vanished_order``,
``unknown_position``, ``vanished_position``, ``position_mismatch``), the venue, the symbol,
the details shown to the user, at ``time`` (ms UTC). New, starts empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``reconciliation_events``."""
    op.create_table(
        "reconciliation_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("venue", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("details", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_reconciliation_events_run_id_time",
        "reconciliation_events",
        ["run_id", "time", "id"],
    )


def downgrade() -> None:
    """Drop ``reconciliation_events`` (the stored events are lost)."""
    op.drop_index("ix_reconciliation_events_run_id_time", table_name="reconciliation_events")
    op.drop_table("reconciliation_events")
