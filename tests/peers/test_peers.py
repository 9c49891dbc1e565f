"""The DICOM peer fixtures work, checked with plain pynetdicom (no pacsbridge code)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from pacsbridge.demo.samples import UID_PREFIX, SamplePatient, SampleStudy, write_loose
from peers import dicom
from peers.dicom import KINDS, NODELAY_HANDLERS, LoadError, PeerStartError, tune

# -- helpers (plain pynetdicom) ---------------------------------------------------------------


def write_study(
    folder: Path, compressed: bool = False, **fields: Any
) -> tuple[SampleStudy, list[Path]]:
    """A fresh small study (2 series x 2 images, unique patient ID) as Part 10 files."""
    study = SampleStudy(
        patient=SamplePatient(patient_id=generate_uid(UID_PREFIX)[-12:]),
        series_count=2,
        instances_per_series=2,
        **fields,
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, ds in enumerate(study.datasets()):
        if compressed:
            ds.compress(RLELossless)
        path = folder / f"{index:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return study, paths


def sop_uids(paths: list[Path]) -> set[str]:
    from pydicom import dcmread

    return {str(dcmread(path, stop_before_pixels=True).SOPInstanceUID) for path in paths}


@contextmanager
def associate(peer: Any, *contexts: str) -> Iterator[Any]:
    ae = AE("TESTSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for context in contexts:
        ae.add_requested_context(context)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    assert assoc.is_established, f"no association with {peer}"
    tune(assoc)
    try:
        yield assoc
    finally:
        assoc.release()


def c_find(peer: Any, model: str, level: str, **keys: str) -> list[Dataset]:
    query = Dataset()
    query.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    with associate(peer, model) as assoc:
        responses = list(assoc.send_c_find(query, model))
    assert responses[-1][0].Status == 0x0000, responses[-1][0]
    return [identifier for status, identifier in responses if status.Status in (0xFF00, 0xFF01)]


def image_uids(peer: Any, study_uid: str) -> set[str]:
    """IMAGE-level C-FIND, series by series (dcmqrscp and qrscp need the series key)."""
    model = StudyRootQueryRetrieveInformationModelFind
    found: set[str] = set()
    series = c_find(peer, model, "SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID="")
    for series_uid in {str(item.SeriesInstanceUID) for item in series}:
        images = c_find(
            peer,
            model,
            "IMAGE",
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=series_uid,
            SOPInstanceUID="",
        )
        found |= {str(item.SOPInstanceUID) for item in images}
    return found


def accepted_syntaxes(peer: Any, sop_class: str, syntaxes: list[str]) -> set[str]:
    """Which of ``syntaxes`` the peer accepts for ``sop_class`` (one context each)."""
    ae = AE("TESTSCU")
    for syntax in syntaxes:
        ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    assert assoc.is_established, f"no association with {peer}"
    try:
        return {str(cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
    finally:
        assoc.release()


def c_move_study(peer: Any, study_uid: str, destination: str = "PACSBRIDGE") -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    model = StudyRootQueryRetrieveInformationModelMove
    with associate(peer, model) as assoc:
        responses = list(assoc.send_c_move(query, destination, model))
    return responses[-1][0]


@contextmanager
def storage_scp(address: tuple[str, int], ae_title: str = "PACSBRIDGE") -> Iterator[list[Dataset]]:
    """A pynetdicom Storage SCP (every storage class, every transfer syntax) on ``address``."""
    received: list[Dataset] = []

    def on_store(event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return 0x0000

    ae = AE(ae_title)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    server = ae.start_server(
        address, block=False, evt_handlers=[(evt.EVT_C_STORE, on_store), *NODELAY_HANDLERS]
    )
    try:
        yield received
    finally:
        server.shutdown()


# -- the three PACS ---------------------------------------------------------------------------


def test_pacs_answers_echo(pacs: dicom.RunningPacs) -> None:
    assert pacs.peer.ae_title == "PACS" and pacs.kind in KINDS
    with associate(pacs.peer, Verification) as assoc:
        assert assoc.send_c_echo().Status == 0x0000


def test_pacs_finds_what_was_loaded(pacs: dicom.RunningPacs, tmp_path: Path) -> None:
    study, paths = write_study(tmp_path / "study")
    pacs.load(paths)
    uid = study.study_instance_uid

    studies = c_find(
        pacs.peer,
        StudyRootQueryRetrieveInformationModelFind,
        "STUDY",
        StudyInstanceUID=uid,
        PatientID="",
    )
    # pynetdicom's qrscp answers a STUDY-level query once per instance: compare as a set.
    assert {str(item.PatientID) for item in studies} == {study.patient.patient_id}

    by_patient = c_find(
        pacs.peer,
        PatientRootQueryRetrieveInformationModelFind,
        "STUDY",
        PatientID=study.patient.patient_id,
        StudyInstanceUID="",
    )
    assert {str(item.StudyInstanceUID) for item in by_patient} == {uid}

    assert image_uids(pacs.peer, uid) == sop_uids(paths)
    assert pacs.instance_uids(uid) == sop_uids(paths)


def test_pacs_moves_a_study_to_our_scp(
    pacs: dicom.RunningPacs, tmp_path: Path, our_scp_address: tuple[str, int]
) -> None:
    study, paths = write_study(tmp_path / "study")
    pacs.load(paths)
    with storage_scp(our_scp_address) as received:
        status = c_move_study(pacs.peer, study.study_instance_uid)
    assert status.Status == 0x0000, status
    assert {str(ds.SOPInstanceUID) for ds in received} == sop_uids(paths)


def test_pacs_keeps_every_instance_stored_in_parallel(
    pacs: dicom.RunningPacs, tmp_path: Path
) -> None:
    """Four associations at once (dcmqrscp alone would lose some: see peers._store_proxy)."""
    study = SampleStudy(
        patient=SamplePatient(patient_id=generate_uid(UID_PREFIX)[-12:]),
        series_count=2,
        instances_per_series=6,
    )
    paths = write_loose(tmp_path / "media", [study], junk=False)
    peer = pacs.peer
    threads = [
        threading.Thread(
            target=dicom.c_store_files, args=(peer.ae_title, peer.host, peer.port, paths[i::4])
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pacs.instance_uids(study.study_instance_uid) == sop_uids(paths)
    assert image_uids(peer, study.study_instance_uid) == sop_uids(paths)


def test_pacs_accepts_compressed_data(
    pacs: dicom.RunningPacs, tmp_path: Path, our_scp_address: tuple[str, int]
) -> None:
    study, paths = write_study(tmp_path / "rle", compressed=True)
    assert accepted_syntaxes(pacs.peer, CTImageStorage, [RLELossless]) == {RLELossless}
    pacs.load(paths)
    assert pacs.instance_uids(study.study_instance_uid) == sop_uids(paths)
    with storage_scp(our_scp_address) as received:
        status = c_move_study(pacs.peer, study.study_instance_uid)
    if pacs.kind == "dcmqrscp":
        # dcmqrscp cannot decompress and sends each SOP class in the first context accepted
        # for it (uncompressed): compressed instances it stores cannot be moved out.
        assert (status.Status, status.NumberOfFailedSuboperations) == (0xA702, len(paths))
        assert received == []
    else:
        assert status.Status == 0x0000, status
        assert {str(ds.SOPInstanceUID) for ds in received} == sop_uids(paths)


@pytest.mark.parametrize("kind", KINDS)
def test_pacs_refuses_compressed_data_on_request(
    kind: str, pacs_factory: Any, tmp_path: Path
) -> None:
    study, paths = write_study(tmp_path / "rle", compressed=True)
    strict = pacs_factory(kind, ae_title="STRICT", accept_compressed=False)
    assert accepted_syntaxes(
        strict.peer, CTImageStorage, [RLELossless, ExplicitVRLittleEndian]
    ) == {ExplicitVRLittleEndian}
    if kind != "orthanc":  # Orthanc's load() goes through REST, which negotiates nothing
        with pytest.raises(LoadError):
            strict.load(paths)
        assert strict.instance_uids(study.study_instance_uid) == set()


@pytest.mark.parametrize("kind", ["dcmqrscp", "orthanc"])  # qrscp: same restart as dcmqrscp
def test_move_destination_registered_later(
    kind: str, pacs_factory: Any, storescp: Any, tmp_path: Path
) -> None:
    study, paths = write_study(tmp_path / "study")
    server = pacs_factory(kind, ae_title="SECOND")
    server.load(paths)
    scp = storescp()
    server.register_move_destination(scp.ae_title, scp.peer.host, scp.peer.port)
    assert c_move_study(server.peer, study.study_instance_uid, scp.ae_title).Status == 0x0000
    assert scp.instance_uids() == sop_uids(paths)


# -- storescp and failures --------------------------------------------------------------------


def test_storescp_keeps_what_it_receives(storescp: Any, tmp_path: Path) -> None:
    scp = storescp(ae_title="ARCHIVE")
    _, plain = write_study(tmp_path / "plain")
    _, rle = write_study(tmp_path / "rle", compressed=True)
    dicom.c_store_files(scp.ae_title, scp.peer.host, scp.peer.port, plain + rle)
    assert len(scp.files()) == len(plain + rle)
    assert scp.instance_uids() == sop_uids(plain + rle)
    assert all(path.parent == scp.folder for path in scp.files())


def test_missing_tool_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(dicom, "DCMQRSCP", str(tmp_path / "no-dcmqrscp"))
    with pytest.raises(PeerStartError, match="no-dcmqrscp is missing"):
        dicom.new_pacs("dcmqrscp", tmp_path / "pacs").start()


def test_unknown_kind_and_option_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown PACS kind"):
        dicom.new_pacs("conquest", tmp_path)
    with pytest.raises(TypeError, match="unknown options"):
        dicom.new_pacs("orthanc", tmp_path, acept_compressed=False)
