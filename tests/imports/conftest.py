"""A real PostgreSQL database for the import tests that must see its concurrency (127.0.0.1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database per test; fails loudly when PostgreSQL is not running."""
    name = f"pacsbridge_imports_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    except psycopg2.OperationalError as error:
        pytest.fail(f"PostgreSQL must run on 127.0.0.1:5432 (scripts/install-test-deps): {error}")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    yield PG.format(name=name)
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()
