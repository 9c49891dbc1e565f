"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL.

Every schema change needs an Alembic migration; this test is what notices a model change
without one (or a migration that differs from its model).
"""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from pacsbridge import runtime
from pacsbridge.db import migrate
from pacsbridge.messages import render


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


def _phase_messages_after_upgrade(url: str) -> list[tuple[str, object]]:
    """A phase row written in Italian before 5a7c0e3d9b41, read back after the upgrade."""
    migrate.upgrade(url, "5b1d0e7c9a41")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(INSERT_RUNS))
        migrate.upgrade(url)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT message_key, message_params FROM phase_runs ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    return [(key, json.loads(p) if isinstance(p, str) else p) for key, p in rows]


#: SQLite does not enforce the foreign key by default: no import row is needed.
INSERT_RUNS = (
    "INSERT INTO phase_runs (id, import_id, phase, state, attempts_left, message, details) "
    "VALUES (1, 1, 'send', 'completed', 2, 'Studio Archiviato (3 immagini)', '{}'), "
    "(2, 1, 'merge', 'pending', 3, '', '{}')"
)


def test_migrated_phase_rows_keep_their_italian_words_as_legacy_text(tmp_path):
    rows = _phase_messages_after_upgrade(f"sqlite:///{tmp_path / 'legacy.db'}")
    assert rows == [("text.legacy", {"text": "Studio Archiviato (3 immagini)"}), ("", {})]
    assert render({"key": rows[0][0], "params": rows[0][1]}, "en") == (
        "Studio Archiviato (3 immagini)"
    )
