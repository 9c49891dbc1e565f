"""Periodic upkeep of imports: the reaper and the clean-up of temporary files.

The reaper exists because Huey delivers at most once: an analysis or pipeline whose worker was
killed has no task left anywhere. Re-enqueuing is always safe (the lease lets one run at a
time, and a finished import ignores its task), so the reaper re-enqueues every unfinished import
nobody holds, except those waiting for their back-off.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select

from pacsbridge.context import Context
from pacsbridge.imports.models import Import
from pacsbridge.imports.pipeline.runner import delete_files

TASK_FOR_STATE = {
    "analysing": "imports.analyse",
    "confirmed": "imports.run_pipeline",
    "processing": "imports.run_pipeline",
}


def reap(ctx: Context) -> list[int]:
    """Re-enqueue unfinished imports without a live lease; returns their ids."""
    now = ctx.clock.now()
    query = (
        select(Import.id, Import.state)
        .where(Import.state.in_(TASK_FOR_STATE))
        .where(or_(Import.lease_until.is_(None), Import.lease_until < now))
        .where(or_(Import.retry_at.is_(None), Import.retry_at <= now))
    )
    with ctx.sessions() as session:
        rows = list(session.execute(query))
    if ctx.queue is not None:
        for import_id, state in rows:
            ctx.queue.enqueue(TASK_FOR_STATE[state], import_id)
    return [import_id for import_id, _ in rows]


def clean_up(ctx: Context) -> list[int]:
    """Delete the files of completed imports once their retention is over."""
    hours = ctx.settings.storage.retain_after_completion_hours
    limit = ctx.clock.now() - timedelta(hours=hours)
    query = select(Import.id).where(
        Import.state == "completed", Import.files_deleted.is_(False), Import.finished_at <= limit
    )
    with ctx.sessions() as session:
        ids = list(session.scalars(query))
    for import_id in ids:
        delete_files(ctx, import_id)
    return ids
