"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL.

Every schema change needs an Alembic migration; this test is what notices a model change
without one (or a migration that differs from its model).
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from pacsbridge import runtime
from pacsbridge.db import migrate


def _differences(url: str) -> list[object]:
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"render_as_batch": True})
            return list(compare_metadata(context, runtime.metadata()))
    finally:
        engine.dispose()


def test_sqlite_schema_from_migrations_equals_the_models(tmp_path):
    assert _differences(f"sqlite:///{tmp_path / 'schema.db'}") == []


def test_postgresql_schema_from_migrations_equals_the_models(postgres_url):
    assert _differences(postgres_url) == []
