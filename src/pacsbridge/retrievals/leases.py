"""A source's slots: at most ``max_concurrent_retrievals`` C-MOVEs per hospital PACS at once.

The slots are ``SourceSlot`` rows leased through ``jobs.ledger``, never in-memory locks:
two requests may reach two worker processes, and a killed worker must not hold a slot for
longer than one lease. Waiting for a slot costs no lease: the retrieval's and the study's
leases are renewed by their own heartbeats (``ledger.held``) for as long as the wait lasts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pacsbridge.context import Context
from pacsbridge.jobs import ledger
from pacsbridge.retrievals.models import SourceSlot

SLOT_POLL_SECONDS = 0.5


@contextmanager
def source_slot(ctx: Context, source: str, max_wait: float) -> Iterator[ledger.Lease | None]:
    """Hold one of the source's slots (renewed); yields None when none freed up in time."""
    lease = _wait_for_slot(ctx, source, max_wait)
    if lease is None:
        yield None
        return
    with ledger.kept(ctx, lease):
        yield lease


def _wait_for_slot(ctx: Context, source: str, max_wait: float) -> ledger.Lease | None:
    deadline = time.monotonic() + max_wait
    while True:
        lease = _take_slot(ctx, source)
        if lease is not None or time.monotonic() >= deadline:
            return lease
        time.sleep(SLOT_POLL_SECONDS)  # another mover holds every slot: wait for one


def _take_slot(ctx: Context, source: str) -> ledger.Lease | None:
    _ensure_slots(ctx, source)
    query = select(SourceSlot.id).where(
        SourceSlot.source == source, SourceSlot.slot < _limit(ctx, source)
    )
    with ctx.sessions() as session:
        slot_ids = list(session.scalars(query.order_by(SourceSlot.slot)))
    for slot_id in slot_ids:
        lease = ledger.take(ctx, SourceSlot, slot_id)
        if lease.acquired:
            return lease
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
