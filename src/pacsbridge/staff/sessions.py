"""Staff cookie sessions: sign in, resolve the cookie, sign out.

The browser holds a random token in an HttpOnly, SameSite=Strict cookie; the database holds
only its SHA-256, so a copy of the database signs nobody in. State changes made with the
cookie carry ``X-CSRF-Token`` (web/csrf.py, as on the operator pages). A session ends at
``staff.session_hours``, at sign-out, or when its account is disabled.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import StaffSessionMissing
from pacsbridge.staff import accounts
from pacsbridge.staff.models import StaffSession, StaffUser
from pacsbridge.staff.roles import Role


@dataclass(frozen=True)
class Staff:
    """Who is signed in: what audit events name as ``actor``, and the role."""

    username: str
    display_name: str
    role: str
    session_id: int


def sign_in(ctx: Context, username: str, password: str, address: str) -> tuple[str, Staff]:
    """A new session's token (for the cookie) and who it is; StaffSignInFailed otherwise.

    A local account with this name is checked locally; any other name goes to the directory
    when directory sign-in is on (docs/staff.md), so local administrators still sign in
    while the directory is down.
    """
    if ctx.settings.staff.directory.enabled and not accounts.is_local(ctx, username):
        # imported here: ldap3 loads only where directory sign-in is on (its import costs a
        # fifth of a second, and it relies on pyasn1 names pyasn1 has deprecated)
        from pacsbridge.staff import directory_accounts

        user = directory_accounts.authenticate(ctx, username, password, address)
    else:
        user = accounts.authenticate(ctx, username, password, address)
    token = secrets.token_urlsafe(32)
    now = ctx.clock.now()
    lifetime = timedelta(hours=ctx.settings.staff.session_hours)
    with ctx.sessions.begin() as session:
        row = StaffSession(
            token_hash=_hash(token), user_id=user.id, created_at=now, expires_at=now + lifetime
        )
        session.add(row)
        session.flush()
        return token, Staff(user.username, user.display_name, user.role, row.id)


def resolve(ctx: Context, token: str | None) -> Staff:
    """The live session behind the cookie, or StaffSessionMissing."""
    if not token:
        raise StaffSessionMissing("no staff session cookie")
    now = ctx.clock.now()
    query = (
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(StaffSession.token_hash == _hash(token), StaffSession.ended_at.is_(None))
    )
    with ctx.sessions() as session:
        found = session.execute(query).first()
    if found is None or found[0].expires_at <= now or not _may_sign_in(found[1]):
        raise StaffSessionMissing("staff session unknown, ended or expired")
    row, user = found
    return Staff(user.username, user.display_name, user.role, row.id)


def sign_out(ctx: Context, staff: Staff, address: str = "") -> None:
    """End the session; ``address`` is the client's, which the ATNA User Authentication
    message requires of the person signing out (PS3.15 A.5.3.12, docs/atna.md)."""
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        session.execute(
            update(StaffSession).where(StaffSession.id == staff.session_id).values(ended_at=now)
        )
        audit.record(session, now, "staff.signed_out", actor=staff.username, address=address)


def _may_sign_in(user: StaffUser) -> bool:
    """Enabled, with a role: a directory account whose groups no longer map has none."""
    return not user.disabled and user.role in set(Role)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
