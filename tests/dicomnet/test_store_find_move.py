"""The network layer against real peers: DCMTK dcmqrscp, Orthanc and pynetdicom's Q/R app."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from pacsbridge.demo.launcher import free_port
from pacsbridge.demo.samples import SampleStudy
from pacsbridge.dicomnet.echo import c_echo
from pacsbridge.dicomnet.find import find_instance_uids, find_study
from pacsbridge.dicomnet.move import c_move
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.dicomnet.scp import StorageSCP, StoreRequest
from pacsbridge.dicomnet.store import c_store
from pacsbridge.errors import PeerRefused, PeerTimeout, PeerUnavailable

from .conftest import LOCAL


def _uids(paths: list[Path]) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}


def _listed_soon(peer: Peer, study_uid: str, expected: set[str]) -> set[str]:
    """A PACS may answer C-STORE before its index lists the instance: ask a few times."""
    for _ in range(10):
        listed = find_instance_uids(LOCAL, peer, study_uid)
        if listed == expected:
            break
        time.sleep(0.3)
    return listed


def test_echo_store_and_find_on_every_pacs(pacs, study_files) -> None:  # noqa: ANN001
    study, files = study_files
    assert c_echo(LOCAL, pacs.peer) == 0
    assert find_study(LOCAL, pacs.peer, study.study_instance_uid) is None

    outcomes = list(c_store(LOCAL, pacs.peer, files, associations=2))

    assert sorted(o.path for o in outcomes) == sorted(files)
    assert all(o.ok and o.status == 0 and not o.transcoded for o in outcomes)
    found = find_study(LOCAL, pacs.peer, study.study_instance_uid)
    assert found is not None
    assert found.patient_id == study.patient.patient_id
    assert _listed_soon(pacs.peer, study.study_instance_uid, _uids(files)) == _uids(files)
    assert pacs.instance_uids(study.study_instance_uid) == _uids(files)


def test_move_delivers_every_instance_to_our_scp(pacs, our_scp_address, study_files, tmp_path):  # noqa: ANN001
    study, files = study_files
    pacs.load(files)
    received: dict[str, Path] = {}
    lock = threading.Lock()

    def on_store(request: StoreRequest) -> int:
        target = tmp_path / f"{request.sop_instance_uid}.dcm"
        request.write_to(target)
        with lock:
            received[request.sop_instance_uid] = target
        assert request.study_instance_uid == study.study_instance_uid
        return 0

    scp = StorageSCP(LOCAL, our_scp_address[0], our_scp_address[1], on_store)
    scp.start()
    try:
        identifier = Dataset()
        identifier.StudyInstanceUID = study.study_instance_uid
        result = c_move(LOCAL, pacs.peer, "PACSBRIDGE", identifier, "STUDY")
    finally:
        scp.stop()

    assert result.status == 0
    assert result.completed == len(files)
    assert set(received) == _uids(files)
    original = {str(dcmread(p).SOPInstanceUID): dcmread(p).PixelData for p in files}
    assert all(dcmread(p).PixelData == original[uid] for uid, p in received.items())


def test_move_to_an_unknown_destination_reports_a_failure(pacs, study_files) -> None:  # noqa: ANN001
    study, files = study_files
    pacs.load(files)
    identifier = Dataset()
    identifier.StudyInstanceUID = study.study_instance_uid
    try:
        result = c_move(LOCAL, pacs.peer, "NOBODY", identifier, "STUDY")
    except PeerRefused:
        return  # refusing the association or the request outright is also a clear answer
    assert result.status != 0
    assert (result.status & 0xF000) in (0xA000, 0xC000)


def test_unreachable_peer_is_retriable(study_files) -> None:  # noqa: ANN001
    nobody = Peer("PACS", "127.0.0.1", free_port(), "PACS")
    with pytest.raises(PeerUnavailable) as caught:
        c_echo(LOCAL, nobody)
    assert caught.value.retriable
    assert not isinstance(caught.value, PeerTimeout)  # unreachable is not silent
    with pytest.raises(PeerUnavailable):
        list(c_store(LOCAL, nobody, study_files[1], associations=2))


def test_a_peer_silent_past_the_dimse_timeout_raises_peer_timeout() -> None:
    """Told by its type, so no caller reads the message to know it was a timeout."""
    released = threading.Event()

    def silent_echo(event: evt.Event) -> int:
        released.wait(10)  # no answer until the test is over
        return 0x0000

    ae = AE("SILENT")
    ae.add_supported_context(Verification)
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_ECHO, silent_echo)]
    )
    peer = Peer("SILENT", "127.0.0.1", server.server_address[1], "silent peer")
    started = time.monotonic()
    try:
        with pytest.raises(PeerTimeout) as caught:
            c_echo(replace(LOCAL, dimse_timeout=0.5), peer)
    finally:
        released.set()
        server.shutdown()
    assert caught.value.retriable and caught.value.code == "peer_unavailable"
    assert time.monotonic() - started < 5


def test_rejected_association_is_permanent(recording_scp, study_files) -> None:  # noqa: ANN001
    scp = recording_scp()
    wrong = Peer("NOT-STORE", "127.0.0.1", scp.port, "test SCP")
    scp.server.ae.require_called_aet = True
    with pytest.raises(PeerRefused) as caught:
        list(c_store(LOCAL, wrong, study_files[1][:1]))
    assert not caught.value.retriable
    assert "rejected" in caught.value.detail


def test_refused_compressed_syntax_is_decompressed(recording_scp, rle_file) -> None:  # noqa: ANN001
    scp = recording_scp([ExplicitVRLittleEndian, ImplicitVRLittleEndian])

    [outcome] = list(c_store(LOCAL, scp.peer, [rle_file]))

    assert outcome.ok and outcome.transcoded
    assert scp.received == {outcome.sop_instance_uid: ExplicitVRLittleEndian}


def test_accepted_compressed_syntax_is_sent_as_is(recording_scp, rle_file) -> None:  # noqa: ANN001
    scp = recording_scp()

    [outcome] = list(c_store(LOCAL, scp.peer, [rle_file]))

    assert outcome.ok and not outcome.transcoded
    assert scp.received == {outcome.sop_instance_uid: RLELossless}


def test_failure_statuses_are_per_instance(recording_scp, study_files) -> None:  # noqa: ANN001
    files = study_files[1]
    uids = sorted(_uids(files))
    statuses = {uids[0]: 0xA900, uids[1]: 0xA700}
    scp = recording_scp(status_for=lambda uid: statuses.get(uid, 0))

    outcomes = {o.sop_instance_uid: o for o in c_store(LOCAL, scp.peer, files, associations=3)}

    assert not outcomes[uids[0]].ok and not outcomes[uids[0]].retriable
    assert outcomes[uids[0]].status == 0xA900 and "0xA900" in outcomes[uids[0]].detail
    assert not outcomes[uids[1]].ok and outcomes[uids[1]].retriable
    assert all(outcomes[u].ok for u in uids[2:])
    assert set(scp.received) == set(uids[2:])


def test_unreadable_file_is_its_own_outcome(recording_scp, study_files, tmp_path) -> None:  # noqa: ANN001
    scp = recording_scp()
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")

    outcomes = {o.path: o for o in c_store(LOCAL, scp.peer, [junk, *study_files[1]])}

    assert not outcomes[junk].ok and not outcomes[junk].retriable
    assert sum(o.ok for o in outcomes.values()) == len(study_files[1])


def test_many_small_instances_over_one_association(storescp, tmp_path) -> None:  # noqa: ANN001
    """DCMTK answers fast enough to hit the response race of pynetdicom#875."""
    study = SampleStudy(series_count=4, instances_per_series=50, rows=8, columns=8)
    from pacsbridge.demo.samples import write_loose

    files = write_loose(tmp_path / "many", [study], junk=False)
    target = storescp()

    outcomes = list(c_store(LOCAL, target.peer, files, associations=1))

    assert len(outcomes) == 200 and all(o.ok for o in outcomes)
    assert len(target.files()) == 200


def test_our_scp_receives_from_dcmtk_storescu(study_files, tmp_path) -> None:  # noqa: ANN001
    files = study_files[1]
    received: list[str] = []

    def on_store(request: StoreRequest) -> int:
        request.write_to(tmp_path / f"{request.sop_instance_uid}.dcm")
        received.append(request.calling_ae)
        return 0

    scp = StorageSCP(LOCAL, "127.0.0.1", 0, on_store)
    scp.start()
    try:
        done = subprocess.run(
            [
                "/usr/bin/storescu",
                "-aet",
                "MODALITY",
                "-aec",
                "PACSBRIDGE",
                "127.0.0.1",
                str(scp.port),
                *map(str, files),
            ],
            capture_output=True,
            timeout=60,
            env={"TCP_NODELAY": "1"},
        )
    finally:
        scp.stop()
    assert done.returncode == 0, done.stderr.decode()
    assert received == ["MODALITY"] * len(files)
    assert {p.stem for p in tmp_path.glob("*.dcm")} >= _uids(files)


def test_handler_exception_answers_a_failure_status(study_files) -> None:  # noqa: ANN001
    def on_store(request: StoreRequest) -> int:
        raise RuntimeError("disk on fire")

    scp = StorageSCP(LOCAL, "127.0.0.1", 0, on_store)
    scp.start()
    try:
        peer = Peer("PACSBRIDGE", "127.0.0.1", scp.port)
        [outcome] = list(c_store(LOCAL, peer, study_files[1][:1]))
    finally:
        scp.stop()
    assert not outcome.ok and outcome.status == 0x0110
