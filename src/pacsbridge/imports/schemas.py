"""Pydantic shapes of the import API contract (issue: RIS launch and import API).

The launch body is an integration contract with the RIS: keep it exactly. Validation errors
become 422 "Dati in ingresso non validi" naming each bad field (web/errors.py).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class LaunchPatient(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=64, description="Hospital Patient ID.")
    issuer: str = Field("", max_length=64, description="Issuer of the Patient ID.")
    family_name: str = Field(min_length=1, max_length=200)
    given_name: str = Field("", max_length=200)
    birth_date: date
    sex: Literal["M", "F", "O", "U"]
    fiscal_code: str = Field("", max_length=16, description="Codice fiscale, when known.")
    birth_place: str = Field("", max_length=200)

    @field_validator("birth_date")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("birth date in the future")
        return value


class LaunchOrder(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    number: str = Field(min_length=1, max_length=64, description="RIS order number.")
    accession_number: str = Field("", max_length=16)
    description: str = Field("", max_length=200)


class LaunchOperator(BaseModel):
    id: str = Field("", max_length=64)
    name: str = Field("", max_length=200)


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

    study_instance_uids: list[str] | None = None
