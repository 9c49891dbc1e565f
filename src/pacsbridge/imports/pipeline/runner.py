"""Runs the phases of one import against its ledger rows (manual §5, "Monitoraggio").

Only here are retries decided (docs/architecture.md, "Retries"): a retriable error
costs one attempt, is shown as "N tentativi rimasti" and schedules the whole pipeline again after
a back-off; a permanent error, or no attempts left, fails the import with the reason (a message
key and its parameters, rendered where it is read: docs/errors.md).
The run holds the import's lease (``ledger.held``, renewed by its heartbeat thread), so a second
delivery of the same task does nothing and a killed worker's import is picked up by the reaper.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from pacsbridge import audit, metrics
from pacsbridge.context import Context
from pacsbridge.errors import PacsbridgeError, from_os_error
from pacsbridge.imports import lifecycle
from pacsbridge.imports.lifecycle import ImportState, PhaseState
from pacsbridge.imports.models import Import, PhaseRun
from pacsbridge.imports.pipeline import PHASES, notify
from pacsbridge.imports.pipeline.base import Job, Outcome, Phase, Skipped
from pacsbridge.jobs import ledger
from pacsbridge.messages import Said, said

log = logging.getLogger(__name__)
RUNNABLE = (ImportState.CONFIRMED, ImportState.PROCESSING)


def run_pipeline(ctx: Context, import_id: int) -> None:
    """The ``imports.run_pipeline`` task."""
    with ledger.held(ctx, Import, import_id) as lease:
        if lease.acquired:  # else another worker holds it
            _run(ctx, import_id)


def _run(ctx: Context, import_id: int) -> None:
    job = _start(ctx, import_id)
    if job is None:
        lifecycle.settle_cancelled(ctx, import_id)  # a cancel nobody has settled yet
        return
    for name, phase in PHASES:
        if _phase_state(ctx, import_id, name) in (PhaseState.COMPLETED, PhaseState.SKIPPED):
            continue
        if lifecycle.cancelled(ctx, import_id) or not _attempt(job, name, phase):
            lifecycle.settle_cancelled(ctx, import_id)
            return
    _complete(ctx, import_id)


def _start(ctx: Context, import_id: int) -> Job | None:
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        row = session.get(Import, import_id)
        if row is None or row.state not in RUNNABLE:
            return None
        if row.state == ImportState.CONFIRMED and not _begin(session, import_id):
            return None  # cancelled a moment ago
        row.retry_at, row.updated_at = None, now
        _ensure_phase_rows(session, ctx, import_id)
        launch, analysis = row.launch, row.analysis
    return Job(ctx, import_id, launch, analysis)


def _begin(session, import_id: int) -> bool:  # noqa: ANN001
    return lifecycle.move(session, import_id, ImportState.CONFIRMED, ImportState.PROCESSING)


def _ensure_phase_rows(session, ctx: Context, import_id: int) -> None:  # noqa: ANN001
    existing = set(session.scalars(select(PhaseRun.phase).where(PhaseRun.import_id == import_id)))
    for name, _ in PHASES:
        if name not in existing:
            session.add(
                PhaseRun(
                    import_id=import_id,
                    phase=name,
                    state=PhaseState.PENDING,
                    attempts_left=ctx.settings.jobs.attempts,
                )
            )


def _phase_state(ctx: Context, import_id: int, name: str) -> str:
    with ctx.sessions() as session:
        return _phase(session, import_id, name).state


def _phase(session, import_id: int, name: str) -> PhaseRun:  # noqa: ANN001
    query = select(PhaseRun).where(PhaseRun.import_id == import_id, PhaseRun.phase == name)
    return session.scalars(query).one()


def _attempt(job: Job, name: str, phase: Phase) -> bool:
    """One attempt of one phase; True when the pipeline may go on."""
    if _interrupted_too_often(job, name):
        return _failed_attempt(job, name, PacsbridgeError("interrupted with no attempts left"))
    _mark(job, name, PhaseState.RUNNING, "phase.started", worker=ledger.worker_name())
    started = time.monotonic()
    try:
        outcome = phase(job)
    except lifecycle.Cancelled:
        _timed(name, PhaseState.CANCELLED, started)
        _mark(job, name, PhaseState.CANCELLED, "phase.cancelled", _cancelled_message(job))
        return False
    except Exception as error:  # noqa: BLE001 - every failure ends, with a reason
        _timed(name, PhaseState.FAILED, started)
        return _failed_attempt(job, name, _as_error(error))
    done = PhaseState.SKIPPED if isinstance(outcome, Skipped) else PhaseState.COMPLETED
    _timed(name, done, started)
    _finish(job, name, outcome)
    return True


def _timed(name: str, outcome: str, started: float) -> None:
    """The attempt's duration in the phase histogram (docs/operations.md)."""
    metrics.PHASE_SECONDS.labels(name, outcome).observe(time.monotonic() - started)


def _cancelled_message(job: Job) -> Said:
    """What the monitor shows: how much had already reached the PACS when the cancel came."""
    instances = job.instances()
    stored = sum(1 for i in instances if i.state == "stored")
    if not stored:
        return said("final.cancelled")
    return said("final.cancelled_sent", stored=stored, total=len(instances))


def _interrupted_too_often(job: Job, name: str) -> bool:
    """Still "running" with no attempt left: each start of it ended with a killed worker."""
    with job.ctx.sessions() as session:
        run = _phase(session, job.import_id, name)
        return run.state == PhaseState.RUNNING and run.attempts_left == 0


def _as_error(error: Exception) -> PacsbridgeError:
    """Ours and a full disk as ``errors.from_os_error`` says; anything else a permanent error.

    Only the exception's type is kept: its text may hold file paths from the media.
    """
    known = from_os_error(error)
    if known is not None:
        return known
    log.error("pipeline phase crashed: %s", type(error).__name__)
    return PacsbridgeError(type(error).__name__)


def _mark(
    job: Job, name: str, state: str, kind: str, message: Said | None = None, **details
) -> PhaseRun:  # noqa: ANN003
    now = job.ctx.clock.now()
    with job.ctx.sessions.begin() as session:
        run = _phase(session, job.import_id, name)
        if state == PhaseState.RUNNING:
            run.attempts_left = max(run.attempts_left - 1, 0)
            run.started_at, run.ended_at = now, None
            message = said("state.running", attempts=run.attempts_left)
        else:
            run.ended_at = now
        message = message or said("state.pending")
        run.state, run.message_key, run.message_params = state, message["key"], message["params"]
        audit.record(
            session,
            now,
            kind,
            import_id=job.import_id,
            phase=name,
            attempts_left=run.attempts_left,
            message=message,
            outcome="error" if state in (PhaseState.FAILED, PhaseState.RETRYING) else "ok",
            **details,
        )
        return run


def _finish(job: Job, name: str, outcome: Outcome) -> None:
    if isinstance(outcome, Skipped):
        _mark(job, name, PhaseState.SKIPPED, "phase.skipped", said("state.skipped"))
    else:
        _mark(
            job,
            name,
            PhaseState.COMPLETED,
            "phase.completed",
            said(outcome.message_key, **outcome.params),
        )


def _failed_attempt(job: Job, name: str, error: PacsbridgeError) -> bool:
    reason = error.said()
    with job.ctx.sessions() as session:
        left = _phase(session, job.import_id, name).attempts_left
    if error.retriable and left > 0:
        message = said("state.retrying", attempts=left, reason=reason)
        _mark(
            job,
            name,
            PhaseState.RETRYING,
            "phase.retry",
            message,
            code=error.code,
            detail=error.detail,
        )
        _schedule_retry(job, left)
        return False
    _mark(
        job,
        name,
        PhaseState.FAILED,
        "phase.failed",
        said("state.failed", reason=reason),
        code=error.code,
        detail=error.detail,
    )
    fail_import(job.ctx, job.import_id, error)
    return False


def _schedule_retry(job: Job, left: int) -> None:
    settings = job.ctx.settings.jobs
    with job.ctx.sessions.begin() as session:
        row = session.get_one(Import, job.import_id)
        used = settings.attempts - left
        delay, row.retry_at = ledger.retry_at(settings, used, job.ctx.clock.now())
    if not job.ctx.queue.immediate:
        ledger.schedule_retry(job.ctx.queue, ledger.Task.RUN_PIPELINE, job.import_id, delay)


def fail_import(ctx: Context, import_id: int, error: PacsbridgeError) -> None:
    """Final state failed, the reason recorded; the RIS is told (discontinued) if configured."""
    info = error.stored()
    now = ctx.clock.now()
    values = {"error": info, "finished_at": now, "updated_at": now}
    with ctx.sessions.begin() as session:
        state = _state(session, import_id)
        if state not in RUNNABLE or not lifecycle.move(
            session, import_id, state, ImportState.FAILED, **values
        ):
            return  # cancelled meanwhile: the cancel's settlement tells the RIS
        audit.record(
            session,
            now,
            "import.failed",
            import_id=import_id,
            outcome="error",
            code=info["code"],
            message=error.said(),
            detail=info["detail"],
        )
    notify.discontinued(ctx, import_id, error.said())


def _state(session, import_id: int) -> str:  # noqa: ANN001
    return session.scalar(select(Import.state).where(Import.id == import_id))


def _complete(ctx: Context, import_id: int) -> None:
    now = ctx.clock.now()
    values = {"finished_at": now, "updated_at": now, "error": {}}
    with ctx.sessions.begin() as session:
        won = lifecycle.move(
            session, import_id, ImportState.PROCESSING, ImportState.COMPLETED, **values
        )
        if won:
            audit.record(session, now, "import.completed", import_id=import_id)
    if not won:
        lifecycle.settle_cancelled(ctx, import_id)
    elif ctx.settings.storage.retain_after_completion_hours == 0:
        delete_files(ctx, import_id)


def delete_files(ctx: Context, import_id: int) -> None:
    """Temporary files go only after the PACS confirmed the study (or on cancel)."""
    lifecycle.delete_files(ctx, import_id, reason="completed")
