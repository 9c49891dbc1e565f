"""Request dependencies of the staff routes: the signed-in staff member, CSRF, the role.

The staff cookie (``pacsbridge_staff``) is HttpOnly and SameSite=Strict; every state change
made with it carries ``X-CSRF-Token``, the HMAC of the session token (web/csrf.py), as on the
operator pages. Routes declare what they need: ``Depends(require(Permission.ABORT))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Response

from pacsbridge.errors import CsrfError, StaffForbidden
from pacsbridge.staff import sessions
from pacsbridge.staff.roles import Permission, allows
from pacsbridge.web import csrf
from pacsbridge.web.deps import Ctx

COOKIE = "pacsbridge_staff"


def staff_member(request: Request, ctx: Ctx) -> sessions.Staff:
    """The live session behind the cookie (401 otherwise), CSRF-checked on state changes."""
    token = request.cookies.get(COOKIE)
    staff = sessions.resolve(ctx, token)
    unsafe = request.method not in csrf.SAFE_METHODS
    if unsafe and not csrf.valid(token or "", request.headers.get(csrf.HEADER)):
        raise CsrfError("missing or wrong CSRF token")
    return staff


StaffMember = Annotated[sessions.Staff, Depends(staff_member)]


def require(permission: Permission) -> Callable[[sessions.Staff], sessions.Staff]:
    """A dependency: the staff member, if their role allows ``permission`` (else 403)."""

    def check(staff: StaffMember) -> sessions.Staff:
        if not allows(staff.role, permission):
            raise StaffForbidden(f"role {staff.role} lacks {permission}")
        return staff

    return check


def set_cookie(response: Response, request: Request, token: str) -> None:
    ctx = request.app.state.context
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ctx.settings.staff.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=ctx.settings.public_url.startswith("https://"),
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
