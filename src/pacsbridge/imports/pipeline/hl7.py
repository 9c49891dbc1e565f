"""What the merge and notify phases share: HL7 identities of the RIS and DICOM patients, and
control ids that stay the same across attempts (so the receiver can discard duplicates)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pacsbridge.context import Context
from pacsbridge.hl7v2 import MessageIds, PatientRef
from pacsbridge.imports.models import Launch
from pacsbridge.settings.hl7 import Hl7Endpoint


def message_ids(ctx: Context, endpoint: Hl7Endpoint, import_id: int, tag: str) -> MessageIds:
    """MSH-10 is ``PB<import id><tag>``: stable across attempts, at most 20 characters."""
    return MessageIds(
        control_id=f"PB{import_id}{tag}"[:20],
        timestamp=ctx.clock.now(),
        sending_application=ctx.settings.hl7.sending_application,
        sending_facility=ctx.settings.hl7.sending_facility,
        receiving_application=endpoint.receiving_application,
        receiving_facility=endpoint.receiving_facility,
    )


def ris_patient(launch: Launch) -> PatientRef:
    return PatientRef(
        patient_id=launch.patient_id,
        issuer=launch.issuer,
        family_name=launch.family_name,
        given_name=launch.given_name,
        birth_date=launch.birth_date,
        sex=launch.sex,
    )


def dicom_patient(entry: dict[str, Any]) -> PatientRef:
    """A DICOM patient of the analysis document (PN split on '^': family, given)."""
    family, _, rest = (entry.get("name") or "").partition("^")
    given = rest.split("^")[0]
    birth = entry.get("birth_date")
    return PatientRef(
        patient_id=entry.get("patient_id") or "",
        issuer=entry.get("issuer") or "",
        family_name=family,
        given_name=given,
        birth_date=date.fromisoformat(birth) if birth else None,
        sex=entry.get("sex") or "",
    )
