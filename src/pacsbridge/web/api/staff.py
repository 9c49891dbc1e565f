"""The staff session API (docs/staff.md): sign in, who am I, sign out, the user list.

Sign-in takes JSON only: a foreign site's form cannot post ``application/json`` without a
CORS preflight, which we never answer, so nobody can sign a browser in to an account of their
choosing (login CSRF). Every failure gets the same 401; the audit log has the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from pacsbridge.errors import InputError
from pacsbridge.staff import sessions
from pacsbridge.staff.models import StaffUser
from pacsbridge.staff.roles import GRANTS, Permission, Role
from pacsbridge.web import csrf
from pacsbridge.web.deps import Ctx, json_body
from pacsbridge.web.staff_auth import COOKIE, StaffMember, clear_cookie, require, set_cookie

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])


class SignIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def _who(staff: sessions.Staff, csrf_token: str) -> dict[str, Any]:
    return {
        "username": staff.username,
        "display_name": staff.display_name,
        "role": staff.role,
        "permissions": sorted(GRANTS.get(Role(staff.role), frozenset())),
        "csrf_token": csrf_token,
    }


@router.post("/session")
async def sign_in(request: Request, ctx: Ctx) -> JSONResponse:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InputError("sign-in takes application/json")
    body = await json_body(request, SignIn)
    address = request.client.host if request.client else ""
    token, staff = sessions.sign_in(ctx, body.username, body.password, address)
    response = JSONResponse(_who(staff, csrf.token_for(token)))
    set_cookie(response, request, token)
    return response


@router.get("/session")
def who_am_i(request: Request, staff: StaffMember) -> dict[str, Any]:
    return _who(staff, csrf.token_for(request.cookies.get(COOKIE, "")))


@router.delete("/session")
def sign_out(request: Request, ctx: Ctx, staff: StaffMember) -> JSONResponse:
    sessions.sign_out(ctx, staff, request.client.host if request.client else "")
    response = JSONResponse({"signed_out": True})
    clear_cookie(response)
    return response


Admin = Annotated[sessions.Staff, Depends(require(Permission.MANAGE_USERS))]


@router.get("/users")
def users(ctx: Ctx, _admin: Admin) -> list[dict[str, Any]]:
    """The accounts (admin only): never a password hash."""
    with ctx.sessions() as session:
        rows = session.scalars(select(StaffUser).order_by(StaffUser.username)).all()
    now = ctx.clock.now()
    return [
        {
            "username": u.username,
            "display_name": u.display_name,
            "role": u.role,
            "disabled": u.disabled,
            "locked": u.locked_until is not None and u.locked_until > now,
        }
        for u in rows
    ]
