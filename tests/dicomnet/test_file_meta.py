"""``read_file_meta`` reads a first block that holds an ordinary File Meta, and reads further
only for a longer one: a File Meta past that first block is still parsed whole, one past
``META_READ`` still goes to the slow path (pydicom)."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.wire import META_FIRST_READ, META_READ, read_file_meta


def _with_private_meta(tmp_path: Path, value_bytes: int) -> Path:
    """A real CT file whose File Meta carries (0002,0102) Private Information of that size."""
    study = SampleStudy(series_count=1, instances_per_series=1, rows=16, columns=16)
    (path,) = write_loose(tmp_path / "media", [study], junk=False)
    ds = dcmread(path)
    ds.file_meta.PrivateInformationCreatorUID = "1.2.3.4"
    ds.file_meta.PrivateInformation = b"\x01" * value_bytes
    out = tmp_path / f"meta-{value_bytes}.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


def test_a_file_meta_longer_than_the_first_read_is_parsed_up_to_the_data_set(
    tmp_path: Path,
) -> None:
    path = _with_private_meta(tmp_path, 2 * META_FIRST_READ)
    meta = read_file_meta(path)
    ds = dcmread(path)
    assert meta is not None
    assert meta.sop_instance_uid == ds.SOPInstanceUID
    assert meta.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
    # The data set starts right after the File Meta group: its first element is (0008,xxxx).
    with open(path, "rb") as f:
        f.seek(meta.dataset_offset)
        assert f.read(2) == b"\x08\x00"
    assert meta.dataset_offset > META_FIRST_READ


def test_a_file_meta_longer_than_meta_read_goes_to_the_slow_path(tmp_path: Path) -> None:
    assert read_file_meta(_with_private_meta(tmp_path, META_READ + 16)) is None
