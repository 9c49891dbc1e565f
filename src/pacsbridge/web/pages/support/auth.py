"""The support console's session: sign-in page, sign-out, the signed-in staff member, forms.

The staff cookie session of docs/staff.md (``staff.sessions``, ``web.staff_auth``): a visit
without a live session is sent to "Accedi" (303), keeping where it was going. State changes
are HTML forms carrying ``csrf_token`` (web/csrf.py, the HMAC of the session token). The
sign-in form itself carries the HMAC of a pre-session cookie (SameSite=Strict), so a foreign
site cannot sign a browser in to an account of its choosing (login CSRF). Every failed
sign-in shows the same words, locked or not (the audit log has the reason).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from pacsbridge.errors import CsrfError, StaffForbidden, StaffSessionMissing, StaffSignInFailed
from pacsbridge.messages import text
from pacsbridge.staff import sessions
from pacsbridge.staff.roles import Permission, allows
from pacsbridge.web import csrf
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages.i18n import request_language
from pacsbridge.web.pages.session import render
from pacsbridge.web.staff_auth import COOKIE, clear_cookie, set_cookie

router = APIRouter(include_in_schema=False)
PRE_COOKIE = "pacsbridge_staff_pre"
HOME = "/support/importazioni"
SIGN_IN = "/support/accedi"


class SignInRequired(Exception):  # noqa: N818 - a redirect, not an error
    """No live staff session: the handler sends the browser to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class Console:
    """Who is looking at the console, the form token, the language."""

    staff: sessions.Staff
    csrf_token: str
    lang: str

    def may(self, permission: Permission) -> bool:
        return allows(self.staff.role, permission)


def console(request: Request, ctx: Ctx) -> Console:
    token = request.cookies.get(COOKIE)
    try:
        staff = sessions.resolve(ctx, token)
    except StaffSessionMissing:
        raise SignInRequired(request.url.path) from None
    if not allows(staff.role, Permission.READ):
        raise StaffForbidden(f"role {staff.role} lacks read")
    return Console(staff, csrf.token_for(token or ""), request_language(request))


SupportConsole = Annotated[Console, Depends(console)]


def needs(page: Console, permission: Permission) -> None:
    """403 unless the staff member's role allows ``permission`` (docs/staff.md)."""
    if not page.may(permission):
        raise StaffForbidden(f"role {page.staff.role} lacks {permission}")


async def form(request: Request, secret: str | None = None) -> dict[str, str]:
    """The urlencoded form (first value of each field), CSRF-checked against ``secret``
    (default: the staff session token). Bounded by web/limits.py like every body."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    fields = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    secret = request.cookies.get(COOKIE, "") if secret is None else secret
    presented = fields.get("csrf_token") or request.headers.get(csrf.HEADER)
    if not secret or not csrf.valid(secret, presented):
        raise CsrfError("missing or wrong CSRF token")
    return fields


def safe_next(value: str | None) -> str:
    """Only a console path: never another site (``//host``) nor a scheme."""
    if value and value.startswith("/support/") and "//" not in value and "\\" not in value:
        return value
    return HOME


async def redirect_to_sign_in(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    root = request.scope.get("root_path", "")
    target = f"{root}{SIGN_IN}?next={quote(safe_next(error.next_path))}"
    return RedirectResponse(target, status_code=303)


@router.get("/support", name="support_root")
@router.get("/support/", name="support_home")
def home(request: Request) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}{HOME}", status_code=303)


@router.get(SIGN_IN, name="support_sign_in")
def sign_in_page(request: Request, next: str = "") -> Response:  # noqa: A002 - the query name
    return _sign_in_form(request, safe_next(next), error="")


def _sign_in_form(request: Request, next_path: str, error: str, status: int = 200) -> Response:
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    context = {"next": next_path, "error": error, "csrf_token": csrf.token_for(pre)}
    response = render(request, "support/signin.html", context, status_code=status)
    secure = request.app.state.context.settings.public_url.startswith("https://")
    response.set_cookie(
        PRE_COOKIE, pre, path="/support/", httponly=True, samesite="strict", secure=secure
    )
    return response


@router.post(SIGN_IN)
async def sign_in(request: Request, ctx: Ctx) -> Response:
    fields = await form(request, secret=request.cookies.get(PRE_COOKIE, ""))
    next_path = safe_next(fields.get("next"))
    address = request.client.host if request.client else ""
    try:
        token, _staff = sessions.sign_in(
            ctx, fields.get("username", "")[:64], fields.get("password", "")[:1024], address
        )
    except StaffSignInFailed:
        message = text("error.staff_sign_in", request_language(request))
        return _sign_in_form(request, next_path, message, status=401)
    response = RedirectResponse(f"{request.scope.get('root_path', '')}{next_path}", 303)
    set_cookie(response, request, token)
    response.delete_cookie(PRE_COOKIE, path="/support/")
    return response


@router.post("/support/esci", name="support_sign_out")
async def sign_out(request: Request, ctx: Ctx, page: SupportConsole) -> Response:
    await form(request)
    sessions.sign_out(ctx, page.staff, request.client.host if request.client else "")
    response = RedirectResponse(f"{request.scope.get('root_path', '')}{SIGN_IN}", 303)
    clear_cookie(response)
    return response
