"""A C-MOVE's request and responses on the association's socket, from the calling thread.

While a PACS moves a study to us it answers one C-MOVE-RSP (Pending) per sub-operation. With
pynetdicom each of them wakes the requestor's DUL and reactor threads after their 1 ms sleeps
and is decoded through pydicom: about 0.3 CPU-seconds per 300 instances, taken from our own
Storage SCP receiving the very same study on the same two cores (docs/engineering-notes.md,
"C-STORE receive"). Here the socket is taken over as for the fast C-STORE data phase
(``fast_store.SocketOwnership``); the C-MOVE-RQ command set is built by hand (PS3.7 §9.3.4.1,
§E.1), the identifier encoded by pydicom, and each response's command elements read by hand
(PS3.7 §9.3.4.2); only a response's data set (Failed SOP Instance UID List) goes through pydicom.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Iterator
from functools import partial
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.association import Association
from pynetdicom.dsutils import decode, encode

from pacsbridge.dicomnet.fast_store import SocketOwnership
from pacsbridge.dicomnet.wire import (
    _ABORT_PDU,
    _NO_DATA_SET,
    PeerEnded,
    _command_elements,
    _element,
    _even,
    _pdv_header,
    _read_message,
    _text,
    _unsigned_short,
)

_C_MOVE_RQ = 0x0021
_C_MOVE_RSP = 0x8021
#: Response elements copied into the status, under the keywords pynetdicom would give them.
_COUNTS = {
    0x1020: "NumberOfRemainingSuboperations",
    0x1021: "NumberOfCompletedSuboperations",
    0x1022: "NumberOfFailedSuboperations",
    0x1023: "NumberOfWarningSuboperations",
}


def _move_command(sop_class_uid: str, message_id: int, destination: str) -> bytes:
    ae = destination.encode("ascii").ljust(16)[:16]
    body = b"".join(
        (
            _element(0x0002, _even(sop_class_uid)),
            _element(0x0100, struct.pack("<H", _C_MOVE_RQ)),
            _element(0x0110, struct.pack("<H", message_id)),
            _element(0x0600, ae),
            _element(0x0700, b"\0\0"),
            _element(0x0800, b"\1\0"),
        )
    )
    return _element(0x0000, struct.pack("<L", len(body))) + body


def _status(elements: dict[int, bytes]) -> dict[str, Any]:
    """The response's status elements by keyword, as ``c_move`` reads them from a Dataset.

    A plain dict, not a pydicom Dataset: a PACS answers one Pending response per instance,
    and building a Dataset for each cost 60 us of the GIL our Storage SCP needs at that very
    moment for the same study (bench/README.md).
    """
    status: dict[str, Any] = {}
    code = _unsigned_short(elements.get(0x0900))
    if code is None:
        return status
    status["Status"] = code
    for element, keyword in _COUNTS.items():
        value = _unsigned_short(elements.get(element))
        if value is not None:
            status[keyword] = value
    comment = _text(elements.get(0x0902))
    if comment:
        status["ErrorComment"] = comment
    return status


class FastMove:
    """One C-MOVE on an established association, from the calling thread."""

    def __init__(self, assoc: Association, sop_class_uid: str, dimse_timeout: float) -> None:
        self._assoc, self._sop_class, self._timeout = assoc, sop_class_uid, dimse_timeout
        self._context = next(
            (
                cx
                for cx in assoc.accepted_contexts
                if cx.abstract_syntax == sop_class_uid
                and cx.transfer_syntax[0] in (ImplicitVRLittleEndian, ExplicitVRLittleEndian)
            ),
            None,
        )
        self.ownership = SocketOwnership(assoc, dimse_timeout)

    def responses(
        self, identifier: Dataset, destination: str
    ) -> Iterator[tuple[dict[str, Any], Any]]:
        """(status, identifier or None) of each response, as ``send_c_move`` yields them.

        Nothing is yielded when the socket could not be taken (the caller uses pynetdicom); a
        status without ``Status`` when the association ended (abort, release, closed, timeout).
        """
        cx = self._context
        tls = isinstance(self.ownership._raw(), ssl.SSLSocket)  # TLS stays with pynetdicom
        sock = self.ownership.take() if cx is not None and not tls else None
        if sock is None or cx is None:
            self.ownership.give_back()
            return
        implicit = cx.transfer_syntax[0] == ImplicitVRLittleEndian
        context_id = int(cx.context_id)
        frag = (self._assoc.acceptor.maximum_length or 0) - 6
        frag = frag if frag > 0 else 1 << 20
        previous = sock.gettimeout()
        try:
            sock.settimeout(self._timeout)
            command = _move_command(self._sop_class, 1, destination)
            data = encode(identifier, implicit, True) or b""
            pieces = [_pdv_header(len(command), context_id, 0x03), command]
            for start in range(0, len(data), frag):
                last = start + frag >= len(data)
                piece = data[start : start + frag]
                pieces += [_pdv_header(len(piece), context_id, 0x02 if last else 0x00), piece]
            sock.sendall(b"".join(pieces))
            while True:
                status, answer = self._response(sock, implicit)
                if (status["Status"] & 0xFF00) != 0xFF00:
                    break
                yield status, answer
        except (PeerEnded, OSError):
            self.ownership.close_transport()
            yield {}, None
            return
        finally:
            if sock.fileno() >= 0:
                sock.settimeout(previous)
            if self.ownership.held:  # the caller stopped early: pynetdicom aborts or releases
                self.ownership.give_back()
        self.ownership.give_back()  # before the final response: pynetdicom releases next
        yield status, answer

    def _response(self, sock: socket.socket, implicit: bool) -> tuple[dict[str, Any], Any]:
        abort = partial(sock.sendall, _ABORT_PDU)
        command, data = _read_message(sock, "the C-MOVE", abort, keep_data=True)
        elements = _command_elements(command)
        status = _status(elements)
        if _unsigned_short(elements.get(0x0100)) != _C_MOVE_RSP or "Status" not in status:
            abort()
            raise PeerEnded("the PACS answered with a message that is not a C-MOVE response")
        has_data = _unsigned_short(elements.get(0x0800)) != _NO_DATA_SET
        answer = decode(BytesIO(bytes(data)), implicit, True) if has_data and data else None
        return status, answer
