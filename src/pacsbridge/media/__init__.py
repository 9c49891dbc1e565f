"""Reading removable media and archives: what DICOM they hold, safely.

A leaf package: it knows pydicom, zipfile and Pillow, and nothing of the database, the jobs or
the web layer, so it can be tested on files alone and reused by any import path.

- :func:`inspect` — DICOMDIR or folder scan → instance headers, problems, patient inventory;
- :mod:`pacsbridge.media.archive` — ZIP extraction that refuses zip-slip, links and bombs;
  the CRC-32s the upload page leaves to us are computed and filled in by
  :mod:`pacsbridge.media.crcfill`;
- :mod:`pacsbridge.media.thumbnails` — PNG previews with the image's own windowing, under a
  pixel budget checked in the header and in the codestream (:mod:`pacsbridge.media.codestream`).
"""

from pacsbridge.media.inspection import inspect
from pacsbridge.media.model import (
    InstanceHeader,
    Inventory,
    MediaReport,
    PatientGroup,
    Problem,
    SeriesGroup,
    StudyGroup,
)

__all__ = [
    "InstanceHeader",
    "Inventory",
    "MediaReport",
    "PatientGroup",
    "Problem",
    "SeriesGroup",
    "StudyGroup",
    "inspect",
]
