"""source pauses

Revision ID: 5a1c0e2b7d93
Revises: 5b1d0e7c9a41
Create Date: 2026-12-02 20:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

import pacsbridge.db.base

revision = "5a1c0e2b7d93"
down_revision = "5b1d0e7c9a41"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_pauses",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("paused_at", pacsbridge.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("paused_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_pauses")),
    )


def downgrade() -> None:
    op.drop_table("source_pauses")
