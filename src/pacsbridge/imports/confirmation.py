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

from pacsbridge import audit, messages
from pacsbridge.context import Context
from pacsbridge.errors import (
    ConflictError,
    DocumentGone,
    IdentityNotAcknowledged,
    InputError,
    StudyNotSendable,
)
from pacsbridge.imports import documents, lifecycle, workspace
from pacsbridge.imports.lifecycle import ImportState, PacsStatus
from pacsbridge.imports.models import Import, ImportInstance, ImportStudy, Launch
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
    document_keys: list[str] | None = None,
) -> Import:
    """Select the studies to send (and the media's documents to wrap into the first one) and
    hand the import to the pipeline."""
    with ctx.sessions.begin() as session:
        row = _in_state(session, import_id, launch, lifecycle.confirmable)
        chosen = _select(row, uids)
        differing = _differing(row, chosen)
        if differing and not acknowledged:
            raise IdentityNotAcknowledged(f"verdicts {differing} need identity_acknowledged")
        now = ctx.clock.now()
        wrapped = _wrap_documents(
            ctx, session, row, chosen, list(dict.fromkeys(document_keys or []))
        )
        lifecycle.require(session, row, ImportState.CONFIRMED, confirmed_at=now, updated_at=now)
        _audit_confirmed(session, ctx, row.id, launch, chosen, differing)
        if wrapped:
            audit.record(session, now, "documents.added", import_id=row.id, documents=wrapped)
    ctx.queue.enqueue(ledger.Task.RUN_PIPELINE, import_id)
    return row


def _wrap_documents(
    ctx: Context, session: Session, row: Import, chosen: list[ImportStudy], keys: list[str]
) -> list[str]:
    """Each ticked document as a DICOM object in the first chosen study (imports/documents.py).

    Written before the state changes: a document that cannot be written fails the confirm as a
    whole, and a file left behind goes with the import's folder.
    """
    if not keys:
        return []
    analysis = row.analysis or {}
    offered = {d["key"]: (i, d) for i, d in enumerate(analysis.get("documents", []))}
    refused = [k for k in keys if k not in offered or offered[k][1].get("problem")]
    if refused:
        raise InputError(
            "document not importable",
            fields=[{"field": "document_keys", "error": "unknown or not importable"}],
        )
    study_uid = chosen[0].study_instance_uid
    study = analysis["studies"][study_uid]
    patient = next(
        (p for p in analysis.get("patients", []) if study_uid in p.get("study_instance_uids", [])),
        {},
    )
    series, now = documents.new_series_uids(), ctx.clock.now()
    root = workspace.files_dir(ctx.data_dir, row.id).resolve()
    for number, key in enumerate(keys, start=1):
        index, document = offered[key]
        source = (root / document["path"]).resolve()
        if not source.is_relative_to(root) or not source.is_file():
            raise DocumentGone(f"document {index} is no longer there", index=index)
        ds = documents.wrap(source, document, study, patient, series[document["kind"]], number, now)
        name = f"{index}.dcm"
        target = workspace.documents_dir(ctx.data_dir, row.id) / name
        documents.save(ds, target)
        session.add(
            ImportInstance(
                import_id=row.id,
                study_instance_uid=study_uid,
                series_instance_uid=str(ds.SeriesInstanceUID),
                sop_instance_uid=str(ds.SOPInstanceUID),
                sop_class_uid=str(ds.SOPClassUID),
                transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
                path=f"{documents.MARKER}{name}",
                size_bytes=target.stat().st_size,
            )
        )
    return [offered[k][1]["kind"] for k in keys]


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


#: Why a study may not be sent: the technical detail and the key of the reason said to the reader.
_REFUSED: dict[str, tuple[str, str]] = {
    PacsStatus.PRESENT: ("is already on the PACS", "study.refused_present"),
    PacsStatus.CONFLICT: ("is on the PACS under another patient", "study.refused_conflict"),
    PacsStatus.UNKNOWN: ("duplicate check not done", "study.refused_unchecked"),
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
            detail, key = _REFUSED.get(status, ("cannot be sent", "study.refused_other"))
            reason = messages.said(key, status=str(status))
            raise StudyNotSendable(f"{uid} {detail}", uid=uid, reason=reason)


def recheck(ctx: Context, import_id: int, launch: Launch, actor: str | None = None) -> Import:
    """Analyse again (the extracted files are kept): after "PACS non raggiungibile" at analysis.

    Studies whose duplicate check could not be done cannot be confirmed; the operator asks
    again once the PACS answers, without uploading the media a second time.
    """
    with ctx.sessions.begin() as session:
        row = _in_state(session, import_id, launch, lifecycle.confirmable)
        lifecycle.require(session, row, ImportState.ANALYSING, updated_at=ctx.clock.now())
        audit.record(
            session,
            ctx.clock.now(),
            "analysis.repeated",
            import_id=row.id,
            actor=actor or _actor(launch),
        )
    ctx.queue.enqueue(ledger.Task.ANALYSE, import_id)
    return row


def cancel(ctx: Context, import_id: int, launch: Launch, actor: str | None = None) -> Import:
    """Cancel: the state first (running work stops at its next check), then the files.

    ``actor`` is the operator of the launch, or the staff member who aborts from the support
    console (docs/support.md).

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
            actor=actor or _actor(launch),
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
