"""Periodic upkeep of imports: the reaper, the clean-up of temporary files, and the sweep.

The reaper exists because Huey delivers at most once: an analysis or pipeline whose worker was
killed has no task left anywhere. Re-enqueuing is always safe (the lease lets one run at a
time, and a finished import ignores its task), so the reaper re-enqueues every unfinished import
nobody holds, except those waiting for their back-off. It also settles a cancelled import whose
files are still there and that no worker holds (the worker that should have noticed died).

The sweep, at start-up and every ``storage.sweep_every_minutes``, removes every folder under
``imports/`` that no live import owns (docs/lifecycle.md): a cancelled import's, or one
nothing in the database knows. Each removal is audited.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.imports import lifecycle, workspace
from pacsbridge.imports.lifecycle import ImportState
from pacsbridge.imports.models import Import
from pacsbridge.imports.pipeline.runner import delete_files
from pacsbridge.jobs import ledger

TASK_FOR_STATE = {
    ImportState.ANALYSING: ledger.Task.ANALYSE,
    ImportState.CONFIRMED: ledger.Task.RUN_PIPELINE,
    ImportState.PROCESSING: ledger.Task.RUN_PIPELINE,
}


def reap(ctx: Context) -> list[int]:
    """Re-enqueue unfinished imports without a live lease; returns their ids."""
    found = ledger.reap(ctx, ctx.queue, Import, {str(k): v for k, v in TASK_FOR_STATE.items()})
    for import_id in _unsettled(ctx):
        lifecycle.settle_cancelled(ctx, import_id)
    return found


def _unsettled(ctx: Context) -> list[int]:
    """Cancelled, files not yet deleted, and no worker holds it."""
    query = select(Import.id).where(
        Import.state == ImportState.CANCELLED,
        Import.files_deleted.is_(False),
        ledger.free(Import, ctx.clock.now()),
    )
    with ctx.sessions() as session:
        return list(session.scalars(query))


def clean_up(ctx: Context) -> list[int]:
    """Delete the files of completed imports once their retention is over."""
    hours = ctx.settings.storage.retain_after_completion_hours
    limit = ctx.clock.now() - timedelta(hours=hours)
    query = select(Import.id).where(
        Import.state == ImportState.COMPLETED,
        Import.files_deleted.is_(False),
        Import.finished_at <= limit,
    )
    with ctx.sessions() as session:
        ids = list(session.scalars(query))
    for import_id in ids:
        delete_files(ctx, import_id)
    return ids


def sweep(ctx: Context) -> list[str]:
    """Remove the import folders no live import owns; returns the folder names removed."""
    on_disk = workspace.folders(ctx.data_dir)
    if not on_disk:
        return []
    owners, cancelled = _owners(ctx, on_disk)
    removed: list[str] = []
    for name, path in sorted(on_disk.items()):
        if name in owners:
            continue
        if name in cancelled:
            lifecycle.delete_files(ctx, int(name), reason="sweep")
        else:
            workspace.remove_orphan(path)
        removed.append(name)
    _audit_swept(ctx, [n for n in removed if n not in cancelled])
    return removed


def _owners(ctx: Context, on_disk: dict[str, object]) -> tuple[set[str], set[str]]:
    """Folder names a live import owns, and those of cancelled imports nobody works on."""
    ids = [int(name) for name in on_disk if name.isdigit() and len(name) < 19]
    now = ctx.clock.now()
    with ctx.sessions() as session:
        rows = session.execute(
            select(Import.id, Import.state, ledger.free(Import, now)).where(Import.id.in_(ids))
        ).all()
    owners = {str(i) for i, state, idle in rows if state in lifecycle.OWNS_FILES or not idle}
    cancelled = {str(i) for i, state, idle in rows if state == ImportState.CANCELLED and idle}
    return owners, cancelled


def _audit_swept(ctx: Context, names: list[str]) -> None:
    """Folders no import row knows: one event naming them (our ids, never patient data)."""
    if not names:
        return
    with ctx.sessions.begin() as session:
        audit.record(session, ctx.clock.now(), "files.swept", folders=names)
