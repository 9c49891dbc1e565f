"""The bytes of the DICOM upper layer that the fast C-STORE data phase writes and reads itself.

PDU and PDV framing (PS3.8 §9.3), the C-STORE-RQ command set in Implicit VR Little Endian
(PS3.7 §9.3.1.1, §E.1), the few command elements a C-STORE-RSP is read for, and the File Meta
(PS3.10 §7.1) parsed by hand so that the data set's bytes can be sent as they are on disk.
Pure functions over bytes and sockets: the ownership of the socket is ``fast_store``'s.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from pacsbridge.uids import clean, is_valid


class PeerEnded(Exception):
    """The association ended during the data phase; the message says how (in English)."""


#: ``sendmsg`` takes at most IOV_MAX buffers (1024 on Linux).
MAX_IOV = 1024


#: A File Meta longer than this goes to the slow path (real ones are a few hundred bytes).
META_READ = 64 * 1024
#: The first read of a file's head: enough for an ordinary File Meta.
META_FIRST_READ = 4096
#: The longest PDU we take from a peer, whatever it announces: peers must honour our maximum
#: (PS3.8 §D.1), which is far below; a longer one is aborted before anything is allocated.
LARGEST_PDU = 64 * 1024 * 1024
#: The longest command set we gather across PDVs: a DIMSE command is a few hundred bytes
#: (PS3.7 §9.3: UIDs of 64 characters, AE titles of 16), so a peer sending more command
#: fragments than this is aborted, never buffered without end.
LARGEST_COMMAND = 64 * 1024
#: The longest data set of a response we keep (a C-MOVE's Failed SOP Instance UID List: some
#: 250,000 UIDs); a longer one is aborted.
LARGEST_RESPONSE_DATA = 16 * 1024 * 1024


_P_DATA_TF = 0x04


_A_RELEASE_RQ = 0x05


_A_RELEASE_RP = 0x06


_A_ABORT = 0x07


_ABORT_PDU = bytes((_A_ABORT, 0, 0, 0, 0, 4, 0, 0, 0, 0))  # source: service user


_RELEASE_RP_PDU = bytes((_A_RELEASE_RP, 0, 0, 0, 0, 4, 0, 0, 0, 0))


_PDU_HEADER = struct.Struct(">BBL")


_PDV_HEADER = struct.Struct(">BBLLBB")  # PDU type, reserved, PDU length, item length, id, ctrl


_C_STORE_RQ = 0x0001


_C_STORE_RSP = 0x8001


_NO_DATA_SET = 0x0101


_DEFLATED = "1.2.840.10008.1.2.1.99"


_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT"}


@dataclass(frozen=True)
class FileMeta:
    """What a send needs from a Part 10 file: its UIDs and where the data set starts."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    dataset_offset: int


def read_file_meta(path: Path) -> FileMeta | None:
    """Parse the File Meta group of ``path`` (PS3.10 §7.1) without pydicom.

    None when the file is not a plain Part 10 file this module can send as it is (no preamble,
    a UID that is not a UID, a deflated data set, an empty data set): pydicom reads those.
    A first read of :data:`META_FIRST_READ` bytes holds an ordinary File Meta; only a longer
    one is read again, up to :data:`META_READ` (64 KB for each of 300 files cost 6 ms).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(META_FIRST_READ)
            size = os.fstat(f.fileno()).st_size
            found = _parse_file_meta(head, size)
            if found is _MORE and len(head) == META_FIRST_READ:
                f.seek(0)
                found = _parse_file_meta(f.read(META_READ), size)
    except OSError:
        return None
    return found if isinstance(found, FileMeta) else None


_MORE = object()  # the File Meta goes on past the bytes read


def _parse_file_meta(head: bytes, size: int) -> FileMeta | object | None:
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    values: dict[int, str] = {}
    offset = 132
    while offset + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, offset)
        if group != 0x0002:
            break
        vr = head[offset + 4 : offset + 6]
        if vr in _LONG_VRS:
            if offset + 12 > len(head):
                return _MORE
            (length,) = struct.unpack_from("<L", head, offset + 8)
            start = offset + 12
        else:
            (length,) = struct.unpack_from("<H", head, offset + 6)
            start = offset + 8
        if start + length > len(head):
            return _MORE
        if element in (0x0002, 0x0003, 0x0010):
            values[element] = clean(head[start : start + length].decode("ascii", "replace"))
        offset = start + length
    else:
        return _MORE  # File Meta longer than the bytes read, or nothing after it
    uids = (values.get(0x0002), values.get(0x0003), values.get(0x0010))
    if not all(is_valid(uid) for uid in uids) or uids[2] == _DEFLATED or offset >= size:
        return None
    return FileMeta(str(uids[0]), str(uids[1]), str(uids[2]), offset)


def _even(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHL", 0x0000, element, len(value)) + value


class _CommandTemplate:
    """A C-STORE-RQ command set (PS3.7 §9.3.1.1) with its constant part encoded once."""

    def __init__(self, sop_class_uid: str) -> None:
        self._sop_class = _element(0x0002, _even(sop_class_uid))
        self._field = _element(0x0100, struct.pack("<H", _C_STORE_RQ))
        # Priority MEDIUM, then "a data set follows" (any value but 0x0101).
        self._tail = _element(0x0700, b"\0\0") + _element(0x0800, b"\0\0")

    def encode(self, message_id: int, sop_instance_uid: str) -> bytes:
        body = b"".join(
            (
                self._sop_class,
                self._field,
                _element(0x0110, struct.pack("<H", message_id)),
                self._tail,
                _element(0x1000, _even(sop_instance_uid)),
            )
        )
        return _element(0x0000, struct.pack("<L", len(body))) + body


def _pdv_header(length: int, context_id: int, control: int) -> bytes:
    return _PDV_HEADER.pack(_P_DATA_TF, 0, length + 6, length + 2, context_id, control)


def _sendmsg_all(sock: socket.socket, buffers: list[bytes | memoryview]) -> None:
    """Send every buffer, in as few ``sendmsg`` calls as the kernel allows.

    On DICOM TLS (an ``ssl.SSLSocket``, which has no ``sendmsg``) the buffers are joined and
    sent with one ``sendall``: one copy of a block, which TLS encrypts into records anyway.
    """
    if isinstance(sock, ssl.SSLSocket):
        sock.sendall(b"".join(buffers))
        return
    while buffers:
        sent = sock.sendmsg(buffers[:MAX_IOV])
        while sent and buffers:
            first = len(buffers[0])
            if sent >= first:
                sent -= first
                buffers.pop(0)
            else:
                buffers[0] = memoryview(buffers[0])[sent:]
                sent = 0
        while buffers and not len(buffers[0]):
            buffers.pop(0)


def _recv_exactly(sock: socket.socket, count: int) -> bytearray:
    data = bytearray(count)
    view = memoryview(data)
    got = 0
    while got < count:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise PeerEnded("the PACS closed the connection during the transfer")
        got += n
    return data


def _read_pdu(sock: socket.socket) -> tuple[int, bytearray]:
    """The next PDU; one announced longer than :data:`LARGEST_PDU` is aborted, never
    allocated (a peer must honour our maximum length, PS3.8 §D.1)."""
    kind, _, length = _PDU_HEADER.unpack(_recv_exactly(sock, 6))
    if length > LARGEST_PDU:
        with suppress(OSError):
            sock.sendall(_ABORT_PDU)
        raise PeerEnded(f"a PDU of {length} bytes from the PACS, far above our maximum; aborted")
    return kind, _recv_exactly(sock, length)


def _read_p_data(sock: socket.socket, during: str, abort: Callable[[], None]) -> bytearray:
    """The next P-DATA-TF's body; any other PDU ends ``during`` (PS3.8 §9.3.1), an unexpected
    one after ``abort()``."""
    kind, body = _read_pdu(sock)
    if kind == _P_DATA_TF:
        return body
    if kind == _A_ABORT:
        raise PeerEnded(_abort_text(body))
    if kind == _A_RELEASE_RQ:
        sock.sendall(_RELEASE_RP_PDU)
        raise PeerEnded(f"the PACS released the association during {during}")
    abort()
    raise PeerEnded(f"unexpected PDU type 0x{kind:02X} from the PACS")


def _pdvs(body: bytearray) -> Iterator[tuple[int, bytearray]]:
    """(message control header, fragment) of every PDV item in a P-DATA-TF (PS3.8 §9.3.5)."""
    offset = 0
    while offset + 6 <= len(body):
        (length,) = struct.unpack_from(">L", body, offset)
        if length < 2 or offset + 4 + length > len(body):
            raise PeerEnded("malformed P-DATA-TF PDU from the PACS")
        yield body[offset + 5], body[offset + 6 : offset + 4 + length]
        offset += 4 + length


def _command_raw(command: bytearray, element: int) -> bytes | None:
    """The value of (0000,element) in an Implicit VR Little Endian command set."""
    offset = 0
    while offset + 8 <= len(command):
        group, elem, length = struct.unpack_from("<HHL", command, offset)
        if group == 0x0000 and elem == element:
            return bytes(command[offset + 8 : offset + 8 + length])
        offset += 8 + length
    return None


def _read_message(
    sock: socket.socket, during: str, abort: Callable[[], None], keep_data: bool
) -> tuple[bytearray, bytearray]:
    """The next DIMSE message: its command set and, with ``keep_data``, its data set.

    Read over as many P-DATA-TF PDUs as it takes (PS3.8 §9.3.5, Annex E); a command set over
    :data:`LARGEST_COMMAND` or a kept data set over :data:`LARGEST_RESPONSE_DATA` ends
    ``during`` after ``abort()``. Without ``keep_data`` the data set is read and dropped.
    """
    command, data = bytearray(), bytearray()
    command_done = data_done = False
    has_data = True
    while not (command_done and (data_done or not has_data)):
        for control, value in _pdvs(_read_p_data(sock, during, abort)):
            if control & 0x01:
                command += value
                if len(command) > LARGEST_COMMAND:
                    abort()
                    raise PeerEnded(f"a command set over {LARGEST_COMMAND} bytes during {during}")
                if control & 0x02:
                    command_done = True
                    has_data = _command_value(command, 0x0800) != _NO_DATA_SET
                continue
            if keep_data:
                data += value
                if len(data) > LARGEST_RESPONSE_DATA:
                    abort()
                    raise PeerEnded(
                        f"a data set over {LARGEST_RESPONSE_DATA} bytes during {during}"
                    )
            data_done = data_done or bool(control & 0x02)
    return command, data


def _command_elements(command: bytearray) -> dict[int, bytes]:
    """Every (0000,xxxx) value of an Implicit VR Little Endian command set, in one pass."""
    found: dict[int, bytes] = {}
    offset = 0
    while offset + 8 <= len(command):
        group, elem, length = struct.unpack_from("<HHL", command, offset)
        if group == 0x0000:
            found.setdefault(elem, bytes(command[offset + 8 : offset + 8 + length]))
        offset += 8 + length
    return found


def _command_value(command: bytearray, element: int) -> int | None:
    return _unsigned_short(_command_raw(command, element))


def _unsigned_short(raw: bytes | None) -> int | None:
    """A US value (Implicit VR Little Endian), or None when absent or of another length."""
    return struct.unpack("<H", raw)[0] if raw is not None and len(raw) == 2 else None


def _text(raw: bytes | None) -> str:
    """A text value less its padding (NUL or space, PS3.5 §6.2); "" when absent."""
    return raw.decode("ascii", "replace").rstrip("\0 ") if raw else ""


def _abort_text(body: bytearray) -> str:
    source = body[2] if len(body) > 2 else 0
    reason = body[3] if len(body) > 3 else 0
    return f"association aborted by the PACS (source {source}, reason {reason})"
