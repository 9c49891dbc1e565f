"""Helpers for the network layer tests: sample files on disk and an in-test pynetdicom SCP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import RLELossless
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import CTImageStorage, Verification

from pacsbridge.demo.launcher import free_port
from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.peers import LocalAE, Peer

LOCAL = LocalAE(ae_title="PACSBRIDGE", acse_timeout=5, dimse_timeout=10, connection_timeout=3)


@pytest.fixture
def study_files(tmp_path: Path) -> tuple[SampleStudy, list[Path]]:
    study = SampleStudy(series_count=2, instances_per_series=4)
    return study, write_loose(tmp_path / "media", [study], junk=False)


@pytest.fixture
def rle_file(tmp_path: Path, study_files: tuple[SampleStudy, list[Path]]) -> Path:
    ds = dcmread(study_files[1][0])
    ds.compress(RLELossless, generate_instance_uid=False)
    path = tmp_path / "rle.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


class RecordingScp:
    """A pynetdicom Storage SCP started in the test, with chosen syntaxes and statuses."""

    def __init__(self, transfer_syntaxes: list[str], status_for: Callable[[str], int]) -> None:
        self.received: dict[str, str] = {}  # SOP Instance UID → transfer syntax
        self.lock = threading.Lock()
        ae = AE(ae_title="STORE")
        ae.add_supported_context(CTImageStorage, transfer_syntaxes)
        ae.add_supported_context(Verification)
        self.status_for = status_for
        self.port = free_port()
        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        self.peer = Peer("STORE", "127.0.0.1", self.port, "test SCP")

    def _store(self, event: evt.Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        status = self.status_for(uid)
        if status == 0:
            with self.lock:
                self.received[uid] = str(event.context.transfer_syntax)
        return status


@pytest.fixture
def recording_scp() -> Iterator[Callable[..., RecordingScp]]:
    started: list[RecordingScp] = []

    def make(
        transfer_syntaxes: list[str] | None = None,
        status_for: Callable[[str], int] = lambda uid: 0,
    ) -> RecordingScp:
        scp = RecordingScp(transfer_syntaxes or ALL_TRANSFER_SYNTAXES, status_for)
        started.append(scp)
        return scp

    yield make
    for scp in started:
        scp.server.shutdown()
