"""Alembic, driven from code so `pacsbridge db upgrade` works from an installed wheel."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


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
