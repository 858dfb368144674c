"""Backtests keep the panel's view of their result.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 00:00:00

``backtests.view`` (JSON, nullable) holds what the panel's result view shows of a finished
backtest, built once when its job ends: the header, the first trades and how many there are,
the rejections, the currency and the chart data (the equity and drawdown curves and each
symbol's closes with the trades' markers, thinned to a few thousand points). Showing a result
then reads this small document instead of the whole ``result`` (megabytes for two months of 5m
bars). The backtests stored before this revision keep a null view: the panel builds theirs from
``result`` the first time it shows them, and stores it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``backtests.view``."""
    with op.batch_alter_table("backtests") as batch:
        batch.add_column(sa.Column("view", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop ``backtests.view`` (the panel builds the views from the results again)."""
    with op.batch_alter_table("backtests") as batch:
        batch.drop_column("view")
