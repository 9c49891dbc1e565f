"""What the directory sign-in tests share: settings pointing at the test slapd, the audit
events and rows they look at, and slapd's log of binds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pacsbridge.audit import AuditEvent
from pacsbridge.staff.models import StaffUser
from peers.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, group_dn, user_dn

PASSWORD = "directory password 1"
SESSION = "/api/v1/staff/session"
ROLES = {group_dn("pacs-admins"): "admin", group_dn("pacs-support"): "support"}


def directory_config(server: Slapd, **extra: Any) -> dict[str, Any]:
    """Settings overrides: directory sign-in against ``server`` with its service account."""
    config = {
        "enabled": True,
        "url": server.url,
        "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD,
        "user_search_base": PEOPLE,
        "groups_to_roles": ROLES,
        "connect_timeout_seconds": 2,
        "timeout_seconds": 2,
        **extra,
    }
    return {"staff": {"directory": config}}


def events(ctx: Any, kind: str) -> list[AuditEvent]:
    with ctx.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
        return list(session.scalars(query))


def reasons(ctx: Any) -> list[str]:
    return [e.details["reason"] for e in events(ctx, "staff.sign_in_failed")]


def staff_row(ctx: Any, username: str) -> StaffUser | None:
    with ctx.sessions() as session:
        return session.scalars(select(StaffUser).where(StaffUser.username == username)).first()


def sign_in(client: Any, username: str, password: str = PASSWORD) -> Any:
    return client.post(SESSION, json={"username": username, "password": password})


def binds_as(server: Slapd, uid: str) -> int:
    """How many binds as this person slapd has logged so far."""
    return server.settled_log().count(f'BIND dn="{user_dn(uid)}"')
