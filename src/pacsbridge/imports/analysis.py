"""Analysis of an uploaded archive: media inventory → identity verdicts → duplicate check.

Flow (seed 000 §3.C, §4): extract safely (``media.archive``) → DICOMDIR or scan → headers →
inventory (``media.inspect``) → one verdict per DICOM patient against the RIS patient
(``identity``) → C-FIND per study (``duplicates``) → rows and the analysis document are stored,
state ``awaiting_confirmation``. Studies already on the PACS lose their temporary files now.
Idempotent: a re-run starts again from the archive.
"""

from __future__ import annotations

import shutil
from typing import Any

from pacsbridge import audit, media
from pacsbridge.context import Context
from pacsbridge.errors import MediaError, PacsbridgeError
from pacsbridge.imports import duplicates, workspace
from pacsbridge.imports.models import Import, ImportInstance, ImportStudy, Launch
from pacsbridge.imports.verdicts import iso_date, patient_entry
from pacsbridge.jobs import ledger
from pacsbridge.media.archive import ArchiveLimits, extract
from pacsbridge.messages import text


def analyse(ctx: Context, import_id: int) -> None:
    """The ``imports.analyse`` task; holds the import's lease (jobs.ledger) while it works."""
    with ctx.sessions.begin() as session:
        if not ledger.acquire(
            session, Import, import_id, ctx.clock.now(), ctx.settings.jobs.lease_seconds
        ):
            return
    try:
        _analyse(ctx, import_id)
    finally:
        with ctx.sessions.begin() as session:
            ledger.release(session, Import, import_id)


def _analyse(ctx: Context, import_id: int) -> None:
    launch = _start(ctx, import_id)
    if launch is None:
        return
    try:
        report = _inspect(ctx, import_id)
    except PacsbridgeError as error:
        _fail(ctx, import_id, error)
        return
    document = _document(launch, report)
    checks = _check_pacs(ctx, launch, report)
    _store(ctx, import_id, report, document, checks)
    _drop_present(ctx, import_id, report, checks)


def _start(ctx: Context, import_id: int) -> Launch | None:
    with ctx.sessions.begin() as session:
        row = session.get(Import, import_id)
        if row is None or row.state != "analysing":
            return None
        audit.record(session, ctx.clock.now(), "analysis.started", import_id=import_id)
        return row.launch


def _inspect(ctx: Context, import_id: int) -> media.MediaReport:
    root = workspace.files_dir(ctx.data_dir, import_id)
    archive = workspace.archive_path(ctx.data_dir, import_id)
    if archive.exists():
        shutil.rmtree(root, ignore_errors=True)
        extract(archive, root, _limits(ctx))
    report = media.inspect(root)
    if not report.instances:
        raise MediaError("no DICOM instance found", reason="nessun file DICOM")
    archive.unlink(missing_ok=True)  # the extracted files now hold everything received
    return report


def _limits(ctx: Context) -> ArchiveLimits:
    u = ctx.settings.upload
    return ArchiveLimits(
        max_total_bytes=u.max_uncompressed_bytes, max_entries=u.max_entries, max_ratio=u.max_ratio
    )


def _fail(ctx: Context, import_id: int, error: PacsbridgeError) -> None:
    if isinstance(error, MediaError) and error.code == "media_error":
        error = MediaError(error.detail)
        error.message_key = "media.no_dicom"  # type: ignore[misc]
    info = error.as_dict()
    with ctx.sessions.begin() as session:
        row = session.get(Import, import_id)
        assert row is not None
        row.state, row.error, row.updated_at = "failed", info, ctx.clock.now()
        row.finished_at = ctx.clock.now()
        audit.record(
            session,
            ctx.clock.now(),
            "analysis.failed",
            import_id=import_id,
            outcome="error",
            code=info["code"],
            message=info["message"],
            detail=info["detail"],
        )


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
        "message": text(problem.code),
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
        row = session.get(Import, import_id)
        if row is None or row.state != "analysing":
            return  # cancelled while we worked: cancel already deleted the files
        session.query(ImportInstance).filter_by(import_id=import_id).delete()
        session.query(ImportStudy).filter_by(import_id=import_id).delete()
        for uid, study in document["studies"].items():
            study.update(pacs_patient=checks[uid].pacs_patient, on_pacs=checks[uid].on_pacs)
            session.add(_study_row(import_id, study, checks[uid]))
            _audit_check(session, now, import_id, uid, checks[uid], study)
        for header in report.instances:
            if checks[header.study_instance_uid].status != "present":
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
        row.analysis, row.state, row.updated_at = document, "awaiting_confirmation", now
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
        selected=check.status in ("absent", "unknown"),
        state="dropped" if check.status == "present" else "pending",
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
    kind = _AUDIT_KIND.get(check.status)
    if kind is None:
        return
    audit.record(
        session,
        now,
        kind,
        import_id=import_id,
        outcome="warning",
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
    """Delete the temporary files of studies already on the PACS (seed 000 §4.B)."""
    root = workspace.files_dir(ctx.data_dir, import_id)
    for header in report.instances:
        if checks[header.study_instance_uid].status == "present":
            (root / header.path).unlink(missing_ok=True)
