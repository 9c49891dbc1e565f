"""Our Storage SCP believes no one on their word: forged C-STOREs from another process, during a
real retrieval from a source without IMAGE-level queries (admission by study, the weak case),
are refused, audited with the caller's address and never written; names in the cache and the
package are ours, never a UID; a short disk stops a retrieval before its C-MOVE; a C-FIND
answer with a bad UID is dropped and named."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import config, dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from pacsbridge.dicomnet.find import c_find
from pacsbridge.dicomnet.peers import LocalAE, Peer
from pacsbridge.retrievals import cache, receiver
from peers.dicom import NODELAY_HANDLERS

from .conftest import AUTH, fresh_accession, fresh_patient

FORGER = Path(__file__).with_name("_forger.py")
NOT_AUTHORISED, INVALID_INSTANCE = 0x0124, 0x0117
ESCAPE_UID = "../../../../escaped"  # under the old naming: <data_dir>/escaped.dcm
OUR_NAME = re.compile(r"[0-9a-f]{40}\.dcm|[0-9]+\.zip")
#: pydicom warns (an error under pytest) when it decodes a malformed UID, in any thread: here
#: the malformed UIDs are the attack, and what pacsbridge does with them is what is asserted
BAD_UIDS_ON_THE_WIRE = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")


def _forge(gateway, tmp_path: Path, files: list[Path], bind: str = "") -> dict[str, Any]:  # noqa: ANN001
    """Run the forged Storage SCU in a process of its own, claiming the source's AE title."""
    dicom = gateway.ctx.settings.dicom
    spec = {
        "host": dicom.host,
        "port": dicom.port,
        "called_ae": dicom.ae_title,
        "calling_ae": gateway.ctx.settings.sources[0].ae_title,
        "bind": bind,
        "files": [str(f) for f in files],
    }
    spec_path = tmp_path / f"forger-{len(list(tmp_path.glob('forger-*')))}.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, str(FORGER), str(spec_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _forged_copy(source: Path, target: Path, **changes: str) -> Path:
    """A genuine instance of the study with a new SOP Instance UID (and ``changes``)."""
    with _lenient_writing():
        ds = dcmread(source)
        changes.setdefault("SOPInstanceUID", generate_uid())
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        ds.file_meta.MediaStorageSOPInstanceUID = changes["SOPInstanceUID"]
        ds.save_as(target, enforce_file_format=True)
    return target


class _lenient_writing:  # noqa: N801 - a context manager used like a function
    """pydicom warns about a malformed UID (an error under pytest); the attacker does not care."""

    def __enter__(self) -> None:
        self.saved = (
            config.settings.reading_validation_mode,
            config.settings.writing_validation_mode,
        )
        config.settings.reading_validation_mode = config.IGNORE
        config.settings.writing_validation_mode = config.IGNORE

    def __exit__(self, *exc: object) -> None:
        config.settings.reading_validation_mode, config.settings.writing_validation_mode = (
            self.saved
        )


def _during_the_move(monkeypatch, intrude: Callable[[], None]) -> None:  # noqa: ANN001
    """Run ``intrude`` once, while the first genuine instance is being received."""
    write = receiver._write
    done: list[bool] = []

    def write_after_intruding(*args: Any) -> None:
        if not done:
            done.append(True)
            intrude()
        write(*args)

    monkeypatch.setattr(receiver, "_write", write_after_intruding)


def _intruder_events(gateway) -> list[Any]:  # noqa: ANN001
    """``scp.intruder`` events, once the receiver's audit thread has written them all."""
    assert gateway.ctx.listener.scp.on_store.intruders.drain()
    return gateway.events("scp.intruder")


def _package(gateway, retrieval_id: int) -> zipfile.ZipFile:  # noqa: ANN001
    answer = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    assert answer.status_code == 200, answer.text
    return zipfile.ZipFile(io.BytesIO(answer.content))


def _images(archive: zipfile.ZipFile) -> list[str]:
    return [n for n in archive.namelist() if n.startswith("DICOM/")]


def _no_image_level_retrieval(make_gateway, pacs, load_study, monkeypatch, intrude):  # noqa: ANN001, ANN202
    study, paths = load_study(pacs, series_count=2, instances_per_series=2)
    gateway = make_gateway(pacs.peer, source={"image_level_queries": False})
    _during_the_move(monkeypatch, lambda: intrude(gateway, paths))
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()
    return gateway, retrieval_id, study, paths


def test_source_ae_title_from_another_address_is_rejected_and_audited(
    make_gateway, dcmqrscp_pacs, load_study, monkeypatch, tmp_path
) -> None:  # noqa: ANN001
    """The forger claims the source's AE title but connects from 127.0.0.2: under the old
    code its instance (right study, new UID) was admitted by study."""
    answers: list[dict[str, Any]] = []

    def intrude(gateway, paths) -> None:  # noqa: ANN001
        forged = _forged_copy(paths[0], tmp_path / "forged-a.dcm")
        answers.append(_forge(gateway, tmp_path, [forged], bind="127.0.0.2"))

    gateway, retrieval_id, _study, paths = _no_image_level_retrieval(
        make_gateway, dcmqrscp_pacs, load_study, monkeypatch, intrude
    )

    assert answers == [{"associated": False, "rejected": True, "statuses": []}]
    [event] = _intruder_events(gateway)
    assert event.details["address"] == "127.0.0.2"
    assert event.details["calling_ae"] == "PACS" and event.actor == "PACS"
    assert event.details["reason"] == "address_not_of_source"
    assert event.retrieval_id == retrieval_id and event.outcome == "refused"
    document = gateway.document(retrieval_id)
    assert document["state"] == "available", document
    assert document["received_instances"] == len(paths)
    assert len(_images(_package(gateway, retrieval_id))) == len(paths)


def test_another_patients_instance_from_the_source_is_refused_and_never_packaged(
    make_gateway, dcmqrscp_pacs, load_study, monkeypatch, tmp_path
) -> None:  # noqa: ANN001
    """Right AE title, right address, right study and series, another patient: refused."""
    answers: list[dict[str, Any]] = []
    forged_uid: list[str] = []

    def intrude(gateway, paths) -> None:  # noqa: ANN001
        forged = _forged_copy(
            paths[0], tmp_path / "forged-b.dcm", PatientID="OTHER-42", PatientName="BIANCHI^ELSA"
        )
        forged_uid.append(str(dcmread(forged, stop_before_pixels=True).SOPInstanceUID))
        answers.append(_forge(gateway, tmp_path, [forged]))

    gateway, retrieval_id, _study, paths = _no_image_level_retrieval(
        make_gateway, dcmqrscp_pacs, load_study, monkeypatch, intrude
    )

    assert answers == [{"associated": True, "rejected": False, "statuses": [NOT_AUTHORISED]}]
    [event] = _intruder_events(gateway)
    assert event.details["reason"] == "patient_id_differs"
    assert event.details["patient_id"] == "OTHER-42"
    assert event.details["address"] == "127.0.0.1"
    assert event.details["sop_instance_uid"] == forged_uid[0]
    assert event.retrieval_id == retrieval_id and event.code == "0x0124"
    document = gateway.document(retrieval_id)
    assert document["state"] == "available", document
    assert document["received_instances"] == len(paths)
    listed = {
        i["sop_instance_uid"] for s in document["studies"][0]["series"] for i in s["instances"]
    }
    assert forged_uid[0] not in listed
    folders = (cache.root(gateway.ctx) / "studies").iterdir()
    assert not [f for f in folders if forged_uid[0] in cache.present(f)]
    archive = _package(gateway, retrieval_id)
    assert len(_images(archive)) == len(paths)
    patients = {str(dcmread(archive.open(n)).PatientID) for n in _images(archive)}
    assert patients == {str(dcmread(paths[0], stop_before_pixels=True).PatientID)}
    readme = archive.read("README.TXT").decode("ascii")
    assert f"{len(paths)} immagini in totale" in readme and "BIANCHI" not in readme


@BAD_UIDS_ON_THE_WIRE
def test_received_uid_with_dot_dot_is_refused_and_nothing_lands_outside_the_cache(
    make_gateway, dcmqrscp_pacs, load_study, monkeypatch, tmp_path
) -> None:  # noqa: ANN001
    answers: list[dict[str, Any]] = []

    def intrude(gateway, paths) -> None:  # noqa: ANN001
        forged = _forged_copy(paths[0], tmp_path / "forged-c.dcm", SOPInstanceUID=ESCAPE_UID)
        answers.append(_forge(gateway, tmp_path, [forged]))

    gateway, retrieval_id, _study, paths = _no_image_level_retrieval(
        make_gateway, dcmqrscp_pacs, load_study, monkeypatch, intrude
    )

    assert answers == [{"associated": True, "rejected": False, "statuses": [INVALID_INSTANCE]}]
    [event] = _intruder_events(gateway)
    assert event.details["reason"] == "invalid_command_uid"
    assert event.details["sop_instance_uid"] == ESCAPE_UID
    data_dir = gateway.ctx.data_dir
    assert not (data_dir / "escaped.dcm").exists()
    assert [p for p in data_dir.parent.rglob("*escaped*")] == []
    studies = cache.root(gateway.ctx) / "studies"
    written = [p for p in data_dir.rglob("*.dcm")]
    assert written and all(p.parent.parent == studies for p in written)
    assert len(written) == len(paths) == gateway.document(retrieval_id)["received_instances"]


def test_cache_and_package_file_names_are_ours_never_a_uid(
    make_gateway, orthanc_pacs, load_study
) -> None:  # noqa: ANN001
    study, paths = load_study(orthanc_pacs, series_count=2, instances_per_series=2)
    gateway = make_gateway(orthanc_pacs.peer)
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()
    archive = _package(gateway, retrieval_id)

    headers = [dcmread(p, stop_before_pixels=True) for p in paths]
    uids = {study.study_instance_uid}
    uids |= {str(h.SeriesInstanceUID) for h in headers} | {str(h.SOPInstanceUID) for h in headers}
    on_disk = [p for p in cache.root(gateway.ctx).rglob("*") if p.is_file()]
    assert len(on_disk) == len(paths) + 1  # the instances and the package
    assert all(OUR_NAME.fullmatch(p.name) for p in on_disk), [p.name for p in on_disk]
    names = [str(p.relative_to(gateway.ctx.data_dir)) for p in on_disk] + archive.namelist()
    assert not [n for n in names for uid in uids if uid in n]
    assert all(re.fullmatch(r"DICOM(/[A-Z]{2}\d{6}){4}", n) for n in _images(archive))
    assert len(_images(archive)) == len(paths)


def test_short_free_space_fails_the_retrieval_before_any_move(
    make_gateway, dcmqrscp_pacs, load_study
) -> None:  # noqa: ANN001
    study, _ = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=1)
    margin = 10**18  # more than any disk: free space less the margin is always short
    gateway = make_gateway(
        dcmqrscp_pacs.peer, fse={"disk_free_margin_bytes": margin, "attempts": 1}
    )

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "failed", document
    [error] = document["errors"]
    assert error["code"] == "storage_full"
    assert "Spazio libero insufficiente sul server pacsbridge" in error["explanation"]
    assert gateway.moves(study.study_instance_uid) == []
    [short] = gateway.events("cache.disk_short", retrieval_id)
    assert short.details["needed_bytes"] >= margin and short.outcome == "refused"
    assert not list(cache.root(gateway.ctx).rglob("*.dcm"))


class BadUidPacs:
    """A pynetdicom C-FIND SCP whose STUDY-level answers carry one good and one bad UID."""

    def __init__(self, accession: str, patient_id: str, bad_uid: str) -> None:
        self.good_uid = generate_uid()
        self.answers = [(self.good_uid, "20240101"), (bad_uid, "20240102")]
        self.accession, self.patient_id = accession, patient_id
        ae = AE("PACS")
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        handlers = [(evt.EVT_C_FIND, self._find), *NODELAY_HANDLERS]
        self.server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        self.peer = Peer("PACS", "127.0.0.1", self.server.server_address[1])

    def _find(self, event):  # noqa: ANN001, ANN202
        for uid, date in self.answers:
            answer = Dataset()
            for element in event.identifier:
                setattr(answer, element.keyword, "")
            answer.QueryRetrieveLevel = event.identifier.QueryRetrieveLevel
            with _lenient_writing():
                answer.StudyInstanceUID = uid
            answer.StudyDate = date
            answer.AccessionNumber, answer.PatientID = self.accession, self.patient_id
            yield 0xFF00, answer

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def bad_uid_pacs():  # noqa: ANN201
    made: list[BadUidPacs] = []

    def make(bad_uid: str) -> BadUidPacs:
        made.append(BadUidPacs(fresh_accession(), fresh_patient().patient_id, bad_uid))
        return made[-1]

    yield make
    for pacs in made:
        pacs.stop()


@BAD_UIDS_ON_THE_WIRE
def test_cfind_answer_with_a_bad_uid_is_dropped(bad_uid_pacs) -> None:  # noqa: ANN001
    pacs = bad_uid_pacs("1.2.3/../../x")
    query = Dataset()
    query.StudyInstanceUID = query.AccessionNumber = ""
    dropped: list[Any] = []

    rows = c_find(LocalAE(ae_title="PACSBRIDGE"), pacs.peer, query, "STUDY", dropped=dropped)

    assert [str(r.StudyInstanceUID) for r in rows] == [pacs.good_uid]
    assert [(d.level, d.keyword, d.value) for d in dropped] == [
        ("STUDY", "StudyInstanceUID", "1.2.3/../../x")
    ]


@BAD_UIDS_ON_THE_WIRE
def test_study_answer_with_a_bad_uid_is_named_in_the_retrievals_errors(
    make_gateway, bad_uid_pacs
) -> None:  # noqa: ANN001
    pacs = bad_uid_pacs("1.2.03.4")  # a leading zero in a component: not a UID
    pacs.answers = pacs.answers[1:]  # only the bad study
    gateway = make_gateway(pacs.peer)

    retrieval_id = gateway.request([pacs.accession])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "not_found", document
    [error] = document["errors"]
    assert error["code"] == "invalid_uid" and error["value"] == "1.2.03.4"
    assert error["level"] == "STUDY" and "UID non valido" in error["message"]
    assert document["studies"] == []
