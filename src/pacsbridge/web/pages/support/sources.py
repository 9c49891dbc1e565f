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
from pacsbridge.web.pages.i18n import N_
from pacsbridge.web.pages.session import render
from pacsbridge.web.pages.support.auth import SupportConsole
from pacsbridge.web.pages.support.common import (
    Action,
    allowed,
    allowed_form,
    base_context,
    confirm_page,
    done,
    notice,
)

router = APIRouter(include_in_schema=False)
BASE = "/support/sorgenti"

ACTIONS = {
    "pausa": Action(
        Permission.RETRY,
        N_(
            "Pause source %(name)s? Its new and waiting retrievals stay in the queue, without "
            "failing, until it is resumed."
        ),
        N_("The source is paused."),
    ),
    "riprendi": Action(
        Permission.RETRY,
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
        "notice": notice(ACTIONS, fatto, page.lang),
    }
    return render(request, "support/sources.html", context)


@router.get(BASE + "/{name}/{action}", name="support_source_confirm")
def confirm_action(
    name: str, action: str, request: Request, ctx: Ctx, page: SupportConsole
) -> Response:
    _source(ctx, name)
    chosen = allowed(page, ACTIONS, action)
    return confirm_page(
        request, page, "sources", chosen, {"name": name}, f"{BASE}/{name}/{action}", BASE
    )


@router.post(BASE + "/{name}/{action}")
async def run_action(
    name: str, action: str, request: Request, ctx: Ctx, page: SupportConsole
) -> Response:
    _source(ctx, name)
    await allowed_form(request, page, ACTIONS, action)
    run = pauses.pause if action == "pausa" else pauses.resume
    await to_thread.run_sync(run, ctx, name, page.staff.username)
    return done(request, BASE, action)


def _source(ctx: Ctx, name: str) -> None:
    if ctx.settings.source(name) is None:
        raise NotFoundError(f"no source {name}")
