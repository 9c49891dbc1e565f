"""Alembic environment.

The domains' table metadata is handed in by the composition root
(``pacsbridge.runtime.metadata()``, through ``Config.attributes["target_metadata"]``) so that
``db`` never imports a domain: the layer contract in pyproject.toml covers this file too.
Upgrades need no metadata; ``pacsbridge db revision`` (autogenerate) passes it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
target_metadata = config.attributes.get("target_metadata")


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
