"""The alert log: each alert of a run as it fired, and what became of its delivery.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 00:00:00

``alerts`` holds one row per alert (issue 10): the rule that raised it, its severity, title,
message and data (JSON), at ``time`` (ms UTC, market clock), with the channels it was sent to
and those that took it or refused it (JSON lists of channel names). New, starts empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``alerts``."""
    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("delivered", sa.JSON(), nullable=False),
        sa.Column("failed", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_run_id_time", "alerts", ["run_id", "time", "id"])


def downgrade() -> None:
    """Drop ``alerts`` (the stored alert log is lost)."""
    op.drop_index("ix_alerts_run_id_time", table_name="alerts")
    op.drop_table("alerts")
