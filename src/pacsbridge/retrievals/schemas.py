"""Shapes of the FSE integration contract (docs/integration-fse.md): request and accepted answer.

The documents answered by GET are built in ``views.py``; study metadata there follows the
DICOM JSON model (PS3.18 F.2), so an integrator can feed it to any DICOMweb-aware code.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


class RetrievalRequest(BaseModel):
    """``POST /api/v1/retrievals``: which hospital, which reports' accession numbers."""

    source: str = Field(min_length=1, max_length=64, description="A configured source name.")
    accession_numbers: list[str] = Field(
        min_length=1, max_length=50, description="Accession numbers of the radiology report."
    )
    patient_id: str | None = Field(None, max_length=64, description="Optional Patient ID.")
    issuer: str | None = Field(None, max_length=64, description="Optional Issuer of Patient ID.")

    @field_validator("accession_numbers")
    @classmethod
    def _accession_numbers(cls, values: list[str]) -> list[str]:
        cleaned = list(dict.fromkeys(v.strip() for v in values))
        if any(not v or len(v) > 16 or "\\" in v or "*" in v or "?" in v for v in cleaned):
            raise ValueError("each accession number: 1-16 characters, no wildcards or backslash")
        return cleaned


class RetrievalAccepted(BaseModel):
    """The 202 answer: where to look for the state."""

    id: int
    state: str
