"""Alembic, driven from code so `pacsbridge db upgrade` works from an installed wheel."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, create_engine, pool, text

MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock key held while migrating ("pacsbridge" as an integer)
MIGRATION_LOCK = 0x7061637362726964


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision``.

    On PostgreSQL under an advisory lock: nodes sharing one database all migrate at start-up
    (docs/deployment.md), and two doing it at once would both create the same tables. The
    second waits, then finds the database at head and does nothing.
    """
    if not url.startswith("postgresql"):
        command.upgrade(alembic_config(url), revision)
        return
    # autocommit: the lock's session is not left idle in a transaction while Alembic works
    engine = create_engine(url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                command.upgrade(alembic_config(url), revision)
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
    finally:
        engine.dispose()


def new_revision(url: str, message: str, metadata: MetaData) -> None:
    """Autogenerate a migration against ``metadata`` (handed in by the composition root)."""
    config = alembic_config(url)
    config.attributes["target_metadata"] = metadata
    command.revision(config, message=message, autogenerate=True)


def pending(engine: Engine) -> bool:
    """True when the database is behind the code (used by `pacsbridge check`)."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current != head
