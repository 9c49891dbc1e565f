"""Tables of staff accounts: StaffUser (one person) and StaffSession (one signed-in browser)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from pacsbridge.db.base import Base


class StaffUser(Base):
    """A staff account; ``password_hash`` is an argon2id PHC string, never the password.

    ``source`` says who checks the password: ``local`` (the hash) or ``directory`` (the
    directory binds the person; no hash, ``password_hash`` is empty, and the role is the one
    the directory's groups gave at the last sign-in, empty when none: docs/staff.md).
    """

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    disabled: Mapped[bool] = mapped_column(default=False)
    #: consecutive failed sign-ins; reset by a good one
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]


class StaffSession(Base):
    """A signed-in browser: the cookie's token is stored only as its SHA-256."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
