"""Faults during the fast C-STORE data phase: each ends in a clear outcome, never a false success.

The peers are real: pynetdicom acceptors that abort or release the association from their
C-STORE handler, and a DCMTK storescp killed while it receives.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import CTImageStorage, Verification

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.dicomnet.store import c_store
from pacsbridge.dicomnet.wire import LARGEST_PDU, read_file_meta
from peers.dicom import free_port

from .conftest import LOCAL


@pytest.fixture
def five_files(tmp_path: Path) -> list[Path]:
    study = SampleStudy(series_count=1, instances_per_series=5, rows=256, columns=256)
    return sorted(write_loose(tmp_path / "media", [study], junk=False))


class FaultyScp:
    """A pynetdicom Storage SCP that calls ``fault(event)`` on the n-th C-STORE it receives."""

    def __init__(
        self, nth: int, fault: Callable[[evt.Event], None], syntaxes: list[str] | None = None
    ) -> None:
        self.received: list[int] = []  # Message IDs, in order
        self.nth, self.fault = nth, fault
        ae = AE(ae_title="STORE")
        ae.add_supported_context(CTImageStorage, syntaxes or ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        self.port = free_port()
        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        self.peer = Peer("STORE", "127.0.0.1", self.port, "faulty SCP")

    def _store(self, event: evt.Event) -> int:
        self.received.append(int(event.request.MessageID))
        if len(self.received) == self.nth:
            self.fault(event)
        return 0


@pytest.fixture
def faulty_scp() -> Iterator[Callable[..., FaultyScp]]:
    made: list[FaultyScp] = []

    def make(
        nth: int, fault: Callable[[evt.Event], None], syntaxes: list[str] | None = None
    ) -> FaultyScp:
        scp = FaultyScp(nth, fault, syntaxes)
        made.append(scp)
        return scp

    yield make
    for scp in made:
        scp.server.shutdown()


def _abort(event: evt.Event) -> None:
    event.assoc.abort(block=False)


def _release(event: evt.Event) -> None:
    event.assoc.acse.send_release(is_response=False)  # A-RELEASE-RQ ahead of the response


def test_message_ids_increase_on_one_association(faulty_scp: Any, five_files: list[Path]):
    scp = faulty_scp(nth=0, fault=_abort)

    outcomes = list(c_store(LOCAL, scp.peer, five_files))

    assert [o.ok for o in outcomes] == [True] * 5
    assert scp.received == [1, 2, 3, 4, 5]


def test_fast_and_slow_path_share_one_association_with_increasing_message_ids(
    faulty_scp: Any, five_files: list[Path], tmp_path: Path
) -> None:
    rle = tmp_path / "rle.dcm"
    ds = dcmread(five_files[0])
    ds.SOPInstanceUID = generate_uid()
    ds.compress(RLELossless, generate_instance_uid=False)
    ds.save_as(rle, enforce_file_format=True)
    scp = faulty_scp(nth=0, fault=_abort, syntaxes=[ExplicitVRLittleEndian])
    files = [*five_files[:2], rle, *five_files[2:]]  # fast, fast, slow (decompressed), fast...

    outcomes = list(c_store(LOCAL, scp.peer, files))

    assert [o.path for o in outcomes] == files
    assert all(o.ok and o.status == 0 for o in outcomes)
    assert [o.transcoded for o in outcomes] == [False, False, True, False, False, False]
    assert scp.received == [1, 2, 3, 4, 5, 6]


# The releasing peer's own reactor then fails to send its C-STORE-RSP in Sta7 and raises in
# its thread; that is the test peer's pynetdicom, not our side.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize(
    ("fault", "said"),
    [(_abort, "association aborted by the PACS"), (_release, "released the association")],
    ids=["abort", "release"],
)
def test_peer_ending_the_association_mid_transfer_counts_nothing_after_it_as_stored(
    faulty_scp: Any, five_files: list[Path], fault: Any, said: str
) -> None:
    scp = faulty_scp(nth=2, fault=fault)
    started = time.monotonic()

    outcomes = list(c_store(LOCAL, scp.peer, five_files))

    assert time.monotonic() - started < LOCAL.dimse_timeout  # ended at once, not by a timeout
    assert [o.path for o in outcomes] == five_files
    assert outcomes[0].ok and outcomes[0].status == 0
    assert not outcomes[1].ok and outcomes[1].retriable and said in outcomes[1].detail
    assert all(not o.ok and o.retriable and "association lost" in o.detail for o in outcomes[2:])


def _announce_a_huge_pdu(event: evt.Event) -> None:
    """A P-DATA-TF header of 128 MiB ahead of the response: more than any peer may send us."""
    event.assoc.dul.socket.socket.sendall(bytes((0x04, 0, 0x08, 0, 0, 0)))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_pdu_announced_above_our_largest_is_aborted_at_once_never_allocated(
    faulty_scp: Any, five_files: list[Path]
) -> None:
    assert LARGEST_PDU < 128 * 1024 * 1024
    scp = faulty_scp(nth=1, fault=_announce_a_huge_pdu)
    started = time.monotonic()

    outcomes = list(c_store(LOCAL, scp.peer, five_files[:2]))

    assert time.monotonic() - started < LOCAL.dimse_timeout  # not waiting for 128 MiB
    assert not outcomes[0].ok and "far above our maximum" in outcomes[0].detail
    assert not outcomes[1].ok


def test_killed_storescp_mid_transfer_counts_only_complete_instances(
    storescp: Any, tmp_path: Path
) -> None:
    study = SampleStudy(series_count=1, instances_per_series=40, rows=512, columns=512)
    files = write_loose(tmp_path / "media", [study], junk=False)
    scp = storescp()
    killed = threading.Event()

    def kill_after_first_file() -> None:
        deadline = time.monotonic() + 30
        while not scp.files() and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(scp.process.pid, signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_after_first_file)
    killer.start()
    outcomes = list(c_store(LOCAL, scp.peer, files))
    killer.join()

    assert killed.is_set()
    assert sorted(o.path for o in outcomes) == sorted(files)
    failed = [o for o in outcomes if not o.ok]
    assert failed, "storescp was killed before the last instance, yet every one succeeded"
    assert all(o.retriable and o.detail for o in failed)
    ours = {
        read_file_meta(p).sop_instance_uid: p.read_bytes()[read_file_meta(p).dataset_offset :]  # type: ignore[union-attr]
        for p in files
    }
    complete = set()
    for received in scp.files():
        meta = read_file_meta(received)
        if meta and received.read_bytes()[meta.dataset_offset :] == ours[meta.sop_instance_uid]:
            complete.add(meta.sop_instance_uid)
    assert {o.sop_instance_uid for o in outcomes if o.ok} <= complete
