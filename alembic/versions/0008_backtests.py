"""Backtests run from the API and the panel.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09 00:00:00

``backtests`` holds one row per backtest job (issue 10, "Backtests from the panel"): its status
(``running``, ``done``, ``failed``), strategy, symbols (JSON list), timeframe, the request
(JSON), when it was asked and ended (ms UTC, wall clock), its error once failed, and once done
its metrics and result (JSON: the CLI's ``--json`` document less the metrics, with the closes
of its symbols). Shared by every run; new, starts empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``backtests``."""
    op.create_table(
        "backtests",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("symbols", sa.JSON(), nullable=False),
        sa.Column("timeframe", sa.String(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_backtests_created_ms", "backtests", ["created_ms", "id"])


def downgrade() -> None:
    """Drop ``backtests`` (the stored backtests are lost)."""
    op.drop_index("ix_backtests_created_ms", table_name="backtests")
    op.drop_table("backtests")
