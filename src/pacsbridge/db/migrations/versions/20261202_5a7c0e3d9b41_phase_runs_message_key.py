"""phase runs say a message key and its parameters, not Italian words

Revision ID: 5a7c0e3d9b41
Revises: 5a1c0e2b7d93
Create Date: 2026-12-02 20:55:00

A phase's result was stored rendered in Italian (``phase_runs.message``); it is now the key
and parameters of a catalogue message, rendered where it is read (docs/errors.md, "Errors
carry keys"). Existing rows keep their words as ``text.legacy`` with ``{"text": old}``, which
renders them as written in every language. The downgrade writes the words back: the legacy
text as it was, any other message as its key.
"""

import sqlalchemy as sa
from alembic import op

revision = "5a7c0e3d9b41"
down_revision = "5a1c0e2b7d93"
branch_labels = None
depends_on = None

LEGACY = "text.legacy"


def _runs(*columns: str) -> sa.Table:
    return sa.table(
        "phase_runs",
        sa.column("id", sa.Integer()),
        *(
            sa.column(name, sa.JSON() if name == "message_params" else sa.String())
            for name in columns
        ),
    )


def upgrade() -> None:
    with op.batch_alter_table("phase_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("message_params", sa.JSON(), nullable=True))
    runs = _runs("message", "message_key", "message_params")
    connection = op.get_bind()
    for row_id, words in connection.execute(sa.select(runs.c.id, runs.c.message)).all():
        key, params = (LEGACY, {"text": words}) if words else ("", {})
        connection.execute(
            runs.update().where(runs.c.id == row_id).values(message_key=key, message_params=params)
        )
    with op.batch_alter_table("phase_runs", schema=None) as batch_op:
        batch_op.alter_column("message_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("message_params", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("message")


def downgrade() -> None:
    with op.batch_alter_table("phase_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message", sa.String(length=2000), nullable=True))
    runs = _runs("message", "message_key", "message_params")
    connection = op.get_bind()
    query = sa.select(runs.c.id, runs.c.message_key, runs.c.message_params)
    for row_id, key, params in connection.execute(query).all():
        words = (params or {}).get("text", "") if key == LEGACY else (key or "")
        connection.execute(runs.update().where(runs.c.id == row_id).values(message=words))
    with op.batch_alter_table("phase_runs", schema=None) as batch_op:
        batch_op.alter_column("message", existing_type=sa.String(length=2000), nullable=False)
        batch_op.drop_column("message_params")
        batch_op.drop_column("message_key")
