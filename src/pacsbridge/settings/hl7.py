"""HL7 v2 settings: the RIS (launch keys, order notifications) and the PACS's merge listener
(docs/integration-ris.md)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class Hl7Endpoint(BaseModel):
    """An HL7 v2 MLLP listener (the PACS for merges, the RIS for order messages)."""

    enabled: bool = Field(
        False, description="Whether this phase runs; off shows 'non configurato'."
    )
    host: str = Field("127.0.0.1", description="MLLP listener host.")
    port: int = Field(2575, description="MLLP listener port.")
    receiving_application: str = Field("", description="MSH-5 receiving application.")
    receiving_facility: str = Field("", description="MSH-6 receiving facility.")
    timeout: float = Field(30, description="Seconds to wait for the acknowledgement.")


class RisSettings(BaseModel):
    """The RIS that launches imports and may be told when an order is archived."""

    api_keys: list[SecretStr] = Field(
        default_factory=list, description="Bearer keys the RIS uses for POST /api/v1/launch."
    )
    token_lifetime_hours: float = Field(8, gt=0, description="How long a launch token is valid.")
    notify: Hl7Endpoint = Field(
        default_factory=Hl7Endpoint, description="'Invio ordine RIS' phase: the RIS MLLP listener."
    )


class MergeSettings(Hl7Endpoint):
    """'Merge paziente' phase: ADT^A40 to the PACS's HL7 listener."""


class Hl7Settings(BaseModel):
    """Our identity in HL7 messages."""

    sending_application: str = Field("PACSBRIDGE", description="MSH-3 sending application.")
    sending_facility: str = Field("", description="MSH-4 sending facility.")
