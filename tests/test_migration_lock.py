"""Nodes sharing one PostgreSQL database migrate it at start-up, possibly at the same moment.

``db.migrate.upgrade`` takes a PostgreSQL advisory lock (docs/deployment.md, "Several nodes"):
without it, two upgrades of a fresh database both try to create the same tables and one fails.
"""

from __future__ import annotations

import threading

from sqlalchemy import create_engine, inspect

from pacsbridge.db import migrate

UPGRADES = 4


def test_four_upgrades_of_a_fresh_postgresql_database_at_once_all_succeed(postgres_url) -> None:  # noqa: ANN001
    start, failures = threading.Barrier(UPGRADES), []

    def upgrade() -> None:
        start.wait()
        try:
            migrate.upgrade(postgres_url)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            failures.append(repr(error)[:300])

    threads = [threading.Thread(target=upgrade) for _ in range(UPGRADES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    engine = create_engine(postgres_url)
    try:
        assert not migrate.pending(engine)
        assert "imports" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
