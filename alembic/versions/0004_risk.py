"""Risk control: trading-state changes and alerts, and risk limit changes, with who and when.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 00:00:00

``risk_events`` holds one row per trading-state change (``kind`` ``state``, with ``from_state``
and ``to_state``) or risk alert (``kind`` ``unusual_volume`` or ``close_all``, with ``value``) of
a run: time (ms UTC), scope (``account`` or a symbol), the reason shown to the user, the source
(a breaker or ``manual``) and who made it by hand (null for a breaker). ``risk_limit_changes``
holds every change of a run's risk limits: the whole configuration after it as JSON, when
(market clock, ms UTC) and by whom; the latest row is the configuration in force. Both are new
and start empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _serial() -> sa.Column[int]:
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
        nullable=False,
    )  # fmt: skip


def upgrade() -> None:
    """Create ``risk_events`` and ``risk_limit_changes``."""
    op.create_table(
        "risk_events",
        _serial(),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("from_state", sa.String(), nullable=True),
        sa.Column("to_state", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("who", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_risk_events_run_id_time", "risk_events", ["run_id", "time", "id"])
    op.create_table(
        "risk_limit_changes",
        _serial(),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("who", sa.String(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_risk_limit_changes_run_id_time", "risk_limit_changes", ["run_id", "time", "id"]
    )


def downgrade() -> None:
    """Drop both tables (the stored risk history is lost)."""
    op.drop_index("ix_risk_limit_changes_run_id_time", table_name="risk_limit_changes")
    op.drop_table("risk_limit_changes")
    op.drop_index("ix_risk_events_run_id_time", table_name="risk_events")
    op.drop_table("risk_events")
