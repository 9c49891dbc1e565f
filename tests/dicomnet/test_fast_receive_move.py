"""C-MOVE responses read on the calling thread (dicomnet/fast_move.py) tell what pynetdicom's do,
and a PACS that aborts or goes silent mid-move is a clear retriable error.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelMove

from pacsbridge.dicomnet.move import MoveResult, c_move
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.errors import PeerUnavailable

from ._receiving import ReceivingScp
from .conftest import LOCAL

SLOW = replace(LOCAL, fast_receive=False)


def _move(local, pacs, study_uid: str, destination: str = "PACSBRIDGE") -> MoveResult:  # noqa: ANN001
    identifier = Dataset()
    identifier.StudyInstanceUID = study_uid
    return c_move(local, pacs.peer, destination, identifier, "STUDY")


def test_fast_and_pynetdicom_move_results_are_the_same(
    dcmqrscp_pacs, our_scp_address, study_files, tmp_path: Path
) -> None:  # noqa: ANN001
    study, files = study_files
    dcmqrscp_pacs.load(files)
    results = []
    for n, local in enumerate((LOCAL, SLOW)):
        scp = ReceivingScp(tmp_path / f"received-{n}", address=our_scp_address)
        try:
            results.append(_move(local, dcmqrscp_pacs, study.study_instance_uid))
        finally:
            scp.stop()
        assert len(scp.stored) == len(files)

    assert results[0] == results[1]
    assert results[0].status == 0 and results[0].completed == len(files)
    assert results[0].responses == len(files) + 1  # one Pending per sub-operation, then final


def test_a_move_to_an_unknown_destination_fails_alike_on_both_paths(
    dcmqrscp_pacs, study_files
) -> None:  # noqa: ANN001
    study, files = study_files
    dcmqrscp_pacs.load(files)

    fast = _move(LOCAL, dcmqrscp_pacs, study.study_instance_uid, "NOBODY")
    slow = _move(SLOW, dcmqrscp_pacs, study.study_instance_uid, "NOBODY")

    assert fast == slow and (fast.status & 0xF000) in (0xA000, 0xC000)


class _FaultyMoveScp:
    """A pynetdicom Q/R SCP: one Pending response, then ``fault(event)``."""

    def __init__(self, fault: str, destination: int, instances: list[Path]) -> None:
        self.fault, self.release = fault, threading.Event()
        self.destination, self.instances = destination, instances
        ae = AE("FAULTY")
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
        ae.add_requested_context(CTImageStorage)
        self.server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_MOVE, self._move)]
        )
        self.peer = Peer("FAULTY", "127.0.0.1", self.server.server_address[1], "faulty")

    def _move(self, event: evt.Event):  # noqa: ANN202
        yield ("127.0.0.1", self.destination)
        yield len(self.instances)
        yield 0xFF00, dcmread(self.instances[0])  # stored, then a Pending response
        if self.fault == "abort":
            event.assoc.abort()
        elif self.fault == "silent":
            self.release.wait(10)
        for path in self.instances[1:]:
            yield 0xFF00, dcmread(path)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.mark.parametrize("fault", ["abort", "silent"])
def test_a_pacs_failing_mid_move_is_a_clear_retriable_error(
    fault: str, study_files, tmp_path: Path
) -> None:  # noqa: ANN001
    scp = ReceivingScp(tmp_path / "received")
    pacs = _FaultyMoveScp(fault, scp.port, study_files[1])
    started = time.monotonic()
    try:
        with pytest.raises(PeerUnavailable) as caught:
            _move(replace(LOCAL, dimse_timeout=1), pacs, "1.2.3.4")
    finally:
        pacs.stop()
        scp.stop()
    assert caught.value.retriable
    assert len(scp.stored) >= 1  # the move was under way
    assert time.monotonic() - started < 8
