"""The import and study lifecycles: states, the one transition table, and the one ``move()``.

Every state change of an import goes through :func:`move`, an ``UPDATE imports SET state = :to
… WHERE id = :id AND state = :from``. Two requests that race (a confirm and a cancel sent at the
same moment) both read ``awaiting_confirmation``, but only one UPDATE matches: on PostgreSQL the
second waits for the first's row lock and then finds the state changed; on SQLite ``BEGIN
IMMEDIATE`` serialises them. The loser is told (``False``, or 409 from :func:`require`) and
nothing of it is applied. The tables in docs/lifecycle.md are generated from this module.

Cancel is a state like any other: running work (extraction, upload parts, the send phase) asks
:func:`cancelled` between files, parts and batches and stops; whoever holds the work then
deletes the files (:func:`settle_cancelled`), so the audit says ``files.deleted`` only once it
is true.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import ConflictError
from pacsbridge.imports import workspace
from pacsbridge.imports.models import Import, Launch

log = logging.getLogger(__name__)


class ImportState(StrEnum):
    """Where an import is (``imports.state``)."""

    CREATED = "created"
    UPLOADING = "uploading"
    ANALYSING = "analysing"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    CONFIRMED = "confirmed"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StudyState(StrEnum):
    """A study of the media (``import_studies.state``)."""

    PENDING = "pending"
    #: already on the PACS under the same patient: removed from the import at analysis
    DROPPED = "dropped"


class PhaseState(StrEnum):
    """Where one pipeline phase of an import is (``phase_runs.state``, manual §5); set only by
    ``imports.pipeline.runner``, meanings in :data:`PHASE_MEANING`."""

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: What each phase state means (docs/lifecycle.md is generated from this).
PHASE_MEANING: dict[PhaseState, str] = {
    PhaseState.PENDING: 'Not started yet ("Da Elaborare").',
    PhaseState.RUNNING: "An attempt is running; one attempt fewer is left.",
    PhaseState.RETRYING: "A retriable error: the pipeline runs again after a back-off.",
    PhaseState.COMPLETED: "Done; a later run of the pipeline skips it.",
    PhaseState.SKIPPED: "Not configured (no RIS listener, no merge): nothing to do.",
    PhaseState.FAILED: "A permanent error, or no attempts left: the import failed.",
    PhaseState.CANCELLED: "Stopped by the operator's cancel.",
}


class PacsStatus(StrEnum):
    """What the duplicate check found on the PACS (``import_studies.pacs_status``)."""

    ABSENT = "absent"
    PRESENT = "present"
    CONFLICT = "conflict"
    PARTIAL = "partial"
    UNKNOWN = "unknown"


S = ImportState

#: Every allowed change of an import's state; anything else is a programming error.
TRANSITIONS: dict[ImportState, frozenset[ImportState]] = {
    S.CREATED: frozenset({S.UPLOADING, S.CANCELLED}),
    S.UPLOADING: frozenset({S.ANALYSING, S.FAILED, S.CANCELLED}),
    S.ANALYSING: frozenset({S.AWAITING_CONFIRMATION, S.FAILED, S.CANCELLED}),
    S.AWAITING_CONFIRMATION: frozenset({S.CONFIRMED, S.ANALYSING, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.PROCESSING, S.FAILED, S.CANCELLED}),
    S.PROCESSING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset({S.CONFIRMED, S.CANCELLED}),  # confirmed again: a support retry
    S.CANCELLED: frozenset(),
}

STUDY_TRANSITIONS: dict[StudyState, frozenset[StudyState]] = {
    StudyState.PENDING: frozenset({StudyState.DROPPED}),
    StudyState.DROPPED: frozenset(),
}

#: What each state means, for docs/lifecycle.md.
MEANING: dict[ImportState, str] = {
    S.CREATED: "Created under a launch; nothing received yet.",
    S.UPLOADING: "Archive parts are arriving.",
    S.ANALYSING: "The archive is unpacked and inspected; duplicate check on the PACS.",
    S.AWAITING_CONFIRMATION: "Analysed; the operator confirms, rechecks or cancels.",
    S.CONFIRMED: "Confirmed; the pipeline has not started yet.",
    S.PROCESSING: "The pipeline runs: verify, reconcile, send, merge, notify.",
    S.COMPLETED: "Every phase completed.",
    S.FAILED: "Stopped, with a reason; support may retry its failed phase (docs/support.md).",
    S.CANCELLED: "Cancelled by the operator; its files are deleted.",
}

#: States in which work runs for the import (a worker may hold its lease).
WORKING = frozenset({S.ANALYSING, S.CONFIRMED, S.PROCESSING})
#: States whose import still owns its folder; a cancelled import owns none.
OWNS_FILES = frozenset(set(ImportState) - {S.CANCELLED})
#: PACS statuses a study may be sent with: the PACS lacks it entirely or in part.
SENDABLE = frozenset({PacsStatus.ABSENT, PacsStatus.PARTIAL})
#: States nothing leaves on its own: the monitor stops polling, the page shows the outcome.
#: (Failed is left only by a person: an operator's cancel or a support retry, docs/support.md.)
FINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
#: States before the confirmation screen exists (the page waits for the analysis).
BEFORE_ANALYSIS = frozenset({S.CREATED, S.UPLOADING, S.ANALYSING})
#: States after a confirmation that did not fail: the monitor is the page to show.
CONFIRMED_ONWARDS = frozenset({S.CONFIRMED, S.PROCESSING, S.COMPLETED})


def confirmable(state: str) -> bool:
    """May the operator confirm (or ask for a recheck of) an import in ``state``?"""
    return state == S.AWAITING_CONFIRMATION


def cancellable(state: str) -> bool:
    return S.CANCELLED in TRANSITIONS[ImportState(state)]


def uploadable(state: str) -> bool:
    return state in (S.CREATED, S.UPLOADING)


def sendable(pacs_status: str) -> bool:
    """May a study with this duplicate-check outcome be selected and sent to the PACS?"""
    return pacs_status in SENDABLE


def move(session: Session, import_id: int, from_: str, to: str, **values: object) -> bool:
    """Compare-and-set the state in the caller's transaction; False when another change won."""
    source, target = ImportState(from_), ImportState(to)
    if target not in TRANSITIONS[source]:
        raise ValueError(f"import transition {source} → {target} is not allowed")
    statement = (
        update(Import)
        .where(Import.id == import_id, Import.state == source)
        .values(state=target, **values)
        .execution_options(synchronize_session="fetch")
    )
    won = session.execute(statement).rowcount == 1
    if not won:
        log.info("import %s: %s → %s lost to a concurrent change", import_id, source, target)
    return won


def require(session: Session, row: Import, to: str, **values: object) -> None:
    """:func:`move` from the state ``row`` was read in; 409 when it changed meanwhile."""
    seen = row.state
    if not move(session, row.id, seen, to, **values):
        session.refresh(row)
        raise ConflictError(f"import was {seen}, now {row.state}", state=row.state)


def cancelled(ctx: Context, import_id: int) -> bool:
    """The check running work makes between files, parts and batches."""
    with ctx.sessions() as session:
        state = session.scalar(select(Import.state).where(Import.id == import_id))
    return state in (None, S.CANCELLED)


class Cancelled(Exception):  # noqa: N818 - a signal, not an error: nobody failed
    """Raised inside running work when the import was cancelled under it."""


def stop_if_cancelled(ctx: Context, import_id: int) -> None:
    if cancelled(ctx, import_id):
        raise Cancelled(import_id)


def create(ctx: Context, launch: Launch) -> Import:
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        row = Import(
            launch_id=launch.id,
            patient_id=launch.patient_id,
            order_number=launch.order_number,
            state=S.CREATED,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            now,
            "import.created",
            import_id=row.id,
            actor=launch.operator_name or launch.operator_id,
        )
    return row


def delete_files(ctx: Context, import_id: int, reason: str) -> bool:
    """Remove the import's folder; audit ``files.deleted`` only when it is really gone."""
    existed = workspace.delete_all(ctx.data_dir, import_id)
    gone = not workspace.folder(ctx.data_dir, import_id).exists()
    if gone:
        with ctx.sessions.begin() as session:
            session.execute(update(Import).where(Import.id == import_id).values(files_deleted=True))
            audit.record(
                session,
                ctx.clock.now(),
                "files.deleted",
                import_id=import_id,
                existed=existed,
                reason=reason,
            )
    else:
        log.warning("import %s: files still present after deletion", import_id)
    return gone


def settle_cancelled(ctx: Context, import_id: int) -> None:
    """After a cancel, by whoever holds the work: delete the files, tell the RIS if confirmed.

    Called by the worker that noticed the cancel, or by cancel itself when no work runs.
    """
    with ctx.sessions() as session:
        row = session.get(Import, import_id)
        if row is None or row.state != S.CANCELLED:
            return
        was_confirmed, deleted = row.confirmed_at is not None, row.files_deleted
    if not deleted:
        delete_files(ctx, import_id, reason="cancelled")
    if was_confirmed:
        from pacsbridge.imports.pipeline import notify  # the pipeline imports this module

        notify.discontinued_once(ctx, import_id)
