"""Runs the phases of one import against its ledger rows (seed 000 §5, "Monitoraggio").

Only here are retries decided (STYLE.md: retries in named places only): a retriable error
costs one attempt, is shown as "N tentativi rimasti" and schedules the whole pipeline again after
a back-off; a permanent error, or no attempts left, fails the import with the reason in Italian.
The run holds the import's lease, renewed by each phase's heartbeat, so a second delivery of
the same task does nothing and a killed worker's import is picked up by the reaper.
"""

from __future__ import annotations

import errno
import logging
from datetime import timedelta

from sqlalchemy import select

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import PacsbridgeError, StorageFull
from pacsbridge.imports import workspace
from pacsbridge.imports.models import Import, PhaseRun
from pacsbridge.imports.pipeline import PHASES, notify
from pacsbridge.imports.pipeline.base import Job, Outcome, Phase, Skipped
from pacsbridge.jobs import ledger
from pacsbridge.messages import text

log = logging.getLogger(__name__)
RUNNABLE = ("confirmed", "processing")


def run_pipeline(ctx: Context, import_id: int) -> None:
    """The ``imports.run_pipeline`` task."""
    lease = ctx.settings.jobs.lease_seconds
    with ctx.sessions.begin() as session:
        if not ledger.acquire(session, Import, import_id, ctx.clock.now(), lease):
            return  # another worker holds it
    try:
        _run(ctx, import_id)
    finally:
        with ctx.sessions.begin() as session:
            ledger.release(session, Import, import_id)


def _run(ctx: Context, import_id: int) -> None:
    job = _start(ctx, import_id)
    if job is None:
        return
    for name, phase in PHASES:
        if _phase_state(ctx, import_id, name) in ("completed", "skipped"):
            continue
        if not _attempt(job, name, phase):
            return
    _complete(ctx, import_id)


def _start(ctx: Context, import_id: int) -> Job | None:
    with ctx.sessions.begin() as session:
        row = session.get(Import, import_id)
        if row is None or row.state not in RUNNABLE:
            return None
        row.state, row.retry_at, row.updated_at = "processing", None, ctx.clock.now()
        _ensure_phase_rows(session, ctx, import_id)
        launch, analysis = row.launch, row.analysis
    return Job(ctx, import_id, launch, analysis, beat=lambda: _beat(ctx, import_id))


def _ensure_phase_rows(session, ctx: Context, import_id: int) -> None:  # noqa: ANN001
    existing = set(session.scalars(select(PhaseRun.phase).where(PhaseRun.import_id == import_id)))
    for name, _ in PHASES:
        if name not in existing:
            session.add(
                PhaseRun(
                    import_id=import_id,
                    phase=name,
                    state="pending",
                    attempts_left=ctx.settings.jobs.attempts,
                )
            )


def _beat(ctx: Context, import_id: int) -> None:
    with ctx.sessions.begin() as session:
        ledger.renew(session, Import, import_id, ctx.clock.now(), ctx.settings.jobs.lease_seconds)


def _phase_state(ctx: Context, import_id: int, name: str) -> str:
    with ctx.sessions() as session:
        return _phase(session, import_id, name).state


def _phase(session, import_id: int, name: str) -> PhaseRun:  # noqa: ANN001
    query = select(PhaseRun).where(PhaseRun.import_id == import_id, PhaseRun.phase == name)
    return session.scalars(query).one()


def _attempt(job: Job, name: str, phase: Phase) -> bool:
    """One attempt of one phase; True when the pipeline may go on."""
    _mark(job, name, "running", "phase.started")
    try:
        outcome = phase(job)
    except PacsbridgeError as error:
        return _failed_attempt(job, name, error)
    except OSError as error:
        if not disk_full(error):
            raise
        return _failed_attempt(job, name, StorageFull(str(error)))
    _finish(job, name, outcome)
    return True


def disk_full(error: BaseException | None) -> bool:
    """ENOSPC anywhere in the chain: pydicom re-raises write errors without their errno."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        error = error.__cause__ or error.__context__
    return False


def _mark(job: Job, name: str, state: str, kind: str, message: str = "", **details) -> PhaseRun:  # noqa: ANN003
    now = job.ctx.clock.now()
    with job.ctx.sessions.begin() as session:
        run = _phase(session, job.import_id, name)
        if state == "running":
            run.attempts_left = max(run.attempts_left - 1, 0)
            run.started_at, run.ended_at = now, None
            message = text("state.running", attempts=run.attempts_left)
        else:
            run.ended_at = now
        run.state, run.message = state, message
        audit.record(
            session,
            now,
            kind,
            import_id=job.import_id,
            phase=name,
            attempts_left=run.attempts_left,
            message=message,
            outcome="error" if state in ("failed", "retrying") else "ok",
            **details,
        )
        return run


def _finish(job: Job, name: str, outcome: Outcome) -> None:
    if isinstance(outcome, Skipped):
        _mark(job, name, "skipped", "phase.skipped", text("state.skipped"))
    else:
        _mark(
            job, name, "completed", "phase.completed", text(outcome.message_key, **outcome.params)
        )


def _failed_attempt(job: Job, name: str, error: PacsbridgeError) -> bool:
    reason = error.as_dict()["message"]
    with job.ctx.sessions() as session:
        left = _phase(session, job.import_id, name).attempts_left
    if error.retriable and left > 0:
        message = text("state.retrying", attempts=left, reason=reason)
        _mark(job, name, "retrying", "phase.retry", message, code=error.code, detail=error.detail)
        _schedule_retry(job, left)
        return False
    _mark(
        job,
        name,
        "failed",
        "phase.failed",
        text("state.failed", reason=reason),
        code=error.code,
        detail=error.detail,
    )
    fail_import(job.ctx, job.import_id, error)
    return False


def _schedule_retry(job: Job, left: int) -> None:
    settings = job.ctx.settings.jobs
    delay = ledger.retry_delay(settings, settings.attempts - left)
    with job.ctx.sessions.begin() as session:
        row = session.get(Import, job.import_id)
        assert row is not None
        row.retry_at = job.ctx.clock.now() + timedelta(seconds=delay)
    if job.ctx.queue is not None and not job.ctx.queue.immediate:
        job.ctx.queue.enqueue("imports.run_pipeline", job.import_id, delay=delay)


def fail_import(ctx: Context, import_id: int, error: PacsbridgeError) -> None:
    """Final state failed, the reason recorded; the RIS is told (discontinued) if configured."""
    info = error.as_dict()
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        row = session.get(Import, import_id)
        assert row is not None
        row.state, row.error, row.finished_at, row.updated_at = "failed", info, now, now
        audit.record(
            session,
            now,
            "import.failed",
            import_id=import_id,
            outcome="error",
            code=info["code"],
            message=info["message"],
            detail=info["detail"],
        )
    notify.discontinued(ctx, import_id, info["message"])


def _complete(ctx: Context, import_id: int) -> None:
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        row = session.get(Import, import_id)
        assert row is not None
        row.state, row.finished_at, row.updated_at, row.error = "completed", now, now, {}
        audit.record(session, now, "import.completed", import_id=import_id)
    if ctx.settings.storage.retain_after_completion_hours == 0:
        delete_files(ctx, import_id)


def delete_files(ctx: Context, import_id: int) -> None:
    """Temporary files go only after the PACS confirmed the study (or on cancel)."""
    deleted = workspace.delete_all(ctx.data_dir, import_id)
    with ctx.sessions.begin() as session:
        row = session.get(Import, import_id)
        assert row is not None
        row.files_deleted = True
        audit.record(
            session, ctx.clock.now(), "files.deleted", import_id=import_id, existed=deleted
        )
