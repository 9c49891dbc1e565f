"""The frame size a compressed codestream declares, read from its header without decoding.

A JPEG or JPEG 2000 decoder allocates what the codestream declares, not what the DICOM header
says: a 252-byte JPEG 2000 codestream of 8000 x 8000 pixels inside a file whose Rows and
Columns say 64 x 64 took 378 MB before pydicom noticed the mismatch. So before a frame is
decoded for a preview, the codestream's own size is read: the frame header (SOF) of JPEG
(ITU-T T.81 B.2.2) and JPEG-LS (ITU-T T.87 C.2.2), the SIZ marker segment of JPEG 2000
(ITU-T T.800 A.5.1). RLE needs nothing of the kind: its decoder allocates from Rows and Columns
(PS3.5 Annex G).
"""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom import dcmread
from pydicom.encaps import get_frame

#: (7FE0,0010) Pixel Data, undefined length: encapsulated, always explicit VR little endian.
_PIXEL_DATA = b"\xe0\x7f\x10\x00"
_UNDEFINED = 0xFFFFFFFF
#: JPEG start-of-frame markers (T.81 Table B.1, without DHT, JPG and DAC) and JPEG-LS SOF55.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}
_J2K_SIZ = b"\xff\x4f\xff\x51"  # SOC then SIZ: the start of every JPEG 2000 codestream
#: A JP2 wrapper's boxes before the codestream are small; the search stops here.
HEAD_BYTES = 64 * 1024


def frame_size(path: Path, index: int, frames: int) -> tuple[int, int] | None:
    """(rows, columns) the codestream of frame ``index`` declares; None when none is found."""
    with path.open("rb") as fp:
        dcmread(fp, stop_before_pixels=True)
        head = fp.read(12)
        if head[:4] != _PIXEL_DATA or struct.unpack("<L", head[8:12])[0] != _UNDEFINED:
            return None
        frame = get_frame(fp, index, number_of_frames=frames)
    return declared_size(frame)


def declared_size(codestream: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a JPEG, JPEG-LS or JPEG 2000 codestream; None when unreadable."""
    if codestream.startswith(b"\xff\xd8"):
        return _jpeg(codestream)
    return _jpeg2000(codestream)


def _jpeg(data: bytes) -> tuple[int, int] | None:
    """Walk the marker segments after SOI up to the first frame header."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF or marker in _STANDALONE:
            position += 1 if marker == 0xFF else 2  # fill byte, or a marker without length
            continue
        if marker in _SOF:
            return _sof(data[position + 4 : position + 9])
        if marker == 0xDA:
            return None  # a scan before any frame header: not a codestream we can trust
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return None


def _sof(segment: bytes) -> tuple[int, int] | None:
    """Precision (1 byte), lines Y and samples per line X (2 bytes each); Y = 0 means "later"."""
    if len(segment) < 5:
        return None
    rows, columns = struct.unpack(">HH", segment[1:5])
    return (rows, columns) if rows and columns else None


def _jpeg2000(data: bytes) -> tuple[int, int] | None:
    """Xsiz, Ysiz, XOsiz, YOsiz after Lsiz and Rsiz: the image area is the difference."""
    start = data.find(_J2K_SIZ, 0, HEAD_BYTES)
    if start < 0 or len(data) < start + 24:
        return None
    width, height, x_offset, y_offset = struct.unpack(">4L", data[start + 8 : start + 24])
    if width <= x_offset or height <= y_offset:
        return None
    return height - y_offset, width - x_offset
