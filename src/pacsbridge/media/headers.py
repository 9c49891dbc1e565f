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
from collections.abc import Callable
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info, read_preamble
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
#: Keyword → tag, for readers that do not go through pydicom's data sets.
TAG_OF = {keyword: int(Tag(keyword)) for keyword in _KEYWORDS}
TAG_OF["MediaStorageSOPClassUID"] = 0x00020002

_ITEM = 0xFFFEE000
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_LENGTH_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}


def read_header(fp: BinaryIO, rel: str, size: int, *, force: bool = False) -> InstanceHeader:
    """The header of the open file ``fp`` by pydicom; UnreadableDicom when unparsable or cut."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_inflation(fp, size)
            ds = dcmread(
                fp,
                force=force,
                stop_before_pixels=True,
                specific_tags=HEADER_TAGS,
                defer_size=DEFER_SIZE,
            )
            check_complete(fp, ds, size)
            get, syntax = _dataset_text(ds), _transfer_syntax(ds)
            return build_header(get, rel, size, syntax, _ds_other_ids(ds))
    except UnreadableDicom:
        raise
    except Exception as error:  # pydicom raises many kinds on damaged input; one file ≠ a crash
        raise UnreadableDicom(f"{rel}: {type(error).__name__}: {error}") from error


# --- deflate bombs -----------------------------------------------------------------------------


def check_inflation(fp: BinaryIO, size: int) -> None:
    """Raise UnreadableDicom when a deflated data set inflates past its budget; rewind ``fp``."""
    start = _deflated_start(fp)
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


def _deflated_start(fp: BinaryIO) -> int | None:
    """Where the deflated stream begins (after the file meta group), or None if not deflated.

    The meta group is never deflated (PS3.10 §7.1); its File Meta Information Group Length,
    which must come first, says where it ends. Only a file whose first bytes hold the deflated
    syntax's UID has its meta group parsed by pydicom, so the common case costs one read.
    """
    head = fp.read(_META_SCAN)
    if head[MARKER_OFFSET : MARKER_OFFSET + 4] != b"DICM" or _DEFLATED not in head:
        return None
    fp.seek(0)
    read_preamble(fp, False)
    if _read_file_meta_info(fp).get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
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


#: ``get(keyword, join=None)``: one attribute as text (see :func:`text`).
TextOf = Callable[..., str]


def build_header(
    get: TextOf, rel: str, size: int, syntax: str, sequence_ids: tuple[str, ...]
) -> InstanceHeader:
    """The header from ``get``. UIDs keep every value (joined with a backslash): ``1.2\\../x``
    must reach the UID check whole, or a second value would ride along unseen into the file
    that is stored."""
    return InstanceHeader(
        path=rel,
        size_bytes=size,
        sop_instance_uid=get("SOPInstanceUID", "\\"),
        sop_class_uid=get("SOPClassUID", "\\") or get("MediaStorageSOPClassUID"),
        transfer_syntax_uid=syntax,
        study_instance_uid=get("StudyInstanceUID", "\\"),
        series_instance_uid=get("SeriesInstanceUID", "\\"),
        patient_name=get("PatientName"),
        patient_id=get("PatientID"),
        issuer_of_patient_id=get("IssuerOfPatientID"),
        patient_birth_date=dicom_date(get("PatientBirthDate")),
        patient_sex=get("PatientSex").upper(),
        other_patient_ids=_other_ids(sequence_ids, get("OtherPatientIDs", "\\")),
        study_description=get("StudyDescription"),
        study_date=get("StudyDate"),
        study_time=get("StudyTime"),
        accession_number=get("AccessionNumber"),
        modality=get("Modality"),
        series_description=get("SeriesDescription"),
        series_number=_integer(get("SeriesNumber")),
        instance_number=_integer(get("InstanceNumber")),
        specific_character_set=get("SpecificCharacterSet", "\\"),
    )


def _dataset_text(ds: Dataset) -> TextOf:
    """:func:`text` of ``ds``; UIDs keep every value (see :func:`uid`), meta values come from
    the file meta group."""

    def get(keyword: str, join: str | None = None) -> str:
        if keyword == "MediaStorageSOPClassUID":
            return _meta(ds, keyword)
        return text(ds, keyword, join)

    return get


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


def _integer(value: str) -> int | None:
    try:
        return int(float(value))
    except (ValueError, OverflowError):
        return None


def dicom_date(value: str) -> str:
    """A DA value as ``YYYYMMDD``, or "" when it is not one (ACR-NEMA dots are accepted)."""
    digits = value.replace(".", "").strip()
    return digits if len(digits) == 8 and digits.isdigit() else ""


def _ds_other_ids(ds: Dataset) -> tuple[str, ...]:
    """Patient IDs of the Other Patient IDs Sequence items."""
    try:
        items = _value(ds, "OtherPatientIDsSequence") or []
    except (LookupError, UnicodeError, ValueError):
        items = []
    return tuple(text(item, "PatientID") for item in items)


def _other_ids(from_sequence: tuple[str, ...], retired: str) -> tuple[str, ...]:
    """Other Patient IDs from the sequence and from the retired multi-valued attribute."""
    found = [*from_sequence, *retired.split("\\")]
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


__all__ = ["TAG_OF", "build_header", "read_header", "text", "dicom_date"]
