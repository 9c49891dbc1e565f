"""Builders for the media tests: DICOM files from pydicom and ZIP archives down to the byte."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from pacsbridge.demo.samples import UID_PREFIX, SamplePatient, SampleStudy


def one_instance(patient: SamplePatient | None = None, **study: object) -> Dataset:
    """The first instance of a fresh sample study."""
    sample = SampleStudy(patient=patient or SamplePatient(), **study)  # type: ignore[arg-type]
    ds = next(sample.datasets())
    ds.SOPInstanceUID = generate_uid(UID_PREFIX)  # the sample's UIDs derive from the study's
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# --- ZIP bytes by hand (APPNOTE 4.3.7, 4.3.12, 4.3.16) ----------------------------------------

_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")


def local_header(name: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data)
    return (
        _LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(data), len(data), len(name), 0) + name
    )


def central_header(name: bytes, data: bytes, offset: int, stored_size: int | None = None) -> bytes:
    size = len(data) if stored_size is None else stored_size
    crc = zlib.crc32(data)
    fields = (b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, size, size, len(name), 0, 0, 0, 0, 0, offset)
    return _CENTRAL.pack(*fields) + name


def end_record(count: int, directory: bytes, directory_offset: int) -> bytes:
    return _END.pack(b"PK\x05\x06", 0, 0, count, count, len(directory), directory_offset, 0)


def assemble(body: bytes, centrals: list[bytes]) -> bytes:
    directory = b"".join(centrals)
    return body + directory + end_record(len(centrals), directory, len(body))


def patch_entry(data: bytes, name: bytes, **fields: int) -> bytes:
    """Rewrite header fields of entry ``name`` in both its local and its central header.

    ``fields``: flags, method, file_size (uncompressed), as zipfile writers never set them the
    way an attacker does.
    """
    local = {"flags": (6, "H"), "method": (8, "H"), "file_size": (22, "L")}
    central = {"flags": (8, "H"), "method": (10, "H"), "file_size": (24, "L")}
    out = bytearray(data)
    for start in _headers(out, b"PK\x03\x04", 30, 26, name):
        _write(out, start, local, fields)
    for start in _headers(out, b"PK\x01\x02", 46, 28, name):
        _write(out, start, central, fields)
    return bytes(out)


def _headers(data: bytearray, signature: bytes, name_at: int, length_at: int, name: bytes):
    start = data.find(signature)
    while start >= 0:
        length = struct.unpack_from("<H", data, start + length_at)[0]
        if data[start + name_at : start + name_at + length] == name:
            yield start
        start = data.find(signature, start + 1)


def _write(out: bytearray, start: int, layout: dict, fields: dict[str, int]) -> None:
    for key, value in fields.items():
        offset, kind = layout[key]
        struct.pack_into("<" + kind, out, start + offset, value)


# --- the upload page's layout (static/js/zip-writer.js), CRC-32 left to the receiver ----------

#: The private extra field: ID 0x5042, 1 byte of data, version 1 (media/crcfill.py).
CRC_MARK = struct.pack("<HHB", 0x5042, 1, 1)
_DESCRIPTOR = struct.Struct("<4s3L")


def marked_zip(entries: dict[str, bytes], mark: bytes = CRC_MARK) -> bytes:
    """A stored zip laid out as the upload page writes it: flags 0x0808, CRC-32 0 everywhere,
    ``mark`` in each local header and central directory record, a descriptor with signature."""
    body, centrals = bytearray(), []
    for name, data in entries.items():
        raw = name.encode()
        fields = (b"PK\x03\x04", 45, 0x0808, 0, 0, 0, 0, 0, 0, len(raw), len(mark))
        offset = len(body)
        body += _LOCAL.pack(*fields) + raw + mark + data
        body += _DESCRIPTOR.pack(b"PK\x07\x08", 0, len(data), len(data))
        central = (b"PK\x01\x02", 45, 45, 0x0808, 0, 0, 0, 0, len(data), len(data), len(raw))
        centrals.append(_CENTRAL.pack(*central, len(mark), 0, 0, 0, 0, offset) + raw + mark)
    return assemble(bytes(body), centrals)
