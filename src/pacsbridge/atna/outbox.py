"""The spool of audit messages: a table written in the transaction of the event it reports.

Why a table and not files under ``data_dir``: a message must exist if and only if its event
was committed. A row added while the session flushes the audit event commits or rolls back with
it, so a crash can lose neither (a file written after the commit can be lost, one written
before can outlive a rolled-back event). Every node of a cluster shares the database, so any
node's sender delivers what another recorded, and the rows survive restarts. The row's id gives
the order. Rows are deleted once sent (``sender``); the spool is bounded by
``atna.spool_max_messages`` (docs/atna.md).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, String, event, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from pacsbridge import audit, metrics
from pacsbridge.atna.events import BUILDERS, Node, Record
from pacsbridge.db.base import Base
from pacsbridge.settings import Settings

log = logging.getLogger(__name__)


class AtnaMessage(Base):
    """One DICOM audit message waiting for the collector, oldest first."""

    __tablename__ = "atna_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    xml: Mapped[bytes] = mapped_column(LargeBinary)


class AtnaSender(Base):
    """The one sender of a cluster (a lease): one sender keeps the messages in order."""

    __tablename__ = "atna_sender"

    id: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), default="")
    until: Mapped[datetime]


def install(sessions: sessionmaker[Session], settings: Settings) -> None:
    """Spool a message for every audit event of a mapped kind that these sessions flush."""
    node = Node.from_settings(settings)
    cap = settings.atna.spool_max_messages

    def spool(session: Session, flush_context: Any, instances: Any) -> None:  # noqa: ANN401
        events = [o for o in session.new if isinstance(o, audit.AuditEvent) and o.kind in BUILDERS]
        for audit_event in events:
            _enqueue(session, node, cap, audit_event)

    event.listen(sessions, "before_flush", spool)


def _enqueue(session: Session, node: Node, cap: int, audit_event: audit.AuditEvent) -> None:
    """Build and add; a builder's failure is logged and counted, never the caller's error."""
    try:
        xml = BUILDERS[audit_event.kind](_record(audit_event), node)
    except Exception as error:  # noqa: BLE001 - auditing must never fail an import
        log.error("ATNA message for %s not built: %s", audit_event.kind, type(error).__name__)
        metrics.ATNA_DROPPED.labels("unbuilt").inc()
        return
    if xml is None:
        return
    with session.no_autoflush:
        waiting = session.scalar(select(func.count()).select_from(AtnaMessage)) or 0
    if waiting >= cap:
        _drop(session, audit_event, waiting)
        return
    session.add(AtnaMessage(created_at=audit_event.at, kind=audit_event.kind, xml=xml))


def _drop(session: Session, audit_event: audit.AuditEvent, waiting: int) -> None:
    """The spool is full: counted (metric), logged and audited, never silent."""
    log.warning("ATNA spool full (%d messages): a %s message is dropped", waiting, audit_event.kind)
    metrics.ATNA_DROPPED.labels("spool_full").inc()
    session.add(
        audit.AuditEvent(
            at=audit_event.at,
            kind="atna.dropped",
            outcome="warning",
            details={"dropped_kind": audit_event.kind, "waiting": waiting},
        )
    )


def _record(audit_event: audit.AuditEvent) -> Record:
    return Record(
        kind=audit_event.kind,
        at=audit_event.at,
        actor=audit_event.actor or "",
        outcome=audit_event.outcome or "ok",
        message=audit_event.message or "",
        details=dict(audit_event.details or {}),
    )
