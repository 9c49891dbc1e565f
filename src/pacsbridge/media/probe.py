"""Looking at one file of a medium once: what it is and, if DICOM, its header.

Each file is opened and read once: the first bytes say whether it is a Part 10 file (the "DICM"
marker after the 128-byte preamble, PS3.10 §7.1), a data set written without preamble, as some
old CDs hold, or something else (a viewer program, a PDF, a picture). An ordinary Part 10 file
is read by the fast path (:mod:`pacsbridge.media.part10`), which leaves every unusual case to
pydicom (:func:`pacsbridge.media.headers.read_header`) on the same open file, so the checks
for truncated files, deflate bombs and odd character sets stay in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pacsbridge.errors import UnreadableDicom
from pacsbridge.media import headers, part10
from pacsbridge.media.model import InstanceHeader


@dataclass(frozen=True)
class Examined:
    """One file looked at once: a Part 10 file, one that may be DICOM without preamble (some
    old CDs), or something else; with its header, or why it could not be read."""

    kind: str
    header: InstanceHeader | None = None
    error: UnreadableDicom | None = None


PART10, RAW, OTHER = "part10", "raw", "other"


def examine(root: Path, rel: str) -> Examined:
    """Open ``root/rel`` once: what kind of file it is and, for the DICOM kinds, its header.

    Raw parsing is tried only when the first tag's group is one a data set starts with: that
    keeps pydicom's forced parsing away from every PDF, viewer and picture on the medium.
    OSError propagates (the caller reports the file as unreadable).
    """
    with (root / rel).open("rb") as fp:
        size = os.fstat(fp.fileno()).st_size
        head = fp.read(part10.CHUNK)
        if head[headers.MARKER_OFFSET : headers.MARKER_OFFSET + 4] == b"DICM":
            kind = PART10
        elif len(head) >= 8 and int.from_bytes(head[:2], "little") in headers.RAW_FIRST_GROUPS:
            kind = RAW
        else:
            return Examined(OTHER)
        try:
            return Examined(kind, header=_read(fp, head, size, rel, force=kind == RAW))
        except UnreadableDicom as error:
            return Examined(kind, error=error)


def _read(fp: BinaryIO, head: bytes, size: int, rel: str, *, force: bool) -> InstanceHeader:
    """The fast path (:mod:`pacsbridge.media.part10`) when it applies, else pydicom."""
    if not force:
        try:
            return fast_header(fp, head, size, rel)
        except Exception:  # noqa: BLE001 - anything unusual: the general reader decides
            pass
    fp.seek(0)
    return headers.read_header(fp, rel, size, force=force)


def fast_header(fp: BinaryIO, head: bytes, size: int, rel: str) -> InstanceHeader:
    """The header by the fast path; raises (NotFast or other) when the file needs pydicom."""
    values, syntax = part10.read(fp, head, size)

    def get(keyword: str, join: str | None = None) -> str:
        entry = values.get(headers.TAG_OF[keyword])
        if entry is None or len(entry[1]) > headers.DEFER_SIZE:
            return ""
        parts = part10.items(*entry)
        return (join.join(parts) if join is not None else parts[0]).strip(" \x00")

    return headers.build_header(get, rel, size, syntax, ())


__all__ = ["OTHER", "PART10", "RAW", "Examined", "examine"]
