"""The bytes our fast Storage SCP reads and writes itself (``dicomnet/fast_receive.py``).

The request command elements it needs (PS3.7 §9.3.1.1, §9.3.5.1, Implicit VR Little Endian,
§E.1), the C-STORE-RSP and C-ECHO-RSP command sets (PS3.7 §9.3.1.2, §9.3.5.2), and the File
Meta of a received instance (PS3.10 §7.1) in Explicit VR Little Endian, with the same elements
and values as pynetdicom writes on the slow path, so both paths produce the same file.
PDU and PDV framing are ``dicomnet/wire.py``'s.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

from pacsbridge.dicomnet.wire import (
    _NO_DATA_SET,
    _command_elements,
    _element,
    _even,
    _text,
    _unsigned_short,
)

C_STORE_RQ = 0x0001
C_ECHO_RQ = 0x0030
_C_STORE_RSP = 0x8001
_C_ECHO_RSP = 0x8030
PREAMBLE = b"\0" * 128 + b"DICM"


@dataclass(frozen=True)
class Command:
    """The elements of a request command set the fast path acts on."""

    field: int | None
    message_id: int | None
    sop_class_uid: str
    sop_instance_uid: str
    has_data_set: bool
    move_originator_ae: str = ""
    move_originator_message_id: int | None = None


def parse_command(command: bytearray) -> Command:
    """The command elements by tag (0000,xxxx), in one pass; absent ones are None or ""."""
    elements = _command_elements(command)
    return Command(
        field=_unsigned_short(elements.get(0x0100)),
        message_id=_unsigned_short(elements.get(0x0110)),
        sop_class_uid=_text(elements.get(0x0002)),
        sop_instance_uid=_text(elements.get(0x1000)),
        has_data_set=_unsigned_short(elements.get(0x0800)) != _NO_DATA_SET,
        move_originator_ae=_text(elements.get(0x1030)).strip(),
        move_originator_message_id=_unsigned_short(elements.get(0x1031)),
    )


def _group(body: bytes) -> bytes:
    return _element(0x0000, struct.pack("<L", len(body))) + body


def store_response(request: Command, status: int) -> bytes:
    """C-STORE-RSP (PS3.7 §9.3.1.2): the request's UIDs, its Message ID and ``status``."""
    return _group(
        b"".join(
            (
                _element(0x0002, _even(request.sop_class_uid)),
                _element(0x0100, struct.pack("<H", _C_STORE_RSP)),
                _element(0x0120, struct.pack("<H", request.message_id or 0)),
                _element(0x0800, struct.pack("<H", _NO_DATA_SET)),
                _element(0x0900, struct.pack("<H", status)),
                _element(0x1000, _even(request.sop_instance_uid)),
            )
        )
    )


def echo_response(request: Command) -> bytes:
    """C-ECHO-RSP (PS3.7 §9.3.5.2), status Success."""
    return _group(
        b"".join(
            (
                _element(0x0002, _even(request.sop_class_uid)),
                _element(0x0100, struct.pack("<H", _C_ECHO_RSP)),
                _element(0x0120, struct.pack("<H", request.message_id or 0)),
                _element(0x0800, struct.pack("<H", _NO_DATA_SET)),
                _element(0x0900, struct.pack("<H", 0x0000)),
            )
        )
    )


def _explicit(element: int, vr: bytes, value: bytes) -> bytes:
    if vr == b"OB":
        return struct.pack("<HH2sHL", 0x0002, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def file_meta(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> bytes:
    """Preamble, "DICM" and the File Meta group (PS3.10 §7.1), group length included.

    UIDs are padded with NUL and the version name with a space to an even length (PS3.5 §6.2).
    """
    version = PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii")
    if len(version) % 2:
        version += b" "
    body = b"".join(
        (
            _explicit(0x0001, b"OB", b"\x00\x01"),
            _explicit(0x0002, b"UI", _even(sop_class_uid)),
            _explicit(0x0003, b"UI", _even(sop_instance_uid)),
            _explicit(0x0010, b"UI", _even(transfer_syntax_uid)),
            _explicit(0x0012, b"UI", _even(str(PYNETDICOM_IMPLEMENTATION_UID))),
            _explicit(0x0013, b"SH", version),
        )
    )
    return PREAMBLE + _explicit(0x0000, b"UL", struct.pack("<L", len(body))) + body
