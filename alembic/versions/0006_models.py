"""The ML model registry: one row per stored model, its symbols, and the activation history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 00:00:00

``models`` mirrors each stored model's metadata (issue 7; the artifact stays in the model
store's files under ``<data_dir>/models``): id, kind, algorithm, symbols, timeframe, feature
set, label, training window (ms UTC), creation time, metrics, library versions, parameters and
the artifact's sha256. ``model_symbols`` indexes the symbols of each model (deleted with it).
``model_activations`` is the append-only history of which model became active for a kind and
symbol, when (ms UTC), by whom and how (``activate``, ``rollback``, ``sync``); the latest row of
a kind and symbol is its active model. All three are shared by every run, new and empty; the
server fills them from the model store's files at its next start.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``models``, ``model_symbols`` and ``model_activations``."""
    op.create_table(
        "models",
        sa.Column("model_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("algo", sa.String(), nullable=False),
        sa.Column("symbols", sa.JSON(), nullable=False),
        sa.Column("timeframe", sa.String(), nullable=False),
        sa.Column("feature_set", sa.String(), nullable=False),
        sa.Column("feature_names", sa.JSON(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("train_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("train_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("model_id"),
    )
    op.create_index("ix_models_kind_created_ms", "models", ["kind", "created_ms", "model_id"])
    op.create_table(
        "model_symbols",
        sa.Column("model_id", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.model_id"],
            name="fk_model_symbols_model_id_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "symbol"),
    )
    op.create_index("ix_model_symbols_symbol", "model_symbols", ["symbol"])
    op.create_table(
        "model_activations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("model_id", sa.String(), nullable=True),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("who", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_model_activations_kind_symbol", "model_activations", ["kind", "symbol", "id"]
    )
    op.create_index("ix_model_activations_model_id", "model_activations", ["model_id"])


def downgrade() -> None:
    """Drop the three tables (the registry rows are rebuilt from the files at the next start;
    the activation history is lost)."""
    op.drop_index("ix_model_activations_model_id", table_name="model_activations")
    op.drop_index("ix_model_activations_kind_symbol", table_name="model_activations")
    op.drop_table("model_activations")
    op.drop_index("ix_model_symbols_symbol", table_name="model_symbols")
    op.drop_table("model_symbols")
    op.drop_index("ix_models_kind_created_ms", table_name="models")
    op.drop_table("models")
