"""The hand-walked fast path (media/part10.py) agrees with pydicom, and leaves it the hard cases."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

from pacsbridge.media import headers, part10, probe
from pacsbridge.media.model import InstanceHeader

from .helpers import one_instance, save


def _pydicom(path: Path) -> InstanceHeader:
    with path.open("rb") as fp:
        return headers.read_header(fp, path.name, path.stat().st_size)


def _fast(path: Path) -> InstanceHeader:
    """The fast path alone: fails the test (NotFast) if it did not handle the file."""
    data = path.read_bytes()
    with path.open("rb") as fp:
        header = probe.fast_header(fp, data[: part10.CHUNK], len(data), path.name)
    assert probe.examine(path.parent, path.name).header == header
    return header


def _odd_ascii(ds: Dataset) -> Dataset:
    """Padding, empty and multi-valued ASCII values, private tags, nested sequences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the odd values it is given
        return _set_odd_values(ds)


def _set_odd_values(ds: Dataset) -> Dataset:
    ds.PatientName = "ROSSI^MARIO^^ "
    ds.PatientID = " 00123 \\X9"
    ds.IssuerOfPatientID = ""
    ds.OtherPatientIDs = ["A1 ", "", "B2"]
    ds.AccessionNumber = "ACC\x00"
    ds.StudyDescription = "TC TORACE \\ADDOME"
    ds.SeriesNumber = "+07"
    ds.InstanceNumber = " 12 "
    ds.PatientSex = "f"
    ds.add_new(0x00091010, "LO", "private")
    inner = Dataset()
    inner.CodeValue = "X"
    inner.ReferencedImageSequence = Sequence([Dataset()])
    ds.ProcedureCodeSequence = Sequence([inner, Dataset()])
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_fast_path_reads_odd_ascii_values_exactly_as_pydicom(tmp_path, syntax):
    ds = _odd_ascii(one_instance(rows=8, columns=8))
    ds.file_meta.TransferSyntaxUID = syntax
    path = save(ds, tmp_path / "IMG")
    assert _fast(path) == _pydicom(path)


def test_fast_path_reads_encapsulated_files_exactly_as_pydicom(tmp_path):
    ds = one_instance(rows=8, columns=8)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([b"\xff\xd8" + b"\x00" * 30 + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    path = save(ds, tmp_path / "IMG")
    assert _fast(path) == _pydicom(path)


@pytest.mark.parametrize(
    "change",
    [
        {"PatientName": "NICOLÒ^ROSSÌ", "SpecificCharacterSet": "ISO_IR 100"},
        {"SeriesNumber": "1.5"},
        {"SOPInstanceUID": "1.2.39\\4.5"},  # then padded inside, below
        {"OtherPatientIDsSequence": Sequence([Dataset()])},
    ],
    ids=["latin1", "decimal-IS", "padded-UID", "other-ids-sequence"],
)
def test_fast_path_leaves_hard_values_to_pydicom(tmp_path, change):
    ds = one_instance(rows=8, columns=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for keyword, value in change.items():
            setattr(ds, keyword, value)
    path = save(ds, tmp_path / "IMG")
    path.write_bytes(path.read_bytes().replace(b"1.2.39\\4.5", b"1.2.3 \\4.5"))
    with pytest.raises(part10.NotFast):
        _fast(path)
    assert probe.examine(tmp_path, "IMG").header == _pydicom(path)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_every_cut_of_a_file_is_judged_as_pydicom_judges_it(tmp_path, syntax):
    """Cut after each byte: the fast path never accepts a file the general reader refuses."""
    ds = _odd_ascii(one_instance(rows=4, columns=4))
    ds.file_meta.TransferSyntaxUID = syntax
    whole = save(ds, tmp_path / "whole").read_bytes()
    cut = tmp_path / "cut"
    disagreements = []
    for end in range(132, len(whole)):
        cut.write_bytes(whole[:end])
        examined = probe.examine(tmp_path, "cut")
        try:
            expected: InstanceHeader | None = _pydicom(cut)
        except headers.UnreadableDicom:
            expected = None
        if examined.header != expected:
            disagreements.append(end)
    assert disagreements == []


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_header_longer_than_one_read_is_walked_and_cuts_are_caught(tmp_path, syntax):
    """A 200 KB private value before the names: the walk reads past its first chunk."""
    ds = one_instance(rows=256, columns=256)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.add_new(0x00091010, "LO", "PRIVATE")
    ds.add_new(0x00091011, "OB", b"\x01" * 200_000)
    ds.add_new(0x00091012, "OB", b"\x02" * (part10.CHUNK - 1))
    ds.add_new(0x00110010, "LO", "AFTER")
    path = save(ds, tmp_path / "IMG")
    assert _fast(path) == _pydicom(path)
    whole = path.read_bytes()
    for end in (1_000, 100_000, 250_000, 300_000, len(whole) - 1):
        path.write_bytes(whole[:end])
        assert probe.examine(tmp_path, "IMG").header is None, end
