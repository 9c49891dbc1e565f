"""Decompress a file for a PACS that refuses its compressed transfer syntax.

Decoders are the permissively licensed ones installed by default (python-gdcm, pylibjpeg-
openjpeg, pydicom's RLE); the GPL pylibjpeg-libjpeg (12-bit JPEG Extended) is an optional extra.
``Dataset.decompress()`` also fixes Photometric Interpretation (YBR_FULL_422 → RGB).
"""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

UNCOMPRESSED = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
}


def is_compressed(transfer_syntax_uid: str) -> bool:
    return transfer_syntax_uid not in UNCOMPRESSED


def decompressed(path: Path) -> Dataset:
    """The file as Explicit VR Little Endian; raises pydicom/decoder errors when impossible."""
    ds = dcmread(path)
    ds.decompress(generate_instance_uid=False)  # the same instance, only re-encoded
    ds.file_meta.TransferSyntaxUID = UID(ExplicitVRLittleEndian)
    return ds
