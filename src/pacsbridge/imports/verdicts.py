"""One DICOM patient of the media against the RIS patient: the confirmation screen's left column.

The rules live in :mod:`pacsbridge.identity`; this module only maps an inventory group and a
launch onto its inputs and adds the media-level conflict (one Patient ID with several names),
which forces a mismatch: such media cannot be trusted to name one person.
"""

from __future__ import annotations

from typing import Any

from pacsbridge import media
from pacsbridge.identity import DicomPatient, RisPatient, check_patient
from pacsbridge.imports.models import Launch
from pacsbridge.messages import said


def ris_patient(launch: Launch) -> RisPatient:
    return RisPatient(
        family_name=launch.family_name,
        given_name=launch.given_name,
        birth_date=launch.birth_date,
        sex=launch.sex,
        fiscal_code=launch.fiscal_code or None,
    )


def patient_entry(launch: Launch, group: media.PatientGroup, conflicts: set[str]) -> dict[str, Any]:
    dicom = DicomPatient(
        name=group.name,
        birth_date=group.birth_date,
        sex=group.sex,
        patient_id=group.patient_id,
        other_patient_ids=tuple(group.other_patient_ids),
    )
    result = check_patient(ris_patient(launch), dicom)
    keys, verdict = list(result.message_keys), result.verdict
    if group.patient_id in conflicts:
        keys, verdict = ["identity.patient_id_conflict", *keys], "mismatch"
        keys = [k for k in keys if k != "identity.match"]
    return {
        "name": group.name,
        "birth_date": iso_date(group.birth_date),
        "sex": (group.sex or None),
        "patient_id": group.patient_id,
        "issuer": group.issuer,
        "checks": dict(result.checks),
        "verdict": verdict,
        "message_keys": keys,
        "messages": [said(k) for k in keys],
        "hints": [said(h) for h in result.hints],
        "hint_keys": list(result.hints),
        "study_instance_uids": [s.study_instance_uid for s in group.studies],
    }


def iso_date(value: str | None) -> str | None:
    """DICOM DA (YYYYMMDD) as ISO 8601, or None when absent or malformed."""
    value = (value or "").strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return None
