"""Support console, imports: search, one import's page, and its actions (docs/support.md).

The page shows what the operator saw (the monitor's phases and final result, the patient
verdicts of the confirmation page, in the operator pages' own words) plus what only support
needs: the whole audit log and every instance with the PACS's answer. Each action is a
confirmation page, then a CSRF-checked form; retry needs ``retry``, abort ``abort``.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pacsbridge.imports import support
from pacsbridge.imports.lifecycle import ImportState
from pacsbridge.imports.views import BADGES
from pacsbridge.staff.roles import Permission
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages import strings, view
from pacsbridge.web.pages.i18n import N_
from pacsbridge.web.pages.session import render
from pacsbridge.web.pages.support.auth import SupportConsole
from pacsbridge.web.pages.support.common import (
    PER_PAGE,
    Action,
    add_confirm_route,
    allowed_form,
    base_context,
    days,
    done,
    notice,
    page_number,
    pager,
)

router = APIRouter(include_in_schema=False)
BASE = "/support/importazioni"

#: action in the URL → what it needs, asks and says once done
ACTIONS = {
    "riprova": Action(
        Permission.RETRY,
        N_("Retry the failed phase of import %(id)s? The pipeline starts again from that phase."),
        N_("The failed phase was started again."),
    ),
    "annulla": Action(
        Permission.ABORT,
        N_(
            "Abort import %(id)s? Its temporary files are deleted and the RIS is told that the "
            "import was not done. This cannot be undone."
        ),
        N_("The import was aborted."),
        danger=True,
    ),
    "ricontrolla": Action(
        Permission.RETRY,
        N_("Repeat the analysis and the PACS duplicate check of import %(id)s?"),
        N_("The analysis and the duplicate check were started again."),
    ),
}
_BADGES: dict[str, str] = {str(state): badge for state, badge in BADGES.items()}
RUN = {"riprova": support.retry, "annulla": support.abort, "ricontrolla": support.recheck}


@router.get(BASE, name="support_imports")
def search_page(
    request: Request,
    ctx: Ctx,
    page: SupportConsole,
    id: str = "",  # noqa: A002 - "Id per assistenza", as the operators say it
    paziente: str = "",
    ordine: str = "",
    accession: str = "",
    stato: str = "",
    dal: str = "",
    al: str = "",
    operatore: str = "",
    pagina: int = 1,
) -> Response:
    number = page_number(pagina)
    created_from, created_to = days(dal, al)
    filters = support.Filters(
        support_id=_support_id(id),
        patient=paziente[:200],
        order=ordine[:64],
        accession=accession[:64],
        state=stato if stato in set(ImportState) else "",
        operator=operatore[:200],
        created_from=created_from,
        created_to=created_to,
    )
    rows, total = support.search(ctx, filters, number, PER_PAGE)
    context = {
        **base_context(page, "imports"),
        "rows": [{**r, "badge": _badge(r["state"], page.lang)} for r in rows],
        "query": {
            "id": id,
            "paziente": paziente,
            "ordine": ordine,
            "accession": accession,
            "stato": stato,
            "dal": dal,
            "al": al,
            "operatore": operatore,
        },
        "states": [(s.value, _badge(s, page.lang)["label"]) for s in ImportState],
        "pager": pager(number, total),
    }
    return render(request, "support/imports.html", context)


def _support_id(value: str) -> int | None:
    digits = value.strip()
    return int(digits) if digits.isdigit() and len(digits) < 10 else (-1 if digits else None)


def _badge(state: str, lang: str) -> dict[str, str]:
    return view.badge(_BADGES.get(state, "failed"), lang)


@router.get(BASE + "/{import_id}", name="support_import")
def import_page(
    import_id: int, request: Request, ctx: Ctx, page: SupportConsole, fatto: str = ""
) -> Response:
    lang = page.lang
    found = support.detail(ctx, import_id, lang)
    progress = found["progress"]
    texts = strings.monitor(lang, import_id)
    context = {
        **base_context(page, "imports"),
        "item": found,
        "summary": found["summary"],
        "phases": [strings.phase_row(p, lang) for p in progress["phases"]],
        "final": strings.final_row(progress, lang),
        "phase_labels": texts["phases"],
        "events": [strings.event_row(e, lang) for e in found["events"]],
        "patients": [_patient(p, lang) for p in found["document"]["patients"]],
        "instances": found["instances"],
        "notice": notice(ACTIONS, fatto, lang),
        "badge": _badge(found["state"], lang),
    }
    return render(request, "support/import.html", context)


def _patient(patient: dict[str, Any], lang: str) -> dict[str, Any]:
    """A media patient as the confirmation page shows it: name, verdicts, studies."""
    return {
        **patient,
        "display_name": view.person_name(patient.get("name")),
        "verifications": view.patient_messages(patient, lang),
        "studies": [
            {**s, "notices": view.study_messages(s, lang)} for s in patient.get("studies", [])
        ],
    }


@router.post(BASE + "/{import_id}/{action}")
async def run_action(
    import_id: int, action: str, request: Request, ctx: Ctx, page: SupportConsole
) -> Response:
    await allowed_form(request, page, ACTIONS, action)
    await to_thread.run_sync(RUN[action], ctx, import_id, page.staff.username)
    return done(request, f"{BASE}/{import_id}", action)


add_confirm_route(router, BASE, "imports", ACTIONS, support.detail, "support_import_confirm")
