"""Settings of the IHE ATNA audit trail: the collector our audit messages go to (docs/atna.md).

Part of the one ``Settings`` object (``pacsbridge.settings``). Off by default: a hospital turns
it on once its Audit Record Repository is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class AtnaSettings(BaseModel):
    """IHE ATNA Secure Node: DICOM audit messages (PS3.15 A.5) by syslog to a collector."""

    enabled: bool = Field(False, description="Send DICOM audit messages to the collector.")
    host: str = Field("127.0.0.1", description="The Audit Record Repository's host name.")
    port: int = Field(6514, description="The collector's syslog port (6514: syslog over TLS).")
    transport: Literal["tcp", "tls"] = Field(
        "tls", description="tls: RFC 5425 (what ATNA requires); tcp: RFC 6587, trusted networks."
    )
    ca_file: Path | None = Field(
        None, description="PEM file of the CAs that sign the collector's certificate (tls)."
    )
    cert_file: Path | None = Field(
        None, description="Our client certificate (PEM), when the collector asks for one (tls)."
    )
    key_file: Path | None = Field(None, description="The client certificate's private key (PEM).")
    app_name: str = Field("pacsbridge", description="The syslog APP-NAME of our messages.")
    audit_source_id: str = Field(
        "", description="AuditSourceID of every message; empty: our AE title (dicom.ae_title)."
    )
    enterprise_site_id: str = Field(
        "", description="AuditEnterpriseSiteID (the hospital); empty: not sent."
    )
    spool_max_messages: int = Field(
        100_000,
        ge=1,
        description="Messages kept while the collector is down; past it new ones are counted "
        "and dropped (an audit event and a log line say so).",
    )
    retry_seconds: float = Field(
        5, gt=0, description="Seconds between attempts to reach a collector that is down."
    )
    timeout_seconds: float = Field(10, gt=0, description="Connect and send timeout.")
