"""CRC-32 filled by the receiver: entries marked by pacsbridge's upload page.

The import page (static/js/zip-writer.js) reads no byte of the files: it leaves each entry's
CRC-32 0 and marks the entry with a private extra field (APPNOTE 4.5.1-2: an ID outside
PKWARE's range), in its local header and in its central directory record::

    header ID 0x5042, data size 1, data: version 1 = "CRC-32 to be filled by the receiver"

Extraction (:mod:`pacsbridge.media.archive`) opens a marked entry without a CRC to compare,
computes the CRC of the bytes as it writes them (the one pass zipfile would make anyway), and
afterwards :func:`fill` writes the CRCs into the stored archive in place: the data descriptor
(or the local header when the entry has none) and the central directory record. The archive
is then an ordinary ZIP that any reader verifies; the marks stay (readers skip extra fields they
do not know), so an extraction run again computes and writes the same values: idempotent.

Only the central directory's mark counts (as for every other field, zipfile reads that copy).
A marked entry must be stored, with equal sizes, and its data descriptor must carry the
signature, inside the entry's own bytes: then its data are exactly its declared bytes, which
the extraction counts, and the CRC goes only where this entry's CRC lives.

The mark is data from outside: it spares a check that any sender can pass by computing the
CRC. The CRC-32 finds accidental damage; it never was an integrity or security control
against the sender (docs/operator-pages.md, "CRC-32 filled by the server").
"""

from __future__ import annotations

import copy
import struct
import zipfile
from pathlib import Path
from typing import BinaryIO

from pacsbridge.errors import BrokenArchive
from pacsbridge.messages import said

HEADER_ID = 0x5042
VERSION = 1
_FIELD = struct.Struct("<HH")
_DESCRIPTOR = b"PK\x07\x08"
_CENTRAL = b"PK\x01\x02"
_CENTRAL_FIXED = 46
_CRC = struct.Struct("<L")
#: Flag bit 3: the CRC-32 and sizes follow the data, in a data descriptor (APPNOTE 4.4.4).
_HAS_DESCRIPTOR = 0x08
#: Where the CRC-32 sits in a local header and in a central directory record (APPNOTE 4.3.7,
#: 4.3.12).
_LOCAL_CRC_AT = 14
_CENTRAL_CRC_AT = 16


def marked(info: zipfile.ZipInfo) -> bool:
    """Whether the entry's central directory record carries our field, version 1."""
    extra, at = info.extra, 0
    while at + _FIELD.size <= len(extra):
        kind, length = _FIELD.unpack_from(extra, at)
        if kind == HEADER_ID and extra[at + 4 : at + 4 + length] == bytes([VERSION]):
            return True
        at += _FIELD.size + length
    return False


def check_marked(info: zipfile.ZipInfo) -> None:
    """A marked entry is stored with equal sizes: its data are then exactly its declared bytes."""
    stored = info.compress_type == zipfile.ZIP_STORED
    if not stored or info.compress_size != info.file_size:
        raise _bad_header(info, "marked entry not stored as declared")


def entry_end(fp: BinaryIO, info: zipfile.ZipInfo, end: int) -> int:
    """Where a marked entry's bytes end, given where its data end; its descriptor checked.

    With a data descriptor (flag bit 3) the CRC goes into it: its signature must be there and
    the signature and CRC must lie before the next entry.
    """
    if not info.flag_bits & _HAS_DESCRIPTOR:
        return end
    fp.seek(end)
    if fp.read(len(_DESCRIPTOR)) != _DESCRIPTOR:
        raise _bad_header(info, "marked entry without a data descriptor signature")
    return end + len(_DESCRIPTOR) + _CRC.size


def unchecked(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A copy of ``info`` without a CRC: zipfile opens it and neither computes nor compares one.

    (``ZipExtFile`` keeps no running CRC for an info that has none: the caller computes it.)
    """
    clone = copy.copy(info)
    del clone.CRC
    return clone


def fill(
    zip_path: Path, archive: zipfile.ZipFile, computed: list[tuple[zipfile.ZipInfo, int, int]]
) -> None:
    """Write each marked entry's CRC into the archive, in place.

    ``computed``: (entry, where its data end as checked before, its CRC-32) for each marked
    entry extracted.
    """
    if not computed:
        return
    with zip_path.open("r+b") as fp:
        for info, end, crc in computed:
            fp.seek(_crc_at(info, end))
            fp.write(_CRC.pack(crc))
        _fill_central(fp, archive, {info.header_offset: crc for info, _, crc in computed})


def _crc_at(info: zipfile.ZipInfo, end: int) -> int:
    """The data descriptor's CRC after its signature, or the local header's CRC field."""
    if info.flag_bits & _HAS_DESCRIPTOR:
        return end + len(_DESCRIPTOR)
    return info.header_offset + _LOCAL_CRC_AT


def _fill_central(fp: BinaryIO, archive: zipfile.ZipFile, crcs: dict[int, int]) -> None:
    """The central directory, read once, patched in memory and written back in one write.

    Its records are walked as zipfile walked them (in order, from ``start_dir``); each
    record's extra field must be the one zipfile read for that entry.
    """
    fp.seek(archive.start_dir)
    directory = bytearray(fp.read())
    at = 0
    for info in archive.infolist():
        at = _patch_record(directory, at, info, crcs.get(info.header_offset))
    fp.seek(archive.start_dir)
    fp.write(directory[:at])


def _patch_record(directory: bytearray, at: int, info: zipfile.ZipInfo, crc: int | None) -> int:
    """Write ``crc`` into the record at ``at`` (None: leave it); where the next record starts."""
    fixed = bytes(directory[at : at + _CENTRAL_FIXED])
    if len(fixed) < _CENTRAL_FIXED or fixed[:4] != _CENTRAL:
        raise _bad_header(info, "central directory moved")
    name, extra, comment = struct.unpack_from("<3H", fixed, 28)
    extra_at = at + _CENTRAL_FIXED + name
    if bytes(directory[extra_at : extra_at + extra]) != info.extra:
        raise _bad_header(info, "central directory moved")
    if crc is not None:
        _CRC.pack_into(directory, at + _CENTRAL_CRC_AT, crc)
    return extra_at + extra + comment


def _bad_header(info: zipfile.ZipInfo, why: str) -> BrokenArchive:
    name = info.orig_filename
    return BrokenArchive(f"{why}: {name!r}", reason=said("archive.bad_header", name=name))
