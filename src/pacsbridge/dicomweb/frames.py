"""Frames of an instance (PS3.18 §10.4.1.1.3 "Frame"): as stored, or decoded.

Only the frames asked for are read, straight from the file: the header is read up to the
Pixel Data element, whose value is then located in the file. A native frame is a slice at a
computed offset; an encapsulated frame is found with pydicom's encapsulation helpers
(``pydicom.encaps.get_frame``, which uses the Basic or Extended Offset Table when the file has
one and walks the fragments otherwise). Memory is one frame, whatever the file's size.

Decoded frames are pydicom's ``pixel_array(path, index=)`` of that frame in the little-endian
native layout (PS3.5 §8.1.1): the stored values, no Modality or VOI LUT. Colour frames decoded
from YBR come out as RGB, as the pixel decoders give them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydicom import Dataset, dcmread
from pydicom.encaps import get_frame
from pydicom.pixels import pixel_array
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from pacsbridge.errors import NotAcceptable, NotFoundError, UnreadableDicom

PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)


@dataclass(frozen=True)
class PixelLocation:
    """Where the pixel data value of a file lies, and what the header says about it."""

    header: Dataset
    syntax: UID
    tag: int
    vr: str
    offset: int
    length: int
    frames: int

    @property
    def encapsulated(self) -> bool:
        return self.syntax.is_encapsulated


def locate(path: Path) -> PixelLocation | None:
    """The pixel data of ``path`` (None when it has none); no pixel is read.

    Kept per file version: a viewer asks the metadata and the frames of the same instances
    again and again, and parsing a header is most of the cost of answering.
    """
    stat = path.stat()
    return _locate(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4096)
def _locate(name: str, size: int, mtime_ns: int) -> PixelLocation | None:  # noqa: ARG001
    path = Path(name)
    with path.open("rb") as fp:
        ds = dcmread(fp, stop_before_pixels=True)
        start = fp.tell()
        element = fp.read(12)
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian)))
    if len(element) < 8:
        return None
    group, number = struct.unpack("<HH", element[:4])
    tag = (group << 16) | number
    if tag not in PIXEL_TAGS:
        return None
    vr, offset, length = _element_header(element, syntax, start, ds)
    return PixelLocation(ds, syntax, tag, vr, offset, length, _frames(ds))


def _element_header(raw: bytes, syntax: UID, start: int, ds: Dataset) -> tuple[str, int, int]:
    if syntax.is_implicit_VR:
        (length,) = struct.unpack("<L", raw[4:8])
        vr = "OB" if int(ds.get("BitsAllocated", 16) or 16) <= 8 else "OW"
        return vr, start + 8, length
    vr = raw[4:6].decode("ascii", "replace")
    (length,) = struct.unpack("<L", raw[8:12])
    return vr, start + 12, length


def _frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def check_numbers(location: PixelLocation, numbers: list[int]) -> None:
    """Frame numbers count from 1 (PS3.18 §8.4.1); one out of range is a 404."""
    if not numbers or any(n < 1 or n > location.frames for n in numbers):
        raise NotFoundError("no such frame")


def stored(path: Path, location: PixelLocation, number: int) -> bytes:
    """Frame ``number`` (from 1) exactly as the file holds it."""
    if location.syntax == DeflatedExplicitVRLittleEndian:
        raise NotAcceptable("a deflated data set has no frames to serve as stored")
    with path.open("rb") as fp:
        if location.encapsulated:
            fp.seek(location.offset)
            return get_frame(
                fp,
                number - 1,
                number_of_frames=location.frames,
                extended_offsets=_extended_offsets(location.header),
            )
        size = native_frame_bytes(location)
        fp.seek(location.offset + (number - 1) * size)
        return fp.read(size)


def native_frame_bytes(location: PixelLocation) -> int:
    ds = location.header
    rows, columns = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.BitsAllocated)
    if bits % 8:
        raise NotAcceptable("bit-packed frames are served only inside the instance")
    return rows * columns * samples * bits // 8


def _extended_offsets(ds: Dataset) -> tuple[bytes, bytes] | None:
    """The Extended Offset Table (PS3.3 C.7.6.3.1.8), raw, as ``get_frame`` takes it."""
    offsets, lengths = ds.get("ExtendedOffsetTable"), ds.get("ExtendedOffsetTableLengths")
    if offsets is None or lengths is None or not offsets.value or not lengths.value:
        return None
    return bytes(offsets.value), bytes(lengths.value)


def decoded(path: Path, location: PixelLocation, number: int) -> bytes:
    """Frame ``number`` (from 1) decoded to native little-endian bytes."""
    if not location.encapsulated and location.syntax.is_little_endian:
        return stored(path, location, number)
    try:
        array = pixel_array(str(path), index=number - 1)
    except Exception as error:  # pydicom and its decoders raise many kinds on bad input
        raise UnreadableDicom(type(error).__name__) from error
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
