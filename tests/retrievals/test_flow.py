"""Found and complete on every PACS kind: state, metadata, the package read by pydicom and DCMTK."""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from pydicom import dcmread
from pydicom.fileset import FileSet

from .conftest import AUTH, fresh_accession

DCMDUMP = "/usr/bin/dcmdump"
DCMFTEST = "/usr/bin/dcmftest"
ISO9660 = re.compile(r"[A-Z0-9_]{1,8}")
STUDY_KEYS = {
    "00100010": "PatientName",
    "00100030": "PatientBirthDate",
    "00100040": "PatientSex",
    "00100020": "PatientID",
    "00100021": "IssuerOfPatientID",
    "0020000D": "StudyInstanceUID",
    "00200010": "StudyID",
    "00080020": "StudyDate",
    "00080050": "AccessionNumber",
    "00081030": "StudyDescription",
}
SERIES_KEYS = {"0020000E", "00200011", "00080060"}
IMAGE_KEYS = {"00080018", "00080016", "00200013"}


def _pixels(paths: list[Path]) -> dict[str, bytes]:
    found = {}
    for path in paths:
        ds = dcmread(path)
        found[str(ds.SOPInstanceUID)] = ds.PixelData
    return found


def test_found_and_complete_on_every_pacs(make_gateway, pacs, load_study, tmp_path) -> None:  # noqa: ANN001
    study, paths = load_study(pacs, series_count=2, instances_per_series=3)
    gateway = make_gateway(pacs.peer)

    accepted = gateway.post([study.accession_number])
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["state"] == "queued"
    retrieval_id = accepted.json()["id"]
    assert accepted.headers["location"] == f"/api/v1/retrievals/{retrieval_id}"
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "available", document
    assert document["expected_instances"] == document["received_instances"] == len(paths)
    expires = datetime.fromisoformat(document["expires_at"])
    assert abs(expires - (gateway.ctx.clock.now() + timedelta(days=45))) < timedelta(minutes=5)
    assert document["errors"] == []
    [entry] = document["studies"]
    assert entry["study_instance_uid"] == study.study_instance_uid
    assert [s["series_number"] for s in entry["series"]] == [1, 2]
    assert all(i["received"] for s in entry["series"] for i in s["instances"])
    assert len(gateway.moves(study.study_instance_uid)) == 1
    assert [e.details["state"] for e in gateway.events("retrieval.completed", retrieval_id)] == [
        "available"
    ]

    _check_metadata(gateway, retrieval_id, study)
    _check_package(gateway, retrieval_id, study, paths, tmp_path / "unzipped")


def _check_metadata(gateway, retrieval_id: int, study) -> None:  # noqa: ANN001
    answer = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/metadata", headers=AUTH)
    assert answer.status_code == 200, answer.text
    [found] = answer.json()["studies"]
    dataset = found["dataset"]
    assert set(STUDY_KEYS) <= set(dataset), set(STUDY_KEYS) - set(dataset)
    assert dataset["00100010"]["Value"] == [{"Alphabetic": study.patient.name}]
    assert dataset["00100040"]["Value"] == [study.patient.sex]  # filled from the files if need be
    assert dataset["00100030"]["Value"] == [study.patient.birth_date]
    assert dataset["00081030"]["Value"] == [study.description]
    assert dataset["00080050"]["Value"] == [study.accession_number]
    assert len(found["series"]) == 2
    for series in found["series"]:
        assert set(series["dataset"]) >= SERIES_KEYS
        assert series["dataset"]["00080060"]["Value"] == ["CT"]
        assert len(series["instances"]) == 3
        for instance in series["instances"]:
            assert set(instance) >= IMAGE_KEYS
            assert instance["00080016"]["Value"] == [study.sop_class_uid]


def _check_package(gateway, retrieval_id: int, study, paths: list[Path], folder: Path) -> None:  # noqa: ANN001
    answer = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert int(answer.headers["content-length"]) == len(answer.content)
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[:2] == ["DICOMDIR", "README.TXT"]
    members = [n for n in names if n.startswith("DICOM/")]
    assert len(members) == len(paths)
    for name in members:
        parts = name.split("/")
        assert len(parts) <= 8 and all(ISO9660.fullmatch(p) for p in parts), name
    archive.extractall(folder)

    readme = (folder / "README.TXT").read_bytes().decode("ascii")
    assert "ROSSI MARIA" in readme and study.patient.patient_id in readme
    assert study.accession_number in readme and study.study_instance_uid in readme
    assert "\r\n" in readme

    fileset = FileSet(folder / "DICOMDIR")
    received = {str(i.SOPInstanceUID): i.load().PixelData for i in fileset}
    assert received == _pixels(paths)  # every instance, pixel data byte for byte

    dump = subprocess.run([DCMDUMP, "-q", str(folder / "DICOMDIR")], capture_output=True, text=True)
    assert dump.returncode == 0 and dump.stderr == "", dump.stderr
    assert dump.stdout.count("CS [IMAGE]") == len(paths)
    check = subprocess.run([DCMFTEST, *(str(folder / m) for m in members)], capture_output=True)
    assert check.returncode == 0, check.stdout


def test_package_answers_range_requests(make_gateway, dcmqrscp_pacs, load_study) -> None:  # noqa: ANN001
    study, _ = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=4)
    gateway = make_gateway(dcmqrscp_pacs.peer)
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()
    url = f"/api/v1/retrievals/{retrieval_id}/package"
    whole = gateway.client.get(url, headers=AUTH).content

    part = gateway.client.get(url, headers={**AUTH, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"

    head = gateway.client.get(url, headers={**AUTH, "Range": "bytes=0-4095"}).content
    rest = gateway.client.get(url, headers={**AUTH, "Range": f"bytes={len(head)}-"})
    assert rest.status_code == 206
    assert head + rest.content == whole  # an interrupted download resumes where it stopped
    downloads = gateway.events("package.downloaded", retrieval_id)
    assert [e.details["range"] for e in downloads] == [
        "",
        "bytes=100-199",
        "bytes=0-4095",
        "bytes=4096-",
    ]


def test_unknown_accession_is_not_found(make_gateway, orthanc_pacs) -> None:  # noqa: ANN001
    gateway = make_gateway(orthanc_pacs.peer)
    retrieval_id = gateway.request([fresh_accession()])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "not_found"
    assert document["studies"] == [] and document["errors"] == []
    package = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    assert package.status_code == 409
    assert gateway.events("retrieval.moved") == []


def test_unknown_source_and_wrong_keys_are_refused(make_gateway, dcmqrscp_pacs) -> None:  # noqa: ANN001
    gateway = make_gateway(dcmqrscp_pacs.peer)
    body = {"source": "nowhere", "accession_numbers": ["X1"]}

    unknown = gateway.client.post("/api/v1/retrievals", json=body, headers=AUTH)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0]["field"] == "source"
    wildcard = gateway.post(["AB*"])
    assert wildcard.status_code == 422
    body["source"] = "ao17"
    missing = gateway.client.post("/api/v1/retrievals", json=body)
    wrong = gateway.client.post(
        "/api/v1/retrievals", json=body, headers={"Authorization": "Bearer x"}
    )
    assert missing.status_code == wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "api_key_invalid"
    assert gateway.client.get("/api/v1/retrievals/1").status_code == 401
    assert gateway.client.get("/api/v1/retrievals/999", headers=AUTH).status_code == 404
    assert gateway.events("retrieval.requested") == []
