"""The page session: the launch token in an HttpOnly cookie, the CSRF token, page responses.

The RIS opens ``/imports/start?token=...``; that route moves the token into the cookie at once
and sends the browser to a clean URL, so the token never stays in the address bar, the history
or a ``Referer``. Pages then authenticate by the cookie; the JavaScript calls the JSON API with
the same cookie plus ``X-CSRF-Token`` (web/csrf.py) on every state change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from pacsbridge.imports import launch as launches
from pacsbridge.imports.models import Launch
from pacsbridge.web import csrf
from pacsbridge.web.deps import COOKIE, Ctx
from pacsbridge.web.pages.i18n import request_language


@dataclass(frozen=True)
class PageSession:
    """Who is looking: the launch behind the cookie, and the CSRF token for the page's JS."""

    launch: Launch
    csrf_token: str
    lang: str


def page_session(request: Request, ctx: Ctx) -> PageSession:
    """The cookie's launch, or AuthError (the "Token Not Found or Expired" page)."""
    token = request.cookies.get(COOKIE)
    with ctx.sessions() as session:
        row = launches.resolve(ctx, session, token)
    return PageSession(row, csrf.token_for(token or ""), request_language(request))


Session = Annotated[PageSession, Depends(page_session)]


def set_token_cookie(response: Response, request: Request, token: str, launch: Launch) -> None:
    """HttpOnly, SameSite=Strict, Secure behind https, gone when the launch expires."""
    ctx = request.app.state.context
    lifetime = int((launch.expires_at - ctx.clock.now()).total_seconds())
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(lifetime, 0),
        path="/",
        httponly=True,
        samesite="strict",
        secure=ctx.settings.public_url.startswith("https://"),
    )


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A page; templates get ``lang`` from the context processor.

    The security headers (CSP, no-store...) are added to every answer by web/headers.py.
    """
    templates = request.app.state.templates
    return templates.TemplateResponse(request, template, context, status_code=status_code)
