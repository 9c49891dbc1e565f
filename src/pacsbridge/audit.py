"""Append-only audit events: who did what, when, to which import or retrieval.

This is the only place patient identity may be recorded (application logs are redacted).
Events are never updated or deleted by the application; "previous imports" lists only attempts
that have at least one event (manual §3.B), and the monitor page shows an import's events as
its step-by-step log.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from pacsbridge import messages
from pacsbridge.db.base import Base

#: Every kind of event, with what it means (docs/audit.md is checked against this list).
KINDS: dict[str, str] = {
    "launch.created": "The RIS launched an import for a patient and an order.",
    "launch.refused": "A launch request was refused (bad key or invalid data).",
    "import.created": "An import was created under a launch token.",
    "upload.started": "The first byte of the archive arrived.",
    "upload.completed": "The last byte of the archive arrived.",
    "upload.refused": "An upload part was refused (wrong offset, too large).",
    "analysis.started": "Analysis of the archive began.",
    "analysis.completed": "Analysis finished: patients, studies, verdicts.",
    "analysis.failed": "The archive could not be analysed (unsafe, broken, no DICOM).",
    "analysis.problem": "One problem found in the media (file named).",
    "analysis.repeated": "The operator asked for the analysis and duplicate check again.",
    "duplicates.queried": "The duplicate check asked the PACS about a study (one event per "
    "C-FIND: level, identifier).",
    "duplicates.found": "A study is already on the PACS and was removed from the import.",
    "duplicates.conflict": "A study UID is on the PACS under another patient.",
    "duplicates.partial": "A study is on the PACS with fewer instances than the media.",
    "duplicates.unreachable": "The PACS did not answer the duplicate check.",
    "import.confirmed": "The operator confirmed the import (studies listed).",
    "documents.added": "Documents of the media (PDF, scans) were wrapped into the study (kinds).",
    "import.cancelled": "The operator cancelled (was: the state left); files.deleted follows.",
    "identity.acknowledged": "The operator confirmed a differing patient at the second prompt.",
    "phase.started": "A pipeline phase started an attempt.",
    "phase.completed": "A pipeline phase completed.",
    "phase.retry": "A pipeline phase failed with a retriable error; attempts left.",
    "phase.failed": "A pipeline phase failed for good.",
    "phase.skipped": "An optional phase is not configured.",
    "phase.cancelled": "A pipeline phase stopped because the import was cancelled.",
    "store.started": "The send phase began C-STOREs to the PACS (patient, studies, SOP classes).",
    "store.completed": "The PACS confirmed every instance of the import, or refused some "
    "(patient, studies, SOP classes and counts).",
    "store.queried": "The send phase asked the PACS to list a study's instances, to confirm "
    "the store (one event per C-FIND: level, identifier).",
    "store.transcoded": "An instance was decompressed because the PACS refused its syntax.",
    "patient.merged": "The PACS accepted an ADT^A40 merging a media patient into the RIS "
    "patient (both ids).",
    "import.completed": "Every phase completed.",
    "ris.discontinued": "The RIS was told that a cancelled or failed import stopped.",
    "import.failed": "The import failed; reason recorded.",
    "files.deleted": "Temporary files of an import were deleted (written once they are gone).",
    "files.swept": "Folders that no live import owned were removed (ids listed).",
    "retrieval.requested": "The FSE asked for accession numbers from a source.",
    "retrieval.queried": "A STUDY-level C-FIND was sent to a source for an accession number "
    "(C-FIND identifier).",
    "retrieval.described": "A SERIES or IMAGE-level C-FIND was sent to a source for a study "
    "(one event per C-FIND: level, identifier).",
    "retrieval.cache_hit": "A retrieval was answered from the cache.",
    "retrieval.move_started": "A C-MOVE is about to be sent to a source (study, level, "
    "worker); retrieval.moved follows when it answers.",
    "retrieval.moved": "A C-MOVE was issued to a source (study, level, DICOM status, counts, "
    "worker: host:pid of the node).",
    "retrieval.completed": "A retrieval finished (available, partial, not found).",
    "retrieval.failed": "A retrieval failed; reason recorded.",
    "package.downloaded": "A retrieval's zip package was downloaded (actor: the name of the FSE "
    "API key; address).",
    "images.viewed": "Images were opened: the viewer, or DICOMweb calls of a link (who, which "
    "retrieval or import, the link's expiry; once per link and hour for DICOMweb).",
    "cache.expired": "A cached study was deleted after the retention period.",
    "cache.disk_short": "A study was not moved: free disk space less the margin would not hold it.",
    "scp.intruder": "Our Storage SCP refused an association or a C-STORE nobody expected "
    "(calling AE, address, reason, retrieval when known); nothing was written.",
    "atna.dropped": "The ATNA spool was full: one audit message was not kept (its kind).",
    "staff.user_added": "A staff account was created (user name, role; actor: who made it).",
    "staff.password_changed": "A staff account's password was set; a lock-out is lifted.",
    "staff.user_disabled": "A staff account was disabled; its sessions end.",
    "staff.signed_in": "A staff member signed in (address).",
    "staff.sign_in_failed": "A staff sign-in failed (reason: unknown_user, wrong_password, "
    "locked, disabled, invalid_username, empty_password, no_mapped_group, ambiguous_user, "
    "local_account, directory_refused, directory_disabled, directory_unavailable; address).",
    "staff.role_changed": "A directory account's role changed at sign-in, from its groups "
    "(was, role; an empty role: no mapped group, no access).",
    "staff.locked_out": "Repeated failed sign-ins locked a staff account for a while.",
    "staff.signed_out": "A staff member signed out (address).",
    "support.retried": "Support started a failed import's failed phase again (actor: the staff "
    "member; phase).",
    "support.aborted": "An administrator aborted an import from the support console (actor; was: "
    "the state left); import.cancelled, files.deleted and ris.discontinued follow.",
    "support.rechecked": "Support asked for the analysis and duplicate check again (actor).",
    "support.retrieval_retried": "Support asked again for a retrieval's accession numbers "
    "(actor; the new retrieval's id).",
    "support.purged": "An administrator removed a retrieval's studies from the cache (actor; "
    "studies).",
    "source.paused": "A source was paused: its retrievals wait in the queue (actor, source).",
    "source.resumed": "A paused source was resumed: its waiting retrievals run (actor, source).",
    "audit.exported": "The audit log of a date range was exported (actor, address, format, "
    "from, to).",
}


class AuditEvent(Base):
    """One row per event; append-only."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_import", "import_id"), Index("ix_audit_retr", "retrieval_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    code: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(String(2000), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"), default=None)
    retrieval_id: Mapped[int | None] = mapped_column(default=None)


def record(
    session: Session,
    at: datetime,
    kind: str,
    *,
    import_id: int | None = None,
    retrieval_id: int | None = None,
    actor: str = "",
    outcome: str = "ok",
    code: str = "",
    message: messages.Said | str = "",
    **details: Any,
) -> AuditEvent:
    """Append one event in the caller's transaction (it commits with the change it describes).

    A catalogue message (``messages.said``) goes into the details as key and parameters, from
    which :func:`as_dict` says it in the reader's language; the ``message`` column keeps its
    Italian words for whoever reads the table itself (the audit is the hospital's record). A
    plain ``message`` is technical text (an error's detail), kept as written.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown audit kind {kind!r}")
    if messages.is_said(message):
        details, message = {**details, "message": message}, messages.render(message)
    event = AuditEvent(
        at=at,
        kind=kind,
        import_id=import_id,
        retrieval_id=retrieval_id,
        actor=actor,
        outcome=outcome,
        code=code,
        message=str(message)[:2000],
        details=details,
    )
    session.add(event)
    return event


def events_of_import(session: Session, import_id: int) -> list[AuditEvent]:
    """An import's log, oldest first."""
    query = select(AuditEvent).where(AuditEvent.import_id == import_id).order_by(AuditEvent.id)
    return list(session.scalars(query))


def events_of_retrieval(session: Session, retrieval_id: int) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.retrieval_id == retrieval_id)
    return list(session.scalars(query.order_by(AuditEvent.id)))


def events_between(
    session: Session, start: datetime, end: datetime, batch: int = 500
) -> Iterator[AuditEvent]:
    """Every event with ``start <= at < end``, oldest first, read ``batch`` rows at a time
    (keyset on the id: an export of a year never holds more than one batch in memory)."""
    last = 0
    while True:
        query = (
            select(AuditEvent)
            .where(AuditEvent.at >= start, AuditEvent.at < end, AuditEvent.id > last)
            .order_by(AuditEvent.id)
            .limit(batch)
        )
        rows = list(session.scalars(query))
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1].id
        session.expunge_all()


def message_of(event: AuditEvent, lang: str = messages.DEFAULT_LANGUAGE) -> str:
    """The event's message in ``lang``: its catalogue message, else the text it was given."""
    said = (event.details or {}).get("message")
    return messages.render(said, lang) if messages.is_said(said) else event.message


def as_dict(event: AuditEvent, lang: str = messages.DEFAULT_LANGUAGE) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "outcome": event.outcome,
        "code": event.code,
        "message": message_of(event, lang),
        "details": event.details,
    }
