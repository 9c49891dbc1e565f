"""Reading the header of one DICOM file: fast, bounded in memory, tolerant of odd encodings.

Media carry thousands of files and some are hundreds of megabytes, so only the attributes the
inventory needs are kept (``specific_tags``), reading stops before the pixel data, and any
unexpectedly long value is deferred rather than loaded. Pixel data are never read, yet a file cut
short inside them must still be caught: that is what most truncated copies look like, so the
pixel data element's declared extent is checked against the file size.

A deflated data set (PS3.5 A.5) is inflated by pydicom all at once, in memory, before a single
attribute can be read, and deflate reaches ratios near 1000:1: 125 KB of a deflated file took
244 MB to read. So the inflated size is counted first, in bounded chunks, and a file that
inflates past ``MAX_INFLATION_RATIO`` times its size (or ``MAX_INFLATED_BYTES``) is unreadable.

pydicom warns instead of failing on many oddities of real media (unknown character sets,
malformed numbers). Those warnings are silenced here because the values fall back to something
usable (latin-1 text, ``None`` numbers) and one odd file must not stop an import.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from pacsbridge.errors import UnreadableDicom
from pacsbridge.media.model import InstanceHeader

#: Where Part 10 files carry their "DICM" marker, after the 128-byte preamble.
MARKER_OFFSET = 128
#: First groups of a file written without preamble and meta header: file meta or identifying.
RAW_FIRST_GROUPS = frozenset({0x0002, 0x0008})
#: Values longer than this are not loaded: no header field we need is anywhere near it.
DEFER_SIZE = 64 * 1024
#: A deflated data set may inflate to this many times its file, and never past the bytes.
MAX_INFLATION_RATIO = 200
MAX_INFLATED_BYTES = 512 * 1024**2
_CHUNK = 1024**2
#: (0002,0000) UL: the first element of every file meta group.
_GROUP_LENGTH = b"\x02\x00\x00\x00UL"
_DEFLATED = str(DeflatedExplicitVRLittleEndian).encode("ascii")
#: File meta groups are a few hundred bytes; the deflated syntax UID is looked for in these.
_META_SCAN = 4096

_KEYWORDS = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "Modality",
    "StudyDescription",
    "SeriesDescription",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "InstanceNumber",
)
HEADER_TAGS = [Tag(keyword) for keyword in _KEYWORDS]

_ITEM = 0xFFFEE000
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_LENGTH_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}


def has_marker(path: Path) -> bool:
    """A Part 10 file: the "DICM" marker after the preamble."""
    with path.open("rb") as fp:
        head = fp.read(MARKER_OFFSET + 4)
    return head[MARKER_OFFSET:] == b"DICM"


def may_be_raw(path: Path) -> bool:
    """A file that could be DICOM written without preamble (some old CDs).

    Checking the first tag's group keeps pydicom's forced parsing away from every PDF, viewer
    and picture on the medium, which would be slow and yield garbage datasets.
    """
    with path.open("rb") as fp:
        head = fp.read(8)
    return len(head) == 8 and int.from_bytes(head[:2], "little") in RAW_FIRST_GROUPS


def read_header(root: Path, rel: str, *, force: bool = False) -> InstanceHeader:
    """The header of ``root/rel``; raises UnreadableDicom when it cannot be parsed or is cut."""
    path = root / rel
    try:
        with path.open("rb") as fp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            size = path.stat().st_size
            check_inflation(fp, path, size)
            ds = dcmread(
                fp,
                force=force,
                stop_before_pixels=True,
                specific_tags=HEADER_TAGS,
                defer_size=DEFER_SIZE,
            )
            check_complete(fp, ds, size)
            return _header(ds, rel, size)
    except UnreadableDicom:
        raise
    except Exception as error:  # pydicom raises many kinds on damaged input; one file ≠ a crash
        raise UnreadableDicom(f"{rel}: {type(error).__name__}: {error}") from error


# --- deflate bombs -----------------------------------------------------------------------------


def check_inflation(fp: BinaryIO, path: Path, size: int) -> None:
    """Raise UnreadableDicom when a deflated data set inflates past its budget; rewind ``fp``."""
    start = _deflated_start(fp, path)
    fp.seek(0)
    if start is None:
        return
    limit = min(MAX_INFLATION_RATIO * size, MAX_INFLATED_BYTES)
    fp.seek(start)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    while chunk := fp.read(_CHUNK):
        while chunk and not inflater.eof:
            total += len(inflater.decompress(chunk, _CHUNK))
            if total > limit:
                fp.seek(0)
                raise UnreadableDicom(f"deflated data set inflates past {limit} bytes")
            chunk = inflater.unconsumed_tail
    fp.seek(0)


def _deflated_start(fp: BinaryIO, path: Path) -> int | None:
    """Where the deflated stream begins (after the file meta group), or None if not deflated.

    The meta group is never deflated (PS3.10 §7.1); its File Meta Information Group Length,
    which must come first, says where it ends. Only a file whose first bytes hold the deflated
    syntax's UID has its meta group parsed by pydicom, so the common case costs one read.
    """
    head = fp.read(_META_SCAN)
    if head[MARKER_OFFSET : MARKER_OFFSET + 4] != b"DICM" or _DEFLATED not in head:
        return None
    if read_file_meta_info(path).get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return None
    group = head[MARKER_OFFSET + 4 : MARKER_OFFSET + 16]
    if group[:6] != _GROUP_LENGTH:
        raise UnreadableDicom("deflated file without File Meta Information Group Length")
    return MARKER_OFFSET + 16 + struct.unpack("<L", group[8:12])[0]


# --- truncation ------------------------------------------------------------------------------


def check_complete(fp: BinaryIO, ds: Dataset, size: int) -> None:
    """Raise UnreadableDicom when the file ends before the data it declares.

    ``fp`` is where pydicom stopped: at the pixel data element, or at the end of the file.
    """
    position = max(fp.tell(), _end_of_values(ds))
    if position > size:
        raise UnreadableDicom(f"file ends {position - size} bytes early")
    if position == size or _transfer_syntax(ds) == DeflatedExplicitVRLittleEndian:
        return  # no pixel data; deflated files are read from an inflated copy, not from fp
    implicit, little = _encoding(ds)
    length = _element_length(fp, implicit, little)
    if length == _UNDEFINED:
        _skip_fragments(fp, little, size)
    elif fp.tell() + length > size:
        raise UnreadableDicom(f"pixel data cut short: {fp.tell() + length - size} bytes missing")


def _end_of_values(ds: Dataset) -> int:
    """Where the last value read ends: pydicom accepts a short read of the file's last value."""
    ends = [
        element.value_tell + element.length
        for element in ds.elements()
        if isinstance(element, RawDataElement) and element.length != _UNDEFINED
    ]
    return max(ends, default=0)


def _encoding(ds: Dataset) -> tuple[bool, bool]:
    implicit, little = ds.original_encoding
    return bool(implicit), little is not False


def _element_length(fp: BinaryIO, implicit: bool, little: bool) -> int:
    endian = "<" if little else ">"
    head = _read_exactly(fp, 8)
    if implicit:
        return struct.unpack(endian + "L", head[4:])[0]
    if head[4:6] in _LONG_LENGTH_VRS:
        return struct.unpack(endian + "L", _read_exactly(fp, 4))[0]
    return struct.unpack(endian + "H", head[6:])[0]


def _skip_fragments(fp: BinaryIO, little: bool, size: int) -> None:
    """Walk encapsulated fragments by seeking: their headers prove the data are all there."""
    endian = "<" if little else ">"
    while True:
        group, element, length = struct.unpack(endian + "HHL", _read_exactly(fp, 8))
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            return
        if tag != _ITEM:
            raise UnreadableDicom(f"unexpected tag {tag:08X} in encapsulated pixel data")
        if fp.tell() + length > size:
            raise UnreadableDicom("encapsulated pixel data cut short")
        fp.seek(length, 1)


def _read_exactly(fp: BinaryIO, count: int) -> bytes:
    data = fp.read(count)
    if len(data) < count:
        raise UnreadableDicom("file ends inside the pixel data")
    return data


# --- values ----------------------------------------------------------------------------------


def _header(ds: Dataset, rel: str, size: int) -> InstanceHeader:
    return InstanceHeader(
        path=rel,
        size_bytes=size,
        sop_instance_uid=uid(ds, "SOPInstanceUID"),
        sop_class_uid=uid(ds, "SOPClassUID") or _meta(ds, "MediaStorageSOPClassUID"),
        transfer_syntax_uid=_transfer_syntax(ds),
        study_instance_uid=uid(ds, "StudyInstanceUID"),
        series_instance_uid=uid(ds, "SeriesInstanceUID"),
        patient_name=text(ds, "PatientName"),
        patient_id=text(ds, "PatientID"),
        issuer_of_patient_id=text(ds, "IssuerOfPatientID"),
        patient_birth_date=dicom_date(text(ds, "PatientBirthDate")),
        patient_sex=text(ds, "PatientSex").upper(),
        other_patient_ids=_other_ids(ds),
        study_description=text(ds, "StudyDescription"),
        study_date=text(ds, "StudyDate"),
        study_time=text(ds, "StudyTime"),
        accession_number=text(ds, "AccessionNumber"),
        modality=text(ds, "Modality"),
        series_description=text(ds, "SeriesDescription"),
        series_number=_integer(ds, "SeriesNumber"),
        instance_number=_integer(ds, "InstanceNumber"),
        specific_character_set=text(ds, "SpecificCharacterSet", join="\\"),
    )


def text(ds: Dataset, keyword: str, join: str | None = None) -> str:
    """The value as text; the first value of a multi-valued one unless ``join`` is given.

    Decoding uses the dataset's Specific Character Set; pydicom itself falls back to latin-1
    for an unknown one. If pydicom refuses a value anyway (its strict reading mode), the raw
    bytes are read as latin-1, which never fails and keeps ASCII text exact.
    """
    try:
        value = _value(ds, keyword)
    except (LookupError, UnicodeError, ValueError):
        return _raw_latin1(ds, keyword)
    if isinstance(value, MultiValue | list | tuple):
        parts = [str(item) for item in value]
        value = join.join(parts) if join is not None else (parts[0] if parts else "")
    return "" if value is None else str(value).strip(" \x00")


def uid(ds: Dataset, keyword: str) -> str:
    """A UI value with every value kept: ``1.2\\../x`` must reach the UID check whole.

    Taking only the first value, as :func:`text` does, would let a second value ride along
    unseen into the file that is stored.
    """
    return text(ds, keyword, join="\\")


def _value(ds: Dataset, keyword: str) -> Any:
    element = ds.get_item(keyword, keep_deferred=True)
    if element is None or element.value is None:
        return None  # absent, or longer than DEFER_SIZE: not a value we can use
    return ds[keyword].value


def _raw_latin1(ds: Dataset, keyword: str) -> str:
    element = ds.get_item(keyword, keep_deferred=True)
    raw = getattr(element, "value", None)
    if isinstance(raw, bytes):
        return raw.decode("latin-1").split("\\")[0].strip(" \x00")
    return ""


def _integer(ds: Dataset, keyword: str) -> int | None:
    try:
        return int(float(text(ds, keyword)))
    except (ValueError, OverflowError):
        return None


def dicom_date(value: str) -> str:
    """A DA value as ``YYYYMMDD``, or "" when it is not one (ACR-NEMA dots are accepted)."""
    digits = value.replace(".", "").strip()
    return digits if len(digits) == 8 and digits.isdigit() else ""


def _other_ids(ds: Dataset) -> tuple[str, ...]:
    """Other Patient IDs from the sequence and from the retired multi-valued attribute."""
    found = []
    try:
        items = _value(ds, "OtherPatientIDsSequence") or []
    except (LookupError, UnicodeError, ValueError):
        items = []
    for item in items:
        found.append(text(item, "PatientID"))
    found.extend(text(ds, "OtherPatientIDs", join="\\").split("\\"))
    return tuple(dict.fromkeys(value.strip() for value in found if value.strip()))


def _meta(ds: Dataset, keyword: str) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get(keyword, "") or "").strip(" \x00") if meta is not None else ""


def _transfer_syntax(ds: Dataset) -> str:
    """From the meta header; for files without one, the encoding pydicom actually found."""
    declared = _meta(ds, "TransferSyntaxUID")
    if declared:
        return declared
    implicit, little = _encoding(ds)
    if implicit:
        return str(ImplicitVRLittleEndian)
    return str(ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


__all__ = ["has_marker", "may_be_raw", "read_header", "text", "dicom_date"]
