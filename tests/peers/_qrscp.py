"""Run pynetdicom's own ``qrscp`` application, unchanged, with two knobs the app lacks.

* TCP_NODELAY on every socket it accepts or opens (C-MOVE sub-associations): without it each
  DIMSE message waits ~40 ms for the peer's delayed ACK (Nagle), which makes tests slow.
* ``--uncompressed-only`` (consumed here): accept only the uncompressed transfer syntaxes,
  like a PACS that refuses compressed data.

Usage: ``python _qrscp.py [--uncompressed-only] <qrscp arguments>`` (see ``peers.dicom``).
"""

from __future__ import annotations

import socket
import sys

from pynetdicom import transport

UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"]


def _nodelay(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


_accept = transport.AssociationServer.get_request
_create = transport.AssociationSocket._create_socket


def _get_request(self):  # type: ignore[no-untyped-def]
    sock, address = _accept(self)
    return _nodelay(sock), address


def _create_socket(self, address):  # type: ignore[no-untyped-def]
    return _nodelay(_create(self, address))


def main(argv: list[str]) -> None:
    transport.AssociationServer.get_request = _get_request  # type: ignore[method-assign]
    transport.AssociationSocket._create_socket = _create_socket  # type: ignore[method-assign]
    from pynetdicom.apps.qrscp import qrscp

    if "--uncompressed-only" in argv:
        argv = [arg for arg in argv if arg != "--uncompressed-only"]
        qrscp.ALL_TRANSFER_SYNTAXES = UNCOMPRESSED  # type: ignore[attr-defined]
    qrscp.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
