"""Pydantic shapes of the import API contract (docs/integration-ris.md).

The launch body is an integration contract with the RIS: keep it exactly. Validation errors
become 422 "Dati in ingresso non validi" naming each bad field (web/errors.py).

Each launch value is later written into a DICOM attribute (imports/pipeline/reconcile.py), so
it is refused here when that attribute's Value Representation cannot hold it (PS3.5 §6.2):
``\\`` separates values in every string VR, so one RIS name would become two; ``^`` and
``=`` separate the components and groups of a PN, so a family name holding them would shift
the given name into a middle name; control characters are not in the repertoire of LO, SH or
PN; LO holds 64 characters, SH 16, a PN component group 64. HL7 v2 has its own escaping for
``|^~\\&`` (hl7v2/messages.py), so those characters need no refusal for HL7's sake.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pacsbridge import uids

#: PS3.5 §6.2 maximum lengths, in characters.
LO, SH, PN_GROUP = 64, 16, 64
#: Most Study Instance UIDs one confirm may list (a CD holds a few studies; 1000 is plenty).
MAX_CONFIRM_UIDS = 1000


def _no_control(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("control characters cannot be written into DICOM")
    return value


def string_vr(value: str) -> str:
    """A value for LO or SH (length by its Field): one value, no control characters."""
    if "\\" in value:
        raise ValueError("'\\' would make the DICOM value multi-valued")
    return _no_control(value)


def pn_component(value: str) -> str:
    """One PN component (family or given name): none of PN's separators inside it."""
    bad = sorted({c for c in value if c in "^=\\"})
    if bad:
        raise ValueError(f"a DICOM person name component cannot hold {' '.join(bad)}")
    return _no_control(value)


class LaunchPatient(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=LO, description="Hospital Patient ID (LO).")
    issuer: str = Field("", max_length=LO, description="Issuer of the Patient ID (LO).")
    family_name: str = Field(min_length=1, max_length=PN_GROUP, description="PN component.")
    given_name: str = Field("", max_length=PN_GROUP, description="PN component.")
    birth_date: date
    sex: Literal["M", "F", "O", "U"]
    fiscal_code: str = Field("", max_length=16, description="Codice fiscale, when known.")
    birth_place: str = Field("", max_length=200)

    check_ids = field_validator("id", "issuer")(string_vr)
    check_names = field_validator("family_name", "given_name")(pn_component)
    check_others = field_validator("fiscal_code", "birth_place")(_no_control)

    @field_validator("given_name")
    @classmethod
    def _one_component_group(cls, value: str, info: ValidationInfo) -> str:
        family = info.data.get("family_name") or ""
        if value and len(family) + 1 + len(value) > PN_GROUP:
            raise ValueError(f"family^given over the {PN_GROUP} characters of a PN group")
        return value

    @field_validator("birth_date")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("birth date in the future")
        return value


class LaunchOrder(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    number: str = Field(min_length=1, max_length=LO, description="RIS order number (LO).")
    accession_number: str = Field("", max_length=SH, description="Accession Number (SH).")
    description: str = Field("", max_length=LO, description="Requested Procedure Desc. (LO).")

    check_values = field_validator("number", "accession_number", "description")(string_vr)


class LaunchOperator(BaseModel):
    id: str = Field("", max_length=64)
    name: str = Field("", max_length=200)

    check_values = field_validator("id", "name")(_no_control)


class LaunchRequest(BaseModel):
    """POST /api/v1/launch body."""

    patient: LaunchPatient
    order: LaunchOrder
    operator: LaunchOperator = Field(default_factory=LaunchOperator)


class LaunchAnswer(BaseModel):
    token: str
    url: str
    expires_at: str


class ConfirmRequest(BaseModel):
    """POST /api/v1/imports/{id}/confirm body (optional)."""

    study_instance_uids: list[str] | None = Field(None, max_length=MAX_CONFIRM_UIDS)
    identity_acknowledged: bool = Field(
        False,
        description="The operator's second confirmation: required (true) when a media patient "
        "of the chosen studies does not match the RIS patient or has a different format.",
    )

    @field_validator("study_instance_uids")
    @classmethod
    def _valid_uids(cls, values: list[str] | None) -> list[str] | None:
        """Every entry is a well-formed UID (PS3.5 §9.1); the error names positions, not values."""
        uids.require_valid(values or [])
        return values
