"""Opening a launch link while this browser holds another patient's session: ask, never switch.

A link for patient B opened in a browser working on patient A would otherwise replace A's
cookie silently, and the operator could go on attaching images believing A is open. So the new
token first waits in a *pending* cookie, and a page names both patients and asks; the choice is
a same-site form POST carrying a CSRF token (web/csrf.py) of the pending token.

The current session cookie is SameSite=Strict, so a browser withholds it on a navigation that
another site (the RIS) started: ``/imports/start`` cannot see it then. When Fetch Metadata says
the navigation is cross-site, the start page hands over to ``/imports/session`` by a refresh
that this site starts itself, where the cookie is visible, and the question is asked there.
The same patient (Patient ID and issuer) under a new launch switches without asking.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from pacsbridge.errors import AuthError, CsrfError
from pacsbridge.imports import launch as launches
from pacsbridge.imports.launch import ris_patient_dict
from pacsbridge.imports.models import Launch
from pacsbridge.web import csrf
from pacsbridge.web.deps import COOKIE, Ctx
from pacsbridge.web.pages.session import render, set_token_cookie

router = APIRouter(include_in_schema=False)

PENDING = "pacsbridge_pending"
PENDING_SECONDS = 15 * 60


def open_link(request: Request, ctx: Ctx, token: str | None) -> Response:
    """``/imports/start``: adopt the token, or hand over to ``/imports/session`` to look first."""
    with ctx.sessions() as db:
        new = launches.resolve(ctx, db, token)
        current = _current(ctx, db, request)
    withheld = current is None and request.headers.get("sec-fetch-site") == "cross-site"
    if withheld or (current is not None and not same_patient(current, new)):
        return _hand_over(request, token or "")  # asked on a clean URL, without the token
    response = render(request, "imports/start.html", {"target": _url(request, "/imports")})
    set_token_cookie(response, request, token or "", new)
    _forget_pending(response, request)
    return response


@router.get("/imports/session", name="session_page")
def session_page(request: Request, ctx: Ctx) -> Response:
    """After the hand-over: the current cookie is visible now; ask, or adopt the new token."""
    pending = request.cookies.get(PENDING)
    with ctx.sessions() as db:
        new = launches.resolve(ctx, db, pending)
        current = _current(ctx, db, request)
    if current is not None and not same_patient(current, new):
        return _ask(request, current, new, pending or "")
    return _adopt(request, pending or "", new)


@router.post("/imports/session", name="session_choice")
async def session_choice(request: Request, ctx: Ctx) -> Response:
    """The operator's answer: ``switch`` to the new patient or ``stay`` with the open one."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    pending = request.cookies.get(PENDING) or ""
    if not csrf.valid(pending, (form.get("csrf_token") or [""])[0]):
        raise CsrfError("missing or wrong CSRF token")
    if (form.get("choice") or [""])[0] != "switch":
        response = RedirectResponse(_url(request, "/imports"), status_code=303)
        _forget_pending(response, request)
        return response
    with ctx.sessions() as db:
        new = launches.resolve(ctx, db, pending)
    return _adopt(request, pending, new)


def same_patient(a: Launch, b: Launch) -> bool:
    return (a.patient_id, a.issuer) == (b.patient_id, b.issuer)


def _current(ctx: Ctx, db: DbSession, request: Request) -> Launch | None:
    """The launch of the session cookie, when there is a valid one."""
    try:
        return launches.resolve(ctx, db, request.cookies.get(COOKIE))
    except AuthError:
        return None


def _ask(request: Request, current: Launch, new: Launch, pending: str) -> Response:
    context: dict[str, Any] = {
        "current": ris_patient_dict(current),
        "new": ris_patient_dict(new),
        "csrf_token": csrf.token_for(pending),
        "action": _url(request, "/imports/session"),
        "stay": _url(request, "/imports"),
    }
    response = render(request, "imports/switch.html", context)
    _set_pending(response, request, pending)
    return response


def _hand_over(request: Request, token: str) -> Response:
    target = _url(request, "/imports/session")
    response = render(request, "imports/start.html", {"target": target})
    _set_pending(response, request, token)
    return response


def _adopt(request: Request, token: str, new: Launch) -> Response:
    response = RedirectResponse(_url(request, "/imports"), status_code=303)
    set_token_cookie(response, request, token, new)
    _forget_pending(response, request)
    return response


def _set_pending(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        PENDING,
        token,
        max_age=PENDING_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.app.state.context.settings.public_url.startswith("https://"),
    )


def _forget_pending(response: Response, request: Request) -> None:
    if PENDING in request.cookies:
        response.delete_cookie(PENDING, path="/")


def _url(request: Request, path: str) -> str:
    return f"{request.scope.get('root_path', '')}{path}"
