"""Read models of an import: the document ``GET /api/v1/imports/{id}`` answers, and history.

The analysis document is stored once; what changes later (selection, PACS status, pipeline
state) comes from the rows, so this module merges the two for readers. Messages are stored as
keys and parameters; this is where they get their words, in the reader's ``lang``
(docs/errors.md, "Errors carry keys").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from pacsbridge.audit import AuditEvent
from pacsbridge.context import Context
from pacsbridge.errors import PeerTlsRefused, answer
from pacsbridge.imports.launch import ris_patient_dict
from pacsbridge.imports.lifecycle import ImportState
from pacsbridge.imports.models import Import, ImportStudy, Launch
from pacsbridge.imports.scope import load_import
from pacsbridge.messages import DEFAULT_LANGUAGE, render, text

STUDY_MESSAGES = {
    "present": "study.already_on_pacs",
    "conflict": "study.conflict_other_patient",
    "partial": "study.partially_on_pacs",
    "unknown": "pacs.unreachable",
}

#: Import state → the five badges of "Importazioni Precedenti" (manual §3.B), and "cancelled".
BADGES = {
    ImportState.CREATED: "request_created",
    ImportState.UPLOADING: "request_created",
    ImportState.ANALYSING: "waiting",
    ImportState.AWAITING_CONFIRMATION: "waiting",
    ImportState.CONFIRMED: "waiting",
    ImportState.PROCESSING: "in_progress",
    ImportState.COMPLETED: "completed",
    ImportState.FAILED: "failed",
    ImportState.CANCELLED: "cancelled",  # its own grey badge: not a failure
}


def import_document(
    ctx: Context, import_id: int, launch: Launch, lang: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    with ctx.sessions() as session:
        row = load_import(session, import_id, launch)
        return document(ctx, row, lang)


def document(ctx: Context, row: Import, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    analysis = row.analysis or {}
    rows = {s.study_instance_uid: s for s in row.studies}
    studies = {
        uid: _study(entry, rows.get(uid), lang)
        for uid, entry in analysis.get("studies", {}).items()
    }
    return {
        "id": row.id,
        "state": row.state,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "received_bytes": row.received_bytes,
        "archive_size": row.archive_size,
        "ris_patient": ris_patient_dict(row.launch),
        "patients": [_patient(p, studies, lang) for p in analysis.get("patients", [])],
        "problems": [_said(p, lang) for p in analysis.get("problems", [])],
        "documents": analysis.get("documents", []),
        "notes": analysis.get("notes", []),
        "used_dicomdir": analysis.get("used_dicomdir"),
        "error": answer(row.error, lang) if row.error else None,
        "links": _links(ctx, row.id),
    }


def _patient(
    entry: dict[str, Any], studies: dict[str, dict[str, Any]], lang: str
) -> dict[str, Any]:
    uids = entry.get("study_instance_uids", [])
    patient = {k: v for k, v in entry.items() if k != "study_instance_uids"}
    return {
        **patient,
        "messages": [render(m, lang) for m in entry.get("messages", [])],
        "hints": [render(h, lang) for h in entry.get("hints", [])],
        "studies": [studies[u] for u in uids if u in studies],
    }


def _said(problem: dict[str, Any], lang: str) -> dict[str, Any]:
    """A problem of the media with its message in words (stored as a key, or as words before)."""
    return {**problem, "message": render(problem.get("message"), lang)}


def _study(entry: dict[str, Any], row: ImportStudy | None, lang: str) -> dict[str, Any]:
    status = row.pacs_status if row else "unknown"
    key = STUDY_MESSAGES.get(status)
    params = {
        "pacs_patient": entry.get("pacs_patient", ""),
        "on_pacs": entry.get("on_pacs", "?"),
        "on_media": entry.get("instance_count"),
    }
    error = answer(entry["pacs_error"], lang) if entry.get("pacs_error") else None
    words = [text(key, lang, **params)] if key else []
    if status == "unknown" and error is not None and specific(error):
        words = [error["message"]]
    return {
        **entry,
        "pacs_status": status,
        "pacs_error": error if status == "unknown" else None,
        "already_on_pacs": status == "present",
        "selected": bool(row and row.selected),
        "state": row.state if row else "pending",
        "messages": words,
    }


#: Why a duplicate check failed that says more than "unreachable": a refused TLS certificate
#: needs a new certificate or CA, not another try (docs/pacs-setup.md, "DICOM TLS").
SPECIFIC_CHECK_ERRORS = frozenset({PeerTlsRefused.code})


def specific(error: dict[str, Any] | None) -> bool:
    """The duplicate check's error (as answered) is shown in place of "PACS unreachable"."""
    return error is not None and error.get("code") in SPECIFIC_CHECK_ERRORS


def _links(ctx: Context, import_id: int) -> dict[str, str]:
    base = ctx.settings.public_url
    return {
        "self": f"{base}/api/v1/imports/{import_id}",
        "monitor": f"{base}/imports/{import_id}/monitor",
        "confirmation": f"{base}/imports/{import_id}/confirm",
    }


def history(ctx: Context, launch: Launch) -> list[dict[str, Any]]:
    """Previous imports of the token's patient and order that have at least one audit event."""
    with ctx.sessions() as session:
        return [_history_entry(ctx, row) for row in _audited(session, launch)]


def _audited(session: Session, launch: Launch) -> list[Import]:
    has_event = exists().where(AuditEvent.import_id == Import.id)
    query = (
        select(Import)
        .where(Import.patient_id == launch.patient_id, Import.order_number == launch.order_number)
        .join(Import.launch)
        .where(Launch.issuer == launch.issuer)  # same id under another issuer: another patient
        .where(has_event)
        .order_by(Import.created_at.desc(), Import.id.desc())
    )
    return list(session.scalars(query))


def _history_entry(ctx: Context, row: Import) -> dict[str, Any]:
    studies = row.analysis.get("studies", {}) if row.analysis else {}
    badge = BADGES.get(row.state, "in_progress")
    return {
        "id": row.id,
        "requested_at": row.created_at.isoformat(),
        "state": row.state,
        "badge": badge,
        "study_instance_uids": list(studies),
        "descriptions": [s.get("description", "") for s in studies.values()],
        "link": _links(ctx, row.id)["monitor"] if badge != "request_created" else None,
    }
