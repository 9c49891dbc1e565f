"""The job ledger: lease columns, held leases with their heartbeat, the reaper, retry delays.

Huey delivers at most once (coleifer/huey#844): a task whose worker is killed is gone. So each
unit of work (an import, a retrieval, a cached study, a source slot) is a row with
``lease_until``, and this module is the only code that reads or writes that column:

- ``held(owner, Model, row_id)`` takes the lease with one compare-and-set UPDATE (``WHERE
  lease_until IS NULL OR lease_until < now``: one winner on SQLite and on PostgreSQL), renews
  it from a daemon thread every third of a lease while the block runs, and drops it at the
  end. A second delivery of the same task finds ``lease.acquired`` False and does nothing.
- Renewal and release are compare-and-set too, on the exact expiry this holder last wrote:
  a holder that stalled past its lease and was overtaken learns it (``lease.lost``) and never
  extends or drops the new holder's lease.
- ``reap`` re-enqueues rows in a runnable state that nobody holds and whose back-off is over;
  ``retry_delay`` is the back-off.
- ``Task`` names every queued task, so producers and consumers cannot drift apart.

See docs/architecture.md ("Durability").
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from pacsbridge.settings import JobSettings, Settings

log = logging.getLogger(__name__)
MIN_BEAT_SECONDS = 0.05


class Task(StrEnum):
    """Every task name on the queue (the Huey registry key)."""

    ANALYSE = "imports.analyse"
    RUN_PIPELINE = "imports.run_pipeline"
    NOTIFY_DISCONTINUED = "imports.notify_discontinued"
    REAP_IMPORTS = "imports.reap"
    CLEAN_UP_IMPORTS = "imports.clean_up"
    SWEEP_IMPORTS = "imports.sweep"
    RETRIEVE = "retrievals.retrieve"
    REAP_RETRIEVALS = "retrievals.reap"
    EXPIRE_CACHE = "retrievals.expire"


class Leased:
    """Declarative mixin: the lease column of a ledger row (NULL or past: nobody holds it)."""

    lease_until: Mapped[datetime | None] = mapped_column(default=None)


class Scheduled(Leased):
    """Declarative mixin: a leased row that is also retried after a back-off."""

    #: not before: a retry waiting for its back-off; the reaper leaves it alone until then
    retry_at: Mapped[datetime | None] = mapped_column(default=None)


class Clock(Protocol):
    def now(self) -> datetime: ...


class Owner(Protocol):
    """What the ledger needs of the run-time context (``pacsbridge.context.Context`` fits)."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def settings(self) -> Settings: ...


class Enqueuer(Protocol):
    def enqueue(self, name: str, *args: Any, delay: float | None = None) -> None: ...


@dataclass
class Lease:
    """One row's lease as its holder sees it."""

    model: Any
    row_id: int
    seconds: float
    acquired: bool = False
    #: the expiry this holder last wrote: its proof of ownership for renew and release
    until: datetime | None = None
    #: another holder took the row after our lease lapsed (a stalled process)
    lost: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@contextmanager
def held(owner: Owner, model: Any, row_id: int, seconds: float | None = None) -> Iterator[Lease]:
    """Hold row ``row_id``'s lease for the block; test ``lease.acquired`` before working."""
    lease = take(owner, model, row_id, seconds)
    if not lease.acquired:
        yield lease
        return
    with kept(owner, lease):
        yield lease


def take(owner: Owner, model: Any, row_id: int, seconds: float | None = None) -> Lease:
    """The compare-and-set acquire alone (``kept`` then renews and releases it)."""
    lease = Lease(model, row_id, seconds or owner.settings.jobs.lease_seconds)
    now = owner.clock.now()
    until = now + timedelta(seconds=lease.seconds)
    statement = update(model).where(model.id == row_id, free(model, now)).values(lease_until=until)
    with owner.sessions.begin() as session:
        lease.acquired = _one_row(session.execute(statement))
    lease.until = until if lease.acquired else None
    return lease


@contextmanager
def kept(owner: Owner, lease: Lease) -> Iterator[Lease]:
    """Renew an acquired lease from a daemon thread every third of it; release on exit."""
    stop = threading.Event()
    interval = max(lease.seconds / 3, MIN_BEAT_SECONDS)
    name = f"lease-{lease.model.__tablename__}-{lease.row_id}"
    beat = threading.Thread(
        target=_beat_until, args=(owner, lease, stop, interval), name=name, daemon=True
    )
    beat.start()
    try:
        yield lease
    finally:
        stop.set()
        beat.join()
        _release(owner, lease)


def _renew(owner: Owner, lease: Lease) -> bool:
    """Push the lease forward if it is still ours; False (and ``lease.lost``) when it is not."""
    with lease._lock:
        if lease.lost or lease.until is None:
            return False
        until = owner.clock.now() + timedelta(seconds=lease.seconds)
        with owner.sessions.begin() as session:
            mine = _one_row(session.execute(_ours(lease).values(lease_until=until)))
        lease.until, lease.lost = (until, False) if mine else (lease.until, True)
        return mine


def _release(owner: Owner, lease: Lease) -> None:
    """Drop the lease if it is still ours (an overtaken holder leaves the new one alone)."""
    with lease._lock:
        if lease.lost or lease.until is None:
            return
        with owner.sessions.begin() as session:
            session.execute(_ours(lease).values(lease_until=None))
        lease.until = None


def _ours(lease: Lease) -> Any:
    model = lease.model
    return update(model).where(model.id == lease.row_id, model.lease_until == lease.until)


def _beat_until(owner: Owner, lease: Lease, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        try:
            if not _renew(owner, lease):
                log.warning("lease of %s %s lost", lease.model.__tablename__, lease.row_id)
                return
        except Exception:  # noqa: BLE001 - a database hiccup: try again at the next beat
            log.exception("lease renewal of %s %s failed", lease.model.__tablename__, lease.row_id)


def _one_row(result: Any) -> bool:
    return bool(result.rowcount == 1)


def free(model: Any, now: datetime) -> ColumnElement[bool]:
    """Nobody holds the row's lease at ``now``."""
    return or_(model.lease_until.is_(None), model.lease_until < now)


def live(model: Any, now: datetime) -> ColumnElement[bool]:
    """Someone holds the row's lease at ``now`` (the row is being worked on)."""
    return model.lease_until >= now


def is_free(row: Any, now: datetime) -> bool:
    """``free`` for a loaded row."""
    return row.lease_until is None or row.lease_until < now


def due(model: Any, now: datetime) -> ColumnElement[bool]:
    """The row waits for no back-off at ``now``."""
    return or_(model.retry_at.is_(None), model.retry_at <= now)


def reap(
    owner: Owner, queue: Enqueuer | None, model: Any, task_for_state: Mapping[str, str]
) -> list[int]:
    """Re-enqueue rows in a runnable state with no live lease and no pending back-off.

    Always safe: the lease lets one run at a time, and a finished row ignores its task.
    """
    now = owner.clock.now()
    query = (
        select(model.id, model.state)
        .where(model.state.in_(list(task_for_state)), free(model, now), due(model, now))
        .order_by(model.id)
    )
    with owner.sessions() as session:
        rows = list(session.execute(query))
    if queue is not None:
        for row_id, state in rows:
            queue.enqueue(task_for_state[state], row_id)
    return [row_id for row_id, _ in rows]


def worker_name() -> str:
    """``host:pid`` of the process doing the work, for the audit of a start.

    Support reads it to tell which worker ran a phase; it holds no patient data.
    """
    return f"{socket.gethostname()}:{os.getpid()}"


def retry_delay(settings: JobSettings, attempts_used: int) -> float:
    """Exponential back-off from ``retry_delay_seconds`` up to ``max_retry_delay_seconds``."""
    delay = settings.retry_delay_seconds * (2 ** max(attempts_used - 1, 0))
    return min(delay, settings.max_retry_delay_seconds)


def retry_at(settings: JobSettings, attempts_used: int, now: datetime) -> tuple[float, datetime]:
    """The back-off of the next attempt and when it is due (stored in ``retry_at``)."""
    delay = retry_delay(settings, attempts_used)
    return delay, now + timedelta(seconds=delay)


def schedule_retry(queue: Enqueuer | None, task: str, row_id: int, delay: float) -> None:
    """Enqueue the next attempt ``delay`` seconds from now; call it after the lease is released.

    Without a queue the reaper picks the row up once its ``retry_at`` is due.
    """
    if queue is not None:
        queue.enqueue(task, row_id, delay=delay)
