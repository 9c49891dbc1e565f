"""``read_file_meta`` reads a first block that holds an ordinary File Meta, and reads further
only for a longer one: a File Meta past that first block is still parsed whole (and its file
sent from its true data set offset), one past ``META_READ`` still goes to the slow path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.uid import generate_uid

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.store import c_store
from pacsbridge.dicomnet.wire import META_FIRST_READ, META_READ, read_file_meta

from .conftest import LOCAL


def _with_private_meta(tmp_path: Path, value_bytes: int) -> Path:
    """A real CT file whose File Meta carries (0002,0102) Private Information of that size."""
    study = SampleStudy(series_count=1, instances_per_series=1, rows=64, columns=64)
    (path,) = write_loose(tmp_path / "media", [study], junk=False)
    ds = dcmread(path)
    ds.file_meta.PrivateInformationCreatorUID = generate_uid()
    ds.file_meta.PrivateInformation = b"\x01" * value_bytes
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_file_meta_longer_than_the_first_read_is_parsed_up_to_the_data_set(
    tmp_path: Path,
) -> None:
    path = _with_private_meta(tmp_path, 2 * META_FIRST_READ)
    meta = read_file_meta(path)
    ds = dcmread(path)
    assert meta is not None
    assert meta.dataset_offset > META_FIRST_READ
    assert (meta.sop_instance_uid, meta.transfer_syntax_uid) == (
        ds.SOPInstanceUID,
        ds.file_meta.TransferSyntaxUID,
    )
    with open(path, "rb") as f:  # the data set starts there: its first element is (0008,xxxx)
        f.seek(meta.dataset_offset)
        assert f.read(2) == b"\x08\x00"


def test_a_file_meta_longer_than_the_first_read_is_sent_from_its_true_data_set_offset(
    storescp: Any, tmp_path: Path
) -> None:
    path = _with_private_meta(tmp_path, 2 * META_FIRST_READ)
    meta = read_file_meta(path)
    assert meta is not None
    scp = storescp(max_pdu=16384)

    outcomes = list(c_store(LOCAL, scp.peer, [path]))

    assert [(o.ok, o.status) for o in outcomes] == [(True, 0)]
    (received,) = [p for p in scp.folder.rglob("*") if p.is_file()]
    got = read_file_meta(received)
    assert got is not None
    assert received.read_bytes()[got.dataset_offset :] == path.read_bytes()[meta.dataset_offset :]


def test_a_file_meta_longer_than_meta_read_goes_to_the_slow_path(tmp_path: Path) -> None:
    assert read_file_meta(_with_private_meta(tmp_path, META_READ + 16)) is None
