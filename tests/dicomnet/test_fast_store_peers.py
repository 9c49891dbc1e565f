"""The fast C-STORE data phase (dicomnet/fast_store.py) against real Storage SCPs.

Each peer receives a study of large instances (each spans several PDUs even at 1 MB) and small
ones (one PDU each) at a maximum PDU of 16 KB, 128 KB and 1 MB (DCMTK-based peers: up to
their 128 KB limit), and must hold byte-identical data sets with every outcome a success.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.peers import LocalAE, Peer
from pacsbridge.dicomnet.store import c_store
from pacsbridge.dicomnet.wire import read_file_meta
from peers.dicom import c_echo_status, free_port

from .conftest import LOCAL

PDU_SIZES = [16384, 131072, 1048576]
#: DCMTK, and Orthanc built on it, receive PDUs of at most 128 KB (ASC_MAXIMUMPDUSIZE).
DCMTK_PDU_SIZES = [16384, 131072]


def _datasets(folder: Path) -> dict[str, bytes]:
    """SOP Instance UID → data set bytes (after the File Meta) of every Part 10 file."""
    found: dict[str, bytes] = {}
    for path in folder.rglob("*"):
        meta = read_file_meta(path) if path.is_file() else None
        if meta is not None:
            found[meta.sop_instance_uid] = path.read_bytes()[meta.dataset_offset :]
    return found


@pytest.fixture(scope="module")
def mixed_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("mixed")
    large = SampleStudy(series_count=1, instances_per_series=3, rows=800, columns=800)
    small = SampleStudy(series_count=1, instances_per_series=4)
    return write_loose(folder / "large", [large], junk=False) + write_loose(
        folder / "small", [small], junk=False
    )


def _assert_stored_identically(outcomes: list[Any], files: list[Path], received: Path) -> None:
    assert sorted(o.path for o in outcomes) == sorted(files)
    assert all(o.ok and o.status == 0 and not o.transcoded for o in outcomes), [
        o.detail for o in outcomes if not o.ok
    ]
    assert _datasets(received) == _datasets(files[0].parent.parent.parent)


class PynetdicomStorescp:
    """pynetdicom's own ``storescp`` application, writing what it receives into a folder."""

    def __init__(self, folder: Path, max_pdu: int) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.port = free_port()
        self.log = (folder.parent / "pynetdicom-storescp.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pynetdicom", "storescp", str(self.port), "-aet", "STORE"]
            + ["--max-pdu", str(max_pdu), "-od", str(folder)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while c_echo_status("127.0.0.1", self.port, "STORE") != 0:
            assert self.process.poll() is None, "pynetdicom storescp exited while starting"
            assert time.monotonic() < deadline, "pynetdicom storescp did not answer"
            time.sleep(0.1)
        self.peer = Peer("STORE", "127.0.0.1", self.port, "pynetdicom storescp")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def pynetdicom_storescp(tmp_path: Path) -> Iterator[Any]:
    made: list[PynetdicomStorescp] = []

    def make(max_pdu: int) -> PynetdicomStorescp:
        scp = PynetdicomStorescp(tmp_path / f"pynetdicom-{len(made) + 1}", max_pdu)
        made.append(scp)
        return scp

    yield make
    for scp in made:
        scp.stop()


@pytest.mark.parametrize("fork", [False, True], ids=["plain", "fork"])
@pytest.mark.parametrize("max_pdu", DCMTK_PDU_SIZES)
def test_storescp_holds_byte_identical_instances_at_every_pdu_size(
    storescp: Any, mixed_files: list[Path], max_pdu: int, fork: bool
) -> None:
    scp = storescp(max_pdu=max_pdu, fork=fork)
    associations = 2 if fork else 1

    outcomes = list(c_store(LOCAL, scp.peer, mixed_files, associations=associations))

    _assert_stored_identically(outcomes, mixed_files, scp.folder)


@pytest.mark.parametrize("max_pdu", PDU_SIZES)
def test_pynetdicom_storescp_holds_byte_identical_instances_at_every_pdu_size(
    pynetdicom_storescp: Any, mixed_files: list[Path], max_pdu: int
) -> None:
    scp = pynetdicom_storescp(max_pdu)

    outcomes = list(c_store(LOCAL, scp.peer, mixed_files))

    _assert_stored_identically(outcomes, mixed_files, scp.folder)


@pytest.mark.parametrize("max_pdu", DCMTK_PDU_SIZES)
def test_dcmqrscp_holds_byte_identical_instances_at_every_pdu_size(
    pacs_factory: Any, mixed_files: list[Path], max_pdu: int
) -> None:
    pacs = pacs_factory("dcmqrscp", extra_args=["--max-pdu", str(max_pdu)])

    outcomes = list(c_store(LOCAL, pacs.peer, mixed_files))

    _assert_stored_identically(outcomes, mixed_files, pacs.storage_dir)


@pytest.mark.parametrize("max_pdu", DCMTK_PDU_SIZES)
def test_orthanc_holds_byte_identical_instances_at_every_pdu_size(
    pacs_factory: Any, mixed_files: list[Path], max_pdu: int
) -> None:
    pacs = pacs_factory("orthanc", orthanc_config={"MaximumPduLength": max_pdu})

    outcomes = list(c_store(LOCAL, pacs.peer, mixed_files))

    _assert_stored_identically(outcomes, mixed_files, pacs.storage_dir)


def test_slow_path_setting_still_stores_byte_identical_instances(
    storescp: Any, mixed_files: list[Path]
) -> None:
    scp = storescp()
    slow = LocalAE(ae_title=LOCAL.ae_title, dimse_timeout=10, fast_store=False)

    outcomes = list(c_store(slow, scp.peer, mixed_files))

    _assert_stored_identically(outcomes, mixed_files, scp.folder)
