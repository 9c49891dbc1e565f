"""Alembic environment: the metadata of every domain's tables."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

import pacsbridge.audit  # noqa: F401  (registers its table)
import pacsbridge.imports.models  # noqa: F401
import pacsbridge.retrievals.models  # noqa: F401
from pacsbridge.db.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
    with connectable.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
