"""What goes wrong: our AE unknown to the PACS, the PACS down, strangers storing, a full disk."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.peers import LocalAE, Peer
from pacsbridge.dicomnet.store import c_store
from pacsbridge.errors import PeerRefused
from pacsbridge.retrievals import receiver
from peers.dicom import NODELAY_HANDLERS

from .conftest import AUTH, SOURCE, fresh_patient

NOT_AUTHORISED = 0x0124
STATUS = {"dcmqrscp": "0xA801", "orthanc": "0xC000", "pynetdicom": "0xA801"}


@pytest.mark.parametrize("kind", ["dcmqrscp", "orthanc", "pynetdicom"])
def test_our_ae_unknown_to_the_pacs_fails_with_the_reason(
    kind, make_gateway, pacs_factory, load_study
) -> None:  # noqa: ANN001
    """dcmqrscp and pynetdicom answer A801; Orthanc answers C000 (unable to process) with
    nothing sent, which may be transient, so it is retried: one attempt here."""
    pacs = pacs_factory(kind, move_destinations={})
    study, _ = load_study(pacs, series_count=1, instances_per_series=2)
    gateway = make_gateway(pacs.peer, fse={"attempts": 1})
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "failed", document
    [error] = document["errors"]
    assert error["dicom_status"] == STATUS[kind]
    assert error["retriable"] is (kind == "orthanc")
    assert "l'AE PACSBRIDGE" in error["explanation"]
    assert f"porta {gateway.ctx.settings.dicom.port}" in error["explanation"]  # what to register
    assert document["studies"][0]["state"] == "failed"
    [failed] = gateway.events("retrieval.failed", retrieval_id)
    assert "PACSBRIDGE" in failed.message
    [move] = gateway.moves(study.study_instance_uid)
    assert move.code == STATUS[kind] and move.outcome == "error"
    package = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    assert package.status_code == 409


def test_source_down_is_retried_then_fails_or_recovers(
    make_gateway, dcmqrscp_pacs, load_study, relay
) -> None:  # noqa: ANN001
    study, paths = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=2)
    down = Peer(dcmqrscp_pacs.peer.ae_title, relay.host, relay.port)  # nothing answers yet
    gateway = make_gateway(down, fse={"attempts": 2})

    gave_up = gateway.request([study.accession_number])
    gateway.run()
    waiting = gateway.document(gave_up)
    assert waiting["state"] == "querying" and waiting["attempts_left"] == 1
    [first] = waiting["errors"]
    assert first["code"] == "peer_unavailable" and first["retriable"] is True
    assert first["attempts_left"] == 1 and SOURCE in first["message"]
    assert gateway.run_scheduled() == 1  # the back-off elapsed: second and last attempt

    failed = gateway.document(gave_up)
    assert failed["state"] == "failed" and failed["attempts_left"] == 0
    assert [e["attempt"] for e in failed["errors"]] == [1, 2]
    assert gateway.events("retrieval.failed", gave_up)[0].code == "peer_unavailable"

    recovers = gateway.request([study.accession_number])
    gateway.run()
    assert gateway.document(recovers)["attempts_left"] == 1
    relay.up(dcmqrscp_pacs.peer.port)  # the hospital PACS is back at its configured address
    assert gateway.run_scheduled() == 1

    document = gateway.document(recovers)
    assert document["state"] == "available", document
    assert document["received_instances"] == len(paths)
    assert len(document["errors"]) == 1  # the failed attempt stays in the history


def _our_scp(gateway) -> Peer:  # noqa: ANN001
    dicom = gateway.ctx.settings.dicom
    return Peer("PACSBRIDGE", dicom.host, dicom.port)


def _stray_file(folder: Path, study_uid: str) -> Path:
    """An instance of a running study's UID that no C-FIND listed."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = folder / "stray.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_our_scp_refuses_what_nobody_asked_for(make_gateway, dcmqrscp_pacs, tmp_path) -> None:  # noqa: ANN001
    gateway = make_gateway(dcmqrscp_pacs.peer)
    files = write_loose(tmp_path / "stray", [SampleStudy(patient=fresh_patient())], junk=False)

    with pytest.raises(PeerRefused):  # a stranger: its association is rejected
        list(c_store(LocalAE(ae_title="INTRUDER"), _our_scp(gateway), files[:2]))
    outcomes = list(c_store(LocalAE(ae_title="PACS"), _our_scp(gateway), files[:2]))
    assert [o.status for o in outcomes] == [NOT_AUTHORISED, NOT_AUTHORISED]  # the source, unasked

    assert not list(gateway.ctx.data_dir.rglob("*.dcm"))


def test_during_a_move_only_the_listed_instances_get_in(
    make_gateway, orthanc_pacs, load_study, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    study, paths = load_study(orthanc_pacs, series_count=1, instances_per_series=2)
    gateway = make_gateway(orthanc_pacs.peer)
    stray = _stray_file(tmp_path, study.study_instance_uid)
    statuses: list[int | None] = []
    write = receiver._write

    def write_and_intrude(request, final) -> None:  # noqa: ANN001
        if not statuses:  # while the move runs: the source's AE, the right study, an unlisted UID
            [outcome] = c_store(LocalAE(ae_title="PACS"), _our_scp(gateway), [stray])
            statuses.append(outcome.status)
            with pytest.raises(PeerRefused):  # a stranger is not even associated
                list(c_store(LocalAE(ae_title="INTRUDER"), _our_scp(gateway), [stray]))
            statuses.append(NOT_AUTHORISED)
        write(request, final)

    monkeypatch.setattr(receiver, "_write", write_and_intrude)
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    assert statuses == [NOT_AUTHORISED, NOT_AUTHORISED]
    document = gateway.document(retrieval_id)
    assert document["state"] == "available"
    assert document["received_instances"] == len(paths)
    assert len(list(gateway.ctx.data_dir.rglob("*.dcm"))) == len(paths)


def test_disk_above_high_water_refuses_new_retrievals(
    make_gateway, dcmqrscp_pacs, load_study
) -> None:  # noqa: ANN001
    study, _ = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=1)
    gateway = make_gateway(dcmqrscp_pacs.peer, fse={"disk_high_water_percent": 0.001})

    answer = gateway.post([study.accession_number])

    assert answer.status_code == 507
    error = answer.json()["error"]
    assert error["code"] == "storage_full" and error["retriable"] is True
    assert "Spazio su disco" in error["message"]
    assert "high-water mark 0.001%" in error["detail"]
    assert gateway.run() == 0
    assert gateway.events("retrieval.moved") == []
    [failed] = gateway.events("retrieval.failed")
    assert failed.code == "storage_full"


class SilentMovePacs:
    """A pynetdicom Q/R SCP that answers C-FIND from one study and then goes silent on C-MOVE
    (a fault DCMTK and Orthanc cannot be made to show)."""

    def __init__(self, instance: Dataset, silence: float) -> None:
        self.instance, self.silence = instance, silence
        self.released = threading.Event()
        ae = AE("PACS")
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
        handlers = [(evt.EVT_C_FIND, self._find), (evt.EVT_C_MOVE, self._move), *NODELAY_HANDLERS]
        self.server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        self.peer = Peer("PACS", "127.0.0.1", self.server.server_address[1])

    def _find(self, event):  # noqa: ANN001, ANN202
        asked = event.identifier
        answer = Dataset()
        for element in asked:
            keyword = element.keyword
            setattr(answer, keyword, self.instance.get(keyword, ""))
        answer.QueryRetrieveLevel = asked.QueryRetrieveLevel
        yield 0xFF00, answer

    def _move(self, event):  # noqa: ANN001, ANN202
        self.released.wait(self.silence)  # nothing, not even a pending response
        yield ("127.0.0.1", 1)
        yield 0

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()


def test_a_move_that_goes_silent_is_a_clear_retriable_error(make_gateway, tmp_path) -> None:  # noqa: ANN001
    study = SampleStudy(patient=fresh_patient(), accession_number="SILENT1")
    pacs = SilentMovePacs(next(study.datasets()), silence=30)
    try:
        gateway = make_gateway(pacs.peer, fse={"move_timeout_seconds": 1, "attempts": 3})
        retrieval_id = gateway.request([study.accession_number])
        gateway.run()
        document = gateway.document(retrieval_id)
    finally:
        pacs.stop()

    assert document["state"] == "retrieving" and document["attempts_left"] == 2
    [error] = document["errors"]
    assert error["code"] == "peer_unavailable" and error["retriable"] is True
    assert "non ha più risposto al C-MOVE per 1 secondi" in error["explanation"]
    [move] = gateway.moves(study.study_instance_uid)
    assert move.outcome == "error" and move.code == ""
