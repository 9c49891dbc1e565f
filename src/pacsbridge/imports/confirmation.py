"""Confirm or cancel an analysed import (seed 000 §4.C).

Confirm: the selection defaults to every study not already on the PACS; a study in conflict
(its UID on the PACS under another patient) or whose duplicate check could not be done cannot
be confirmed; confirming twice or after cancel is a 409 with the reason. Cancel: every temporary
file is deleted at once and the state becomes ``cancelled``.
"""

from __future__ import annotations

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import ConflictError, InputError
from pacsbridge.imports import workspace
from pacsbridge.imports.models import Import, ImportStudy, Launch
from pacsbridge.imports.scope import load_import

CANCELLABLE = ("created", "uploading", "analysing", "awaiting_confirmation", "failed")


def confirm(ctx: Context, import_id: int, launch: Launch, uids: list[str] | None) -> Import:
    """Select the studies to send and hand the import to the pipeline."""
    with ctx.sessions.begin() as session:
        row = _in_state(session, import_id, launch, ("awaiting_confirmation",))
        chosen = _select(row, uids)
        now = ctx.clock.now()
        row.state, row.confirmed_at, row.updated_at = "confirmed", now, now
        audit.record(
            session,
            now,
            "import.confirmed",
            import_id=row.id,
            actor=_actor(launch),
            study_instance_uids=[s.study_instance_uid for s in chosen],
        )
    if ctx.queue is not None:
        ctx.queue.enqueue("imports.run_pipeline", import_id)
    return row


def _in_state(session, import_id: int, launch: Launch, states: tuple[str, ...]) -> Import:  # noqa: ANN001
    """The import within the launch's scope, or 409 when its state does not allow the action."""
    row = load_import(session, import_id, launch)
    if row.state not in states:
        raise ConflictError(f"import is {row.state}", state=row.state)
    return row


def _actor(launch: Launch) -> str:
    return launch.operator_name or launch.operator_id


def _select(row: Import, uids: list[str] | None) -> list[ImportStudy]:
    by_uid = {s.study_instance_uid: s for s in row.studies}
    wanted = (
        list(uids)
        if uids is not None
        else [s.study_instance_uid for s in row.studies if s.pacs_status in ("absent", "unknown")]
    )
    _check_selection(by_uid, wanted)
    for study in row.studies:
        study.selected = study.study_instance_uid in wanted
    return [by_uid[u] for u in wanted]


def _check_selection(by_uid: dict[str, ImportStudy], wanted: list[str]) -> None:
    unknown = [u for u in wanted if u not in by_uid]
    if unknown or not wanted:
        raise InputError(
            "no valid study selected",
            fields=[{"field": "study_instance_uids", "error": f"unknown: {u}"} for u in unknown]
            or [{"field": "study_instance_uids", "error": "empty selection"}],
        )
    for uid in wanted:
        status = by_uid[uid].pacs_status
        if status == "present":
            raise ConflictError(f"{uid} is already on the PACS", reason="già presente su PACS")
        if status == "conflict":
            raise ConflictError(
                f"{uid} is on the PACS under another patient",
                reason="conflitto con un altro paziente sul PACS",
            )
        if status == "unknown":
            raise ConflictError(
                f"duplicate check of {uid} not done",
                reason="PACS non raggiungibile: ripetere il controllo",
            )


def recheck(ctx: Context, import_id: int, launch: Launch) -> Import:
    """Analyse again (the extracted files are kept): after "PACS non raggiungibile" at analysis.

    Studies whose duplicate check could not be done cannot be confirmed; the operator asks
    again once the PACS answers, without uploading the media a second time.
    """
    with ctx.sessions.begin() as session:
        row = _in_state(session, import_id, launch, ("awaiting_confirmation",))
        now = ctx.clock.now()
        row.state, row.updated_at = "analysing", now
        audit.record(
            session,
            now,
            "analysis.repeated",
            import_id=row.id,
            actor=_actor(launch),
        )
    if ctx.queue is not None:
        ctx.queue.enqueue("imports.analyse", import_id)
    return row


def cancel(ctx: Context, import_id: int, launch: Launch) -> Import:
    """Delete every temporary file now and mark the import cancelled."""
    with ctx.sessions.begin() as session:
        row = _in_state(session, import_id, launch, CANCELLABLE)
        deleted = workspace.delete_all(ctx.data_dir, import_id)
        now = ctx.clock.now()
        row.state, row.updated_at, row.finished_at, row.files_deleted = "cancelled", now, now, True
        audit.record(
            session,
            now,
            "import.cancelled",
            import_id=row.id,
            actor=_actor(launch),
            files_deleted=deleted,
        )
    return row
