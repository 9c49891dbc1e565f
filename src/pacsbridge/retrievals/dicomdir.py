"""The DICOMDIR of a package (PS3.10 §8, PS3.3 Annex F), with every file under ``DICOM/``.

Records come from pydicom's own definitions (``fileset.DIRECTORY_RECORDERS``), so their keys
are the ones pydicom's FileSet writes; the file is encoded here rather than by
``FileSet.write`` for two measured reasons: FileSet re-encodes every instance into its staging
area (we must ship the bytes the PACS sent) and its ``add`` is quadratic (600 instances took
2.5 s, 3,000 about a minute). Each record is encoded once with zero offsets; the offsets are
then written into the encoded bytes, whose layout (Explicit VR Little Endian, the three
offset/flag elements first) is fixed.

Layout as on an IHE PDI medium (PS3.12 Annex V): ``DICOMDIR`` at the root and the files in
``DICOM/PTnnnnnn/STnnnnnn/SEnnnnnn/IMnnnnnn``: five 8-character ISO 9660 components, no
extensions. Type 1 keys a PACS left empty are invented as DCMTK ``dcmmkdir --invent`` does.
Every component is a counter of ours: UIDs and patient ids only group the records, they never
become a name (docs/architecture.md), and two members with the same UID still get two files.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import PurePosixPath

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.fileset import DIRECTORY_RECORDERS
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, MediaStorageDirectoryStorage, generate_uid

ROOT_FOLDER = "DICOM"
INVENTED = {
    "PatientID": "NOID",
    "StudyDate": "19000101",
    "StudyTime": "000000",
    "StudyID": "1",
    "Modality": "OT",
}
ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
SEQUENCE_HEADER = struct.pack("<HH2sHL", 0x0004, 0x1220, b"SQ", 0, 0)  # length patched in
NEXT_AT, LOWER_AT = 8, 30  # value positions of (0004,1400) and (0004,1420) in a record


@dataclass(frozen=True)
class Member:
    """One instance of the package and the metadata its records need."""

    study: Dataset
    series: Dataset
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    instance_number: int | None = None


@dataclass
class _Node:
    record: Dataset
    index: int = 0
    children: dict[str, _Node] = field(default_factory=dict)
    encoded: bytes = b""
    offset: int = 0


def encode(members: Iterable[Member]) -> tuple[bytes, list[str]]:
    """The DICOMDIR file's bytes, and each member's File ID (``DICOM/PT.../IM...``), in order."""
    root = _Node(Dataset())
    file_ids = [_add(root, member) for member in members]
    nodes = list(_walk(root))
    for node in nodes:
        node.encoded = bytearray(_encode(node.record))
    head = _head()
    _place(nodes, len(head) + len(SEQUENCE_HEADER))
    _link(root)
    return _assemble(head, root, nodes), file_ids


def _add(root: _Node, member: Member) -> str:
    """Patient, study and series records shared by key; a new IMAGE record for every member."""
    ds = _stand_in(member)
    path = [ROOT_FOLDER]
    node = root
    for level, key, prefix in (
        ("PATIENT", str(ds.PatientID), "PT"),
        ("STUDY", str(ds.StudyInstanceUID), "ST"),
        ("SERIES", str(ds.SeriesInstanceUID), "SE"),
    ):
        if key not in node.children:
            node.children[key] = _Node(_record(level, ds), index=len(node.children))
        node = node.children[key]
        path.append(f"{prefix}{node.index:06d}")
    image = _Node(_record("IMAGE", ds), index=len(node.children))
    node.children[f"#{image.index}"] = image
    path.append(f"IM{image.index:06d}")
    image.record.ReferencedFileID = path
    return str(PurePosixPath(*path))


def _stand_in(member: Member) -> Dataset:
    """The attributes the four records need: C-FIND metadata, invented where empty."""
    ds = Dataset()
    ds.update(member.study)
    ds.update(member.series)
    for keyword, value in INVENTED.items():
        if not ds.get(keyword):
            setattr(ds, keyword, value)
    if not ds.get("SeriesNumber"):
        ds.SeriesNumber = 1
    ds.SOPInstanceUID, ds.SOPClassUID = member.sop_instance_uid, member.sop_class_uid
    ds.InstanceNumber = member.instance_number if member.instance_number is not None else 1
    ds.TransferSyntaxUID = member.transfer_syntax_uid
    return ds


def _record(level: str, ds: Dataset) -> Dataset:
    record = DIRECTORY_RECORDERS[level](ds)
    record.OffsetOfTheNextDirectoryRecord = 0
    record.RecordInUseFlag = 0xFFFF
    record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    record.DirectoryRecordType = level
    if "SpecificCharacterSet" in ds:
        record.SpecificCharacterSet = ds.SpecificCharacterSet
    if level == "IMAGE":
        record.ReferencedSOPClassUIDInFile = ds.SOPClassUID
        record.ReferencedSOPInstanceUIDInFile = ds.SOPInstanceUID
        record.ReferencedTransferSyntaxUIDInFile = ds.TransferSyntaxUID
    return record


def _walk(node: _Node):  # noqa: ANN202 - Iterator[_Node], depth first as FileSet orders them
    for child in node.children.values():
        yield child
        yield from _walk(child)


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


def _head() -> bytes:
    """Preamble, file meta and the root elements before the record sequence (offsets zero)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    ds = Dataset()
    ds.FileSetID = ""
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0
    write_dataset(fp, ds)
    return fp.getvalue()


def _place(nodes: list[_Node], offset: int) -> None:
    for node in nodes:
        node.offset = offset
        offset += len(ITEM) + 4 + len(node.encoded)


def _link(node: _Node) -> None:
    """Next sibling and first child, written into each encoded record."""
    children = list(node.children.values())
    for i, child in enumerate(children):
        following = children[i + 1].offset if i + 1 < len(children) else 0
        lower = next(iter(child.children.values())).offset if child.children else 0
        struct.pack_into("<L", child.encoded, NEXT_AT, following)
        struct.pack_into("<L", child.encoded, LOWER_AT, lower)
        _link(child)


def _assemble(head: bytes, root: _Node, nodes: list[_Node]) -> bytes:
    children = list(root.children.values())
    first, last = (children[0].offset, children[-1].offset) if children else (0, 0)
    out = BytesIO()
    out.write(_with_root_offsets(head, first, last))
    body = sum(len(ITEM) + 4 + len(n.encoded) for n in nodes)
    out.write(SEQUENCE_HEADER[:-4] + struct.pack("<L", body))
    for node in nodes:
        out.write(ITEM + struct.pack("<L", len(node.encoded)) + node.encoded)
    return out.getvalue()


def _with_root_offsets(head: bytes, first: int, last: int) -> bytes:
    """(0004,1200) and (0004,1202) are the 2nd and 3rd root elements, 12 bytes each."""
    patched = bytearray(head)
    at = patched.rindex(struct.pack("<HH2sH", 0x0004, 0x1200, b"UL", 4))
    struct.pack_into("<L", patched, at + 8, first)
    struct.pack_into("<L", patched, at + 20, last)
    return bytes(patched)
