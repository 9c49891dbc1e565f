"""Local staff accounts: add, change password, disable; argon2id hashes; lock-out.

Passwords are hashed with argon2id (``argon2-cffi``, RFC 9106) at the library's default cost;
a hash made with an older cost is re-hashed at the next good sign-in. After
``staff.max_failed_attempts`` consecutive failures the account is locked for
``staff.lockout_minutes``: a password guesser gets a handful of tries per quarter of an hour,
and the account's owner is back without an administrator (docs/staff.md).
"""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import ConflictError, InputError, NotFoundError, StaffSignInFailed
from pacsbridge.staff.models import StaffUser
from pacsbridge.staff.roles import Role

#: StaffUser.source: who checks the password
LOCAL, DIRECTORY = "local", "directory"
HASHER = PasswordHasher()
#: verified against when the user name is unknown, so both cases take the same time
_DUMMY_HASH = HASHER.hash("not a password anyone has")


def add(
    ctx: Context, username: str, password: str, role: str, display_name: str = "", actor: str = ""
) -> StaffUser:
    """A new enabled account; ``actor`` is who made it (an admin, or ``cli`` for the CLI)."""
    check_username(username)
    _check_role(role)
    _check_password(ctx, password)
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        if find(session, username) is not None:
            raise ConflictError(f"user {username} exists")
        user = StaffUser(
            username=username,
            display_name=display_name,
            role=role,
            password_hash=HASHER.hash(password),
            created_at=now,
            password_changed_at=now,
        )
        session.add(user)
        audit.record(session, now, "staff.user_added", actor=actor, username=username, role=role)
    return user


def set_password(ctx: Context, username: str, password: str, actor: str = "") -> None:
    """A new password; it also lifts a lock-out (an administrator vouched for the person).

    Refused for a directory account: its password is the directory's, and a local hash
    beside it would be a second, forgotten way in."""
    _check_password(ctx, password)
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        user = _existing(session, username)
        if user.source != LOCAL:
            raise ConflictError(f"{username} signs in with the directory: change it there")
        user.password_hash = HASHER.hash(password)
        user.password_changed_at = now
        user.failed_attempts, user.locked_until = 0, None
        audit.record(session, now, "staff.password_changed", actor=actor, username=username)


def disable(ctx: Context, username: str, actor: str = "") -> None:
    """The account can no longer sign in, and its open sessions end (sessions.resolve)."""
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        _existing(session, username).disabled = True
        audit.record(session, now, "staff.user_disabled", actor=actor, username=username)


def is_local(ctx: Context, username: str) -> bool:
    """Whether a local account (checked here, not by the directory) has this name."""
    with ctx.sessions() as session:
        user = find(session, username)
    return user is not None and user.source == LOCAL


def authenticate(ctx: Context, username: str, password: str, address: str) -> StaffUser:
    """The local account if the password is right and it is neither disabled nor locked.

    Every failure raises the same :class:`StaffSignInFailed` (no hint whether the name
    exists or is locked) and is audited with its real reason.
    """
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        user = find(session, username)
        reason = _refusal(user, password, now)
        if reason:
            record_failure(ctx, session, user, username, reason, address)
        else:
            assert user is not None
            user.failed_attempts, user.locked_until = 0, None
            if HASHER.check_needs_rehash(user.password_hash):
                user.password_hash = HASHER.hash(password)
            audit.record(session, now, "staff.signed_in", actor=username, address=address)
            return user
    raise StaffSignInFailed(reason)


def _refusal(user: StaffUser | None, password: str, now) -> str:  # noqa: ANN001 - datetime
    """Why this sign-in fails, or "" (the password is checked even for unknown names)."""
    if user is None:
        _verify(_DUMMY_HASH, password)
        return "unknown_user"
    good = _verify(user.password_hash, password)
    if user.source != LOCAL:
        return "directory_disabled"  # a directory account while directory sign-in is off
    if user.disabled:
        return "disabled"
    if user.locked_until is not None and user.locked_until > now:
        return "locked"
    return "" if good else "wrong_password"


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def record_failure(
    ctx: Context,
    session: Session,
    user: StaffUser | None,
    username: str,
    reason: str,
    address: str,
) -> None:
    """Audit a failed sign-in; a wrong password counts towards the account's lock-out."""
    now = ctx.clock.now()
    settings = ctx.settings.staff
    details = {"address": address, "reason": reason}
    if user is not None and reason == "wrong_password":
        user.failed_attempts += 1
        details["failed_attempts"] = user.failed_attempts
        if user.failed_attempts >= settings.max_failed_attempts:
            user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            user.failed_attempts = 0
            audit.record(session, now, "staff.locked_out", actor=username, **details)
    audit.record(
        session, now, "staff.sign_in_failed", actor=audit_name(username), outcome="error", **details
    )


def audit_name(username: str) -> str:
    """The typed user name as the audit log keeps it: at most 64 characters, control
    characters (a NUL, which PostgreSQL text cannot hold) shown as U+FFFD."""
    return "".join(c if c.isprintable() else "\ufffd" for c in username[:64])


def find(session: Session, username: str) -> StaffUser | None:
    """The account with this name; a name no account can have is never sent to the
    database (PostgreSQL refuses a NUL in a query's text)."""
    if not valid_username(username):
        return None
    return session.scalars(select(StaffUser).where(StaffUser.username == username)).first()


def _existing(session: Session, username: str) -> StaffUser:
    user = find(session, username)
    if user is None:
        raise NotFoundError(f"no user {username}")
    return user


def valid_username(username: str) -> bool:
    """1-64 letters, digits, dot, dash, underscore: what every account's name is."""
    stripped = username.replace(".", "").replace("-", "").replace("_", "")
    return 1 <= len(username) <= 64 and stripped.isalnum()


def check_username(username: str) -> None:
    if not valid_username(username):
        raise InputError("user names are 1-64 letters, digits, dot, dash, underscore")


def _check_role(role: str) -> None:
    if role not in set(Role):
        raise InputError(f"role must be one of {', '.join(Role)}")


def _check_password(ctx: Context, password: str) -> None:
    if len(password) < ctx.settings.staff.min_password_length:
        raise InputError(
            f"passwords have at least {ctx.settings.staff.min_password_length} characters"
        )
