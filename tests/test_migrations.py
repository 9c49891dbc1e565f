"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL.

Every schema change needs an Alembic migration; this test is what notices a model change
without one (or a migration that differs from its model).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from pacsbridge import runtime
from pacsbridge.db import migrate

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _differences(url: str) -> list[object]:
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"render_as_batch": True})
            return list(compare_metadata(context, runtime.metadata()))
    finally:
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name = f"pb_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_sqlite_schema_from_migrations_equals_the_models(tmp_path):
    assert _differences(f"sqlite:///{tmp_path / 'schema.db'}") == []


def test_postgresql_schema_from_migrations_equals_the_models(postgres_url):
    assert _differences(postgres_url) == []
