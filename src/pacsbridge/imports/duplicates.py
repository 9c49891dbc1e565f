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
    try:
        with find_session(local, peer) as assoc:  # one association for both questions
            found = find_study(local, peer, study_uid, assoc)
            if found is None:
                return PacsCheck("absent")
            if found.patient_id not in media_patient_ids:
                return PacsCheck("conflict", f"{found.patient_name} ({found.patient_id})")
            held = find_instance_uids(local, peer, study_uid, assoc)
    except PeerError as error:
        return PacsCheck("unknown", detail=error.detail or error.code, error=error.stored())
    missing = instance_uids - held
    if missing:
        return PacsCheck("partial", found.patient_id, len(instance_uids & held))
    return PacsCheck("present", found.patient_id, len(held))


def audit_query(
    session: Session, now: datetime, import_id: int, uid: str, check: PacsCheck
) -> None:
    """``duplicates.queried``: the STUDY-level identifier as sent (an ATNA Query, docs/atna.md)."""
    audit.record(
        session,
        now,
        "duplicates.queried",
        import_id=import_id,
        outcome="error" if check.status == "unknown" else "ok",
        study_instance_uid=uid,
        query=encoded_identifier(study_query(uid), "STUDY"),
    )
