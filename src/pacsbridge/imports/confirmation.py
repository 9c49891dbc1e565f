"""Confirm or cancel an analysed import (manual §4.C).

Confirm: the selection defaults to every study not already on the PACS; a study in conflict
(its UID on the PACS under another patient) or whose duplicate check could not be done cannot
be confirmed; confirming twice or after cancel is a 409 with the reason. A patient whose verdict
is a mismatch or a different format needs the explicit ``identity_acknowledged`` field (the
page's second confirmation), audited as ``identity.acknowledged``. Cancel: the state becomes
``cancelled`` and every temporary file is deleted (docs/lifecycle.md). Every state change is a
compare-and-set (``lifecycle.require``): of a confirm and a cancel at the same moment one wins,
the other answers 409.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import ConflictError, IdentityNotAcknowledged, InputError
from pacsbridge.imports import lifecycle
from pacsbridge.imports.lifecycle import ImportState, PacsStatus
from pacsbridge.imports.models import Import, ImportStudy, Launch
from pacsbridge.imports.scope import load_import
from pacsbridge.jobs import ledger

#: Patient verdicts that need the operator's second confirmation (and the API's field).
NEEDS_ACKNOWLEDGEMENT = ("mismatch", "format_different")


def confirm(
    ctx: Context,
    import_id: int,
    launch: Launch,
    uids: list[str] | None,
    acknowledged: bool = False,
) -> Import:
    """Select the studies to send and hand the import to the pipeline."""
    with ctx.sessions.begin() as session:
        row = _in_state(session, import_id, launch, lifecycle.confirmable)
        chosen = _select(row, uids)
        differing = _differing(row, chosen)
        if differing and not acknowledged:
            raise IdentityNotAcknowledged(f"verdicts {differing} need identity_acknowledged")
        now = ctx.clock.now()
        lifecycle.require(session, row, ImportState.CONFIRMED, confirmed_at=now, updated_at=now)
        _audit_confirmed(session, ctx, row.id, launch, chosen, differing)
    ctx.queue.enqueue(ledger.Task.RUN_PIPELINE, import_id)
    return row


def _differing(row: Import, chosen: list[ImportStudy]) -> list[str]:
    """Verdicts of the media patients whose studies are chosen, where they are not a match."""
    uids = {s.study_instance_uid for s in chosen}
    patients: list[dict[str, Any]] = (row.analysis or {}).get("patients", [])
    return [
        p["verdict"]
        for p in patients
        if p.get("verdict") in NEEDS_ACKNOWLEDGEMENT
        and uids & set(p.get("study_instance_uids", []))
    ]


def _audit_confirmed(session, ctx, import_id, launch, chosen, differing) -> None:  # noqa: ANN001
    now, actor = ctx.clock.now(), _actor(launch)
    uids = [s.study_instance_uid for s in chosen]
    if differing:
        audit.record(
            session,
            now,
            "identity.acknowledged",
            import_id=import_id,
            actor=actor,
            outcome="warning",
            verdicts=differing,
            study_instance_uids=uids,
        )
    audit.record(
        session, now, "import.confirmed", import_id=import_id, actor=actor, study_instance_uids=uids
    )


def _in_state(session: Session, import_id: int, launch: Launch, allowed) -> Import:  # noqa: ANN001
    """The import within the launch's scope, or 409 when its state does not allow the action."""
    row = load_import(session, import_id, launch)
    if not allowed(row.state):
        raise ConflictError(f"import is {row.state}", state=row.state)
    return row


def _actor(launch: Launch) -> str:
    return launch.operator_name or launch.operator_id


def _select(row: Import, uids: list[str] | None) -> list[ImportStudy]:
    by_uid = {s.study_instance_uid: s for s in row.studies}
    wanted = list(uids) if uids is not None else _default_selection(row)
    _check_selection(by_uid, wanted)
    for study in row.studies:
        study.selected = study.study_instance_uid in wanted
    return [by_uid[u] for u in wanted]


def _default_selection(row: Import) -> list[str]:
    """The studies preselected at analysis; when none is, every one not on the PACS.

    The fallback lets the check below name the reason (a conflict, "PACS non raggiungibile")
    instead of an empty selection.
    """
    chosen = [s.study_instance_uid for s in row.studies if s.selected]
    return chosen or [
        s.study_instance_uid for s in row.studies if s.pacs_status != PacsStatus.PRESENT
    ]


_REFUSED = {
    PacsStatus.PRESENT: ("is already on the PACS", "già presente su PACS"),
    PacsStatus.CONFLICT: (
        "is on the PACS under another patient",
        "conflitto con un altro paziente sul PACS",
    ),
    PacsStatus.UNKNOWN: (
        "duplicate check not done",
        "PACS non raggiungibile: ripetere il controllo",
    ),
}


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
        if not lifecycle.sendable(status):
            detail, reason = _REFUSED.get(status, ("cannot be sent", status))
            raise ConflictError(f"{uid} {detail}", reason=reason)


def recheck(ctx: Context, import_id: int, launch: Launch) -> Import:
    """Analyse again (the extracted files are kept): after "PACS non raggiungibile" at analysis.

    Studies whose duplicate check could not be done cannot be confirmed; the operator asks
    again once the PACS answers, without uploading the media a second time.
    """
    with ctx.sessions.begin() as session:
        row = _in_state(session, import_id, launch, lifecycle.confirmable)
        lifecycle.require(session, row, ImportState.ANALYSING, updated_at=ctx.clock.now())
        audit.record(
            session, ctx.clock.now(), "analysis.repeated", import_id=row.id, actor=_actor(launch)
        )
    ctx.queue.enqueue(ledger.Task.ANALYSE, import_id)
    return row


def cancel(ctx: Context, import_id: int, launch: Launch) -> Import:
    """Cancel: the state first (running work stops at its next check), then the files.

    When no worker holds the import, cancel deletes the files itself and the audit says so;
    otherwise the worker that notices, within a file or a chunk, deletes them
    (``lifecycle.settle_cancelled``); the reaper settles one whose worker died.
    """
    with ctx.sessions.begin() as session:
        row = _in_state(session, import_id, launch, lifecycle.cancellable)
        row_state, now = str(row.state), ctx.clock.now()
        lifecycle.require(session, row, ImportState.CANCELLED, updated_at=now, finished_at=now)
        idle = bool(session.scalar(_idle(import_id, now)))
        audit.record(
            session,
            now,
            "import.cancelled",
            import_id=row.id,
            actor=_actor(launch),
            was=row_state,
        )
    if idle:
        lifecycle.settle_cancelled(ctx, import_id)
    # else the worker deletes them at its next check (between two files or chunks): deleting
    # under a running send or extraction would only turn its stop into a crash
    return row


def _idle(import_id: int, now):  # noqa: ANN001, ANN202
    """Nobody holds the import's lease: no analysis or pipeline runs for it."""
    from sqlalchemy import select

    return select(Import.id).where(Import.id == import_id, ledger.free(Import, now))
