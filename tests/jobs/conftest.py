"""Real PostgreSQL and Redis for the distributed-engine tests (running on 127.0.0.1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest
import redis

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database per test; fails loudly when PostgreSQL is not running."""
    name = f"pacsbridge_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    except psycopg2.OperationalError as error:
        pytest.fail(f"PostgreSQL must run on 127.0.0.1:5432 (scripts/install-test-deps): {error}")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    yield PG.format(name=name)
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database number of its own, flushed after the test."""
    url = "redis://127.0.0.1:6379/{db}"
    client = redis.Redis.from_url(url.format(db=0))
    try:
        client.ping()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 (scripts/install-test-deps): {error}")
    db = 1 + uuid.uuid4().int % 14
    yield url.format(db=db)
    redis.Redis.from_url(url.format(db=db)).flushdb()
