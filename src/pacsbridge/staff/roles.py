"""Roles and what they allow: ``support`` reads everything and retries; ``admin`` also aborts,
purges and manages users (docs/staff.md)."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    READ = "read"
    RETRY = "retry"
    ABORT = "abort"
    PURGE = "purge"
    MANAGE_USERS = "manage_users"


class Role(StrEnum):
    SUPPORT = "support"
    ADMIN = "admin"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.SUPPORT: frozenset({Permission.READ, Permission.RETRY}),
    Role.ADMIN: frozenset(Permission),
}


def allows(role: str, permission: Permission) -> bool:
    """Whether ``role`` may do ``permission``; an unknown role may do nothing."""
    try:
        return permission in GRANTS[Role(role)]
    except ValueError:
        return False
