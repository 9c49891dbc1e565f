"""Who may move what: the study lease, the source's slots, and the heartbeat that keeps them.

All three are rows (``jobs.ledger`` conditional UPDATEs), never in-memory locks, because two
requests for the same study may reach two worker processes (issue 5), and because a killed
worker must not hold anything for longer than one lease.

- The **study lease** (``CachedStudy.lease_until``) is the one C-MOVE in flight for a study.
- A **source slot** (``SourceSlot``) is one of ``max_concurrent_retrievals`` per hospital
  PACS: we do not overload a hospital's PACS.
- The **heartbeat** renews every lease a mover holds from a background thread, since one
  C-MOVE of a large study can outlast ``jobs.lease_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pacsbridge.context import Context
from pacsbridge.jobs import ledger
from pacsbridge.retrievals.models import CachedStudy, Retrieval, SourceSlot

SLOT_POLL_SECONDS = 0.5


@dataclass
class Held:
    """The leases one mover holds: (model, row id) pairs renewed together."""

    rows: list[tuple[Any, int]] = field(default_factory=list)


def take_study(ctx: Context, study_id: int) -> bool:
    """Take the study's C-MOVE lease; False when another mover holds a live one."""
    with ctx.sessions.begin() as session:
        return ledger.acquire(session, CachedStudy, study_id, ctx.clock.now(), _seconds(ctx))


def release(ctx: Context, model: Any, row_id: int) -> None:
    with ctx.sessions.begin() as session:
        ledger.release(session, model, row_id)


@contextmanager
def source_slot(ctx: Context, source: str, max_wait: float) -> Iterator[int | None]:
    """Hold one of the source's slots; yields None when none freed up within ``max_wait``."""
    slot_id = _wait_for_slot(ctx, source, max_wait)
    try:
        yield slot_id
    finally:
        if slot_id is not None:
            release(ctx, SourceSlot, slot_id)


def _wait_for_slot(ctx: Context, source: str, max_wait: float) -> int | None:
    deadline = time.monotonic() + max_wait
    while True:
        slot_id = _take_slot(ctx, source)
        if slot_id is not None or time.monotonic() >= deadline:
            return slot_id
        time.sleep(SLOT_POLL_SECONDS)  # another mover holds every slot: wait for one


def _take_slot(ctx: Context, source: str) -> int | None:
    _ensure_slots(ctx, source)
    limit = _limit(ctx, source)
    with ctx.sessions.begin() as session:
        query = select(SourceSlot.id).where(SourceSlot.source == source, SourceSlot.slot < limit)
        for slot_id in session.scalars(query.order_by(SourceSlot.slot)):
            if ledger.acquire(session, SourceSlot, slot_id, ctx.clock.now(), _seconds(ctx)):
                return slot_id
    return None


def _ensure_slots(ctx: Context, source: str) -> None:
    with ctx.sessions.begin() as session:
        have = set(session.scalars(select(SourceSlot.slot).where(SourceSlot.source == source)))
        for slot in range(_limit(ctx, source)):
            if slot in have:
                continue
            try:
                with session.begin_nested():
                    session.add(SourceSlot(source=source, slot=slot))
            except IntegrityError:  # another process created it at the same moment
                pass


def _limit(ctx: Context, source: str) -> int:
    settings = ctx.settings.source(source)
    return settings.max_concurrent_retrievals if settings else 1


def _seconds(ctx: Context) -> float:
    return ctx.settings.jobs.lease_seconds


@contextmanager
def heartbeat(ctx: Context, held: Held) -> Iterator[Held]:
    """Renew every lease in ``held`` each third of a lease until the block ends."""
    stop = threading.Event()
    interval = max(_seconds(ctx) / 3, 0.05)
    thread = threading.Thread(
        target=_beat_until, args=(ctx, held, stop, interval), name="retrieval-heartbeat"
    )
    thread.daemon = True
    thread.start()
    try:
        yield held
    finally:
        stop.set()
        thread.join()


def _beat_until(ctx: Context, held: Held, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        with ctx.sessions.begin() as session:
            for model, row_id in list(held.rows):
                ledger.renew(session, model, row_id, ctx.clock.now(), _seconds(ctx))


def retrieval_lease(ctx: Context, retrieval_id: int) -> bool:
    """Take the retrieval's own lease (a second delivery of its task then does nothing)."""
    with ctx.sessions.begin() as session:
        return ledger.acquire(session, Retrieval, retrieval_id, ctx.clock.now(), _seconds(ctx))
