"""Support console, retrievals: list and filter, one retrieval's page, retry and purge.

A retrieval's page shows the FSE's own document (state, studies, errors) and the instances
still missing; retry (``retry``) asks again for the same accession numbers, purge (``purge``,
administrators) removes its studies from the cache through ``retrievals.cache``.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pacsbridge.retrievals import support
from pacsbridge.retrievals.lifecycle import RetrievalState
from pacsbridge.staff.roles import Permission
from pacsbridge.web.deps import Ctx
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
    url,
)

router = APIRouter(include_in_schema=False)
BASE = "/support/recuperi"

ACTIONS = {
    "riprova": Action(
        Permission.RETRY,
        N_("Ask the source again for the accession numbers of retrieval %(id)s?"),
        N_("A new retrieval was requested."),
    ),
    "elimina": Action(
        Permission.PURGE,
        N_(
            "Remove the studies of retrieval %(id)s from the cache? A later request moves them "
            "from the source again."
        ),
        N_("The studies were removed from the cache."),
        danger=True,
    ),
}


@router.get(BASE, name="support_retrievals")
def list_page(
    request: Request,
    ctx: Ctx,
    page: SupportConsole,
    stato: str = "",
    sorgente: str = "",
    accession: str = "",
    dal: str = "",
    al: str = "",
    pagina: int = 1,
) -> Response:
    number = page_number(pagina)
    created_from, created_to = days(dal, al)
    filters = support.Filters(
        state=stato if stato in set(RetrievalState) else "",
        source=sorgente[:64],
        accession=accession.strip()[:16],
        created_from=created_from,
        created_to=created_to,
    )
    rows, total = support.search(ctx, filters, number, PER_PAGE)
    context = {
        **base_context(page, "retrievals"),
        "rows": rows,
        "query": {
            "stato": stato,
            "sorgente": sorgente,
            "accession": accession,
            "dal": dal,
            "al": al,
        },
        "states": [s.value for s in RetrievalState],
        "sources": [s.name for s in ctx.settings.sources],
        "pager": pager(number, total),
    }
    return render(request, "support/retrievals.html", context)


@router.get(BASE + "/{retrieval_id}", name="support_retrieval")
def retrieval_page(
    retrieval_id: int,
    request: Request,
    ctx: Ctx,
    page: SupportConsole,
    fatto: str = "",
    nuovo: int = 0,
) -> Response:
    found = support.detail(ctx, retrieval_id, page.lang)
    context = {
        **base_context(page, "retrievals"),
        "item": found,
        "document": found["document"],
        "notice": notice(ACTIONS, fatto, page.lang),
        "new_id": nuovo or None,
    }
    return render(request, "support/retrieval.html", context)


@router.post(BASE + "/{retrieval_id}/{action}")
async def run_action(
    retrieval_id: int, action: str, request: Request, ctx: Ctx, page: SupportConsole
) -> Response:
    await allowed_form(request, page, ACTIONS, action)
    actor = page.staff.username
    if action == "riprova":
        new_id = await to_thread.run_sync(support.retry, ctx, retrieval_id, actor)
        target = url(request, f"{BASE}/{retrieval_id}?fatto=riprova&nuovo={new_id}")
        return RedirectResponse(target, status_code=303)
    await to_thread.run_sync(support.purge, ctx, retrieval_id, actor)
    return done(request, f"{BASE}/{retrieval_id}", action)


add_confirm_route(router, BASE, "retrievals", ACTIONS, support.detail, "support_retrieval_confirm")
