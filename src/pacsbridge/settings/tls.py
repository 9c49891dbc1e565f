"""DICOM TLS settings (PS3.15 Annex B, the BCP 195 secure transport connection profile).

Part of the one ``Settings`` object (``pacsbridge.settings``): our node's certificate, key and
trusted CAs live under ``dicom.tls``; each PACS and source says whether it speaks TLS
(``tls``, ``tls_server_name``). docs/pacs-setup.md ("DICOM TLS") explains how to make them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

#: A PACS's or a source's ``tls`` and ``tls_server_name``: the same meaning for both peers.
PeerTls = Annotated[
    bool, Field(description="Associate with DICOM TLS (needs dicom.tls; docs/pacs-setup.md).")
]
PeerTlsServerName = Annotated[
    str,
    Field(
        description="Name the certificate must carry; empty: only its chain to our trusted "
        "CAs is checked (peers are configured by address)."
    ),
]


class DicomTlsSettings(BaseModel):
    """Our TLS identity: presented to PACS that use TLS, and by our Storage SCP when ``scp``."""

    scp: bool = Field(
        False,
        description="Our Storage SCP accepts only DICOM TLS connections whose client "
        "certificate is signed by a trusted CA (mutual authentication); then every source "
        "must C-STORE to us with TLS.",
    )
    cert_file: Path | None = Field(
        None,
        description="PEM file with our certificate (and any intermediate CAs after it); "
        "needed when TLS is on anywhere.",
    )
    key_file: Path | None = Field(
        None, description="PEM file with the private key of `cert_file` (not encrypted)."
    )
    ca_file: Path | None = Field(
        None,
        description="PEM file with the CA certificates we trust: a peer's certificate must "
        "chain to one of them.",
    )

    @property
    def configured(self) -> bool:
        return bool(self.cert_file and self.key_file and self.ca_file)


def tls_problems(identity: DicomTlsSettings, peers: Iterable[tuple[str, bool]]) -> list[str]:
    """What is missing for the TLS that is switched on (empty: nothing).

    ``peers`` are (what, tls on) of the PACS and the sources. TLS without a
    certificate, a key and the trusted CAs cannot authenticate both ends (PS3.15 B.1), so
    such a configuration is refused at start-up rather than at the first association.
    """
    users = [what for what, on in peers if on]
    if identity.scp:
        users.insert(0, "our Storage SCP")
    if not users or identity.configured:
        return []
    missing = [name for name in ("cert_file", "key_file", "ca_file") if not getattr(identity, name)]
    return [f"DICOM TLS is on for {', '.join(users)}: [dicom.tls] needs {', '.join(missing)}"]
