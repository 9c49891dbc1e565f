"""Documents on the media (PDF reports, scanned pages): listed, ticked, wrapped, stored.

Round trips against real PACS (dcmqrscp, Orthanc, pynetdicom's qrscp): the object retrieved
from the PACS holds the same PDF bytes, and its patient is the RIS patient.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import EncapsulatedPDFStorage, SecondaryCaptureImageStorage

from conftest import LAUNCH_BODY, bearer, launch, pacs_settings
from imports.helpers import drain, progress_of, state_of, upload, zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd

EXTERNAL = SamplePatient(name="ESTERNO^MARIO", patient_id="EXT-9", birth_date="19740101", sex="M")
QUEUED = {"jobs": {"backend": "sqlite"}}
REPORT = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def scan_png(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def medium(folder: Path, study: SampleStudy) -> None:
    """A CD with a report, a scan, a broken picture and a viewer with its own help PDF."""
    write_cd(folder, [study], junk=False)
    (folder / "REFERTO.PDF").write_bytes(REPORT)
    (folder / "SCANS").mkdir()
    (folder / "SCANS" / "PAGE1.PNG").write_bytes(scan_png())
    (folder / "LOGO.PNG").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (folder / "VIEWER").mkdir()
    (folder / "VIEWER" / "VIEWER.EXE").write_bytes(b"MZ" + bytes(300))
    (folder / "VIEWER" / "HELP.PDF").write_bytes(REPORT)


def analysed(client: Any, token: str, folder: Path) -> dict[str, Any]:
    document = upload(client, token, zip_folder(folder))
    drain(client)
    answer = client.get(f"/api/v1/imports/{document['id']}", headers=bearer(token))
    assert answer.json()["state"] == "awaiting_confirmation", answer.text
    return answer.json()


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["path"]: d for d in document["documents"]}


def test_documents_outside_the_viewer_are_listed_with_named_problems(
    make_client: Any, tmp_path: Path
) -> None:
    client = make_client(**QUEUED, imports={"document_max_bytes": 100})
    token = launch(client)
    medium(tmp_path / "cd", SampleStudy(patient=EXTERNAL, series_count=1))
    (tmp_path / "cd" / "LUNGO.PDF").write_bytes(REPORT + b"%" * 100)
    documents = by_name(analysed(client, token, tmp_path / "cd"))
    assert set(documents) == {"REFERTO.PDF", "LUNGO.PDF", "SCANS/PAGE1.PNG", "LOGO.PNG"}
    assert documents["REFERTO.PDF"]["problem"] == ""
    assert documents["REFERTO.PDF"]["kind"] == "pdf"
    assert documents["SCANS/PAGE1.PNG"] == {**documents["SCANS/PAGE1.PNG"], "problem": ""}
    assert documents["LUNGO.PDF"]["problem"] == "document.too_large"  # above the setting
    assert documents["LOGO.PNG"]["problem"] == "document.unreadable"
    assert all(len(d["key"]) == 16 for d in documents.values())


def test_a_document_with_a_problem_cannot_be_ticked(
    make_client: Any, dcmqrscp_pacs: Any, tmp_path: Path
) -> None:
    client = make_client(**pacs_settings(dcmqrscp_pacs), **QUEUED)
    token = launch(client)
    medium(tmp_path / "cd", SampleStudy(patient=EXTERNAL, series_count=1))
    document = analysed(client, token, tmp_path / "cd")
    broken = by_name(document)["LOGO.PNG"]["key"]
    answer = client.post(
        f"/api/v1/imports/{document['id']}/confirm",
        headers=bearer(token),
        json={"document_keys": [broken], "identity_acknowledged": True},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["fields"][0]["field"] == "document_keys"
    assert state_of(client, token, document["id"]) == "awaiting_confirmation"


def retrieved(pacs: Any, study_uid: str) -> list[Dataset]:
    """The study's objects as the PACS gives them back (Orthanc: REST; others: its storage)."""
    if hasattr(pacs, "http_url"):
        query = {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}}
        ids = pacs.rest("POST", "/tools/find", json.dumps(query).encode())
        return [dcmread(io.BytesIO(_orthanc_file(pacs, i))) for i in ids]
    found = []
    for path in pacs.storage_dir.rglob("*"):
        try:
            ds = dcmread(path) if path.is_file() else None
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        if ds is not None and ds.get("StudyInstanceUID") == study_uid:
            found.append(ds)
    return found


def _orthanc_file(pacs: Any, instance_id: str) -> bytes:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{pacs.http_url}/instances/{instance_id}/file", timeout=30) as answer:
        return answer.read()


def test_ticked_pdf_and_scan_reach_the_pacs_in_the_study_under_the_ris_patient(
    make_client: Any, pacs: Any, tmp_path: Path
) -> None:
    client = make_client(**pacs_settings(pacs), **QUEUED)
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=2)
    medium(tmp_path / "cd", study)
    document = analysed(client, token, tmp_path / "cd")
    documents = by_name(document)
    keys = [documents["REFERTO.PDF"]["key"], documents["SCANS/PAGE1.PNG"]["key"]]
    answer = client.post(
        f"/api/v1/imports/{document['id']}/confirm",
        headers=bearer(token),
        json={"document_keys": keys, "identity_acknowledged": True},
    )
    assert answer.status_code == 202, answer.text
    drain(client)
    progress = progress_of(client, token, document["id"])
    assert progress["state"] == "completed", progress

    objects = {str(ds.SOPClassUID): ds for ds in retrieved(pacs, study.study_instance_uid)}
    assert len(retrieved(pacs, study.study_instance_uid)) == 2 + 2  # images and documents
    pdf, scan = objects[EncapsulatedPDFStorage], objects[SecondaryCaptureImageStorage]
    length = int(pdf.EncapsulatedDocumentLength)
    assert bytes(pdf.EncapsulatedDocument)[:length] == REPORT
    assert pdf.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert "PDF" in pdf.SeriesDescription and "scansionati" in scan.SeriesDescription
    assert scan.Rows == 30 and scan.Columns == 40
    ris = LAUNCH_BODY["patient"]
    for ds in (pdf, scan):
        assert ds.PatientID == ris["id"] and str(ds.PatientName) == "TEST^TEST"
        assert ds.RequestAttributesSequence[0].PlacerOrderNumberImagingServiceRequest == "ORD-1"
        assert ds.AccessionNumber == LAUNCH_BODY["order"]["accession_number"]


def test_no_document_is_imported_unless_ticked(
    make_client: Any, dcmqrscp_pacs: Any, tmp_path: Path
) -> None:
    client = make_client(**pacs_settings(dcmqrscp_pacs), **QUEUED)
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=2)
    medium(tmp_path / "cd", study)
    document = analysed(client, token, tmp_path / "cd")
    answer = client.post(
        f"/api/v1/imports/{document['id']}/confirm",
        headers=bearer(token),
        json={"identity_acknowledged": True},
    )
    assert answer.status_code == 202, answer.text
    drain(client)
    classes = {str(ds.SOPClassUID) for ds in retrieved(dcmqrscp_pacs, study.study_instance_uid)}
    assert EncapsulatedPDFStorage not in classes
    assert len(retrieved(dcmqrscp_pacs, study.study_instance_uid)) == 2
