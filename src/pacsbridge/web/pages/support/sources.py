"""Support console, the PACS and the sources: C-ECHO now, moves, failures; pause and resume.

The echoes run when the page is viewed, in parallel, each within
``health.echo_timeout_seconds`` (operations/sources.py). Pausing a source (``retry``) makes its
retrievals wait in the queue instead of failing (retrievals/pauses.py); resuming runs them.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pacsbridge.errors import NotFoundError
from pacsbridge.operations import sources
from pacsbridge.retrievals import pauses
from pacsbridge.staff.roles import Permission
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages.i18n import N_, gettext
from pacsbridge.web.pages.session import render
from pacsbridge.web.pages.support.auth import SupportConsole, form, needs
from pacsbridge.web.pages.support.common import base_context, confirm_page, done, url

router = APIRouter(include_in_schema=False)
BASE = "/support/sorgenti"

ACTIONS = {
    "pausa": (
        N_(
            "Pause source %(name)s? Its new and waiting retrievals stay in the queue, without "
            "failing, until it is resumed."
        ),
        N_("The source is paused."),
    ),
    "riprendi": (
        N_("Resume source %(name)s? Its waiting retrievals start now."),
        N_("The source is resumed."),
    ),
}


@router.get(BASE, name="support_sources")
async def sources_page(
    request: Request, ctx: Ctx, page: SupportConsole, fatto: str = ""
) -> Response:
    rows = await to_thread.run_sync(sources.overview, ctx)
    context = {
        **base_context(page, "sources"),
        "rows": rows,
        "notice": gettext(page.lang, ACTIONS[fatto][1]) if fatto in ACTIONS else "",
    }
    return render(request, "support/sources.html", context)


@router.get(BASE + "/{name}/{action}", name="support_source_confirm")
def confirm_action(
    name: str, action: str, request: Request, ctx: Ctx, page: SupportConsole
) -> Response:
    question = _action(ctx, name, action)[0]
    needs(page, Permission.RETRY)
    return confirm_page(
        request,
        page,
        "sources",
        gettext(page.lang, question) % {"name": name},
        url(request, f"{BASE}/{name}/{action}"),
        url(request, BASE),
    )


@router.post(BASE + "/{name}/{action}")
async def run_action(
    name: str, action: str, request: Request, ctx: Ctx, page: SupportConsole
) -> Response:
    _action(ctx, name, action)
    needs(page, Permission.RETRY)
    await form(request)
    actor = page.staff.username
    if action == "pausa":
        await to_thread.run_sync(pauses.pause, ctx, name, actor)
    else:
        await to_thread.run_sync(pauses.resume, ctx, name, actor)
    return done(request, BASE, action)


def _action(ctx: Ctx, name: str, action: str) -> tuple[str, str]:
    if action not in ACTIONS or ctx.settings.source(name) is None:
        raise NotFoundError(f"no source action {action} for {name}")
    return ACTIONS[action]
