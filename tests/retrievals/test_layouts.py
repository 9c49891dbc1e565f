"""Study layouts and PACS habits: several studies per accession number, two accession numbers,
no IMAGE-level C-FIND, and instances lost on the way (the IMAGE-level retry, then partial)."""

from __future__ import annotations

import io
import zipfile

from pydicom import dcmread

from pacsbridge.retrievals import receiver

from .conftest import AUTH, fresh_accession, fresh_patient

PROCESSING_FAILURE = 0x0110


def test_several_studies_and_two_accession_numbers(make_gateway, pacs, load_study) -> None:  # noqa: ANN001
    patient, shared = fresh_patient(), fresh_accession()
    first, a = load_study(pacs, patient=patient, accession_number=shared, series_count=1)
    second, b = load_study(pacs, patient=patient, accession_number=shared, series_count=2)
    third, c = load_study(pacs, patient=patient, series_count=1, instances_per_series=2)
    gateway = make_gateway(pacs.peer)

    retrieval_id = gateway.request([shared, third.accession_number])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "available", document
    uids = {s["study_instance_uid"] for s in document["studies"]}
    assert uids == {first.study_instance_uid, second.study_instance_uid, third.study_instance_uid}
    assert document["received_instances"] == len(a) + len(b) + len(c)
    package = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    names = zipfile.ZipFile(io.BytesIO(package.content)).namelist()
    assert {n.split("/")[2] for n in names if n.startswith("DICOM/")} == {
        "ST000000",
        "ST000001",
        "ST000002",
    }  # one patient folder, three study folders
    assert {n.split("/")[1] for n in names if n.startswith("DICOM/")} == {"PT000000"}


def test_pacs_without_image_level_queries(make_gateway, pacs, load_study) -> None:  # noqa: ANN001
    study, paths = load_study(pacs, series_count=2, instances_per_series=3)
    gateway = make_gateway(pacs.peer, source={"image_level_queries": False})

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "available", document
    assert document["expected_instances"] == document["received_instances"] == len(paths)
    assert [n["code"] for n in document["notes"]] == ["no_image_level"]
    [entry] = document["studies"]
    listed = {i["sop_instance_uid"] for s in entry["series"] for i in s["instances"]}
    assert listed == {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}
    metadata = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/metadata", headers=AUTH)
    series = metadata.json()["studies"][0]["series"]
    assert [len(s["instances"]) for s in series] == [3, 3]  # the image list from the files


def _losing(sop_uids: set[str], times: int):  # noqa: ANN202
    """Our SCP fails to store these instances the first ``times`` times (a disk hiccup)."""
    write = receiver._write
    failures: dict[str, int] = {}

    def flaky(request, final) -> None:  # noqa: ANN001
        sop = request.sop_instance_uid
        if sop in sop_uids and failures.get(sop, 0) < times:
            failures[sop] = failures.get(sop, 0) + 1
            raise OSError("injected write failure")
        write(request, final)

    return flaky, failures


def test_lost_instance_is_recovered_by_the_image_level_retry(
    make_gateway, dcmqrscp_pacs, load_study, monkeypatch
) -> None:  # noqa: ANN001
    study, paths = load_study(dcmqrscp_pacs, series_count=2, instances_per_series=3)
    lost = str(dcmread(paths[4], stop_before_pixels=True).SOPInstanceUID)
    flaky, failures = _losing({lost}, times=1)
    monkeypatch.setattr(receiver, "_write", flaky)
    gateway = make_gateway(dcmqrscp_pacs.peer)

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert failures == {lost: 1}
    assert document["state"] == "available", document
    assert document["received_instances"] == len(paths)
    codes = [n["code"] for n in document["notes"]]
    assert codes == ["move_sub_operations_failed", "image_retry"]
    assert document["notes"][0]["failed_uids"] == [lost]
    moves = gateway.moves(study.study_instance_uid)
    assert [m.details["level"] for m in moves] == ["STUDY", "IMAGE"]
    assert moves[0].code == "0xB000" and moves[0].details["failed"] == 1


def test_instances_never_sent_make_a_partial_retrieval(
    make_gateway, dcmqrscp_pacs, load_study, monkeypatch
) -> None:  # noqa: ANN001
    study, paths = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=3)
    lost = str(dcmread(paths[0], stop_before_pixels=True).SOPInstanceUID)
    flaky, _ = _losing({lost}, times=99)
    monkeypatch.setattr(receiver, "_write", flaky)
    gateway = make_gateway(dcmqrscp_pacs.peer)

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "partial", document
    assert (document["expected_instances"], document["received_instances"]) == (3, 2)
    [error] = document["errors"]
    assert error["code"] == "move_incomplete"
    assert error["missing_sop_instance_uids"] == [lost]
    package = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    assert package.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(package.content))
    assert len([n for n in archive.namelist() if n.startswith("DICOM/")]) == 2
    readme = archive.read("README.TXT").decode("ascii")
    assert "RECUPERO PARZIALE" in readme and lost in readme
    [completed] = gateway.events("retrieval.completed", retrieval_id)
    assert completed.details["state"] == "partial"


def test_image_level_answers_cut_by_the_pacs_limit(
    make_gateway, pacs_factory, load_study, our_scp_address
) -> None:  # noqa: ANN001
    """Orthanc configured to answer at most 50 instances per C-FIND: it ends with FE00."""
    pacs = pacs_factory(
        "orthanc",
        move_destinations={"PACSBRIDGE": our_scp_address},
        orthanc_config={"LimitFindInstances": 50},
    )
    study, paths = load_study(pacs, series_count=1, instances_per_series=60, rows=8, columns=8)
    gateway = make_gateway(pacs.peer)

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "available", document
    assert document["expected_instances"] == document["received_instances"] == len(paths)
    [note] = document["notes"]
    assert note["code"] == "cfind_cancelled" and note["level"] == "IMAGE"
    [entry] = document["studies"]
    assert len(entry["series"][0]["instances"]) == len(paths)  # the list, from the files


def test_a_study_never_sent_leaves_the_others_served(
    make_gateway, dcmqrscp_pacs, load_study, monkeypatch
) -> None:  # noqa: ANN001
    patient, shared = fresh_patient(), fresh_accession()
    kept, paths = load_study(dcmqrscp_pacs, patient=patient, accession_number=shared)
    lost, lost_paths = load_study(dcmqrscp_pacs, patient=patient, accession_number=shared)
    never = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in lost_paths}
    flaky, _ = _losing(never, times=99)
    monkeypatch.setattr(receiver, "_write", flaky)
    gateway = make_gateway(dcmqrscp_pacs.peer, fse={"attempts": 1})

    retrieval_id = gateway.request([shared])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "partial", document
    states = {s["study_instance_uid"]: s["state"] for s in document["studies"]}
    assert states == {kept.study_instance_uid: "complete", lost.study_instance_uid: "failed"}
    assert document["received_instances"] == len(paths)
    [error] = document["errors"]  # dcmqrscp: A702 when every sub-operation failed
    assert error["dicom_status"] == "0xA702" and error["attempts_left"] == 0
    assert f"non è riuscito a inviarci {len(lost_paths)} immagini" in error["explanation"]
    package = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    archive = zipfile.ZipFile(io.BytesIO(package.content))
    assert len([n for n in archive.namelist() if n.startswith("DICOM/")]) == len(paths)
    readme = archive.read("README.TXT").decode("ascii")
    assert "STUDI NON RECUPERATI" in readme and lost.study_instance_uid in readme
