"""Who we talk to and who we are, as plain values (no pynetdicom objects leak upwards)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsIdentity:
    """Our certificate (PEM, chain after it), its key, and the CAs a peer's must chain to."""

    certificate: Path
    private_key: Path
    ca_certificates: Path


@dataclass(frozen=True)
class Peer:
    """A remote DICOM node; ``name`` is what users read in messages ("PACS di reparto").

    ``tls``: associate with DICOM TLS (PS3.15 Annex B); the peer's certificate must chain to
    our trusted CAs, and carry ``tls_server_name`` when one is given.
    """

    ae_title: str
    host: str
    port: int
    name: str = ""
    tls: bool = False
    tls_server_name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class LocalAE:
    """Our side of an association.

    The 128 KiB maximum PDU halves the time per large instance against pynetdicom's 16 KiB
    default (measured in docs/engineering-notes.md); peers may still ask for less.
    """

    ae_title: str = "PACSBRIDGE"
    acse_timeout: float = 30
    dimse_timeout: float = 120
    network_timeout: float = 60
    connection_timeout: float = 10
    maximum_pdu_size: int = 131072
    #: C-STORE data phase on the association's socket (dicomnet/fast_store.py).
    fast_store: bool = True
    #: Our Storage SCP's data phase on the association's thread (fast_receive.py), and C-MOVE
    #: responses read on the calling thread (fast_move.py).
    fast_receive: bool = True
    #: What we present and trust in DICOM TLS; None: no TLS configured.
    tls: TlsIdentity | None = None
    #: Our Storage SCP accepts only TLS connections with a trusted client certificate.
    tls_scp: bool = False
