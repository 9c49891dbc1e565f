"""The fast path of header reading: an ordinary Part 10 file walked by hand, element by element.

Almost every file on a medium is a plain Part 10 file (PS3.10 §7.1: preamble, "DICM", an
Explicit VR Little Endian File Meta group) whose data set is Implicit or Explicit VR Little
Endian, native or encapsulated (PS3.5 §7.1, §A.4), and whose identifying values are ASCII. For
those, building a pydicom data set costs far more than the few values the inventory needs, so
this module walks the element headers of the bytes already read (PS3.5 §7.1.2, §7.5), keeps the
raw values of the wanted tags, skips every other value by its length, and checks, as the general
reader does, that no value and no pixel data reach past the end of the file.

Anything unusual raises :class:`NotFast` and the caller reads the same open file with pydicom:
no marker, a deflated or big endian syntax, an unknown one, a value that is not ASCII (so its
character set matters, PS3.5 §6.1), an IS that is not a plain integer, a UID with padding inside,
an Other Patient IDs sequence, an element header that does not parse, or a file cut short (the
general reader then says exactly how). So the fast path never decides a hard case on its own.
"""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

#: Bytes read at once; a small file is read whole by the first read.
CHUNK = 64 * 1024
_META_START = 132
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXELS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})
_UNDEFINED = 0xFFFFFFFF
_VRS = frozenset(vr.encode("ascii") for vr in VR)
_LONG = frozenset(vr.encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)
_MAX_DEPTH = 16
_TAG_VR = struct.Struct("<HH2sH")
_TAG_LENGTH = struct.Struct("<HHL")
_LENGTH = struct.Struct("<L")
_PLAIN_INT = re.compile(r"[+-]?[0-9]{1,15}")
_NOT_ASCII = re.compile(rb"[^\x00-\x7f]|\x1b")

#: The data set's tags the inventory reads, with their VR in the data dictionary (PS3.6).
WANTED = {
    0x00080005: "CS",  # Specific Character Set
    0x00080016: "UI",  # SOP Class UID
    0x00080018: "UI",  # SOP Instance UID
    0x00080020: "DA",  # Study Date
    0x00080030: "TM",  # Study Time
    0x00080050: "SH",  # Accession Number
    0x00080060: "CS",  # Modality
    0x00081030: "LO",  # Study Description
    0x0008103E: "LO",  # Series Description
    0x00100010: "PN",  # Patient's Name
    0x00100020: "LO",  # Patient ID
    0x00100021: "LO",  # Issuer of Patient ID
    0x00100030: "DA",  # Patient's Birth Date
    0x00100040: "CS",  # Patient's Sex
    0x00101000: "LO",  # Other Patient IDs (retired)
    0x0020000D: "UI",  # Study Instance UID
    0x0020000E: "UI",  # Series Instance UID
    0x00200011: "IS",  # Series Number
    0x00200013: "IS",  # Instance Number
}
#: Other Patient IDs Sequence: read by the general reader when present.
OTHER_IDS_SEQUENCE = 0x00101002
#: VRs whose values this path converts; any other VR on a wanted tag goes to pydicom.
_TEXT_VRS = frozenset({"CS", "UI", "DA", "TM", "SH", "LO", "PN", "IS"})
#: The syntaxes walked here: Implicit VR Little Endian (True) or an Explicit VR Little Endian one.
_SYNTAXES: dict[str, bool | None] = {}


class NotFast(Exception):
    """This file needs the general reader."""


def implicit_of(syntax: str) -> bool:
    """True for Implicit VR Little Endian, False for an explicit little endian syntax."""
    known = _SYNTAXES.get(syntax, ...)
    if known is ...:
        uid = UID(syntax)
        fast = uid.is_transfer_syntax and uid.is_little_endian and not uid.is_deflated
        known = _SYNTAXES[syntax] = bool(uid.is_implicit_VR) if fast else None
    if known is None:
        raise NotFast(syntax)
    return known


class _Window:
    """The bytes of ``fp`` around the walk: the first read, then reads where the walk jumps."""

    def __init__(self, fp: BinaryIO, head: bytes, size: int) -> None:
        self.fp, self.buf, self.base, self.size = fp, head, 0, size

    def get(self, pos: int, count: int) -> bytes:
        start = pos - self.base
        if start < 0 or start + count > len(self.buf):
            if pos + count > self.size:
                raise NotFast("past the end")
            self.fp.seek(pos)
            self.buf, self.base, start = self.fp.read(max(count, CHUNK)), pos, 0
            if len(self.buf) < count:
                raise NotFast("file shrank")
        return self.buf[start : start + count]


def read(fp: BinaryIO, head: bytes, size: int) -> tuple[dict[int, tuple[str, bytes]], str]:
    """The wanted raw values as {tag: (VR, bytes)} plus the meta group's own, and the syntax.

    Meta values are keyed by their (0002,eeee) tags. Raises NotFast when the file needs pydicom.
    """
    if head[128:_META_START] != b"DICM":
        raise NotFast("no marker")
    window = _Window(fp, head, size)
    values: dict[int, tuple[str, bytes]] = {}
    pos = _meta(window, values)
    syntax = _ascii(values.get(0x00020010, ("UI", b""))[1]).rstrip("\x00 ")
    implicit = implicit_of(syntax)
    if implicit and pos + 6 <= size and window.get(pos + 4, 2) in _VRS:
        raise NotFast("explicit VR in an implicit syntax")  # pydicom switches; let it
    _walk(window, pos, implicit, values, 0)
    return values, syntax


def _meta(window: _Window, values: dict[int, tuple[str, bytes]]) -> int:
    """Read group 0002 (always Explicit VR Little Endian); the position after it."""
    pos = _META_START
    while pos + 8 <= window.size:
        group, element, vr, short = _TAG_VR.unpack(window.get(pos, 8))
        if group != 0x0002:
            return pos
        pos, length = _value_at(window, pos, vr, short)
        if length == _UNDEFINED:
            raise NotFast("undefined length in the meta group")
        if element in (0x0002, 0x0010):
            values[0x00020000 | element] = ("UI", window.get(pos, length))
        pos += length
    raise NotFast("no data set after the meta group")


def _value_at(window: _Window, pos: int, vr: bytes, short: int) -> tuple[int, int]:
    """Explicit VR: where the value starts and its length (PS3.5 §7.1.2)."""
    if vr not in _VRS:
        raise NotFast("unknown VR")
    if vr in _LONG:
        return pos + 12, _LENGTH.unpack(window.get(pos + 8, 4))[0]
    return pos + 8, short


def _walk(window: _Window, pos: int, implicit: bool, values: dict | None, depth: int) -> int:
    """Walk a data set from ``pos``: to its end, the pixel data (top level) or an item end."""
    size = window.size
    while pos < size:
        group, element, length = _TAG_LENGTH.unpack(window.get(pos, 8))
        tag = group << 16 | element
        if depth and tag == _ITEM_END:
            return pos + 8
        if implicit:
            vr, start = None, pos + 8
        else:
            vr = window.get(pos + 4, 2)
            start, length = _value_at(window, pos, vr, length >> 16)
        if tag in _PIXELS and values is not None:
            _check_pixels(window, start, length)
            return size
        if length == _UNDEFINED:
            if not (implicit or vr == b"SQ") or depth >= _MAX_DEPTH:
                raise NotFast("undefined length outside a sequence")
            pos = _skip_sequence(window, start, implicit, depth + 1)
            continue
        if start + length > size:
            raise NotFast("value past the end")
        if values is not None:
            _keep(window, values, tag, vr, start, length)
        pos = start + length
    if depth:
        raise NotFast("item without its end")
    return pos


def _keep(window: _Window, values: dict, tag: int, vr: bytes | None, start: int, length: int):  # noqa: ANN202
    if tag == OTHER_IDS_SEQUENCE and length:
        raise NotFast("other patient IDs sequence")
    wanted = WANTED.get(tag)
    if wanted is None:
        return
    name = vr.decode("ascii") if vr is not None else wanted
    if name not in _TEXT_VRS:
        raise NotFast("unexpected VR")
    values[tag] = (name, window.get(start, length))


def _skip_sequence(window: _Window, pos: int, implicit: bool, depth: int) -> int:
    """Past a sequence of undefined length: items by their length or walked to their end."""
    while True:
        group, element, length = _TAG_LENGTH.unpack(window.get(pos, 8))
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            return pos + 8
        if tag != _ITEM:
            raise NotFast("not an item")
        if length == _UNDEFINED:
            pos = _walk(window, pos + 8, implicit, None, depth)
        elif pos + 8 + length > window.size:
            raise NotFast("item past the end")
        else:
            pos += 8 + length


def _check_pixels(window: _Window, start: int, length: int) -> None:
    """Native pixel data end within the file; encapsulated fragments all there (PS3.5 §A.4)."""
    if length != _UNDEFINED:
        if start + length > window.size:
            raise NotFast("pixel data cut short")
        return
    pos = start
    while True:
        group, element, length = _TAG_LENGTH.unpack(window.get(pos, 8))
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            return
        if tag != _ITEM or length == _UNDEFINED or pos + 8 + length > window.size:
            raise NotFast("bad fragment")
        pos += 8 + length


# --- values ----------------------------------------------------------------------------------


def _ascii(raw: bytes) -> str:
    if _NOT_ASCII.search(raw):
        raise NotFast("not ASCII")
    return raw.decode("ascii")


def items(vr: str, raw: bytes) -> list[str]:
    """The values of a string element as pydicom returns them for ASCII bytes (PS3.5 §6.2)."""
    text = _ascii(raw)
    if vr in ("SH", "LO"):
        return [value.rstrip("\x00 ") for value in text.split("\\")]
    values = text.rstrip("\x00 ").split("\\")
    if vr == "UI" and any(value != value.strip() for value in values):
        raise NotFast("UID with padding")
    if vr == "IS" and text.strip("\x00 ") and not _plain_integers(values):
        raise NotFast("IS not a plain integer")
    return values


def _plain_integers(values: list[str]) -> bool:
    return all(_PLAIN_INT.fullmatch(value.strip()) for value in values)


__all__ = ["CHUNK", "NotFast", "WANTED", "items", "read"]
