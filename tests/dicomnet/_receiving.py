"""Helpers for the fast receive tests: our Storage SCP writing into a folder, and a raw client.

The raw client is a real pynetdicom requestor whose socket is taken over after negotiation
(``fast_store.SocketOwnership``), so that a test can put exactly the PDUs it wants on the wire:
several PDVs per PDU, tiny command fragments, an A-ABORT or A-RELEASE-RQ mid-data set.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from pathlib import Path

from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from pacsbridge.dicomnet.fast_store import SocketOwnership
from pacsbridge.dicomnet.peers import LocalAE
from pacsbridge.dicomnet.scp import StorageSCP, StoreRequest
from pacsbridge.dicomnet.wire import _CommandTemplate, _read_pdu, read_file_meta
from peers.dicom import free_port


def datasets(folder: Path) -> dict[str, bytes]:
    """SOP Instance UID → data set bytes (after the File Meta) of every Part 10 file."""
    found: dict[str, bytes] = {}
    for path in folder.rglob("*"):
        meta = read_file_meta(path) if path.is_file() else None
        if meta is not None:
            found[meta.sop_instance_uid] = path.read_bytes()[meta.dataset_offset :]
    return found


class ReceivingScp:
    """Our StorageSCP; files named by arrival (never by UID); the fast path's landings counted."""

    def __init__(
        self,
        folder: Path,
        max_pdu: int = 16384,
        fast: bool = True,
        address: tuple[str, int] | None = None,
        refuse: Callable[[str], int] = lambda uid: 0,
        network_timeout: float = 10,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.refuse = folder, refuse
        self.landed: list[str] = []
        self.stored: list[str] = []
        self.lock = threading.Lock()
        local = LocalAE(
            ae_title="PACSBRIDGE",
            acse_timeout=5,
            dimse_timeout=10,
            network_timeout=network_timeout,
            connection_timeout=3,
            maximum_pdu_size=max_pdu,
            fast_receive=fast,
        )
        host, port = address or ("127.0.0.1", free_port())
        self.scp = StorageSCP(local, host, port, self._store, on_land=self._land)
        self.scp.start()
        self.port = self.scp.port

    def _land(self, request: StoreRequest) -> Path | int:
        status = self.refuse(request.sop_instance_uid)
        with self.lock:
            self.landed.append(request.sop_instance_uid)
            number = len(self.landed)
        return status or self.folder / f"{number}.part"

    def _store(self, request: StoreRequest) -> int:
        with self.lock:
            self.stored.append(request.sop_instance_uid)
            number = len(self.stored)
        request.write_to(self.folder / f"{number}-{threading.get_ident()}.dcm")
        return 0

    def files(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir())

    def stop(self) -> None:
        self.scp.stop()


class RawClient:
    """A negotiated association (CT Image Storage + Verification) driven byte by byte."""

    def __init__(self, port: int, max_pdu: int = 16384, transfer_syntax: str = "") -> None:
        ae = AE(ae_title="RAW")
        ae.maximum_pdu_size = max_pdu
        syntaxes = [transfer_syntax] if transfer_syntax else None
        ae.add_requested_context(CTImageStorage, syntaxes or ["1.2.840.10008.1.2.1"])
        ae.add_requested_context(Verification)
        self.ae = ae
        self.assoc = ae.associate("127.0.0.1", port, ae_title="PACSBRIDGE", max_pdu=max_pdu)
        assert self.assoc.is_established
        self.context_id = next(
            int(cx.context_id)
            for cx in self.assoc.accepted_contexts
            if cx.abstract_syntax == CTImageStorage
        )
        self.ownership = SocketOwnership(self.assoc, 5)
        sock = self.ownership.take()
        assert sock is not None
        sock.settimeout(10)
        self.sock = sock

    @staticmethod
    def command(message_id: int, sop_instance_uid: str) -> bytes:
        return _CommandTemplate(CTImageStorage).encode(message_id, sop_instance_uid)

    def send_pdu(self, pdvs: list[tuple[int, bytes]]) -> None:
        """One P-DATA-TF with these (control header, fragment) PDVs on our CT context."""
        body = b"".join(
            struct.pack(">LBB", len(frag) + 2, self.context_id, ctrl) + frag for ctrl, frag in pdvs
        )
        self.sock.sendall(struct.pack(">BBL", 0x04, 0, len(body)) + body)

    def read_response(self) -> tuple[int, int, bytes]:
        """(Message ID being responded to, status, command) of the next response, reassembled;
        also the longest P-DATA-TF variable field seen (what a maximum PDU length limits,
        PS3.8 §D.1), in ``self.largest_pdu``."""
        command = b""
        self.largest_pdu = 0
        while True:
            kind, body = _read_pdu(self.sock)
            assert kind == 0x04, f"PDU type 0x{kind:02X} instead of a response"
            self.largest_pdu = max(self.largest_pdu, len(body))
            offset = 0
            while offset < len(body):
                (length,) = struct.unpack_from(">L", body, offset)
                ctrl = body[offset + 5]
                command += bytes(body[offset + 6 : offset + 4 + length])
                offset += 4 + length
                if ctrl & 0x02:
                    return _value(command, 0x0120), _value(command, 0x0900), command

    def next_pdu_type(self) -> int:
        kind, _ = _read_pdu(self.sock)
        return kind

    def close(self) -> None:
        self.ownership.close_transport()
        self.ae.shutdown()


def _value(command: bytes, element: int) -> int:
    offset = 0
    while offset + 8 <= len(command):
        group, elem, length = struct.unpack_from("<HHL", command, offset)
        if elem == element:
            return struct.unpack_from("<H", command, offset + 8)[0]
        offset += 8 + length
    raise AssertionError(f"no (0000,{element:04X}) in the response")
