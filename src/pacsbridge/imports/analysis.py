"""Analysis of an uploaded archive: media inventory → identity verdicts → duplicate check.

Flow (manual §3.C, §4): extract safely (``media.archive``) → DICOMDIR or scan → headers →
inventory (``media.inspect``) → one verdict per DICOM patient against the RIS patient
(``identity``) → C-FIND per study (``duplicates``) → rows and the analysis document are stored,
state ``awaiting_confirmation``. Studies already on the PACS lose their temporary files now.
Idempotent: a re-run starts again from the archive. Every way out is a state: a cancel seen
between two files stops the extraction and deletes what was written; any exception ends in
``failed`` with the reason audited; a worker killed mid-way is restarted by the reaper at most
``jobs.analysis_attempts`` times (docs/lifecycle.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from pacsbridge import audit, media
from pacsbridge.audit import AuditEvent
from pacsbridge.context import Context
from pacsbridge.errors import AnalysisFailed, MediaError, PacsbridgeError, from_os_error
from pacsbridge.imports import documents, duplicates, lifecycle, workspace
from pacsbridge.imports.lifecycle import ImportState, PacsStatus, StudyState
from pacsbridge.imports.models import Import, ImportInstance, ImportStudy, Launch
from pacsbridge.imports.verdicts import iso_date, patient_entry
from pacsbridge.jobs import ledger
from pacsbridge.media.archive import ArchiveLimits, Stopped, extract
from pacsbridge.messages import said

log = logging.getLogger(__name__)
#: How often extraction asks the database whether the import was cancelled.
POLL_SECONDS = 0.2


def analyse(ctx: Context, import_id: int) -> None:
    """The ``imports.analyse`` task; holds the import's lease (jobs.ledger) while it works."""
    with ledger.held(ctx, Import, import_id) as lease:
        if lease.acquired:  # else another worker is analysing it
            _analyse(ctx, import_id)


def _analyse(ctx: Context, import_id: int) -> None:
    launch = _start(ctx, import_id)
    if launch is None:
        return
    try:
        report = _inspect(ctx, import_id)
        document = _document(launch, report)
        document["documents"] = _documents(ctx, import_id)
        checks = _check_pacs(ctx, launch, report)
        lifecycle.stop_if_cancelled(ctx, import_id)
        _store(ctx, import_id, report, document, checks)
    except (Stopped, lifecycle.Cancelled):
        lifecycle.settle_cancelled(ctx, import_id)
        return
    except Exception as error:  # noqa: BLE001 - every failure ends the analysis, with a reason
        _fail(ctx, import_id, _as_error(import_id, error))
        return
    _drop_present(ctx, import_id, report, checks)


def _as_error(import_id: int, error: Exception) -> PacsbridgeError:
    """Ours and a full disk as ``errors.from_os_error`` says; anything else by its type only.

    Only the type is kept: an OS error's text holds paths from the media (patient names).
    """
    known = from_os_error(error)
    if known is not None:
        return known
    log.error("analysis of import %s crashed: %s", import_id, type(error).__name__)
    return AnalysisFailed(type(error).__name__, reason=said("analysis.crashed"))


def _start(ctx: Context, import_id: int) -> Launch | None:
    """The launch when the analysis may run; None when it must not (and then why is handled)."""
    with ctx.sessions.begin() as session:
        row = session.get(Import, import_id)
        if row is None or row.state not in (ImportState.ANALYSING, ImportState.CANCELLED):
            return None
        cancelled, starts = row.state == ImportState.CANCELLED, _starts(session, import_id)
        if not cancelled and starts < ctx.settings.jobs.analysis_attempts:
            audit.record(
                session,
                ctx.clock.now(),
                "analysis.started",
                import_id=import_id,
                worker=ledger.worker_name(),
            )
            return row.launch
    if cancelled:
        lifecycle.settle_cancelled(ctx, import_id)
    else:
        reason = said("analysis.interrupted", count=starts)
        _fail(ctx, import_id, AnalysisFailed(f"{starts} starts", reason=reason))
    return None


def _starts(session, import_id: int) -> int:  # noqa: ANN001
    """Analyses started since the archive arrived or the operator asked again."""
    events = select(AuditEvent.id).where(AuditEvent.import_id == import_id)
    since = session.scalar(
        select(func.max(AuditEvent.id)).where(
            AuditEvent.import_id == import_id,
            AuditEvent.kind.in_(("upload.completed", "analysis.repeated")),
        )
    )
    started = events.where(AuditEvent.kind == "analysis.started", AuditEvent.id > (since or 0))
    return len(session.scalars(started).all())


def _inspect(ctx: Context, import_id: int) -> media.MediaReport:
    root = workspace.files_dir(ctx.data_dir, import_id)
    archive = workspace.archive_path(ctx.data_dir, import_id)
    if archive.exists():
        workspace.clear_files(ctx.data_dir, import_id)
        extract(archive, root, _limits(ctx), should_stop=_poller(ctx, import_id))
    lifecycle.stop_if_cancelled(ctx, import_id)
    report = media.inspect(root)
    if not report.instances:
        raise MediaError("no DICOM instance found", reason="nessun file DICOM")
    archive.unlink(missing_ok=True)  # the extracted files now hold everything received
    return report


def _poller(ctx: Context, import_id: int) -> Callable[[], bool]:
    """Asked between two extracted files: cancelled? (the database at most every POLL_SECONDS)."""
    last = [0.0]

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last[0] < POLL_SECONDS:
            return False
        last[0] = now
        return lifecycle.cancelled(ctx, import_id)

    return should_stop


def _limits(ctx: Context) -> ArchiveLimits:
    u = ctx.settings.upload
    return ArchiveLimits(
        max_total_bytes=u.max_uncompressed_bytes,
        max_entries=u.max_entries,
        max_ratio=u.max_ratio,
        free_margin_bytes=ctx.settings.storage.free_margin_bytes,
    )


def _fail(ctx: Context, import_id: int, error: PacsbridgeError) -> None:
    """Failed, the reason recorded and audited; the upload stays for support until a cancel."""
    if isinstance(error, MediaError) and error.code == "media_error":
        error = MediaError(error.detail)
        error.message_key = "media.no_dicom"  # type: ignore[misc]
    info, now = error.stored(), ctx.clock.now()
    values = {"error": info, "updated_at": now, "finished_at": now}
    with ctx.sessions.begin() as session:
        won = lifecycle.move(
            session, import_id, ImportState.ANALYSING, ImportState.FAILED, **values
        )
        if won:
            audit.record(
                session,
                now,
                "analysis.failed",
                import_id=import_id,
                outcome="error",
                code=info["code"],
                message=error.said(),
                detail=info["detail"],
            )
    if not won:
        lifecycle.settle_cancelled(ctx, import_id)


def _document(launch: Launch, report: media.MediaReport) -> dict[str, Any]:
    conflicts = set(report.inventory.conflicts)
    patients = [patient_entry(launch, group, conflicts) for group in report.inventory.patients]
    studies = {
        s["study_instance_uid"]: s
        for p in report.inventory.patients
        for s in map(_study_entry, p.studies)
    }
    return {
        "patients": patients,
        "studies": studies,
        "used_dicomdir": report.used_dicomdir,
        "instance_count": len(report.instances),
        "problems": [_problem(p) for p in report.problems],
        "notes": [_problem(p) for p in report.notes],
    }


def _documents(ctx: Context, import_id: int) -> list[dict[str, Any]]:
    """The PDFs and scanned pages on the medium, offered on the confirmation screen."""
    settings = ctx.settings.imports
    root = workspace.files_dir(ctx.data_dir, import_id)
    return documents.find(root, settings.document_max_bytes, settings.thumbnail_max_pixels)


def _study_entry(study: media.StudyGroup) -> dict[str, Any]:
    return {
        "study_instance_uid": study.study_instance_uid,
        "description": study.description,
        "date": iso_date(study.date),
        "time": _iso_time(study.time),
        "accession_number": study.accession_number,
        "modalities": list(study.modalities),
        "series_count": study.series_count,
        "instance_count": study.instance_count,
        "series": [_series_entry(s) for s in study.series],
    }


def _series_entry(series: media.SeriesGroup) -> dict[str, Any]:
    middle = series.instances[len(series.instances) // 2]
    return {
        "series_instance_uid": series.series_instance_uid,
        "number": series.series_number,
        "modality": series.modality,
        "description": series.description,
        "instance_count": len(series.instances),
        "representative": middle.path,
    }


def _problem(problem: media.Problem) -> dict[str, Any]:
    return {
        "code": problem.code,
        "message": said(problem.code),
        "file": problem.file,
        "detail": problem.detail,
    }


def _iso_time(value: str) -> str | None:
    digits = (value or "").strip().split(".")[0]
    if len(digits) >= 4 and digits.isdigit():
        return ":".join(digits[i : i + 2] for i in range(0, min(len(digits), 6), 2))
    return None


def _check_pacs(
    ctx: Context, launch: Launch, report: media.MediaReport
) -> dict[str, duplicates.PacsCheck]:
    checks = {}
    for patient in report.inventory.patients:
        ids = {launch.patient_id, patient.patient_id}
        for study in patient.studies:
            uids = {i.sop_instance_uid for s in study.series for i in s.instances}
            checks[study.study_instance_uid] = duplicates.check_study(
                ctx, study.study_instance_uid, ids, uids
            )
    return checks


def _store(
    ctx: Context,
    import_id: int,
    report: media.MediaReport,
    document: dict[str, Any],
    checks: dict[str, duplicates.PacsCheck],
) -> None:
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        session.query(ImportInstance).filter_by(import_id=import_id).delete()
        session.query(ImportStudy).filter_by(import_id=import_id).delete()
        for uid, study in document["studies"].items():
            check = checks[uid]
            study.update(
                pacs_patient=check.pacs_patient, on_pacs=check.on_pacs, pacs_error=check.error
            )
            session.add(_study_row(import_id, study, checks[uid]))
            _audit_check(session, now, import_id, uid, checks[uid], study)
        for header in report.instances:
            if checks[header.study_instance_uid].status != PacsStatus.PRESENT:
                session.add(_instance_row(import_id, header))
        for problem in document["problems"]:
            audit.record(
                session,
                now,
                "analysis.problem",
                import_id=import_id,
                outcome="warning",
                code=problem["code"],
                message=problem["message"],
                file=problem["file"],
            )
        moved = lifecycle.move(
            session,
            import_id,
            ImportState.ANALYSING,
            ImportState.AWAITING_CONFIRMATION,
            analysis=document,
            updated_at=now,
        )
        if not moved:
            raise lifecycle.Cancelled(import_id)  # the only other way out of analysing
        audit.record(
            session,
            now,
            "analysis.completed",
            import_id=import_id,
            patients=len(document["patients"]),
            studies=len(document["studies"]),
            instances=document["instance_count"],
            verdicts=[p["verdict"] for p in document["patients"]],
        )


def _study_row(import_id: int, study: dict[str, Any], check: duplicates.PacsCheck) -> ImportStudy:
    return ImportStudy(
        import_id=import_id,
        study_instance_uid=study["study_instance_uid"],
        description=study["description"][:200],
        instance_count=study["instance_count"],
        pacs_status=check.status,
        selected=lifecycle.sendable(check.status),
        state=StudyState.DROPPED if check.status == PacsStatus.PRESENT else StudyState.PENDING,
    )


def _instance_row(import_id: int, header: media.InstanceHeader) -> ImportInstance:
    return ImportInstance(
        import_id=import_id,
        study_instance_uid=header.study_instance_uid,
        series_instance_uid=header.series_instance_uid,
        sop_instance_uid=header.sop_instance_uid,
        sop_class_uid=header.sop_class_uid,
        transfer_syntax_uid=header.transfer_syntax_uid,
        path=header.path,
        size_bytes=header.size_bytes,
    )


_AUDIT_KIND = {
    "present": "duplicates.found",
    "conflict": "duplicates.conflict",
    "partial": "duplicates.partial",
    "unknown": "duplicates.unreachable",
}


def _audit_check(session, now, import_id, uid, check, study) -> None:  # noqa: ANN001
    duplicates.audit_query(session, now, import_id, uid, check)
    kind = _AUDIT_KIND.get(check.status)
    if kind is None:
        return
    audit.record(
        session,
        now,
        kind,
        import_id=import_id,
        outcome="warning",
        message=check.said(),  # why the check failed, in the reader's language
        study_instance_uid=uid,
        pacs_patient=check.pacs_patient,
        on_pacs=check.on_pacs,
        on_media=study["instance_count"],
        detail=check.detail,
    )


def _drop_present(
    ctx: Context,
    import_id: int,
    report: media.MediaReport,
    checks: dict[str, duplicates.PacsCheck],
) -> None:
    """Delete the temporary files of studies already on the PACS (manual §4.B)."""
    root = workspace.files_dir(ctx.data_dir, import_id)
    for header in report.instances:
        if checks[header.study_instance_uid].status == PacsStatus.PRESENT:
            (root / header.path).unlink(missing_ok=True)
