"""Settings sections of running the product: health, metrics, logs, staff, viewer links.

Part of the one ``Settings`` object (``pacsbridge.settings``); kept here so that each module of
the settings stays small. ``docs/configuration.md`` is generated from the descriptions.
"""

from __future__ import annotations

from ipaddress import ip_network
from typing import Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr

GiB = 1024**3


class ViewerSettings(BaseModel):
    """Looking at images: the clinicians' links and the operator's preview (DICOMweb + OHIF)."""

    secret_key: SecretStr = Field(
        SecretStr(""),
        description="Key that signs viewer links; empty: a random key kept in data_dir "
        "(viewer-secret.key). Set the same key on every server behind one public URL.",
    )
    link_lifetime_hours: float = Field(
        24, gt=0, description="How long a viewer link in the FSE API document stays valid."
    )


class HealthSettings(BaseModel):
    """``/readyz``: what makes this node ready to take work (docs/operations.md)."""

    echo_timeout_seconds: float = Field(
        3, gt=0, description="Seconds each C-ECHO of /readyz may take before it counts as down."
    )
    min_free_bytes: int = Field(
        1 * GiB, ge=0, description="Free space on the data folder's disk below which not ready."
    )
    sources_required: bool = Field(
        True,
        description="Whether a source PACS that does not answer C-ECHO makes the node not ready;"
        " false keeps the node in rotation for imports while one source is down.",
    )
    cache_seconds: float = Field(
        2,
        ge=0,
        description="Seconds one /readyz answer is reused: probes, however many, cost at most "
        "one C-ECHO per peer in this time.",
    )


class MetricsSettings(BaseModel):
    """Who may read ``/metrics`` (docs/operations.md, "Who may scrape")."""

    bearer_tokens: list[SecretStr] = Field(
        default_factory=list, description="Bearer tokens a Prometheus server may scrape with."
    )
    allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network("127.0.0.1/32"), ip_network("::1/128")],
        description="Client networks (CIDR) that may scrape without a token; [] for none.",
    )


class LoggingSettings(BaseModel):
    """The process log (docs/logging.md)."""

    format: Literal["text", "json"] = Field(
        "text",
        description="text: one line per record; json: one JSON object per line, with "
        "request_id, import_id and retrieval_id when known.",
    )


class StaffSettings(BaseModel):
    """Staff accounts of the support console (docs/staff.md)."""

    session_hours: float = Field(8, gt=0, description="How long a staff sign-in lasts.")
    max_failed_attempts: int = Field(
        5, ge=1, description="Consecutive failed sign-ins that lock an account."
    )
    lockout_minutes: float = Field(15, gt=0, description="How long a locked account stays locked.")
    min_password_length: int = Field(12, ge=8, description="Shortest password accepted.")
