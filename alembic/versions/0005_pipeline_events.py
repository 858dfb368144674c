"""Adaptive pipeline events: threshold adjustments and regime changes per run and symbol.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 00:00:00

``pipeline_events`` holds one row per change in a symbol's adaptive pipeline (issue 6): a
thresholds adjustment (``kind`` ``thresholds``: old and new ADX and RVOL thresholds with the
volatility percentile and band multiplier in ``data``) or a confirmed regime change (``kind``
``regime``: ``from`` and ``to``), at ``time`` (ms UTC, the bar close from which it holds). New,
starts empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``pipeline_events``."""
    op.create_table(
        "pipeline_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "run_id", "symbol", "kind", "time", name="uq_pipeline_events_run_id_symbol_kind_time"
        ),
    )
    op.create_index("ix_pipeline_events_run_id_time", "pipeline_events", ["run_id", "time", "id"])


def downgrade() -> None:
    """Drop ``pipeline_events`` (the stored pipeline history is lost)."""
    op.drop_index("ix_pipeline_events_run_id_time", table_name="pipeline_events")
    op.drop_table("pipeline_events")
