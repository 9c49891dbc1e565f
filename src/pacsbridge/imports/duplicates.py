"""Is a study already on the PACS? C-FIND by Study Instance UID (manual §4.B, §6).

Outcomes per study: ``absent``; ``present`` (same patient: dropped, "Già presente su PACS,
rimosso da importazione"); ``conflict`` (the UID is on the PACS under another patient: shown,
never silently skipped, cannot be confirmed); ``partial`` (on the PACS with fewer instances than
the media holds); ``unknown`` (the PACS did not answer: a problem, never "absent").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from pacsbridge import audit, messages
from pacsbridge.context import Context
from pacsbridge.dicomnet.find import (
    SentQuery,
    encoded_identifier,
    find_instance_uids,
    find_session,
    find_study,
    study_query,
)
from pacsbridge.errors import PeerError


@dataclass(frozen=True)
class PacsCheck:
    status: str
    pacs_patient: str = ""
    on_pacs: int = 0
    detail: str = ""
    #: why the check is ``unknown``: the error as stored (key and parameters, no words), so
    #: the page and the audit say it in their reader's language (a refused TLS certificate is
    #: not "unreachable", docs/pacs-setup.md "DICOM TLS")
    error: dict[str, Any] | None = None
    #: the C-FINDs of the check as sent (STUDY, then SERIES and IMAGE when it lists instances)
    queries: tuple[SentQuery, ...] = ()

    def said(self) -> messages.Said | str:
        """The error's message as the audit keeps it; "" when there is none."""
        if self.error is None:
            return ""
        return messages.said(self.error["key"], **self.error.get("params", {}))


def check_study(
    ctx: Context, study_uid: str, media_patient_ids: set[str], instance_uids: set[str]
) -> PacsCheck:
    """Ask the PACS about one study; PeerError becomes ``unknown`` with the reason."""
    local, peer = ctx.local, ctx.pacs
    sent: list[SentQuery] = []
    try:
        with find_session(local, peer) as assoc:  # one association for both questions
            found = find_study(local, peer, study_uid, assoc, sent)
            if found is None:
                return PacsCheck("absent", queries=tuple(sent))
            if found.patient_id not in media_patient_ids:
                patient = f"{found.patient_name} ({found.patient_id})"
                return PacsCheck("conflict", patient, queries=tuple(sent))
            held = find_instance_uids(local, peer, study_uid, assoc, sent)
    except PeerError as error:
        detail = error.detail or error.code
        return PacsCheck("unknown", detail=detail, error=error.stored(), queries=tuple(sent))
    missing = instance_uids - held
    if missing:
        on_pacs = len(instance_uids & held)
        return PacsCheck("partial", found.patient_id, on_pacs, queries=tuple(sent))
    return PacsCheck("present", found.patient_id, len(held), queries=tuple(sent))


def audit_query(
    session: Session, now: datetime, import_id: int, uid: str, check: PacsCheck
) -> None:
    """``duplicates.queried``: each C-FIND of the check as sent, one event per C-FIND request
    (an ATNA Query, docs/atna.md); a check that could not send any still names the STUDY-level
    query it tried, as a failure."""
    sent = check.queries or (SentQuery("STUDY", encoded_identifier(study_query(uid), "STUDY")),)
    for one in sent:
        audit.record(
            session,
            now,
            "duplicates.queried",
            import_id=import_id,
            outcome="ok" if one.ok else "error",
            level=one.level,
            study_instance_uid=uid,
            query=one.identifier,
        )
