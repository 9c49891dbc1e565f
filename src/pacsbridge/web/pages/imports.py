"""The operator pages of an import (manual §3-§5): start, import, confirmation, monitor, cancel.

Thin: each route reads a read model (``imports.views``, ``imports.monitor``, ``audit``) under
the cookie's launch and renders it; every state change is made by the page's JavaScript
through the JSON API (``/api/v1/imports``), never here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pacsbridge import audit
from pacsbridge.imports import lifecycle, monitor, views
from pacsbridge.imports.launch import ris_patient_dict
from pacsbridge.imports.scope import load_import
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages import strings, switch, view
from pacsbridge.web.pages.session import (
    PageSession,
    Session,
    render,
)

router = APIRouter(include_in_schema=False)

AFTER_CONFIRMATION = lifecycle.CONFIRMED_ONWARDS
#: "Importazioni Precedenti" shows the latest attempts, the others behind "mostra tutte": at
#: 1366×768 five rows pushed "Seleziona Cartella" below the fold.
HISTORY_SHOWN = 3
BEFORE_ANALYSIS = lifecycle.BEFORE_ANALYSIS


@router.get("/imports/start", name="start_page")
def start(request: Request, ctx: Ctx, token: str | None = None) -> Response:
    """The RIS launch link: token → HttpOnly cookie, then a clean URL (no token in history).

    The clean URL is reached by a refresh from this same-site page rather than a 303: after a
    cross-site navigation (the RIS's link), browsers withhold SameSite=Strict cookies along the
    whole redirect chain, so a 303 would land on "Token Not Found or Expired". A session for
    another patient is never replaced silently (web/pages/switch.py).
    """
    return switch.open_link(request, ctx, token)  # asks first when another patient is open


@router.get("/imports", name="import_page")
def import_page(request: Request, ctx: Ctx, session: Session) -> Response:
    """Patient panel, previous imports, folder picker and drop zone, zip and upload."""
    history = [_history_row(entry, session.lang) for entry in views.history(ctx, session.launch)]
    config = {
        "csrf": session.csrf_token,
        "partBytes": ctx.settings.upload.part_bytes,
        "maxArchiveBytes": ctx.settings.upload.max_archive_bytes,
        "urls": {
            "imports": _url(request, "/api/v1/imports"),
            "confirmation": _url(request, "/imports/{id}/confirm"),
        },
        "strings": strings.upload(session.lang),
    }
    return render(
        request,
        "imports/index.html",
        {
            **_patient(ctx, session),
            "history": history,
            "history_shown": HISTORY_SHOWN,
            "config": config,
        },
    )


def _history_row(entry: dict[str, Any], lang: str) -> dict[str, Any]:
    return {
        "requested_at": view.moment(entry["requested_at"]),
        "uids": entry["study_instance_uids"],
        "descriptions": [d for d in entry["descriptions"] if d],
        "badge": view.badge(entry["badge"], lang),
        "link": entry["link"],
        "id": entry["id"],
    }


@router.get("/imports/{import_id}/confirm", name="confirmation_page")
def confirmation_page(import_id: int, request: Request, ctx: Ctx, session: Session) -> Response:
    """CONFERMA IMPORT STUDI: the RIS patient, each DICOM patient with verdicts and studies."""
    document = views.import_document(ctx, import_id, session.launch, session.lang)
    state = document["state"]
    if state in AFTER_CONFIRMATION or (state == "failed" and document["patients"]):
        return RedirectResponse(_url(request, f"/imports/{import_id}/monitor"), status_code=303)
    if state == "cancelled":
        return RedirectResponse(_url(request, f"/imports/{import_id}/cancelled"), status_code=303)
    lang = session.lang
    patients = [_patient_view(p, import_id, lang) for p in document["patients"]]
    studies = [s for p in patients for s in p["studies"]]
    match = view.is_full_match(document["patients"])
    context = {
        **_patient(ctx, session),
        "document": document,
        "waiting": state in BEFORE_ANALYSIS,
        "failed": state == "failed",
        "error_text": (document["error"] or {}).get("message", ""),  # in ``lang`` already
        "patients": patients,
        "match": match,
        "mismatch": any(p.get("verdict") == "mismatch" for p in document["patients"]),
        "importable": [s for s in studies if s["selectable"]],
        "all_present": bool(studies) and all(s["pacs_status"] == "present" for s in studies),
        # the duplicate check could not be done (PACS unreachable): "Riprova controllo"
        "unchecked": any(s["pacs_status"] == "unknown" for s in studies),
        "problems": view.problem_messages(document["problems"], lang),
        "documents": [_document_view(d, request, import_id, lang) for d in document["documents"]],
        "discrepancies": view.discrepancies(document["patients"], lang),
        "config": _action_config(request, session, import_id),
    }
    return render(request, "imports/confirm.html", context)


def _patient_view(patient: dict[str, Any], import_id: int, lang: str) -> dict[str, Any]:
    return {
        **patient,
        "display_name": view.person_name(patient.get("name")),
        "verifications": view.patient_messages(patient, lang),
        "studies": [_study_view(s, import_id, lang) for s in patient.get("studies", [])],
    }


def _study_view(study: dict[str, Any], import_id: int, lang: str) -> dict[str, Any]:
    return {
        **study,
        "selectable": view.selectable(study),
        "notices": view.study_messages(study, lang),
        "thumbnails": [
            {
                **series,
                "key": view.series_key(study["study_instance_uid"], series["series_instance_uid"]),
            }
            for series in study.get("series", [])
        ],
    }


def _document_view(
    document: dict[str, Any], request: Request, import_id: int, lang: str
) -> dict[str, Any]:
    """A document of the medium: its preview, its size, and why it cannot be imported."""
    route = "document_pdf" if document["kind"] == "pdf" else "document_preview"
    return {
        **document,
        "preview": _url(
            request,
            request.app.url_path_for("document_preview", import_id=import_id, key=document["key"]),
        ),
        "open": _url(
            request, request.app.url_path_for(route, import_id=import_id, key=document["key"])
        ),
        "size_text": view.size(document.get("size", 0)),
        "problem_text": view.message(document["problem"], lang) if document.get("problem") else "",
    }


def _action_config(request: Request, session: PageSession, import_id: int) -> dict[str, Any]:
    base = _url(request, f"/api/v1/imports/{import_id}")
    return {
        "csrf": session.csrf_token,
        "importId": import_id,
        "urls": {
            "self": base,
            "confirm": f"{base}/confirm",
            "cancel": f"{base}/cancel",
            "recheck": f"{base}/recheck",
            "monitor": _url(request, f"/imports/{import_id}/monitor"),
            "cancelled": _url(request, f"/imports/{import_id}/cancelled"),
        },
        "strings": strings.actions(session.lang),
    }


@router.get("/imports/{import_id}/monitor", name="monitor_page")
def monitor_page(import_id: int, request: Request, ctx: Ctx, session: Session) -> Response:
    """Phases with state, times and attempts left; the support id; the audit log, live."""
    lang = session.lang
    progress = monitor.progress(ctx, import_id, session.launch, lang)
    if progress["state"] in (*BEFORE_ANALYSIS, "awaiting_confirmation"):
        return RedirectResponse(_url(request, f"/imports/{import_id}/confirm"), status_code=303)
    with ctx.sessions() as db:
        load_import(db, import_id, session.launch)
        events = [
            strings.event_row(audit.as_dict(e, lang), lang)
            for e in audit.events_of_import(db, import_id)
        ]
    texts = strings.monitor(lang, import_id)
    config = {
        "importId": import_id,
        "timeoutSeconds": ctx.settings.web.monitor_timeout_seconds,
        "pollSeconds": 2,
        "urls": {
            "progress": _url(request, f"/api/v1/imports/{import_id}/progress"),
            "events": _url(request, f"/api/v1/imports/{import_id}/events"),
        },
        "strings": texts,
    }
    context = {
        **_patient(ctx, session),
        "progress": progress,
        "phases": [strings.phase_row(p, lang) for p in progress["phases"]],
        "final": strings.final_row(progress, lang),
        "closing": strings.closing(progress["state"], lang),
        "events": events,
        "phase_labels": texts["phases"],
        "config": config,
    }
    return render(request, "imports/monitor.html", context)


@router.get("/imports/{import_id}/cancelled", name="cancelled_page")
def cancelled_page(import_id: int, request: Request, ctx: Ctx, session: Session) -> Response:
    """The import was cancelled and its temporary files deleted: the window may be closed."""
    document = views.import_document(ctx, import_id, session.launch, session.lang)
    if document["state"] != "cancelled":
        return RedirectResponse(_url(request, f"/imports/{import_id}/confirm"), status_code=303)
    context = {**_patient(ctx, session), "document": document}
    return render(request, "imports/cancelled.html", context)


def _patient(ctx: Any, session: PageSession) -> dict[str, Any]:
    patient = ris_patient_dict(session.launch)
    return {
        "patient": patient,
        "patient_age": view.age(patient["birth_date"], ctx.clock.now().date()),
    }


def _url(request: Request, path: str) -> str:
    return f"{request.scope.get('root_path', '')}{path}"
