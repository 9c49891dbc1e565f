"""staff users source: local or directory

Revision ID: 5b1d0e7c9a41
Revises: 85e43b76b153
Create Date: 2026-12-02 20:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "5b1d0e7c9a41"
down_revision = "85e43b76b153"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="local", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("source")
