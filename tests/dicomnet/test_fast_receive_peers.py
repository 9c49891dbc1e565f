"""Our Storage SCP's fast receive path (dicomnet/fast_receive.py) against real senders.

C-MOVE sub-operations from Orthanc, DCMTK dcmqrscp and pynetdicom's qrscp, at a maximum PDU of
16 KB, 128 KB and 1 MB on our side, of large instances (several PDUs each even at 1 MB) and
small ones: every instance lands byte-identical, through the fast path, with a File Meta
pydicom reads back, and nothing else is left in the folder. The slow path (``fast_receive``
off) still receives, and both paths write the very same file bytes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.move import MoveResult, c_move
from pacsbridge.dicomnet.wire import read_file_meta
from peers.dicom import STORESCU

from ._receiving import ReceivingScp, datasets
from .conftest import LOCAL

PDU_SIZES = [16384, 131072, 1048576]


@pytest.fixture(scope="module")
def mixed_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[Path]]:
    """Large and small instances in Implicit VR Little Endian, the one transfer syntax every
    sender proposes first or alone (dcmqrscp converts Explicit VR files to it on a C-MOVE), so
    that what arrives can be compared byte for byte with what was loaded."""
    folder = tmp_path_factory.mktemp("mixed-move")
    study = SampleStudy(series_count=2, instances_per_series=3, rows=800, columns=800)
    small = SampleStudy(series_count=1, instances_per_series=3)
    files = write_loose(folder / "large", [study, small], junk=False)
    for path in files:
        ds = dcmread(path)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=True)
    return [study.study_instance_uid, small.study_instance_uid], files


def _move(pacs, study_uids: list[str]) -> list[MoveResult]:  # noqa: ANN001
    results = []
    for study_uid in study_uids:
        identifier = Dataset()
        identifier.StudyInstanceUID = study_uid
        results.append(c_move(LOCAL, pacs.peer, "PACSBRIDGE", identifier, "STUDY"))
    return results


def _all_completed(results: list[MoveResult], count: int) -> bool:
    return all(r.status == 0 for r in results) and sum(r.completed or 0 for r in results) == count


def _assert_whole_and_identical(scp: ReceivingScp, files: list[Path]) -> None:
    assert datasets(scp.folder) == datasets(files[0].parent.parent.parent)
    assert all(name.endswith(".dcm") for name in scp.files()), scp.files()  # no .part left
    for path in scp.folder.iterdir():
        meta = read_file_meta(path)
        assert meta is not None
        ds = dcmread(path, stop_before_pixels=True)
        assert ds.file_meta.TransferSyntaxUID == meta.transfer_syntax_uid
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        group = ds.file_meta.FileMetaInformationGroupLength
        assert group == meta.dataset_offset - 132 - 12  # the group after its own element


@pytest.mark.parametrize("max_pdu", PDU_SIZES)
def test_move_from_every_pacs_lands_byte_identical_through_the_fast_path(
    pacs, our_scp_address, mixed_study, tmp_path, max_pdu: int
) -> None:  # noqa: ANN001
    study_uids, files = mixed_study
    pacs.load(files)
    scp = ReceivingScp(tmp_path / "received", max_pdu=max_pdu, address=our_scp_address)
    try:
        results = _move(pacs, study_uids)
    finally:
        scp.stop()

    assert _all_completed(results, len(files)), results
    assert sorted(scp.landed) == sorted(scp.stored) and len(scp.landed) == len(files)
    _assert_whole_and_identical(scp, files)


def test_slow_path_still_receives_a_move_byte_identical(
    dcmqrscp_pacs, our_scp_address, mixed_study, tmp_path
) -> None:  # noqa: ANN001
    study_uids, files = mixed_study
    dcmqrscp_pacs.load(files)
    scp = ReceivingScp(tmp_path / "received", fast=False, address=our_scp_address)
    try:
        results = _move(dcmqrscp_pacs, study_uids)
    finally:
        scp.stop()

    assert _all_completed(results, len(files)), results
    assert scp.landed == [] and len(scp.stored) == len(files)  # on_land is the fast path's
    _assert_whole_and_identical(scp, files)


def test_fast_and_slow_paths_write_the_same_file_bytes(mixed_study, tmp_path) -> None:  # noqa: ANN001
    _uids, files = mixed_study
    written: dict[bool, dict[str, bytes]] = {}
    for fast in (True, False):
        scp = ReceivingScp(tmp_path / f"fast-{fast}", fast=fast)
        try:
            done = subprocess.run(
                [STORESCU, "-aec", "PACSBRIDGE", "127.0.0.1", str(scp.port), *map(str, files)],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            scp.stop()
        assert done.returncode == 0, done.stderr
        written[fast] = {
            str(read_file_meta(p).sop_instance_uid): p.read_bytes()  # type: ignore[union-attr]
            for p in scp.folder.iterdir()
        }
    assert len(written[True]) == len(files)
    assert written[True] == written[False]
