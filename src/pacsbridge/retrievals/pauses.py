"""Pausing a source (support console, docs/support.md): its retrievals wait, none fails.

A pause is a ``source_pauses`` row, so every worker on every node sees it before it queries or
moves: the runner asks :func:`hold_back` first, under the retrieval's lease, and a retrieval of
a paused source keeps its state (``queued``), costs no attempt and gets a ``retry_at``
``PAUSE_RECHECK_SECONDS`` ahead (the reaper re-enqueues it then and it asks again).
:func:`resume` deletes the row and re-enqueues the source's waiting retrievals at once. A
C-MOVE already running when the pause comes finishes; the next one waits.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import NotFoundError
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import lifecycle
from pacsbridge.retrievals.models import Retrieval, SourcePause

#: How often a waiting retrieval looks again (resume re-enqueues at once anyway).
PAUSE_RECHECK_SECONDS = 30.0


def paused(ctx: Context) -> dict[str, SourcePause]:
    """The paused sources by name."""
    with ctx.sessions() as session:
        return {p.source: p for p in session.scalars(select(SourcePause))}


def is_paused(ctx: Context, source: str) -> bool:
    with ctx.sessions() as session:
        return session.get(SourcePause, source) is not None


def pause(ctx: Context, source: str, actor: str, reason: str = "") -> None:
    """Pause ``source`` (a configured one); pausing a paused source changes nothing."""
    _check(ctx, source)
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        if session.get(SourcePause, source) is not None:
            return
        session.add(SourcePause(source=source, paused_at=now, paused_by=actor, reason=reason[:500]))
        audit.record(session, now, "source.paused", actor=actor, source=source, reason=reason)


def resume(ctx: Context, source: str, actor: str) -> list[int]:
    """Lift the pause; the source's waiting retrievals are enqueued now (their ids)."""
    _check(ctx, source)
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        result: Any = session.execute(delete(SourcePause).where(SourcePause.source == source))
        if not result.rowcount:  # not paused, or another resume won
            return []
        waiting = list(session.scalars(_waiting(source)))
        session.execute(update(Retrieval).where(Retrieval.id.in_(waiting)).values(retry_at=None))
        audit.record(
            session, now, "source.resumed", actor=actor, source=source, waiting=len(waiting)
        )
    for retrieval_id in waiting:
        ctx.queue.enqueue(ledger.Task.RETRIEVE, retrieval_id)
    return waiting


def hold_back(ctx: Context, retrieval_id: int) -> float | None:
    """When the retrieval's source is paused: a ``retry_at`` ahead and its delay; else None."""
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        row = session.get(Retrieval, retrieval_id)
        if row is None or session.get(SourcePause, row.source) is None:
            return None
        row.retry_at = now + timedelta(seconds=PAUSE_RECHECK_SECONDS)
    return PAUSE_RECHECK_SECONDS


def _waiting(source: str):  # noqa: ANN202 - a select
    return select(Retrieval.id).where(
        Retrieval.source == source, Retrieval.state.in_(list(lifecycle.RUNNING))
    )


def _check(ctx: Context, source: str) -> None:
    if ctx.settings.source(source) is None:
        raise NotFoundError(f"no source {source}")
