"""Leases and retry delays: the job ledger that makes at-most-once delivery durable."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pacsbridge import runtime
from pacsbridge.imports.models import Import, Launch
from pacsbridge.jobs import ledger
from pacsbridge.settings import JobSettings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _import(ctx) -> int:
    with ctx.sessions.begin() as session:
        launch = Launch(
            token_hash="x" * 64,
            created_at=NOW,
            expires_at=NOW,
            patient_id="P",
            family_name="F",
            birth_date=date(1970, 1, 1),
            sex="M",
            order_number="O",
        )
        session.add(launch)
        session.flush()
        row = Import(
            launch_id=launch.id, patient_id="P", order_number="O", created_at=NOW, updated_at=NOW
        )
        session.add(row)
        session.flush()
        return row.id


def _lease_cycle(ctx) -> None:
    import_id = _import(ctx)
    with ctx.sessions.begin() as session:
        assert ledger.acquire(session, Import, import_id, NOW, 60)
    with ctx.sessions.begin() as session:
        assert not ledger.acquire(session, Import, import_id, NOW + timedelta(seconds=59), 60)
    with ctx.sessions.begin() as session:  # the holder died: the lease runs out
        assert ledger.acquire(session, Import, import_id, NOW + timedelta(seconds=61), 60)
    with ctx.sessions.begin() as session:
        ledger.release(session, Import, import_id)
    with ctx.sessions.begin() as session:
        assert ledger.acquire(session, Import, import_id, NOW, 60)


def test_lease_on_sqlite(make_settings):
    _lease_cycle(runtime.build(make_settings()).context)


def test_lease_on_postgresql(make_settings, postgres_url):
    _lease_cycle(runtime.build(make_settings(database={"url": postgres_url})).context)


@pytest.mark.parametrize(("used", "expected"), [(1, 30), (2, 60), (3, 120), (6, 600), (50, 600)])
def test_retry_delay_backs_off_to_a_ceiling(used, expected):
    settings = JobSettings(retry_delay_seconds=30, max_retry_delay_seconds=600)
    assert ledger.retry_delay(settings, used) == expected
