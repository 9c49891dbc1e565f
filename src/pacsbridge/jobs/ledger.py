"""The job ledger's two mechanisms: leases and retry delays.

Huey delivers at most once (coleifer/huey#844): a task whose worker is killed is gone. So each
unit of work (an import, a retrieval) is a row with ``lease_until``: whoever runs it takes the
lease with one conditional UPDATE, renews it while working (heartbeat), and drops it at the end.
A reaper re-enqueues rows whose lease expired. Two deliveries of the same task are harmless:
the second cannot take the lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from pacsbridge.settings import JobSettings


def acquire(session: Session, model: Any, row_id: int, now: datetime, seconds: float) -> bool:
    """Take the lease of row ``row_id`` unless someone else holds a live one."""
    statement = (
        update(model)
        .where(model.id == row_id)
        .where(or_(model.lease_until.is_(None), model.lease_until < now))
        .values(lease_until=now + timedelta(seconds=seconds))
    )
    return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]


def renew(session: Session, model: Any, row_id: int, now: datetime, seconds: float) -> None:
    """Heartbeat: push the lease forward while the work goes on."""
    statement = update(model).where(model.id == row_id)
    session.execute(statement.values(lease_until=now + timedelta(seconds=seconds)))


def release(session: Session, model: Any, row_id: int) -> None:
    session.execute(update(model).where(model.id == row_id).values(lease_until=None))


def retry_delay(settings: JobSettings, attempts_used: int) -> float:
    """Exponential back-off from ``retry_delay_seconds`` up to ``max_retry_delay_seconds``."""
    delay = settings.retry_delay_seconds * (2 ** max(attempts_used - 1, 0))
    return min(delay, settings.max_retry_delay_seconds)
