"""One DICOM patient against the RIS patient: the four checks combined into one verdict.

Manual §4.A (docs/specifications.md). The verdict is deliberately the weakest of its checks:

- ``match`` only when name, birth date and sex all match and the fiscal code is not a mismatch;
- ``format_different`` when the name is format_different and everything else is as for match;
- ``mismatch`` otherwise: a missing value is a mismatch too, because nothing here may let a
  study reach the wrong patient on a guess.

The similarity hint never enters the verdict; it is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pacsbridge.identity.demographics import check_birth_date, check_sex
from pacsbridge.identity.fiscal_code import check_fiscal_code
from pacsbridge.identity.name_check import check_name, is_similar

#: The message key each (check, word) adds; the checks are reported in display order (name,
#: birth date, sex, fiscal code). A passing check adds nothing, except a matching fiscal code.
CHECK_KEYS = {
    ("name", "mismatch"): "identity.name_mismatch",
    ("name", "format_different"): "identity.name_format_different",
    ("name", "missing"): "identity.name_missing",
    ("birth_date", "mismatch"): "identity.birth_date_mismatch",
    ("birth_date", "missing"): "identity.birth_date_missing",
    ("sex", "mismatch"): "identity.sex_mismatch",
    ("sex", "missing"): "identity.sex_missing",
    ("fiscal_code", "mismatch"): "identity.fiscal_code_mismatch",
    ("fiscal_code", "match"): "identity.fiscal_code_match",
}


@dataclass(frozen=True)
class RisPatient:
    """The patient of the RIS order, as the launch sent it."""

    family_name: str
    given_name: str
    birth_date: date | None
    sex: str | None  # 'M', 'F', 'O', 'U' or None
    fiscal_code: str | None = None


@dataclass(frozen=True)
class DicomPatient:
    """One patient as the media names it: raw values, as decoded from the files."""

    name: str  # PN, e.g. 'ROSSI^MARIO'; may hold '=' groups; may be ''
    birth_date: str | None  # raw DA ('19740101'), maybe padded, empty or None
    sex: str | None  # raw CS, maybe padded, empty or None
    patient_id: str | None = None
    other_patient_ids: tuple[str, ...] = ()  # Other Patient IDs, attribute and sequence


@dataclass(frozen=True)
class PatientVerdict:
    """The checks, the verdict, and what the confirmation screen prints (message keys)."""

    checks: dict[str, str]  # name, birth_date, sex, fiscal_code → the check's word
    verdict: str  # match | format_different | mismatch
    message_keys: tuple[str, ...]  # keys of pacsbridge.messages, in display order
    hints: tuple[str, ...]  # e.g. ("identity.name_similar",); never changes the verdict


def check_patient(ris: RisPatient, dicom: DicomPatient) -> PatientVerdict:
    """Run the four checks of manual §4.A and combine them."""
    checks: dict[str, str] = {
        "name": check_name(ris.family_name, ris.given_name, dicom.name),
        "birth_date": check_birth_date(ris.birth_date, dicom.birth_date),
        "sex": check_sex(ris.sex, dicom.sex),
        "fiscal_code": check_fiscal_code(
            ris.fiscal_code, (dicom.patient_id, *dicom.other_patient_ids)
        ),
    }
    outcome = combine(checks)
    return PatientVerdict(
        checks=checks,
        verdict=outcome,
        message_keys=message_keys(checks, outcome),
        hints=_hints(ris, dicom, checks["name"]),
    )


def combine(checks: dict[str, str]) -> str:
    """The verdict: the weakest of the checks (module docstring)."""
    rest_pass = (checks["birth_date"], checks["sex"]) == ("match", "match")
    if not rest_pass or checks["fiscal_code"] == "mismatch":
        return "mismatch"
    if checks["name"] in ("match", "format_different"):
        return checks["name"]
    return "mismatch"


def message_keys(checks: dict[str, str], outcome: str) -> tuple[str, ...]:
    """``identity.match`` first when the patient matches, then one key per failing check.

    A matching fiscal code is reported with any verdict: it is evidence the operator may weigh.
    """
    keys = [CHECK_KEYS[item] for item in checks.items() if item in CHECK_KEYS]
    return ("identity.match", *keys) if outcome == "match" else tuple(keys)


def _hints(ris: RisPatient, dicom: DicomPatient, name_check: str) -> tuple[str, ...]:
    """``identity.name_similar`` for a mismatching name close to the RIS one, else nothing."""
    similar = name_check == "mismatch" and is_similar(ris.family_name, ris.given_name, dicom.name)
    return ("identity.name_similar",) if similar else ()
