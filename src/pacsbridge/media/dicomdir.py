"""The files a DICOMDIR lists (PS3.10 §9, PS3.3 F.3).

Only the Referenced File IDs are taken from the directory records: the instances' own headers
are read afterwards, so a DICOMDIR whose records disagree with its files cannot put wrong
demographics on screen. Records are read with ``dcmread`` rather than ``FileSet`` because
``FileSet`` validates the whole record tree and rejects many DICOMDIRs that real CD burners
write, while their file references are perfectly usable.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset


class DicomdirUnreadable(Exception):
    """The DICOMDIR cannot be used; the caller scans the folders instead."""


def referenced_files(path: Path) -> list[str]:
    """Referenced File IDs as POSIX paths relative to the DICOMDIR's folder, in record order."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records = dcmread(path).DirectoryRecordSequence
            found = dict.fromkeys(_file_id(record) for record in records)
    except Exception as error:  # any parse failure means: fall back to scanning
        raise DicomdirUnreadable(f"{type(error).__name__}: {error}") from error
    found.pop("", None)
    if not found:
        raise DicomdirUnreadable("the DICOMDIR references no file")
    return list(found)


def _file_id(record: Dataset) -> str:
    """Components joined with "/"; stray separators inside a component are split too."""
    value = record.get("ReferencedFileID")
    if not value:
        return ""
    components = [value] if isinstance(value, str) else list(value)
    parts = [part.strip() for c in components for part in str(c).replace("\\", "/").split("/")]
    return "/".join(part for part in parts if part)
