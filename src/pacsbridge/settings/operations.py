"""Settings sections of running the product: health, metrics, logs, staff, viewer links.

Part of the one ``Settings`` object (``pacsbridge.settings``); kept here so that each module of
the settings stays small. ``docs/configuration.md`` is generated from the descriptions.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, model_validator

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


class DirectorySettings(BaseModel):
    """Sign-in of staff against Active Directory or OpenLDAP (docs/staff.md, "Directory
    sign-in"): the directory checks the password, its groups give the role."""

    enabled: bool = Field(False, description="Whether staff may sign in with directory accounts.")
    url: str = Field(
        "", description="ldap://host:389 or ldaps://host:636 of the directory (RFC 4516 URL)."
    )
    start_tls: bool = Field(
        False,
        description="Upgrade an ldap:// connection with StartTLS (RFC 4513 §3) first; required "
        "for ldap:// to another host (passwords never cross the network in clear).",
    )
    ca_file: str = Field(
        "",
        description="PEM file of the CA that signed the directory's certificate; empty: "
        "the system's CAs. The certificate and host name are always checked.",
    )
    bind_dn: str = Field(
        "", description="Service account that searches for the user's entry; empty: direct bind."
    )
    bind_password: SecretStr = Field(SecretStr(""), description="The service account's password.")
    user_bind_template: str = Field(
        "",
        description="Direct bind: what the user binds as, {username} replaced, e.g. "
        "{username}@example.local (AD) or uid={username},ou=people,dc=example,dc=org; used "
        "when bind_dn is empty.",
    )
    user_search_base: str = Field("", description="Where user entries are searched (subtree).")
    user_filter: str = Field(
        "(uid={username})",
        description="Search filter of one user, {username} replaced by the RFC 4515-escaped name;"
        " (sAMAccountName={username}) for Active Directory.",
    )
    group_attribute: str = Field(
        "memberOf",
        description="Attribute of the user entry listing its group DNs; empty: search groups.",
    )
    group_search_base: str = Field(
        "", description="Where groups are searched when group_attribute is empty."
    )
    group_filter: str = Field(
        "(member={dn})",
        description="Filter of the user's groups, {dn} replaced by the user's escaped DN.",
    )
    display_name_attribute: str = Field(
        "displayName", description="Attribute with the person's name shown in the console."
    )
    groups_to_roles: dict[str, Literal["support", "admin"]] = Field(
        default_factory=dict,
        description="Group DN → role; the highest role of the user's groups wins; a user in "
        "no mapped group is refused.",
    )
    connect_timeout_seconds: int = Field(
        5, ge=1, description="Seconds to open the connection before the directory counts as down."
    )
    timeout_seconds: int = Field(
        10,
        ge=1,
        description="Seconds one directory answer may take before the directory counts as down "
        "(whole seconds: the socket option takes them).",
    )

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> DirectorySettings:
        if not self.enabled:
            return self
        if not self.url.lower().startswith(("ldap://", "ldaps://")):
            raise ValueError("staff.directory.url must start with ldap:// or ldaps://")
        if not (self.bind_dn or self.user_bind_template):
            raise ValueError("staff.directory needs bind_dn or user_bind_template")
        if not self.user_search_base:
            raise ValueError("staff.directory needs user_search_base")
        if "{username}" not in self.user_filter:
            raise ValueError("staff.directory.user_filter must contain {username}")
        if not (self.group_attribute or self.group_search_base):
            raise ValueError("staff.directory needs group_attribute or group_search_base")
        if not self.groups_to_roles:
            raise ValueError("staff.directory needs groups_to_roles: nobody could sign in")
        if _in_clear(self.url, self.start_tls):
            raise ValueError(
                "staff.directory: ldap:// to another host needs start_tls = true (or ldaps://):"
                " passwords never cross the network in clear (RFC 4513 §6.3.1)"
            )
        return self


def _in_clear(url: str, start_tls: bool) -> bool:
    """Whether passwords would leave this host unencrypted: ``ldap://`` without StartTLS to
    a host other than this one's loopback (a directory on the same host is not the network)."""
    if start_tls or not url.lower().startswith("ldap://"):
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return False
    try:
        return not ip_address(host).is_loopback
    except ValueError:
        return True


class StaffSettings(BaseModel):
    """Staff accounts of the support console (docs/staff.md)."""

    session_hours: float = Field(8, gt=0, description="How long a staff sign-in lasts.")
    max_failed_attempts: int = Field(
        5, ge=1, description="Consecutive failed sign-ins that lock an account."
    )
    lockout_minutes: float = Field(15, gt=0, description="How long a locked account stays locked.")
    min_password_length: int = Field(12, ge=8, description="Shortest password accepted.")
    directory: DirectorySettings = Field(
        default_factory=DirectorySettings, description="Directory sign-in (AD, OpenLDAP)."
    )
