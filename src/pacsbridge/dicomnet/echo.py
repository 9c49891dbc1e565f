"""C-ECHO: the "is the PACS there and does it know us" check of ``pacsbridge check`` and tests."""

from __future__ import annotations

from pynetdicom.presentation import build_context
from pynetdicom.sop_class import Verification

from pacsbridge.dicomnet.association import associate, raise_no_response, status_of
from pacsbridge.dicomnet.peers import LocalAE, Peer
from pacsbridge.errors import PeerRefused


def c_echo(local: LocalAE, peer: Peer) -> int:
    """Return the C-ECHO status (0x0000); raise PeerUnavailable/PeerRefused otherwise."""
    with associate(local, peer, [build_context(Verification)]) as assoc:
        status = status_of(assoc.send_c_echo())
        if status is None:
            raise_no_response(assoc, peer)
        if status != 0x0000:
            raise PeerRefused(f"C-ECHO status 0x{status:04X}", peer=peer.label)
        return status
