"""Directory-backed staff accounts: the local row of a person the directory signs in.

Why a local row at all (docs/staff.md, "Directory sign-in"): sessions, the audit log and the
lock-out all hang off a ``StaffUser``. The row has ``source = "directory"`` and no password
hash; its role is refreshed from the directory's groups at every sign-in, so a person taken
out of every mapped group loses access at the next attempt (and their open sessions end:
``sessions.resolve`` refuses a row without a role). The lock-out counts directory failures
too, so we never become a way to guess directory passwords faster than local ones.

The directory is asked outside any database transaction: a slow directory must not hold a
database lock for its timeout.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import DirectoryUnavailable, InputError, StaffSignInFailed
from pacsbridge.staff import accounts, directory
from pacsbridge.staff.models import StaffUser


def authenticate(ctx: Context, username: str, password: str, address: str) -> StaffUser:
    """The directory account's row, its role refreshed; StaffSignInFailed (audited) if not.

    The name is case-folded (directories match ``uid`` and ``sAMAccountName`` regardless of
    case, so ``M.Rossi`` and ``m.rossi`` are one person and one row). DirectoryUnavailable
    when the directory does not answer, audited too.
    """
    name = username.casefold()
    reason = _precheck(ctx, name, password)
    found: directory.DirectoryAccount | None = None
    known = False
    if not reason:
        try:
            found = directory.authenticate(ctx.settings.staff.directory, name, password)
            reason = "" if found.role else "no_mapped_group"
        except directory.DirectoryRefused as refused:
            reason, known = refused.reason, refused.known
        except DirectoryUnavailable as error:
            _audit_unavailable(ctx, username, address, error)
            raise
    try:
        return _settle(ctx, username, found, reason, known, address)
    except IntegrityError:  # the same person's first sign-in in another request made the row
        return _settle(ctx, username, found, reason, known, address)


def _settle(
    ctx: Context,
    username: str,
    found: directory.DirectoryAccount | None,
    reason: str,
    known: bool,
    address: str,
) -> StaffUser:
    """Write the outcome in one transaction: the row signed in, or the failure audited and
    StaffSignInFailed."""
    name = username.casefold()
    with ctx.sessions.begin() as session:
        user = accounts.find(session, name)
        if user is not None and user.source != accounts.DIRECTORY:
            reason = "local_account"  # made while the directory answered: the local one wins
        elif not reason and found is not None:
            return _signed_in(ctx, session, user, name, found, address)
        if user is None and known and reason == "wrong_password":
            user = _new_row(session, ctx.clock.now(), name, "", "")  # lock-out needs a row
        if user is not None and reason == "no_mapped_group":
            _set_role(session, ctx.clock.now(), user, "")
        accounts.record_failure(ctx, session, user, username, reason, address)
    raise StaffSignInFailed(reason)


def _precheck(ctx: Context, name: str, password: str) -> str:
    """Why to refuse before asking the directory, or "": a bad name, no password, a local
    account's name in another case, a disabled or locked row (a locked person's guesses never
    reach the directory)."""
    try:
        accounts.check_username(name)
    except InputError:
        return "invalid_username"
    if not password:
        return "empty_password"
    with ctx.sessions() as session:
        user = accounts.find(session, name)
    if user is None:
        return ""
    if user.source != accounts.DIRECTORY:
        return "local_account"  # typed in another case than the local account's name
    if user.disabled:
        return "disabled"
    if user.locked_until is not None and user.locked_until > ctx.clock.now():
        return "locked"
    return ""


def _signed_in(
    ctx: Context,
    session: Session,
    user: StaffUser | None,
    name: str,
    found: directory.DirectoryAccount,
    address: str,
) -> StaffUser:
    now = ctx.clock.now()
    if user is None:
        user = _new_row(session, now, name, found.role, found.display_name)
    elif user.role != found.role:
        _set_role(session, now, user, found.role)
    if found.display_name:
        user.display_name = found.display_name
    user.failed_attempts, user.locked_until = 0, None
    audit.record(
        session,
        now,
        "staff.signed_in",
        actor=name,
        address=address,
        source=accounts.DIRECTORY,
        role=found.role,
    )
    session.flush()
    return user


def _new_row(session: Session, now: datetime, name: str, role: str, display_name: str) -> StaffUser:
    user = StaffUser(
        username=name,
        display_name=display_name,
        role=role,
        password_hash="",
        source=accounts.DIRECTORY,
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    return user


def _set_role(session: Session, now: datetime, user: StaffUser, role: str) -> None:
    if user.role == role:
        return
    audit.record(session, now, "staff.role_changed", actor=user.username, was=user.role, role=role)
    user.role = role


def _audit_unavailable(
    ctx: Context, username: str, address: str, error: DirectoryUnavailable
) -> None:
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "staff.sign_in_failed",
            actor=accounts.audit_name(username),
            outcome="error",
            code=error.code,
            address=address,
            reason="directory_unavailable",
            detail=error.detail,
        )
